"""mm/rmap.c (v4.15): reverse mapping walks over the PTEs that map a page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.page_writeback import set_page_dirty

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Pte

__all__ = [
    "page_add_file_rmap",
    "page_mkclean",
    "page_remove_rmap",
    "try_to_unmap",
    "zap_pte",
]


def _ptes_mapping(k: Kernel, page: Page) -> list[Pte]:
    """The rmap walk (``rmap_walk_file`` over ``mapping->i_mmap``): PTEs of ``page``."""
    return [
        pte for vma in k.vmas for pte in vma.ptes if pte.present and pte.page is page
    ]


@kernel("mm/rmap.c")
def page_add_file_rmap(k: Kernel, page: Page) -> None:
    """Models page_add_file_rmap(): one more PTE maps the page (``_mapcount++``)."""
    page.mapcount += 1


@kernel("mm/rmap.c")
def page_remove_rmap(k: Kernel, page: Page) -> None:
    """Models page_remove_rmap() for a file page (``_mapcount--``)."""
    page.mapcount -= 1


@kernel("mm/rmap.c")
def page_mkclean(k: Kernel, page: Page) -> int:
    """Models page_mkclean() → page_mkclean_one(), v4.15.

    For every PTE that is dirty or writable: ``ptep_clear_flush``,
    ``pte_wrprotect``, ``pte_mkclean``. Returns how many it cleaned; the caller moves
    the dirty state to the page. This is a hook.
    """
    cleaned = 0
    for pte in _ptes_mapping(k, page):
        if pte.dirty or pte.writable:
            pte.writable = False
            pte.dirty = False
            cleaned += 1
    return cleaned


@kernel("mm/rmap.c")
def try_to_unmap(k: Kernel, page: Page) -> bool:
    """Models try_to_unmap() → try_to_unmap_one(), v4.15, for a file page.

    Each PTE is cleared (``ptep_clear_flush``); a dirty PTE bit moves to the page
    (``set_page_dirty``); ``page_remove_rmap`` and ``put_page`` drop the mapping's
    reference. Returns True when no mapping is left.

    Simplified: the model has no accessed (young) PTE bit, so the kernel's
    abort on a PTE used since ``page_referenced`` looked (reclaim passes no
    TTU_IGNORE_ACCESS: ``ptep_clear_flush_young_notify``, then the page is
    activated) is left out. That abort only delays the unmap to a later pass
    of the LRU, where the same state is reached: runs here take fewer steps.
    """
    for pte in _ptes_mapping(k, page):
        zap_pte(k, pte, page)
    return page.mapcount == 0


def zap_pte(k: Kernel, pte: Pte, page: Page) -> None:
    """Tear one PTE down, as try_to_unmap_one() and zap_pte_range() both do.

    Clear it (``ptep_clear_flush`` / ``ptep_get_and_clear_full``), move a dirty
    bit to the page (``set_page_dirty``, without the page lock in the zap case),
    ``page_remove_rmap``, and drop the mapping's page reference.
    """
    dirty = pte.dirty
    special = pte.special
    pte.present = pte.writable = pte.dirty = pte.special = False
    pte.page = None
    if special:  # pte_devmap: vm_normal_page() is NULL, no rmap, no reference
        return
    if dirty:
        set_page_dirty(k, page)
    page_remove_rmap(k, page)
    k.ops.put_page(k, page)
