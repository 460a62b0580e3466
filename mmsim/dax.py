"""fs/dax.c: direct access to persistent memory, without a page cache.

On fs-dax a file's mapping maps the persistent-memory blocks themselves: each
block has a ``ZONE_DEVICE`` struct page (:meth:`~mmsim.machine.Kernel.enable_dax`),
idle at refcount 1, mapped by ``pte_devmap`` PTEs that take no reference, and a
store or a DMA into the page *is* a write into the block. The mapping's entries
(``mapping.pages`` here) stand for the radix-tree DAX entries.

v4.15 is modelled, with two simplifications stated where they apply: the page
is associated with its file (``page->mapping``, ``page->index``) as v4.17's
``dax_associate_entry`` does (in v4.15 only the radix-tree entry knew), and
``dax_writeback_mapping_range`` moves no data (it flushes CPU caches; the model
has none) and does not write-protect PTEs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.filemap import VM_FAULT_NOPAGE, VM_FAULT_SIGBUS
from mmsim.mm_types import PAGE_SIZE
from mmsim.usercopy import EFAULT, copy_to_user

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import AddressSpace, Inode, Page, Vma

__all__ = [
    "dax_associate_entry",
    "dax_delete_mapping_entry",
    "dax_disassociate_entry",
    "dax_iomap_fault",
    "dax_iomap_rw",
    "dax_layout_busy_page",
    "dax_writeback_mapping_range",
]


@kernel("fs/dax.c", version="v4.17")
def dax_associate_entry(
    k: Kernel, mapping: AddressSpace, index: int, page: Page
) -> None:
    """Models dax_associate_entry(): ``page->mapping`` and ``->index`` of a DAX page."""
    page.mapping = mapping
    page.index = index
    mapping.pages[index] = page  # dax_insert_mapping_entry


@kernel("fs/dax.c", version="v4.17")
def dax_disassociate_entry(k: Kernel, page: Page) -> None:
    """Models dax_disassociate_entry(trunc=true): the block is leaving the file.

    ``WARN_ON_ONCE(trunc && page_ref_count(page) > 1)``: someone (a DMA) still
    holds the page whose block is about to be freed.
    """
    if page.refcount > 1:
        k.warn("fs/dax.c:dax_disassociate_entry", "page_ref_count(page) > 1")
    page.mapping = None
    page.index = 0


@kernel("fs/dax.c")
def dax_delete_mapping_entry(k: Kernel, mapping: AddressSpace, index: int) -> None:
    """Models dax_delete_mapping_entry() (truncate_exceptional_entry on fs-dax).

    The entry goes whatever the page's refcount: before v4.19 nothing waited for
    a DMA still targeting the block.
    """
    page = mapping.pages.pop(index, None)
    if page is not None:
        dax_disassociate_entry(k, page)


@kernel("fs/dax.c")
def dax_iomap_fault(k: Kernel, vma: Vma, index: int) -> Path:
    """Models dax_iomap_fault() → dax_iomap_pte_fault() for a write fault, v4.15.

    Beyond EOF is VM_FAULT_SIGBUS. ``->iomap_begin`` (ext4_iomap_begin with
    IOMAP_WRITE) maps the block,
    allocating a hole (-ENOSPC is VM_FAULT_SIGBUS); ``dax_insert_mapping_entry``;
    ``vm_insert_mixed_mkwrite`` installs a writable ``pte_devmap`` PTE that takes
    no page reference. Returns ``(VM_FAULT_NOPAGE, None)``: there is no page for
    the generic fault code to finish.
    """
    mapping = vma.mapping
    inode = mapping.host
    if index * PAGE_SIZE >= inode.size:  # beyond EOF
        return VM_FAULT_SIGBUS, None
    blk = inode.blocks.get(index)
    if blk is None:
        blk = k.alloc_block(inode, index)
        if blk is None:
            return VM_FAULT_SIGBUS, None
        k.disk.data[blk] = 0  # a new extent reads zeroes
    page = k.dax_pages[blk]
    dax_associate_entry(k, mapping, index, page)
    pte = vma.ptes[index]
    pte.page = page
    pte.present = pte.writable = pte.dirty = pte.special = True
    return VM_FAULT_NOPAGE, None
    yield  # a path: block allocation may sleep


@kernel("fs/dax.c")
def dax_iomap_rw(k: Kernel, src: Inode, lblk: int, vma: Vma, index: int) -> Path:
    """Models dax_iomap_rw() → dax_iomap_actor() reading one page into ``vma``.

    No bio and no GUP: the CPU copies the persistent-memory block (zeroes for a
    hole) into the user buffer (``copy_to_iter``, a ``copy_to_user`` that
    faults the mapped page writable first). Synchronous even under AIO. A read
    at or past the source's end returns 0. Returns the bytes read or -EFAULT.
    """
    if lblk * PAGE_SIZE >= src.size:
        return 0
    blk = src.blocks.get(lblk)
    data = k.disk.data[blk] if blk is not None else 0
    if (yield from copy_to_user(k, vma, index, data, "dax_iomap_actor")):
        return -EFAULT
    k.expected[(vma.mapping.host.key, index)] = data
    return PAGE_SIZE


@kernel("fs/dax.c", version="v4.17")
def dax_layout_busy_page(k: Kernel, mapping: AddressSpace) -> Page | None:
    """Models dax_layout_busy_page(): the first DAX page someone still holds.

    ``unmap_mapping_range`` over the whole file first, so that GUP-fast either
    sees the elevated count or finds no PTE and takes the slow path, which the
    caller's invalidate lock holds off. Then the first entry whose page has a
    refcount above 1 (idle). No reference is taken on the page returned.
    """
    from mmsim.truncate import unmap_mapping_range

    for index in sorted(mapping.pages):
        unmap_mapping_range(k, mapping, index)
    for _, page in sorted(mapping.pages.items()):
        if page.refcount > 1:
            return page
    return None


@kernel("fs/dax.c")
def dax_writeback_mapping_range(k: Kernel, mapping: AddressSpace) -> Path:
    """Models dax_writeback_mapping_range(): flush CPU caches of dirty entries.

    The data is already in persistent memory; the model has no CPU cache, so
    nothing moves.
    """
    return
    yield
