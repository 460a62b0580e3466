"""mm/gup.c (v4.15): get_user_pages_fast() with FOLL_WRITE, fast and slow paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.filemap import VM_FAULT_ERROR
from mmsim.memory import handle_mm_fault
from mmsim.page_writeback import set_page_dirty
from mmsim.swap import get_page

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Vma

__all__ = [
    "__get_user_pages",
    "faultin_page",
    "follow_page_mask",
    "get_user_pages_fast",
    "gup_pte_range",
]


@kernel("mm/gup.c")
def gup_pte_range(k: Kernel, vma: Vma, index: int, write: bool) -> Page | None:
    """Models gup_pte_range() (GUP-fast, interrupts off, no locks).

    Gives up on a PTE that is not present, or not writable for a write. Otherwise
    takes a reference (``page_cache_get_speculative``) and sets PG_referenced. No
    filesystem callback runs and no page lock is taken: a page still writable
    from an earlier fault is taken silently.
    """
    pte = vma.ptes[index]
    if not pte.present or (write and not pte.writable) or pte.page is None:
        return None
    page = pte.page
    get_page(k, page)
    page.referenced = True
    return page


@kernel("mm/gup.c")
def follow_page_mask(k: Kernel, vma: Vma, index: int, write: bool) -> Page | None:
    """Models follow_page_mask() → follow_page_pte() with FOLL_GET|FOLL_TOUCH.

    No page, or a read-only PTE for FOLL_WRITE, returns NULL (the caller faults).
    FOLL_TOUCH on a write: a clean PTE over a clean page gets ``set_page_dirty``
    (without the page lock).
    """
    pte = vma.ptes[index]
    if not pte.present or pte.page is None or (write and not pte.writable):
        return None
    page = pte.page
    get_page(k, page)
    if write and not pte.dirty and not page.dirty:
        set_page_dirty(k, page)
    page.referenced = True  # mark_page_accessed
    return page


@kernel("mm/gup.c")
def faultin_page(k: Kernel, vma: Vma, index: int, write: bool) -> Path:
    """Models faultin_page(): ``handle_mm_fault`` with FAULT_FLAG_WRITE."""
    return (yield from handle_mm_fault(k, vma, index, write))


@kernel("mm/gup.c")
def __get_user_pages(k: Kernel, vma: Vma, index: int, write: bool) -> Path:
    """Models __get_user_pages() for one page: follow, fault in, retry.

    ``mmap_sem`` is held for read; nothing in the modelled scenarios takes it for
    write, so it is not modelled. Returns the page with a reference, or None.
    """
    while True:
        page = follow_page_mask(k, vma, index, write)
        if page is not None:
            return page
        ret = yield from faultin_page(k, vma, index, write)
        if ret & VM_FAULT_ERROR:
            return None
        yield  # cond_resched() before retrying


@kernel("mm/gup.c")
def get_user_pages_fast(k: Kernel, vma: Vma, index: int, write: bool) -> Path:
    """Models get_user_pages_fast(), v4.15: GUP-fast, else the slow path.

    This is a hook. Returns the page with one reference (FOLL_GET), or None.
    """
    page = gup_pte_range(k, vma, index, write)
    if page is not None:
        return page
    yield  # local_irq_enable(); fall back to get_user_pages_unlocked()
    return (yield from __get_user_pages(k, vma, index, write))
