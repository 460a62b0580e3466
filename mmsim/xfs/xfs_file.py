"""fs/xfs/xfs_file.c and xfs_aops.c (v5.14): faults, writeback, fallocate and
direct reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mmsim.engine import kernel
from mmsim.fs import AddressSpaceOperations
from mmsim.iomap.buffered_io import (
    iomap_do_writepage,
    iomap_page_mkwrite,
    iomap_readpage,
    iomap_releasepage,
    iomap_set_page_dirty,
    iomap_writepages,
)
from mmsim.iomap.direct_io import iomap_dio_rw
from mmsim.xfs.xfs_iomap import xfs_buffered_write_iomap_begin, xfs_map_blocks

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import BufferHead, Inode, Page, Vma

__all__ = [
    "Xfs",
    "xfs_file_dio_read",
    "xfs_filemap_fault",
    "xfs_filemap_page_mkwrite",
    "xfs_free_file_space",
    "xfs_ilock_mmaplock_shared",
    "xfs_vm_writepage",
    "xfs_vm_writepages",
]


@kernel("fs/xfs/xfs_inode.c", version="v5.14", name="xfs_ilock")
def xfs_ilock_mmaplock_shared(k: Kernel, inode: Inode) -> Path:
    """``xfs_ilock(ip, XFS_MMAPLOCK_SHARED)``: sleep while punch holds it exclusive.

    The model keeps XFS's MMAPLOCK where it keeps ext4's ``i_mmap_sem``.
    """
    if inode.mmap_sem < 0:
        yield k.wait_until(lambda: inode.mmap_sem >= 0, "xfs_ilock(MMAPLOCK_SHARED)")
    inode.mmap_sem += 1


@kernel("fs/xfs/xfs_file.c", version="v5.14")
def xfs_filemap_fault(k: Kernel, vma: Vma, index: int) -> Path:
    """Models xfs_filemap_fault() → __xfs_filemap_fault(): ``filemap_fault`` under
    MMAPLOCK_SHARED."""
    from mmsim.filemap import filemap_fault

    inode = vma.mapping.host
    yield from xfs_ilock_mmaplock_shared(k, inode)
    ret = yield from filemap_fault(k, vma.mapping, index)
    inode.mmap_sem -= 1
    return ret


@kernel("fs/xfs/xfs_file.c", version="v5.14")
def xfs_filemap_page_mkwrite(k: Kernel, vma: Vma, page: Page) -> Path:
    """Models xfs_filemap_page_mkwrite() → __xfs_filemap_fault(write_fault=true):
    ``iomap_page_mkwrite`` with ``xfs_buffered_write_iomap_ops`` under
    MMAPLOCK_SHARED (``sb_start_pagefault`` and the timestamp are not modelled)."""
    inode = vma.mapping.host
    yield from xfs_ilock_mmaplock_shared(k, inode)
    ret = yield from iomap_page_mkwrite(k, vma, page, xfs_buffered_write_iomap_begin)
    inode.mmap_sem -= 1
    return ret


@kernel("fs/xfs/xfs_aops.c", version="v5.14")
def xfs_vm_writepages(k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
    """Models xfs_vm_writepages() → iomap_writepages(xfs_writeback_ops)."""
    yield from iomap_writepages(k, mapping_key, wbc, xfs_map_blocks)


@kernel("fs/xfs/xfs_aops.c", version="v5.14")
def xfs_vm_writepage(k: Kernel, page: Page, wbc: WritebackControl) -> Path:
    """Models xfs_vm_writepage() → iomap_writepage() (reclaim's ``->writepage``,
    which only kswapd calls for a file page: see ``iomap_do_writepage``)."""
    yield from iomap_do_writepage(k, page, wbc, xfs_map_blocks)


@kernel("fs/xfs/xfs_bmap_util.c", version="v5.14")
def xfs_free_file_space(k: Kernel, inode_key: int, index: int) -> Path:
    """Models xfs_file_fallocate(PUNCH_HOLE) → xfs_free_file_space() for one block.

    Under IOLOCK and MMAPLOCK exclusive, ``xfs_break_layouts`` (the
    ``break_layouts`` hook) may fail the punch; ``xfs_flush_unmap_range`` writes
    the range back and removes its pages (whatever GUP holds, as ext4 does);
    ``xfs_unmap_extent`` frees the block or the delalloc reservation.
    """
    from mmsim.fs_writeback import vfs_fsync
    from mmsim.truncate import truncate_pagecache_range

    inode = k.inodes[inode_key]
    if inode.mmap_sem != 0:
        yield k.wait_until(lambda: inode.mmap_sem == 0, "xfs_ilock(MMAPLOCK_EXCL)")
    inode.mmap_sem = -1
    err = yield from k.ops.break_layouts(k, inode)
    if err:
        inode.mmap_sem = 0
        k.tracepoint("request_refused", inode, f"punch hole of {inode.name}: {err}")
        return err
    yield from vfs_fsync(k, inode_key)  # filemap_write_and_wait_range
    yield from truncate_pagecache_range(k, inode.mapping, index)
    blk = inode.blocks.pop(index, None)
    if blk is not None:
        k.disk.owner[blk] = None
    if index in inode.delalloc:
        inode.delalloc.discard(index)
        inode.reserved -= 1
    k.expected.pop((inode_key, index), None)
    inode.mmap_sem = 0
    k.tracepoint("punch_hole", inode, f"{inode.name}:{index} punched")
    return 0


@kernel("fs/xfs/xfs_file.c", version="v5.14")
def xfs_file_dio_read(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
) -> Path:
    """Models xfs_file_read_iter() → xfs_file_dio_read(): ``iomap_dio_rw``.

    The IOLOCK it holds shared is left out: only truncate and hole punch take
    it exclusively, and no built-in scenario or fuzzing rule truncates or
    punches the file a direct read reads from (a scenario file that did would
    see the two overlap).
    """
    return (yield from iomap_dio_rw(k, src, lblk, vma, index, is_async))


class Xfs(AddressSpaceOperations):
    """XFS with iomap buffered I/O (``xfs_address_space_operations``), v5.14."""

    name: ClassVar[str] = "iomap"
    summary: ClassVar[str] = (
        "XFS/iomap v5.14: no per-page state needed at writeback; holes skipped "
        "silently; O_DIRECT reads through iomap"
    )

    def fault(self, k: Kernel, vma: Vma, index: int) -> Path:
        return xfs_filemap_fault(k, vma, index)

    def page_mkwrite(self, k: Kernel, vma: Vma, page: Page) -> Path:
        return xfs_filemap_page_mkwrite(k, vma, page)

    def writepages(self, k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
        return xfs_vm_writepages(k, mapping_key, wbc)

    def writepage(self, k: Kernel, page: Page, wbc: WritebackControl) -> Path:
        return xfs_vm_writepage(k, page, wbc)

    def set_page_dirty(self, k: Kernel, page: Page) -> bool:
        return iomap_set_page_dirty(k, page)

    def releasepage(self, k: Kernel, page: Page) -> bool:
        return iomap_releasepage(k, page)

    def readpage(self, k: Kernel, page: Page) -> Path:
        return iomap_readpage(k, page)

    def get_block(self, k: Kernel, page: Page, bh: BufferHead) -> int:
        raise AssertionError("XFS/iomap pages carry no buffer heads")

    def prepare_write(self, k: Kernel, page: Page) -> int:
        ret = xfs_buffered_write_iomap_begin(k, page)
        if ret == 0:
            page.mkwrite = True
        return ret

    def punch_hole(self, k: Kernel, inode_key: int, index: int) -> Path:
        return xfs_free_file_space(k, inode_key, index)

    def read_iter(
        self, k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
    ) -> Path:
        return xfs_file_dio_read(k, src, lblk, vma, index, is_async)
