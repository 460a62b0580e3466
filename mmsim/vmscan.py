"""mm/vmscan.c (v4.15): kswapd reclaiming file pages from the inactive LRU.

Simplifications: every file page on the LRU is treated as old and inactive
(``page_check_references`` is taken to return PAGEREF_RECLAIM: the race needs the
page to have aged, and the model grants it); LRU lists are a flag per page;
kswapd scans the pool's LRU pages in frame order.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from mmsim.buffer import try_to_free_buffers
from mmsim.engine import kernel
from mmsim.filemap import __delete_from_page_cache, trylock_page, unlock_page
from mmsim.fs import SyncMode, WritebackControl
from mmsim.rmap import try_to_unmap
from mmsim.swap import get_page

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import AddressSpace, Page

__all__ = [
    "PageoutResult",
    "__remove_mapping",
    "has_writepage",
    "is_page_cache_freeable",
    "isolate_lru_page",
    "kswapd",
    "pageout",
    "putback_lru_page",
    "reclaim_keep_pinned",
    "shrink_page_list",
]


class PageoutResult(enum.IntEnum):
    """``pageout_t``: what ``pageout()`` did with the page."""

    PAGE_KEEP = 0
    PAGE_ACTIVATE = 1
    PAGE_SUCCESS = 2
    PAGE_CLEAN = 3


@kernel("mm/vmscan.c")
def is_page_cache_freeable(k: Kernel, page: Page) -> bool:
    """Models is_page_cache_freeable(): only the cache and the isolating caller hold it.

    ``page_count(page) - page_has_private(page) == 2``: a GUP or bio reference
    makes ``pageout`` leave the page alone.
    """
    return page.refcount - (page.private is not None) == 2


@kernel("mm/vmscan.c")
def pageout(k: Kernel, page: Page) -> Path:
    """Models pageout(), v4.15: write a dirty page for reclaim.

    Refuses (PAGE_KEEP) a page with extra references; activates (PAGE_ACTIVATE)
    one whose filesystem has no ``->writepage`` (:func:`has_writepage`);
    otherwise ``clear_page_dirty_for_io``, PG_reclaim, ``->writepage`` with
    ``for_reclaim``.
    A dirty page that truncate or hole punch took out of the cache while GUP
    held it (an orphan: ``page->mapping == NULL``) has no ``->writepage``: its
    buffers go (``try_to_free_buffers``, then ``ClearPageDirty``: the data is
    dropped, "orphaned page" in the log) or it is kept.
    """
    if not is_page_cache_freeable(k, page):
        return PageoutResult.PAGE_KEEP
    if page.mapping is None:
        if page.private is not None and try_to_free_buffers(k, page):
            page.dirty = False
            k.tracepoint("pageout_orphaned", page, "pageout: orphaned page")
            return PageoutResult.PAGE_CLEAN
        return PageoutResult.PAGE_KEEP
    if not k.ops.has_writepage(k, page.mapping):
        return PageoutResult.PAGE_ACTIVATE
    wbc = WritebackControl(sync_mode=SyncMode.WB_SYNC_NONE, for_reclaim=True)
    if (yield from k.ops.clear_page_dirty_for_io(k, page, None)):
        page.reclaim = True
        yield from page.mapping.a_ops.writepage(k, page, wbc)
        if not page.writeback:
            page.reclaim = False
        k.count("pgpageout")
        return PageoutResult.PAGE_SUCCESS
    return PageoutResult.PAGE_CLEAN


@kernel("mm/vmscan.c")
def __remove_mapping(k: Kernel, page: Page) -> bool:
    """Models __remove_mapping(), v4.15: evict a clean, locked, unshared page.

    Under ``mapping->tree_lock``, ``page_ref_freeze(page, 2)`` succeeds only if the
    page cache and the isolating caller are the only references: a GUP or bio
    reference makes it fail ("cannot_free"), and the page stays cached. A page
    found dirty after the freeze is unfrozen and kept. On success the page leaves
    the cache and the cache's reference is gone.
    """
    if page.refcount != 2:
        return False
    if page.dirty:
        return False
    __delete_from_page_cache(k, page)
    page.refcount = 1  # the isolation reference, which the caller frees
    return True


@kernel("mm/vmscan.c")
def shrink_page_list(k: Kernel, page: Page) -> Path:
    """Models shrink_page_list(), v4.15, for one isolated page.

    ``trylock_page``; keep a page under writeback; ``try_to_unmap``; a dirty page
    is marked PG_reclaim on first sight and written by ``pageout`` only once it is
    seen again with PG_reclaim while the node is PGDAT_DIRTY (kswapd only); a
    page with buffers goes to ``try_to_release_page``, which strips them even when
    GUP holds the page; ``__remove_mapping`` then fails on the extra reference.
    Returns True when the page was reclaimed.
    """
    if not trylock_page(k, page):
        return False
    # v4.15's "case 2": global reclaim marks it PG_reclaim and keeps it. Case 1
    # (PGDAT_WRITEBACK throttling) keeps it too; case 3 is legacy memcg only.
    if page.writeback:
        page.reclaim = True
        unlock_page(k, page)
        return False
    mapping = page.mapping
    if page.mapcount and not try_to_unmap(k, page):
        unlock_page(k, page)  # activate_locked
        return False
    if k.ops.reclaim_keep_pinned(k, page):
        unlock_page(k, page)  # activate_locked
        return False
    yield
    if page.dirty:
        if not page.reclaim or not k.pgdat_dirty:
            page.reclaim = True  # SetPageReclaim; activate_locked
            unlock_page(k, page)
            return False
        res = yield from pageout(k, page)
        if res == PageoutResult.PAGE_KEEP:
            unlock_page(k, page)
            return False
        if res == PageoutResult.PAGE_ACTIVATE:
            unlock_page(k, page)
            return False
        if res == PageoutResult.PAGE_SUCCESS:
            yield
            if page.writeback or page.dirty:
                return False
            if not trylock_page(k, page):
                return False
            if page.dirty or page.writeback:
                unlock_page(k, page)
                return False
            mapping = page.mapping
    if page.private is not None:
        if not k.ops.try_to_release_page(k, page):
            unlock_page(k, page)  # activate_locked
            return False
        yield
        if mapping is None and page.refcount == 1:
            unlock_page(k, page)
            return True
    if mapping is None or not __remove_mapping(k, page):
        unlock_page(k, page)  # keep_locked
        return False
    page.locked = False  # __ClearPageLocked
    k.count("pgsteal_kswapd")
    return True


@kernel("mm/vmscan.c")
def has_writepage(k: Kernel, mapping: AddressSpace) -> bool:
    """The ``mapping->a_ops->writepage == NULL`` test in pageout().

    Without a ``->writepage`` reclaim cannot write a dirty page: pageout()
    returns PAGE_ACTIVATE and leaves the page to the flusher. In v4.15 every
    filesystem of the model has one. This is a hook: XFS's went with
    ``iomap_writepage`` (478af190cb6c, v6.0) and ext4 stopped providing one
    (dae999602eeb, v6.2).
    """
    return True


@kernel("mm/vmscan.c")
def reclaim_keep_pinned(k: Kernel, page: Page) -> bool:
    """The point in shrink_page_list() right after ``try_to_unmap``.

    v6.4 (d824ec2a1546, "mm: do not reclaim private data from pinned page") added
    ``if (folio_maybe_dma_pinned(folio)) goto activate_locked;`` here: the page is
    unmapped, so it cannot be newly pinned. v4.15 has nothing: this hook returns
    False (go on reclaiming).
    """
    return False


@kernel("mm/vmscan.c")
def isolate_lru_page(k: Kernel, page: Page) -> None:
    """Models isolate_lru_pages() for one page: ClearPageLRU, take a reference."""
    page.lru = False
    get_page(k, page)


@kernel("mm/vmscan.c")
def putback_lru_page(k: Kernel, page: Page) -> None:
    """Models putback_inactive_pages(): SetPageLRU, drop the isolation reference."""
    page.lru = True
    k.ops.put_page(k, page)


@kernel("mm/vmscan.c")
def kswapd(k: Kernel, watermarks: tuple[int, int] | None = None) -> Path:
    """Models the kswapd thread: balance_pgdat → shrink_node → shrink_inactive_list.

    Runs for ever (a daemon). Each pass isolates every LRU page in turn, runs
    ``shrink_page_list`` on it, and puts it back or frees it; between passes it
    is idle, and it sleeps while no page is on the LRU.

    ``watermarks`` = (low, high), in free frames, for the cost workloads: kswapd
    is woken when free memory falls below ``low`` (``wakeup_kswapd`` from the
    allocator) and a pass stops once ``high`` frames are free
    (``pgdat_balanced``). Without them (the scenarios), every pass scans the
    whole LRU: constant pressure. Zones, the active list and the scan-priority
    ladder are not modelled; the LRU is scanned in frame order.

    Isolation and the ``trylock_page`` that starts ``shrink_page_list`` are one
    step: what isolation changes (PG_lru, one more reference) is read by no other
    task, so no interleaving between them could differ (a sound coarsening that
    halves the state space of the seed race).
    """
    while True:
        if watermarks is None:
            yield k.idle_until(
                lambda: any(p.lru for p in k.frames), "kswapd: balance_pgdat"
            )
        else:
            yield k.idle_until(
                lambda: k.nr_free_pages() < watermarks[0], "kswapd: balance_pgdat"
            )
        scan = [p for p in k.frames if p.lru]
        i = 0
        while i < len(scan):
            page = scan[i]
            i += 1
            if not page.lru:
                continue
            if watermarks is not None and k.nr_free_pages() >= watermarks[1]:
                break
            isolate_lru_page(k, page)
            k.count("pgscan_kswapd")
            reclaimed = yield from shrink_page_list(k, page)
            if reclaimed:
                k.ops.put_page(k, page)  # free_it: the last reference
            else:
                putback_lru_page(k, page)


@kernel("mm/vmscan.c")
def throttle_direct_reclaim(k: Kernel, min_free: int) -> Path:
    """Models throttle_direct_reclaim(): an allocating task below the min
    watermark sleeps on ``pgdat->pfmemalloc_wait`` until kswapd frees memory.

    Simplification: it stands for the whole allocator slow path of the cost
    workloads (``__alloc_pages_slowpath``); direct reclaim by the allocating task
    itself is not modelled, kswapd does all reclaim.
    """
    if k.nr_free_pages() < min_free:
        yield k.wait_until(
            lambda: k.nr_free_pages() >= min_free, "throttle_direct_reclaim"
        )
