"""fs/btrfs/extent_io.c (v4.15): data writeback, one page at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.bio import Bio, bio_alloc, bio_put, submit_bio
from mmsim.engine import kernel
from mmsim.filemap import end_page_writeback, unlock_page
from mmsim.page_writeback import set_page_writeback, write_cache_pages

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

__all__ = ["__extent_writepage", "end_bio_extent_writepage", "extent_writepages"]


@kernel("fs/btrfs/extent_io.c")
def end_bio_extent_writepage(k: Kernel, bio: Bio) -> None:
    """Models end_bio_extent_writepage(): the ordered extent completes
    (``btrfs_finish_ordered_io``: the file now points at the new block, the old
    one is freed), then ``end_page_writeback``."""
    from mmsim.btrfs.inode import btrfs_finish_ordered_io

    btrfs_finish_ordered_io(k, bio.page, bio.blocks[0])
    end_page_writeback(k, bio.page)
    bio_put(k, bio)


@kernel("fs/btrfs/extent_io.c")
def __extent_writepage(k: Kernel, page: Page, wbc: WritebackControl) -> Path:
    """Models __extent_writepage(), v4.15, for a locked page cleaned for I/O.

    ``btrfs_writepage_start_hook`` (the COW fixup) first; then
    ``writepage_delalloc`` → ``run_delalloc_range`` → ``cow_file_range``
    allocates a *new* block for the page's reservation; ``set_page_writeback``,
    ``unlock_page``, submit.
    """
    from mmsim.btrfs.inode import btrfs_writepage_start_hook, cow_file_range

    k.tracepoint("wbc_writepage", page, k.page_name(page))
    if not btrfs_writepage_start_hook(k, page):
        unlock_page(k, page)
        return
    blk = cow_file_range(k, page)
    set_page_writeback(k, page)
    unlock_page(k, page)
    if blk is None:
        end_page_writeback(k, page)
        return
    submit_bio(k, bio_alloc(k, page, [blk], True, end_bio_extent_writepage))
    return
    yield  # a path: ->writepage may sleep


@kernel("fs/btrfs/extent_io.c")
def extent_writepages(k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
    """Models btrfs_writepages() → extent_writepages() →
    extent_write_cache_pages(), which follows ``write_cache_pages``."""
    yield from write_cache_pages(
        k, k.inodes[mapping_key].mapping, wbc, __extent_writepage
    )
