"""fs/btrfs/inode.c (v4.15): faults, space reservation and COW of file data.

Every write of a data block goes to a newly allocated block (copy-on-write), so
every writeback needs space, reserved when the page went clean → dirty
(``->page_mkwrite`` or ``->write_begin``: ``btrfs_delalloc_reserve_space`` and
an ``EXTENT_DELALLOC`` range, ``inode.delalloc`` here). A page dirtied any other
way reaches writeback with nothing reserved: btrfs's "COW fixup" exists for
exactly that ("There are a few paths in the higher layers of the kernel that
directly set the page dirty bit without asking the filesystem if it is a good
idea", ``btrfs_writepage_fixup_worker``).

Simplifications: page ``private`` (EXTENT_PAGE_PRIVATE), ordered extents and
the transaction that frees the old block are not modelled: the old block is
freed when the write completes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

# Imported under another name: a double-underscore name in a class body is mangled.
from mmsim.btrfs.extent_io import __extent_writepage as extent_writepage
from mmsim.btrfs.extent_io import extent_writepages
from mmsim.engine import kernel
from mmsim.filemap import (
    VM_FAULT_LOCKED,
    VM_FAULT_NOPAGE,
    VM_FAULT_SIGBUS,
    lock_page,
    unlock_page,
    wait_on_page_writeback,
)
from mmsim.fs import AddressSpaceOperations
from mmsim.page_writeback import __set_page_dirty_nobuffers, set_page_dirty

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import BufferHead, Inode, Page, Vma

__all__ = [
    "Btrfs",
    "btrfs_delalloc_reserve_space",
    "btrfs_finish_ordered_io",
    "btrfs_page_mkwrite",
    "btrfs_punch_hole",
    "btrfs_readpage",
    "btrfs_releasepage",
    "btrfs_set_extent_delalloc",
    "btrfs_set_page_dirty",
    "btrfs_writepage_fixup_worker",
    "btrfs_writepage_start_hook",
    "cow_file_range",
]

ENOSPC = 28


@kernel("fs/btrfs/delalloc-space.c")
def btrfs_delalloc_reserve_space(k: Kernel, inode: Inode) -> int:
    """Models btrfs_delalloc_reserve_space() for one block: reserve space for a
    COW write (-ENOSPC when every free block is owned or reserved)."""
    if k.disk.free() - sum(i.reserved for i in k.inodes) < 1:
        return -ENOSPC
    inode.reserved += 1
    return 0


@kernel("fs/btrfs/inode.c")
def btrfs_set_extent_delalloc(k: Kernel, inode: Inode, lblk: int) -> None:
    """Models btrfs_set_extent_delalloc(): the block's range becomes
    EXTENT_DELALLOC, holding the reservation just taken. A range already
    delalloc keeps its reservation and the new one is released (the extent
    accounting merges them)."""
    if lblk in inode.delalloc:
        inode.reserved -= 1
    else:
        inode.delalloc.add(lblk)


@kernel("fs/btrfs/inode.c")
def btrfs_page_mkwrite(k: Kernel, vma: Vma, page: Page) -> Path:
    """Models btrfs_page_mkwrite(), v4.15.

    ``btrfs_delalloc_reserve_space`` first, before the page lock (-ENOSPC is
    VM_FAULT_SIGBUS), then ``lock_page``; a truncated page releases the
    reservation and returns VM_FAULT_NOPAGE; ``wait_on_page_writeback``;
    ``btrfs_set_extent_delalloc`` and ``set_page_dirty``. Returns
    VM_FAULT_LOCKED.
    """
    inode = vma.mapping.host
    if btrfs_delalloc_reserve_space(k, inode) < 0:
        return VM_FAULT_SIGBUS
    yield from lock_page(k, page)
    if page.mapping is not vma.mapping:
        inode.reserved -= 1  # btrfs_delalloc_release_space
        unlock_page(k, page)
        return VM_FAULT_NOPAGE
    yield from wait_on_page_writeback(k, page)
    btrfs_set_extent_delalloc(k, inode, page.index)
    page.mkwrite = True  # the model's record: prepared since last cleaned
    set_page_dirty(k, page)
    return VM_FAULT_LOCKED


@kernel("fs/btrfs/inode.c")
def btrfs_set_page_dirty(k: Kernel, page: Page) -> bool:
    """Models btrfs_set_page_dirty(): ``__set_page_dirty_nobuffers``."""
    return __set_page_dirty_nobuffers(k, page)


@kernel("fs/btrfs/inode.c")
def btrfs_writepage_fixup_worker(k: Kernel, page: Page) -> bool:
    """Models btrfs_writepage_fixup_worker(): reserve space for an out-of-band
    dirty page. On -ENOSPC the worker sets the mapping error and the data is
    not written (``mapping_set_error``, ``end_extent_writepage``). Returns
    whether the page may now be written.
    """
    assert page.mapping is not None
    inode = page.mapping.host
    if btrfs_delalloc_reserve_space(k, inode) < 0:
        k.warn(
            "fs/btrfs/inode.c:btrfs_writepage_fixup_worker",
            f"-ENOSPC: {k.page_name(page)} is not written (mapping_set_error)",
        )
        return False
    btrfs_set_extent_delalloc(k, inode, page.index)
    return True


@kernel("fs/btrfs/inode.c")
def btrfs_writepage_start_hook(k: Kernel, page: Page) -> bool:
    """Models btrfs_writepage_start_hook() (later btrfs_writepage_cow_fixup).

    A page at writeback with no reservation was dirtied "without asking the
    filesystem": the ``writeback_unreserved`` tracepoint marks it. v4.15 sets
    PageChecked, redirties the page and queues ``btrfs_writepage_fixup_worker``,
    which reserves and redirties it for the next pass; the model runs the
    worker's reservation inline and writes the page at once. (v6.15 with
    CONFIG_BTRFS_EXPERIMENTAL rejects such pages with -EUCLEAN instead.)
    Returns whether to write the page.
    """
    assert page.mapping is not None
    if page.index in page.mapping.host.delalloc:
        return True
    k.tracepoint("writeback_unreserved", page, k.page_name(page))
    return btrfs_writepage_fixup_worker(k, page)


@kernel("fs/btrfs/inode.c")
def cow_file_range(k: Kernel, page: Page) -> int | None:
    """Models cow_file_range() for the page's block: allocate a new block from
    the reservation (``btrfs_reserve_extent``), without remapping the file yet."""
    assert page.mapping is not None
    inode = page.mapping.host
    blk = k.alloc_block(inode, page.index, remap=False)
    inode.delalloc.discard(page.index)
    inode.reserved -= 1
    return blk


@kernel("fs/btrfs/inode.c")
def btrfs_finish_ordered_io(k: Kernel, page: Page, blk: int) -> None:
    """Models btrfs_finish_ordered_io() (the extent swap, simplified): the file's
    block becomes ``blk`` and the old block is freed."""
    if page.mapping is None:  # truncated meanwhile: the new extent is dropped
        k.disk.owner[blk] = None
        return
    inode = page.mapping.host
    old = inode.blocks.get(page.index)
    inode.blocks[page.index] = blk
    if old is not None and old != blk:
        k.disk.owner[old] = None


@kernel("fs/btrfs/inode.c")
def btrfs_readpage(k: Kernel, page: Page) -> Path:
    """Models btrfs_readpage() → extent_read_full_page() of a locked, new page: read
    its block (a hole reads zeroes), mark it uptodate, unlock."""
    assert page.mapping is not None
    blk = page.mapping.host.blocks.get(page.index)
    yield
    page.data = k.disk.data[blk] if blk is not None else 0
    page.uptodate = True
    unlock_page(k, page)


@kernel("fs/btrfs/inode.c")
def btrfs_releasepage(k: Kernel, page: Page) -> bool:
    """Models btrfs_releasepage(): refuse a dirty or writeback page, else drop the
    extent mapping state."""
    if page.dirty or page.writeback:
        return False
    page.private = None
    return True


@kernel("fs/btrfs/file.c")
def btrfs_punch_hole(k: Kernel, inode_key: int, index: int) -> Path:
    """Models btrfs_punch_hole() for one block, v4.15.

    ``btrfs_wait_ordered_range`` writes the range back and waits; under the
    inode lock, the ``break_layouts`` hook (btrfs has none; ext4 and XFS call it
    here, so a layout fix applies alike); ``truncate_pagecache_range`` (whatever
    GUP holds; ``btrfs_invalidatepage`` releases the reservation);
    ``btrfs_drop_extents`` frees the block.
    """
    from mmsim.fs_writeback import vfs_fsync
    from mmsim.truncate import truncate_pagecache_range

    inode = k.inodes[inode_key]
    yield from vfs_fsync(k, inode_key)
    if inode.mmap_sem != 0:
        yield k.wait_until(lambda: inode.mmap_sem == 0, "inode_lock")
    inode.mmap_sem = -1
    err = yield from k.ops.break_layouts(k, inode)
    if err:
        inode.mmap_sem = 0
        k.tracepoint("request_refused", inode, f"punch hole of {inode.name}: {err}")
        return err
    yield from truncate_pagecache_range(k, inode.mapping, index)
    if index in inode.delalloc:
        inode.delalloc.discard(index)
        inode.reserved -= 1
    blk = inode.blocks.pop(index, None)
    if blk is not None:
        k.disk.owner[blk] = None
    k.expected.pop((inode_key, index), None)
    inode.mmap_sem = 0
    k.tracepoint("punch_hole", inode, f"{inode.name}:{index} punched")
    return 0


class Btrfs(AddressSpaceOperations):
    """btrfs data COW (``btrfs_aops``), v4.15."""

    name: ClassVar[str] = "cow"
    summary: ClassVar[str] = (
        "btrfs v4.15: every writeback COWs into a new block reserved when the "
        "page was dirtied"
    )

    def page_mkwrite(self, k: Kernel, vma: Vma, page: Page) -> Path:
        return btrfs_page_mkwrite(k, vma, page)

    def writepages(self, k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
        return extent_writepages(k, mapping_key, wbc)

    def writepage(self, k: Kernel, page: Page, wbc: WritebackControl) -> Path:
        return extent_writepage(k, page, wbc)

    def set_page_dirty(self, k: Kernel, page: Page) -> bool:
        return btrfs_set_page_dirty(k, page)

    def releasepage(self, k: Kernel, page: Page) -> bool:
        return btrfs_releasepage(k, page)

    def readpage(self, k: Kernel, page: Page) -> Path:
        return btrfs_readpage(k, page)

    def get_block(self, k: Kernel, page: Page, bh: BufferHead) -> int:
        raise AssertionError("btrfs pages carry no buffer heads")

    def prepare_write(self, k: Kernel, page: Page) -> int:
        assert page.mapping is not None
        inode = page.mapping.host
        ret = btrfs_delalloc_reserve_space(k, inode)
        if ret == 0:
            btrfs_set_extent_delalloc(k, inode, page.index)
            page.mkwrite = True
        return ret

    def punch_hole(self, k: Kernel, inode_key: int, index: int) -> Path:
        return btrfs_punch_hole(k, inode_key, index)
