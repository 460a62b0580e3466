"""lib/usercopy.c: the kernel storing into user memory, and the fault it may take."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.filemap import VM_FAULT_ERROR
from mmsim.memory import handle_mm_fault

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Vma

__all__ = ["copy_to_user"]

EFAULT = 14


@kernel("lib/usercopy.c", name="_copy_to_user")
def copy_to_user(
    k: Kernel, vma: Vma, index: int, version: int | None, who: str
) -> Path:
    """Models ``_copy_to_user`` (and ``clear_user``) of one page: a CPU store
    through the task's page tables.

    A PTE that is missing or read-only traps (``do_page_fault`` →
    ``handle_mm_fault`` with FAULT_FLAG_WRITE, so ``->page_mkwrite`` runs) and
    the access is retried, until the PTE is present and writable; then the
    store lands in the same step and the MMU sets the PTE dirty bit. A user
    space store takes the same path. ``version`` None stores new data (a
    fresh version, taken at the store). Returns 0, or -EFAULT when the fault
    failed (SIGBUS for a user store, e.g. ENOSPC).
    """
    while True:
        pte = vma.ptes[index]
        if pte.present and pte.writable and pte.page is not None:
            break
        ret = yield from handle_mm_fault(k, vma, index, True)
        if ret & VM_FAULT_ERROR:
            return -EFAULT
        yield  # the faulting instruction is retried
    pte.dirty = True
    k.store_data(pte.page, k.new_version() if version is None else version, who)
    return 0
