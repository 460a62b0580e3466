"""fs/xfs/xfs_iomap.c and xfs_bmap.c (v5.14): delalloc reservations and mapping.

XFS keeps a delayed-allocation reservation in the inode's extent tree, not on
the page: ``inode.delalloc`` holds the reserved logical blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Page

__all__ = [
    "xfs_bmapi_convert_delalloc",
    "xfs_bmapi_reserve_delalloc",
    "xfs_buffered_write_iomap_begin",
    "xfs_map_blocks",
]

ENOSPC = 28


@kernel("fs/xfs/libxfs/xfs_bmap.c", version="v5.14")
def xfs_bmapi_reserve_delalloc(k: Kernel, inode: Inode, lblk: int) -> int:
    """Models xfs_bmapi_reserve_delalloc(): reserve one block (``xfs_mod_fdblocks``
    fails with -ENOSPC when every free block is owned or reserved)."""
    if k.disk.free() - sum(i.reserved for i in k.inodes) < 1:
        return -ENOSPC
    inode.reserved += 1
    inode.delalloc.add(lblk)
    return 0


@kernel("fs/xfs/xfs_iomap.c", version="v5.14")
def xfs_buffered_write_iomap_begin(k: Kernel, page: Page) -> int:
    """Models xfs_buffered_write_iomap_begin() for a write fault on ``page``.

    An allocated block or an existing delalloc extent needs nothing; a hole gets
    a delalloc reservation. Returns 0 or -ENOSPC.
    """
    assert page.mapping is not None
    inode = page.mapping.host
    if page.index in inode.blocks or page.index in inode.delalloc:
        return 0
    return xfs_bmapi_reserve_delalloc(k, inode, page.index)


@kernel("fs/xfs/libxfs/xfs_bmap.c", version="v5.14")
def xfs_bmapi_convert_delalloc(k: Kernel, inode: Inode, lblk: int) -> int | None:
    """Models xfs_bmapi_convert_delalloc(): the reservation becomes a real block."""
    blk = k.alloc_block(inode, lblk)
    if blk is not None:
        inode.reserved -= 1
        inode.delalloc.discard(lblk)
    return blk


@kernel("fs/xfs/xfs_aops.c", version="v5.14")
def xfs_map_blocks(k: Kernel, page: Page) -> int | None:
    """Models xfs_map_blocks(): the block a dirty page is written to.

    An allocated block is written in place; a delalloc extent is allocated now;
    with neither (the range was punched, or the page was dirtied without
    ``->page_mkwrite`` over a hole) the data fork has a HOLE: None.
    """
    assert page.mapping is not None
    inode = page.mapping.host
    blk = inode.blocks.get(page.index)
    if blk is not None:
        return blk
    if page.index in inode.delalloc:
        return xfs_bmapi_convert_delalloc(k, inode, page.index)
    return None
