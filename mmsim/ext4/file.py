"""fs/ext4/file.c (v4.15): the O_DIRECT read, and ext4 -o dax.

``ext4_file_read_iter`` reads through fs/direct-io.c in v4.15, and through
iomap from v5.5 (``ext4_dio_read_iter``, which the ``iomap-dio`` policy
selects).

An fs-dax file has no page cache: faults map the persistent-memory blocks
(:mod:`mmsim.dax`), writeback only flushes CPU caches, and the pages never carry
buffers or a dirty state. Hole punch is ``ext4_punch_hole``, as without DAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mmsim.dax import dax_iomap_fault, dax_iomap_rw, dax_writeback_mapping_range
from mmsim.direct_io import do_blockdev_direct_IO
from mmsim.engine import kernel
from mmsim.ext4.inode import down_read_i_mmap_sem, ext4_punch_hole
from mmsim.fs import AddressSpaceOperations
from mmsim.iomap.direct_io import iomap_dio_rw

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import BufferHead, Inode, Page, Vma

__all__ = [
    "Ext4Dax",
    "ext4_dax_huge_fault",
    "ext4_dax_read_iter",
    "ext4_dax_writepages",
    "ext4_dio_read_iter",
    "ext4_file_read_iter",
]


@kernel("fs/ext4/file.c")
def ext4_file_read_iter(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
) -> Path:
    """Models ext4_file_read_iter(), v4.15, for an O_DIRECT read.

    ``generic_file_read_iter`` → ``ext4_direct_IO`` → ``ext4_direct_IO_read``
    → ``__blockdev_direct_IO`` (:func:`~mmsim.direct_io.do_blockdev_direct_IO`).
    ``ext4_direct_IO_read``'s ``inode_lock_shared`` and its
    ``filemap_write_and_wait_range`` are left out: no built-in scenario or
    fuzzing rule writes, truncates or punches the file a direct read reads
    from (a scenario file that did would see them overlap). From v5.5 ext4
    reads through iomap (:func:`ext4_dio_read_iter`).
    """
    return (yield from do_blockdev_direct_IO(k, src, lblk, vma, index, is_async))


@kernel("fs/ext4/file.c", version="v5.5")
def ext4_dio_read_iter(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
) -> Path:
    """Models ext4_file_read_iter() → ext4_dio_read_iter(), v5.5 (b1b4705d54ab):
    ``iomap_dio_rw`` with ``ext4_iomap_ops``.

    Its ``inode_lock_shared`` is left out, as in v4.15's path, and so is the
    fallback to buffered reads for the files direct I/O does not support
    (encrypted, verity, data=journal), which no scenario has.
    """
    return (yield from iomap_dio_rw(k, src, lblk, vma, index, is_async))


@kernel("fs/ext4/file.c")
def ext4_dax_huge_fault(k: Kernel, vma: Vma, index: int) -> Path:
    """Models ext4_dax_huge_fault() for a write fault: ``dax_iomap_fault`` under
    ``i_mmap_sem`` (read). ``sb_start_pagefault`` and the journal handle are not
    modelled."""
    inode = vma.mapping.host
    yield from down_read_i_mmap_sem(k, inode)
    ret = yield from dax_iomap_fault(k, vma, index)
    inode.mmap_sem -= 1  # up_read
    return ret


@kernel("fs/ext4/inode.c")
def ext4_dax_writepages(k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
    """Models ext4_dax_writepages() → dax_writeback_mapping_range()."""
    yield from dax_writeback_mapping_range(k, k.inodes[mapping_key].mapping)


@kernel("fs/ext4/file.c")
def ext4_dax_read_iter(k: Kernel, src: Inode, lblk: int, vma: Vma, index: int) -> Path:
    """Models ext4_file_read_iter() → ext4_dax_read_iter() (``IS_DAX``, O_DIRECT
    or not): ``dax_iomap_rw`` under ``inode_lock_shared`` (left out, as above)."""
    return (yield from dax_iomap_rw(k, src, lblk, vma, index))


class Ext4Dax(AddressSpaceOperations):
    """ext4 mounted with ``-o dax`` (``ext4_dax_aops``, ``ext4_dax_vm_ops``), v4.15."""

    name: ClassVar[str] = "dax"
    summary: ClassVar[str] = (
        "ext4 -o dax v4.15: no page cache, mappings and DMA hit the pmem blocks"
    )
    dax: ClassVar[bool] = True

    def fault(self, k: Kernel, vma: Vma, index: int) -> Path:
        return ext4_dax_huge_fault(k, vma, index)

    def page_mkwrite(self, k: Kernel, vma: Vma, page: Page) -> Path:
        raise AssertionError("a DAX write fault never reaches ->page_mkwrite here")

    def writepages(self, k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
        return ext4_dax_writepages(k, mapping_key, wbc)

    def writepage(self, k: Kernel, page: Page, wbc: WritebackControl) -> Path:
        raise AssertionError("DAX pages are never on the LRU: no ->writepage")

    def set_page_dirty(self, k: Kernel, page: Page) -> bool:
        return False  # noop_set_page_dirty

    def releasepage(self, k: Kernel, page: Page) -> bool:
        return False

    def get_block(self, k: Kernel, page: Page, bh: BufferHead) -> int:
        raise AssertionError("DAX pages carry no buffers")

    def readpage(self, k: Kernel, page: Page) -> Path:
        raise AssertionError("DAX reads no page into a cache")

    def punch_hole(self, k: Kernel, inode_key: int, index: int) -> Path:
        return ext4_punch_hole(k, inode_key, index)

    def read_iter(
        self, k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
    ) -> Path:
        return ext4_dax_read_iter(k, src, lblk, vma, index)
