"""mm/page-writeback.c (v4.15): dirtying, cleaning for I/O, writeback state."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mmsim.engine import KernelBug, kernel
from mmsim.filemap import lock_page, unlock_page, wait_on_page_writeback
from mmsim.fs import SyncMode
from mmsim.swap import get_page

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import AddressSpace, Page

__all__ = [
    "__set_page_dirty",
    "__set_page_dirty_nobuffers",
    "account_page_cleaned",
    "account_page_dirtied",
    "cancel_dirty_page",
    "clear_page_dirty_for_io",
    "do_writepages",
    "redirty_page_for_writepage",
    "set_page_dirty",
    "set_page_dirty_lock",
    "set_page_writeback",
    "test_clear_page_writeback",
    "write_cache_pages",
    "writeback_before_lock",
]


@kernel("mm/page-writeback.c")
def account_page_dirtied(k: Kernel, page: Page, mapping: AddressSpace) -> None:
    """Models account_page_dirtied(): the clean→dirty accounting of a cached page.

    Emits the kernel's ``writeback_dirty_page`` tracepoint, at which the
    root-cause oracle asks whether ``->page_mkwrite`` prepared this dirtying.
    """
    k.tracepoint("writeback_dirty_page", page, k.page_name(page))
    k.count("nr_dirty")
    k.count("nr_dirtied")


@kernel("fs/buffer.c")
def __set_page_dirty(k: Kernel, page: Page, mapping: AddressSpace) -> None:
    """Models __set_page_dirty(): account and tag PAGECACHE_TAG_DIRTY (implicit)."""
    if page.mapping is not None:
        account_page_dirtied(k, page, mapping)


@kernel("mm/page-writeback.c")
def __set_page_dirty_nobuffers(k: Kernel, page: Page) -> bool:
    """Models __set_page_dirty_nobuffers(): set PG_dirty without touching buffers."""
    if page.dirty:
        return False
    page.dirty = True
    if page.mapping is not None:
        __set_page_dirty(k, page, page.mapping)
    return True


@kernel("mm/page-writeback.c")
def set_page_dirty(k: Kernel, page: Page) -> bool:
    """Models set_page_dirty(), v4.15: clear PG_reclaim, call ``->set_page_dirty``.

    A page with no mapping (truncated) just gets PG_dirty, which no writeback will
    ever see. Returns True on a clean→dirty transition.
    """
    mapping = page.mapping
    if mapping is not None:
        page.reclaim = False
        return mapping.a_ops.set_page_dirty(k, page)
    if not page.dirty:
        page.dirty = True
        return True
    return False


@kernel("mm/page-writeback.c")
def set_page_dirty_lock(k: Kernel, page: Page) -> Path:
    """Models set_page_dirty_lock(): ``lock_page``, ``set_page_dirty``, ``unlock_page``.

    This is how DIO completion (``dio_bio_complete``) and GUP users dirty the pages
    they wrote. It calls no ``->page_mkwrite``: the dirtying Jan Kara named as the
    root cause. This is a hook.
    """
    yield from lock_page(k, page)
    ret = set_page_dirty(k, page)
    unlock_page(k, page)
    return ret


@kernel("mm/page-writeback.c")
def redirty_page_for_writepage(k: Kernel, wbc: WritebackControl, page: Page) -> bool:
    """Models redirty_page_for_writepage(): ``->writepage`` declines; keep it dirty.

    The page goes clean → dirty again (``writeback_dirty_page``), but this is the
    dirt ``clear_page_dirty_for_io`` just took, put back by the filesystem
    itself with its preparation (a delalloc reservation) intact: not a
    dirtying behind ``->page_mkwrite``'s back. ``k.redirtying`` says so to the
    oracles, for this call only.
    """
    k.count("nr_redirtied")  # account_page_redirty
    k.redirtying = page
    try:
        return __set_page_dirty_nobuffers(k, page)
    finally:
        k.redirtying = None


@kernel("mm/page-writeback.c")
def cancel_dirty_page(k: Kernel, page: Page) -> None:
    """Models cancel_dirty_page(), v4.15: drop PG_dirty without writing.

    A page in a mapping is cleaned with ``TestClearPageDirty`` and, if it was
    dirty, uncounted (:func:`account_page_cleaned`); an orphan page's flag is
    just cleared. The memcg lock and the inode's writeback lookup are left
    out: the model has one cgroup and one writeback context.
    """
    if page.mapping is not None:
        if page.dirty:  # TestClearPageDirty
            page.dirty = False
            account_page_cleaned(k, page)
    else:
        page.dirty = False


@kernel("mm/page-writeback.c")
def account_page_cleaned(k: Kernel, page: Page) -> None:
    """Models account_page_cleaned(), v4.15: a dirty page is cleaned without
    being written (truncated, or its buffers dropped), so ``NR_FILE_DIRTY``
    goes down. The zone's write-pending count, the writeback context's
    reclaimable count and the task's cancelled-write I/O accounting, which it
    also adjusts, are not modelled."""
    k.count("nr_dirty", -1)


@kernel("mm/page-writeback.c")
def clear_page_dirty_for_io(
    k: Kernel, page: Page, wbc: WritebackControl | None
) -> Path:
    """Models clear_page_dirty_for_io(), v4.15: the page is about to be written.

    ``wbc`` is what Jan Kara's 2023 RFC (3/5) added: ``write_cache_pages`` passes
    its own; ``pageout()`` and ext4's ``mpage_submit_page`` passed NULL (None).
    v4.15 ignores it.

    ``BUG_ON(!PageLocked(page))``; ``page_mkclean`` write-protects and cleans every
    PTE, moving a dirty PTE bit to the page (``set_page_dirty``); then
    ``TestClearPageDirty``. After this, a write needs a new ``->page_mkwrite``
    (the model ends the page's mkwrite epoch here). Another CPU may run between the
    rmap walk and the flag test (the kernel holds only the page lock there).
    This is a hook. Returns True if the page was dirty.
    """
    if not page.locked:
        raise KernelBug(
            "mm/page-writeback.c", "clear_page_dirty_for_io(): BUG_ON(!PageLocked)"
        )
    if page.mapping is not None:
        if k.ops.page_mkclean(k, page):
            set_page_dirty(k, page)
        yield
    page.mkwrite = False
    if page.dirty:  # TestClearPageDirty
        page.dirty = False
        k.count("nr_dirty", -1)
        k.tracepoint("page_cleaned", page, k.page_name(page))
        return True
    return False


@kernel("mm/page-writeback.c")
def writeback_before_lock(k: Kernel, page: Page, wbc: WritebackControl) -> Path:
    """The point where writeback has looked a dirty page up and is about to lock it.

    In ``write_cache_pages`` and ext4's ``mpage_prepare_extent_to_map`` the next
    statement is ``lock_page``. v4.15 does nothing here; a fix that must wait
    without holding the page lock waits here, or skips the page. This is a hook.
    Returns True to write the page, False to leave it (dirty) for later.
    """
    return True
    yield  # a path: a fix may sleep here


@kernel("mm/page-writeback.c")
def set_page_writeback(k: Kernel, page: Page) -> None:
    """Models set_page_writeback() → __test_set_page_writeback(): set PG_writeback."""
    if page.writeback:
        raise KernelBug(
            "mm/page-writeback.c", "set_page_writeback() on a page under writeback"
        )
    page.writeback = True
    k.count("nr_writeback")


@kernel("mm/page-writeback.c")
def test_clear_page_writeback(k: Kernel, page: Page) -> bool:
    """Models test_clear_page_writeback(): clear PG_writeback; True if it was set."""
    if not page.writeback:
        return False
    page.writeback = False
    k.count("nr_writeback", -1)
    k.count("nr_written")
    return True


#: ``writepage_t``: the per-page callback of :func:`write_cache_pages`.
WritePage = Callable[["Kernel", "Page", "WritebackControl"], "Path"]


@kernel("mm/page-writeback.c")
def write_cache_pages(
    k: Kernel, mapping: AddressSpace, wbc: WritebackControl, writepage: WritePage
) -> Path:
    """Models write_cache_pages(), v4.15, for the whole file.

    ``pagevec_lookup_range_tag`` takes the pages tagged dirty with a reference
    each (dropped by ``pagevec_release``). For each: ``lock_page``; skip a page
    truncated or no longer dirty; under writeback, WB_SYNC_ALL waits and
    WB_SYNC_NONE skips; ``clear_page_dirty_for_io`` (a page it reports clean is
    skipped: the RFC of 2023 leaves pinned pages dirty this way); then
    ``writepage`` (``__writepage`` → ``->writepage``), which unlocks the page.
    """
    pvec = [p for _, p in sorted(mapping.pages.items()) if p.dirty]
    i = 0
    while i < len(pvec):
        get_page(k, pvec[i])
        i += 1
    i = 0
    while i < len(pvec):
        page = pvec[i]
        i += 1
        if not (yield from k.ops.writeback_before_lock(k, page, wbc)):
            continue
        yield from lock_page(k, page)
        if page.mapping is not mapping or not page.dirty:
            unlock_page(k, page)  # continue_unlock
            continue
        if page.writeback:
            if wbc.sync_mode == SyncMode.WB_SYNC_NONE:
                unlock_page(k, page)
                continue
            yield from wait_on_page_writeback(k, page)
        if not (yield from k.ops.clear_page_dirty_for_io(k, page, wbc)):
            unlock_page(k, page)
            continue
        yield from writepage(k, page, wbc)
    i = 0
    while i < len(pvec):  # pagevec_release
        k.ops.put_page(k, pvec[i])
        i += 1


@kernel("mm/page-writeback.c")
def do_writepages(k: Kernel, mapping: AddressSpace, wbc: WritebackControl) -> Path:
    """Models do_writepages(): call the filesystem's ``->writepages``.

    Its duration is the ``writeback`` latency of the cost workloads: the time a
    flusher pass or an fsync spends getting one file's dirty pages under
    writeback, page-lock and pin waits included.
    """
    key = ("writepages", k.current.tid if k.current is not None else -1)
    k.latency_begin(key)
    yield from mapping.a_ops.writepages(k, mapping.key, wbc)
    k.latency_end("writeback", key)
