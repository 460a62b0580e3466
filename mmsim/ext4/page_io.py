"""fs/ext4/page-io.c (v4.15): building and completing writeback bios."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.bio import Bio, bio_alloc, bio_put, submit_bio
from mmsim.engine import kernel
from mmsim.filemap import end_page_writeback, unlock_page
from mmsim.mm_types import NO_BLOCK, PAGE_SIZE
from mmsim.page_writeback import set_page_writeback

if TYPE_CHECKING:
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

__all__ = ["ext4_bio_write_page", "ext4_end_bio", "ext4_io_submit", "page_len"]


def page_len(page: Page) -> int:
    """The ``len`` that ``ext4_writepage`` and ``mpage_submit_page`` (v4.15)
    pass to ``ext4_bio_write_page``: the bytes of the page's index inside
    ``i_size`` if EOF falls in it (0 when ``i_size`` ends where it begins),
    else PAGE_SIZE, even for a page wholly past EOF (as the kernel computes
    it: ``page->index == size >> PAGE_SHIFT ? size & ~PAGE_MASK : PAGE_SIZE``)."""
    assert page.mapping is not None
    size = page.mapping.host.size
    return size % PAGE_SIZE if page.index == size // PAGE_SIZE else PAGE_SIZE


@kernel("fs/ext4/page-io.c")
def ext4_bio_write_page(
    k: Kernel, page: Page, length: int, wbc: WritebackControl
) -> list[int]:
    """Models ext4_bio_write_page(), v4.15: start writeback of a locked, clean page.

    ``set_page_writeback``; a buffer at or past ``length`` (the bytes of the
    page inside ``i_size``: :func:`page_len`) is past EOF, cleaned and not
    written; every other buffer that is dirty, mapped and not delayed is
    cleaned (``clear_buffer_dirty``) and added to the bio; an unmapped dirty
    buffer is just cleaned ("a hole"). ``unlock_page``. Returns the blocks to
    write; with none, writeback ends at once (``end_page_writeback``).
    """
    set_page_writeback(k, page)
    blocks = []
    for bh in page.private or ():
        if length == 0:  # block_start >= len: the page's one block, past EOF
            bh.dirty = False
            bh.uptodate = True
            continue
        if not bh.dirty or bh.delay or not bh.mapped or bh.blocknr == NO_BLOCK:
            if not bh.mapped:
                bh.dirty = False
            continue
        bh.dirty = False
        blocks.append(bh.blocknr)
    unlock_page(k, page)
    if not blocks:
        end_page_writeback(k, page)
    return blocks


@kernel("fs/ext4/page-io.c")
def ext4_end_bio(k: Kernel, bio: Bio) -> None:
    """Models ext4_end_bio() → ext4_finish_bio(): ``end_page_writeback``, free the bio."""
    end_page_writeback(k, bio.page)
    bio_put(k, bio)


@kernel("fs/ext4/page-io.c")
def ext4_io_submit(k: Kernel, page: Page, blocks: list[int]) -> None:
    """Models ext4_io_submit(): submit the writeback bio built for ``page``."""
    submit_bio(k, bio_alloc(k, page, blocks, True, ext4_end_bio))
