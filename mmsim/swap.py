"""mm/swap.c and the refcount helpers of include/linux/mm.h (v4.15)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import KernelBug, kernel

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

__all__ = ["__put_page", "get_page", "put_page"]


@kernel("include/linux/mm.h")
def get_page(k: Kernel, page: Page) -> None:
    """Models get_page(): take a reference (``page_ref_inc``).

    The kernel's ``VM_BUG_ON_PAGE(page_ref_count(page) <= 0)`` is kept: taking a
    reference on a free page is a bug.
    """
    if page.refcount <= 0:
        raise KernelBug("include/linux/mm.h", "get_page() on a free page")
    page.refcount += 1
    k.count("page_ref_mod")


@kernel("include/linux/mm.h")
def put_page(k: Kernel, page: Page) -> None:
    """Models put_page(): drop a reference; the last one frees the page.

    ``put_page_testzero`` carries ``VM_BUG_ON_PAGE(page_ref_count(page) == 0)``:
    a refcount underflow is a bug. This is a hook: a fix may act on the last put.
    """
    if page.refcount <= 0:
        raise KernelBug("include/linux/mm.h", "put_page(): refcount underflow")
    page.refcount -= 1
    k.count("page_ref_mod")
    if page.refcount == 0:
        __put_page(k, page)


@kernel("mm/swap.c")
def __put_page(k: Kernel, page: Page) -> None:
    """Models __put_page() → __put_single_page() → free_unref_page(), v4.15.

    ``free_pages_check`` reports a *bad page* when a freed page is still locked,
    under writeback, has private data or a mapping; the model WARNs (the kernel
    prints "BUG: Bad page state" and carries on) and frees the frame.
    """
    if page.gup:
        k.tracepoint(
            "page_freed_pinned", page, f"page {page.key} freed with GUP references"
        )
    if page.locked or page.writeback or page.private is not None or page.mapping:
        k.warn("mm/page_alloc.c:bad_page", f"freeing busy page {page.key}")
    page.mapping = None
    page.index = 0
    page.mapcount = 0
    page.locked = page.dirty = page.writeback = page.uptodate = False
    page.lru = page.reclaim = page.referenced = page.mkwrite = False
    page.private = None
    page.data = 0
    page.pincount = page.gup = 0
    page.extra = {}
