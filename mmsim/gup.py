"""mm/gup.c: get_user_pages in its v4.15 form (FOLL_GET) and the v5.6/v5.7 pin API.

v4.15 has only FOLL_GET: a GUP reference is an ordinary page reference, which
nothing can tell apart from any other. v5.6 added ``pin_user_pages*()``
(FOLL_PIN) and v5.7 made pins visible by adding ``GUP_PIN_COUNTING_BIAS`` (1024)
to the refcount of a small page per pin (3faa52c03f44), queried with
``page_maybe_dma_pinned()``. Both are modelled; which callers use which is a
policy choice (``strategies/foll_pin.py``, ``strategies/dio_pin.py``).

``page.gup`` and ``page.pincount`` are the model's exact ground truth, for
oracles; no policy may read ``page.gup`` (the kernel has no such count).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import KernelBug, kernel
from mmsim.filemap import VM_FAULT_ERROR
from mmsim.memory import handle_mm_fault
from mmsim.page_writeback import set_page_dirty
from mmsim.swap import __put_page, get_page

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Vma

__all__ = [
    "FOLL_GET",
    "FOLL_LONGTERM",
    "FOLL_PIN",
    "FOLL_WRITE",
    "GUP_PIN_COUNTING_BIAS",
    "__get_user_pages",
    "check_vma_flags",
    "faultin_page",
    "follow_page_mask",
    "get_user_pages",
    "get_user_pages_fast",
    "get_user_pages_longterm",
    "gup_pte_range",
    "page_maybe_dma_pinned",
    "pin_user_pages",
    "pin_user_pages_fast",
    "put_user_page",
    "try_grab_page",
    "unpin_user_page",
    "unpin_user_pages_dirty_lock",
]

FOLL_WRITE = 0x01
FOLL_GET = 0x04
FOLL_LONGTERM = 0x10000
EOPNOTSUPP = 95
FOLL_PIN = 0x40000
#: include/linux/mm.h, v5.7: what one FOLL_PIN adds to a small page's refcount.
GUP_PIN_COUNTING_BIAS = 1 << 10


@kernel("mm/gup.c", version="v5.7")
def try_grab_page(k: Kernel, page: Page, flags: int) -> None:
    """Models try_grab_page(): FOLL_GET takes a reference, FOLL_PIN adds the bias.

    A pin also counts ``nr_foll_pin_acquired``. In v4.15 only the FOLL_GET arm
    exists (``get_page``).
    """
    if flags & FOLL_PIN:
        if page.refcount <= 0:
            raise KernelBug("mm/gup.c", "try_grab_page(): pin of a free page")
        page.refcount += GUP_PIN_COUNTING_BIAS
        k.count("page_ref_mod")
        page.pincount += 1
        k.count("nr_foll_pin_acquired")
    else:
        get_page(k, page)
    page.gup += 1
    k.count("nr_gup_refs")


@kernel("include/linux/mm.h", version="v5.7")
def page_maybe_dma_pinned(page: Page) -> bool:
    """Models page_maybe_dma_pinned() for a small page: ``refcount >= 1024``.

    False positives are allowed (a page with 1024 ordinary references looks
    pinned), false negatives are not; FOLL_GET references are invisible.
    """
    return page.refcount >= GUP_PIN_COUNTING_BIAS


@kernel("mm/gup.c")
def gup_pte_range(k: Kernel, vma: Vma, index: int, flags: int) -> Page | None:
    """Models gup_pte_range() (GUP-fast, interrupts off, no locks).

    Gives up on a PTE that is not present, or not writable for a write. Otherwise
    grabs the page (``page_cache_get_speculative``; a pin adds the bias) and sets
    PG_referenced. No filesystem callback runs and no page lock is taken: a page
    still writable from an earlier fault is taken silently.
    """
    pte = vma.ptes[index]
    write = bool(flags & FOLL_WRITE)
    if not pte.present or (write and not pte.writable) or pte.page is None:
        return None
    page = pte.page
    try_grab_page(k, page, flags)
    page.referenced = True
    return page


@kernel("mm/gup.c")
def follow_page_mask(k: Kernel, vma: Vma, index: int, flags: int) -> Page | None:
    """Models follow_page_mask() → follow_page_pte() with FOLL_TOUCH.

    No page, or a read-only PTE for FOLL_WRITE, returns NULL (the caller faults).
    FOLL_TOUCH on a write: a clean PTE over a clean page gets ``set_page_dirty``
    (without the page lock).
    """
    pte = vma.ptes[index]
    write = bool(flags & FOLL_WRITE)
    if not pte.present or pte.page is None or (write and not pte.writable):
        return None
    page = pte.page
    try_grab_page(k, page, flags)
    if write and not pte.dirty and not page.dirty:
        set_page_dirty(k, page)
    page.referenced = True  # mark_page_accessed
    return page


@kernel("mm/gup.c")
def faultin_page(k: Kernel, vma: Vma, index: int, flags: int) -> Path:
    """Models faultin_page(): ``handle_mm_fault``, FAULT_FLAG_WRITE for FOLL_WRITE."""
    return (yield from handle_mm_fault(k, vma, index, bool(flags & FOLL_WRITE)))


@kernel("mm/gup.c")
def check_vma_flags(k: Kernel, vma: Vma, flags: int) -> int:
    """Models check_vma_flags(): may GUP take references in this VMA at all?

    A long-term request on fs-dax is refused with -EOPNOTSUPP. Simplified:
    v4.15's ``get_user_pages_longterm`` (and v5.6's ``check_dax_vmas``) checked
    ``vma_is_fsdax`` after taking the pages, so a refused request still faulted
    them in (on fs-dax a write fault may allocate a block and install a PTE)
    before dropping them; later kernels check here, before. The model checks
    here for every version, leaving the refused request's fault out: no
    scenario of the report takes a long-term reference on fs-dax. Nothing else is refused in v4.15. This is a hook: v6.5 refuses
    a writable long-term pin of a mapping that needs dirty tracking
    (``writable_file_mapping_allowed``) with -EFAULT. Returns 0 or -errno.
    """
    if flags & FOLL_LONGTERM and vma.mapping.a_ops.dax:
        return -EOPNOTSUPP
    return 0


@kernel("mm/gup.c")
def __get_user_pages(k: Kernel, vma: Vma, index: int, flags: int) -> Path:
    """Models __get_user_pages() for one page: follow, fault in, retry.

    ``check_vma_flags`` first: a refusal is a *regression* outcome (the caller
    gets -errno; the ``gup_refused`` tracepoint reports it). ``mmap_sem`` is held
    for read; nothing in the modelled scenarios takes it for write, so it is not
    modelled. Returns the page, grabbed, or None.
    """
    err = k.ops.check_vma_flags(k, vma, flags)
    if err:
        k.tracepoint("gup_refused", vma, f"GUP refused with {err}")
        return None
    while True:
        page = follow_page_mask(k, vma, index, flags)
        if page is not None:
            return page
        ret = yield from faultin_page(k, vma, index, flags)
        if ret & VM_FAULT_ERROR:
            return None
        yield  # cond_resched() before retrying


@kernel("mm/gup.c")
def get_user_pages_fast(k: Kernel, vma: Vma, index: int, flags: int) -> Path:
    """Models get_user_pages_fast() (v4.15) / internal_get_user_pages_fast() (v5.6).

    GUP-fast, else the slow path. ``flags`` holds FOLL_WRITE and, from v5.6,
    FOLL_PIN (else a FOLL_GET reference is taken). This is a hook: a fix may
    check or count the references GUP hands out. Returns the page or None.
    """
    page = gup_pte_range(k, vma, index, flags)
    if page is not None:
        return page
    yield  # local_irq_enable(); fall back to get_user_pages_unlocked()
    return (yield from __get_user_pages(k, vma, index, flags))


@kernel("mm/gup.c", version="v5.6")
def pin_user_pages_fast(k: Kernel, vma: Vma, index: int, flags: int) -> Path:
    """Models pin_user_pages_fast(): ``get_user_pages_fast`` with FOLL_PIN."""
    return (yield from k.ops.get_user_pages_fast(k, vma, index, flags | FOLL_PIN))


@kernel("mm/gup.c")
def get_user_pages(k: Kernel, vma: Vma, index: int, flags: int) -> Path:
    """Models get_user_pages() (slow path only, FOLL_GET), as drivers call it."""
    return (yield from __get_user_pages(k, vma, index, flags))


@kernel("mm/gup.c", version="v5.6")
def pin_user_pages(k: Kernel, vma: Vma, index: int, flags: int) -> Path:
    """Models pin_user_pages() (slow path, FOLL_PIN)."""
    return (yield from __get_user_pages(k, vma, index, flags | FOLL_PIN))


@kernel("mm/gup.c")
def get_user_pages_longterm(k: Kernel, vma: Vma, index: int, flags: int) -> Path:
    """Models get_user_pages_longterm(), v4.15: a FOLL_GET reference held for long.

    v4.15 adds only a refusal of fs-dax VMAs (see ``check_vma_flags``). This
    is a hook: v5.6 long-term users pin instead
    (``pin_user_pages(FOLL_LONGTERM)``). Returns ``(page, pinned)``.
    """
    page = yield from __get_user_pages(k, vma, index, flags | FOLL_LONGTERM)
    return page, False


@kernel("mm/gup.c", version="v5.2")
def put_user_page(k: Kernel, page: Page) -> None:
    """Release a FOLL_GET reference that GUP handed out.

    v4.15 callers simply call ``put_page()``; John Hubbard's 2019 series
    (fc1d8e7cca2d) introduced ``put_user_page()`` so that GUP releases could be
    told apart, which is what a fix that counts GUP references needs. This is a
    hook; the baseline is ``put_page``.
    """
    page.gup -= 1
    k.count("nr_gup_refs", -1)
    k.ops.put_page(k, page)


@kernel("mm/gup.c", version="v5.7")
def unpin_user_page(k: Kernel, page: Page) -> None:
    """Models unpin_user_page(), v5.7: remove the bias
    (``page_ref_sub_and_test(page, GUP_PIN_COUNTING_BIAS)``, later kernels'
    ``gup_put_folio``); ``nr_foll_pin_released``; the last reference frees the
    page. In v5.6 a pin was a plain reference, dropped with ``put_page``.

    Dropping a pin that is not held is a refcount underflow, which the model
    treats as an oops (a modelling choice: v5.7 checks it only in debug
    builds). This is a hook.
    """
    if page.pincount <= 0 or page.refcount < GUP_PIN_COUNTING_BIAS:
        raise KernelBug("mm/gup.c", "unpin_user_page(): page is not pinned")
    page.refcount -= GUP_PIN_COUNTING_BIAS
    k.count("page_ref_mod")
    page.pincount -= 1
    page.gup -= 1
    k.count("nr_gup_refs", -1)
    k.count("nr_foll_pin_released")
    if page.refcount == 0:
        __put_page(k, page)


@kernel("mm/gup.c", version="v5.6")
def unpin_user_pages_dirty_lock(k: Kernel, page: Page, make_dirty: bool) -> Path:
    """Models unpin_user_pages_dirty_lock(), v5.6+, for one page.

    If ``make_dirty`` and the page is not dirty: lock it, mark it dirty, unlock
    (the ``set_page_dirty_lock`` hook, as v5.6 wrote it); then unpin. The in-code
    comment accepts the race with ``clear_page_dirty_for_io``; the dirtying still
    bypasses ``->page_mkwrite``.
    """
    if make_dirty and not page.dirty:
        yield from k.ops.set_page_dirty_lock(k, page)
        yield
    k.ops.unpin_user_page(k, page)
