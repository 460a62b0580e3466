"""fs/ext4/file.c and ext4's DAX address-space operations (v4.15): ext4 -o dax.

An fs-dax file has no page cache: faults map the persistent-memory blocks
(:mod:`mmsim.dax`), writeback only flushes CPU caches, and the pages never carry
buffers or a dirty state. Hole punch is ``ext4_punch_hole``, as without DAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mmsim.dax import dax_iomap_fault, dax_writeback_mapping_range
from mmsim.engine import kernel
from mmsim.ext4.inode import down_read_i_mmap_sem, ext4_punch_hole
from mmsim.fs import AddressSpaceOperations

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import BufferHead, Page, Vma

__all__ = ["Ext4Dax", "ext4_dax_huge_fault", "ext4_dax_writepages"]


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
