"""fs/iomap/buffered-io.c (v5.14): page faults, dirtying and writeback via iomap.

One block per page, so no per-page ``iomap_page`` state is ever attached
(``iomap_page_create`` makes none when a page holds one block): the page's
``private`` stays NULL, and writeback needs nothing the page lacks. The block
map comes from the filesystem (:mod:`mmsim.xfs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.bio import Bio, bio_alloc, bio_put, submit_bio
from mmsim.engine import kernel
from mmsim.filemap import (
    VM_FAULT_LOCKED,
    VM_FAULT_NOPAGE,
    VM_FAULT_SIGBUS,
    end_page_writeback,
    lock_page,
    unlock_page,
)
from mmsim.mm_types import PAGE_SIZE
from mmsim.page_writeback import (
    __set_page_dirty_nobuffers,
    redirty_page_for_writepage,
    set_page_dirty,
    set_page_writeback,
    write_cache_pages,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Vma

    #: ``->iomap_begin`` for a write fault: reserve or map; 0 or -ENOSPC.
    IomapBegin = Callable[[Kernel, Page], int]
    #: ``wpc->ops->map_blocks``: the block to write the page to, or None (a hole).
    MapBlocks = Callable[[Kernel, Page], int | None]

__all__ = [
    "iomap_do_writepage",
    "iomap_page_mkwrite",
    "iomap_readpage",
    "iomap_releasepage",
    "iomap_set_page_dirty",
    "iomap_writepage_end_bio",
    "iomap_writepage_map",
    "iomap_writepages",
]


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_page_mkwrite(k: Kernel, vma: Vma, page: Page, begin: IomapBegin) -> Path:
    """Models iomap_page_mkwrite(), v5.14: prepare a faulting page for writing.

    ``lock_page``; a page truncated meanwhile is VM_FAULT_NOPAGE
    (``page_mkwrite_check_truncate``); ``->iomap_begin`` with IOMAP_WRITE|FAULT
    reserves space for a hole (XFS: delalloc), -ENOSPC is VM_FAULT_SIGBUS;
    ``iomap_page_mkwrite_actor`` → ``set_page_dirty``; ``wait_for_stable_page``
    (no stable-writes device here). Returns VM_FAULT_LOCKED with the page locked.
    """
    yield from lock_page(k, page)
    if page.mapping is not vma.mapping:
        unlock_page(k, page)
        return VM_FAULT_NOPAGE
    if begin(k, page) < 0:
        unlock_page(k, page)
        return VM_FAULT_SIGBUS
    page.mkwrite = True  # the model's record: prepared since last cleaned
    set_page_dirty(k, page)
    return VM_FAULT_LOCKED


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_set_page_dirty(k: Kernel, page: Page) -> bool:
    """Models iomap_set_page_dirty(): ``__set_page_dirty_nobuffers`` (no iop state)."""
    return __set_page_dirty_nobuffers(k, page)


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_releasepage(k: Kernel, page: Page) -> bool:
    """Models iomap_releasepage(): refuse a dirty or writeback page, else drop iop."""
    if page.dirty or page.writeback:
        return False
    page.private = None  # iomap_page_release
    return True


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_readpage(k: Kernel, page: Page) -> Path:
    """Models iomap_readpage() of a locked, new page: read its block (a hole reads
    zeroes), mark it uptodate, unlock. Synchronous, as the faulting task waits."""
    assert page.mapping is not None
    blk = page.mapping.host.blocks.get(page.index)
    yield
    page.data = k.disk.data[blk] if blk is not None else 0
    page.uptodate = True
    unlock_page(k, page)


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_writepage_end_bio(k: Kernel, bio: Bio) -> None:
    """Models iomap_writepage_end_bio() → iomap_finish_ioend(): end writeback."""
    end_page_writeback(k, bio.page)
    bio_put(k, bio)


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_writepage_map(
    k: Kernel, page: Page, wbc: WritebackControl, map_blocks: MapBlocks
) -> None:
    """Models iomap_writepage_map(), v5.14 (8e1bcef8e18d: pages without an iop
    may enter writeback).

    ``map_blocks`` (``xfs_map_blocks``) finds or allocates the block; an
    IOMAP_HOLE is skipped silently: no WARN, no error. ``set_page_writeback``,
    ``unlock_page``, submit; with nothing to write, ``end_page_writeback`` at
    once (the page went dirty → clean and nothing reached the disk).
    """
    blk = map_blocks(k, page)
    set_page_writeback(k, page)
    unlock_page(k, page)
    if blk is None:
        k.tracepoint("iomap_hole_skipped", page, k.page_name(page))
        end_page_writeback(k, page)
        return
    submit_bio(k, bio_alloc(k, page, [blk], True, iomap_writepage_end_bio))


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_do_writepage(
    k: Kernel, page: Page, wbc: WritebackControl, map_blocks: MapBlocks
) -> Path:
    """Models iomap_do_writepage(): a page wholly past EOF is redirtied and
    unlocked unwritten ("so that reclaim stops reclaiming it": truncate removes
    it); otherwise ``iomap_writepage_map``. Its refusal of direct reclaim
    (PF_MEMALLOC without PF_KSWAPD) is not modelled: v4.15's
    ``shrink_page_list`` writes file pages from kswapd only."""
    assert page.mapping is not None
    k.tracepoint("wbc_writepage", page, k.page_name(page))
    if page.index * PAGE_SIZE >= page.mapping.host.size:
        redirty_page_for_writepage(k, wbc, page)
        unlock_page(k, page)
        return
    iomap_writepage_map(k, page, wbc, map_blocks)
    return
    yield  # a path: ->writepage may sleep


@kernel("fs/iomap/buffered-io.c", version="v5.14")
def iomap_writepages(
    k: Kernel, mapping_key: int, wbc: WritebackControl, map_blocks: MapBlocks
) -> Path:
    """Models iomap_writepages(): ``write_cache_pages`` with ``iomap_do_writepage``."""

    def writepage(k: Kernel, page: Page, wbc: WritebackControl) -> Path:
        return iomap_do_writepage(k, page, wbc, map_blocks)

    yield from write_cache_pages(k, k.inodes[mapping_key].mapping, wbc, writepage)
