"""mm/memory.c (v4.15): write faults on a MAP_SHARED file mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.filemap import (
    VM_FAULT_ERROR,
    VM_FAULT_LOCKED,
    VM_FAULT_NOPAGE,
    lock_page,
    unlock_page,
)
from mmsim.page_writeback import set_page_dirty
from mmsim.rmap import page_add_file_rmap

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Vma

__all__ = [
    "do_page_mkwrite",
    "do_shared_fault",
    "do_wp_page",
    "fault_dirty_shared_page",
    "finish_fault",
    "handle_mm_fault",
]


@kernel("mm/memory.c")
def handle_mm_fault(k: Kernel, vma: Vma, index: int, write: bool) -> Path:
    """Models handle_mm_fault() → handle_pte_fault() for a shared file mapping.

    No PTE: ``do_fault`` → ``do_shared_fault`` (on a write; a read fault is not
    modelled). A read-only PTE on a write: ``do_wp_page``. Otherwise the PTE is
    made young and, on a write, dirty. Returns a ``VM_FAULT_*`` code.

    ``pgfault`` is counted here, on entry, for every fault, as the kernel's
    ``count_vm_event(PGFAULT)``: one that fails, that loses the race for the
    PTE or that finds the PTE already writable counts (and costs) too.
    """
    k.count("pgfault")
    pte = vma.ptes[index]
    if not pte.present:
        if not write:
            # do_read_fault() maps the page read-only and clean: running
            # do_shared_fault() instead would call ->page_mkwrite and dirty it.
            raise NotImplementedError(
                "handle_mm_fault(): a read fault (do_read_fault) is not modelled"
            )
        return (yield from do_shared_fault(k, vma, index))
    if write and not pte.writable:
        return (yield from do_wp_page(k, vma, index))
    if write:
        pte.dirty = True
    return 0


@kernel("mm/memory.c")
def do_page_mkwrite(k: Kernel, vma: Vma, page: Page) -> Path:
    """Models do_page_mkwrite(): call ``->page_mkwrite``; return the page locked.

    If the filesystem returned without the lock, take it and fail with
    VM_FAULT_NOPAGE when the page was truncated meanwhile.
    """
    ret = yield from vma.mapping.a_ops.page_mkwrite(k, vma, page)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        return ret
    if not ret & VM_FAULT_LOCKED:
        yield from lock_page(k, page)
        if page.mapping is None:
            unlock_page(k, page)
            return VM_FAULT_NOPAGE
        ret |= VM_FAULT_LOCKED
    return ret


@kernel("mm/memory.c")
def finish_fault(k: Kernel, vma: Vma, index: int, page: Page) -> int:
    """Models finish_fault() → alloc_set_pte(): install a writable, dirty PTE.

    ``alloc_set_pte`` re-checks the PTE under the page-table lock: if another
    fault installed one since this fault found none (two threads writing to the
    page at once), it returns VM_FAULT_NOPAGE and the caller drops its page.
    Otherwise ``page_add_file_rmap``, and the fault's page reference now belongs
    to the PTE. The page-table lock is not modelled as a lock: the re-check and
    the install are one step.
    """
    pte = vma.ptes[index]
    if pte.present:
        return VM_FAULT_NOPAGE
    page_add_file_rmap(k, page)
    pte.page = page
    pte.present = True
    pte.writable = True
    pte.dirty = True
    return 0


@kernel("mm/memory.c")
def fault_dirty_shared_page(k: Kernel, vma: Vma, page: Page) -> None:
    """Models fault_dirty_shared_page(): ``set_page_dirty``, ``unlock_page``.

    ``balance_dirty_pages_ratelimited`` is not modelled (no dirty throttling).
    """
    set_page_dirty(k, page)
    unlock_page(k, page)


@kernel("mm/memory.c")
def do_shared_fault(k: Kernel, vma: Vma, index: int) -> Path:
    """Models do_shared_fault(), v4.15: a write fault with no PTE yet.

    ``__do_fault`` (``filemap_fault``) returns the page locked with a reference;
    it is unlocked and ``do_page_mkwrite`` calls the filesystem, which returns it
    locked again; then ``finish_fault`` (VM_FAULT_NOPAGE if another fault
    installed the PTE meanwhile: the page is unlocked and put) and
    ``fault_dirty_shared_page``. From ``->page_mkwrite``'s lock to the final
    unlock the page lock is held, so the model runs that stretch as one step
    (nothing that takes the page lock can interleave with it).
    """
    ret, page = yield from vma.mapping.a_ops.fault(k, vma, index)
    if page is None:
        return ret
    unlock_page(k, page)
    yield
    tmp = yield from do_page_mkwrite(k, vma, page)
    if tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        k.ops.put_page(k, page)
        return tmp
    if finish_fault(k, vma, index, page) & VM_FAULT_NOPAGE:
        # Another fault mapped the page first: drop this fault's lock and
        # reference (what ->page_mkwrite did stays done); the access is retried
        # and finds the PTE.
        unlock_page(k, page)
        k.ops.put_page(k, page)
        return VM_FAULT_NOPAGE
    fault_dirty_shared_page(k, vma, page)
    return ret & ~VM_FAULT_LOCKED


@kernel("mm/memory.c")
def do_wp_page(k: Kernel, vma: Vma, index: int) -> Path:
    """Models do_wp_page() → wp_page_shared(), v4.15: a write to a read-only PTE.

    Takes a reference, calls ``do_page_mkwrite`` (the page comes back locked),
    then ``finish_mkwrite_fault`` makes the PTE writable and dirty, and
    ``fault_dirty_shared_page`` dirties and unlocks the page.
    """
    pte = vma.ptes[index]
    page = pte.page
    assert page is not None
    from mmsim.swap import get_page

    get_page(k, page)
    tmp = yield from do_page_mkwrite(k, vma, page)
    if tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        k.ops.put_page(k, page)
        return tmp
    if not pte.present or pte.page is not page:  # finish_mkwrite_fault: PTE changed
        unlock_page(k, page)
        k.ops.put_page(k, page)
        return 0
    pte.writable = True  # wp_page_reuse
    pte.dirty = True
    fault_dirty_shared_page(k, vma, page)
    k.ops.put_page(k, page)
    return 0
