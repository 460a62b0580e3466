"""mm/filemap.c and the page-lock helpers of include/linux/pagemap.h (v4.15)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import KernelBug, kernel
from mmsim.mm_types import PAGE_SIZE
from mmsim.swap import get_page

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import AddressSpace, Page

__all__ = [
    "__delete_from_page_cache",
    "__filemap_fdatawait_range",
    "add_to_page_cache_lru",
    "end_page_writeback",
    "filemap_fault",
    "find_get_page",
    "lock_page",
    "try_to_release_page",
    "trylock_page",
    "unlock_page",
    "wait_on_page_writeback",
]

VM_FAULT_LOCKED = 0x0200
VM_FAULT_SIGBUS = 0x0002
VM_FAULT_NOPAGE = 0x0100
VM_FAULT_RETRY = 0x0400
VM_FAULT_ERROR = VM_FAULT_SIGBUS | 0x0001 | 0x0004 | 0x0010 | 0x0020 | 0x0040


@kernel("include/linux/pagemap.h")
def trylock_page(k: Kernel, page: Page) -> bool:
    """Models trylock_page(): take PG_locked if it is free."""
    if page.locked:
        return False
    page.locked = True
    return True


@kernel("include/linux/pagemap.h")
def lock_page(k: Kernel, page: Page) -> Path:
    """Models lock_page() and __lock_page(): sleep until PG_locked is free, take it.

    Uncontended, it takes no step of its own; contended, the task sleeps (the
    kernel's ``wait_on_page_bit_common``) and takes the lock when it is woken.
    """
    if page.locked:
        yield k.wait_until(lambda: not page.locked, "lock_page")
    page.locked = True


@kernel("mm/filemap.c")
def unlock_page(k: Kernel, page: Page) -> None:
    """Models unlock_page(): clear PG_locked and wake the waiters."""
    if not page.locked:
        raise KernelBug(
            "mm/filemap.c", "unlock_page(): VM_BUG_ON_PAGE(!PageLocked(page))"
        )
    page.locked = False


@kernel("include/linux/pagemap.h")
def wait_on_page_writeback(k: Kernel, page: Page) -> Path:
    """Models wait_on_page_writeback(): sleep while PG_writeback is set."""
    if page.writeback:
        yield k.wait_until(lambda: not page.writeback, "wait_on_page_writeback")


@kernel("mm/filemap.c")
def __filemap_fdatawait_range(k: Kernel, mapping: AddressSpace) -> Path:
    """Models __filemap_fdatawait_range(), v4.15, over a whole file.

    ``pagevec_lookup_range_tag(PAGECACHE_TAG_WRITEBACK)`` finds the pages under
    writeback now and takes a reference on each; each is waited for in turn
    (``wait_on_page_writeback``); ``pagevec_release`` drops the references. A
    page that goes under writeback after the lookup is not waited for. The
    model's files are smaller than a pagevec: one lookup.
    """
    pvec = [p for _, p in sorted(mapping.pages.items()) if p.writeback]
    for page in pvec:
        get_page(k, page)
    i = 0
    while i < len(pvec):
        yield from wait_on_page_writeback(k, pvec[i])
        i += 1
    for page in pvec:  # pagevec_release
        k.ops.put_page(k, page)


@kernel("mm/filemap.c")
def find_get_page(k: Kernel, mapping: AddressSpace, index: int) -> Page | None:
    """Models find_get_page(): look up the page cache and take a reference."""
    page = mapping.pages.get(index)
    if page is not None:
        get_page(k, page)
    return page


@kernel("mm/filemap.c")
def add_to_page_cache_lru(
    k: Kernel, page: Page, mapping: AddressSpace, index: int
) -> None:
    """Models add_to_page_cache_lru(): insert a new, locked page; the cache holds a ref."""
    page.locked = True
    page.mapping = mapping
    page.index = index
    page.refcount += 1
    page.lru = True
    mapping.pages[index] = page


@kernel("mm/filemap.c")
def __delete_from_page_cache(k: Kernel, page: Page) -> None:
    """Models __delete_from_page_cache(): unlink from ``page_tree``; mapping = NULL.

    The page-cache reference is dropped by the caller (``__remove_mapping``
    freezes it away; truncate puts it).
    """
    assert page.mapping is not None
    del page.mapping.pages[page.index]
    page.mapping = None


@kernel("mm/filemap.c")
def filemap_fault(k: Kernel, mapping: AddressSpace, index: int) -> Path:
    """Models filemap_fault(), v4.15: find or read the page, return it locked.

    Returns ``(VM_FAULT_LOCKED, page)`` with a reference held for the caller.
    A page at or beyond EOF is VM_FAULT_SIGBUS (``max_off``), checked first and
    again under the page lock, where a truncate that has shrunk ``i_size`` but
    not yet reached this page is seen. On a miss it runs ``page_cache_read``
    (allocate, ``add_to_page_cache_lru``, ``->readpage``) and retries, as the
    kernel does. Simplified: readahead is not modelled; the first check is
    repeated on every retry (the kernel's ``retry_find`` skips it, and the
    check under the lock decides the same); a page found not uptodate is
    VM_FAULT_SIGBUS at once, where the kernel (``page_not_uptodate``) reads it
    once more first (the model's reads do not fail).
    """
    while True:
        if index * PAGE_SIZE >= mapping.host.size:
            return VM_FAULT_SIGBUS, None
        page = find_get_page(k, mapping, index)
        if page is None:
            new = k.alloc_page()
            if new is None:
                return VM_FAULT_SIGBUS | 0x0001, None  # VM_FAULT_OOM
            add_to_page_cache_lru(k, new, mapping, index)
            yield from mapping.a_ops.readpage(k, new)
            k.ops.put_page(k, new)
            continue
        yield from lock_page(k, page)
        if page.mapping is not mapping:  # truncated while we slept
            unlock_page(k, page)
            k.ops.put_page(k, page)
            continue
        if not page.uptodate or index * PAGE_SIZE >= mapping.host.size:
            # "We must recheck i_size under page lock"
            unlock_page(k, page)
            k.ops.put_page(k, page)
            return VM_FAULT_SIGBUS, None
        return VM_FAULT_LOCKED, page


@kernel("mm/filemap.c")
def try_to_release_page(k: Kernel, page: Page) -> bool:
    """Models try_to_release_page(), v4.15: ask the filesystem to drop page->private.

    ``BUG_ON(!PageLocked(page))``; refuses a page under writeback; otherwise calls
    ``->releasepage``. Nothing here looks at the refcount: a page that GUP still
    holds loses its buffers (the seed race). This is a hook.
    """
    if not page.locked:
        raise KernelBug(
            "mm/filemap.c", "try_to_release_page(): BUG_ON(!PageLocked(page))"
        )
    if page.writeback:
        return False
    if page.mapping is not None:
        return page.mapping.a_ops.releasepage(k, page)
    from mmsim.buffer import try_to_free_buffers

    return try_to_free_buffers(k, page)


@kernel("mm/filemap.c")
def end_page_writeback(k: Kernel, page: Page) -> None:
    """Models end_page_writeback(): clear PG_reclaim and PG_writeback, wake waiters."""
    page.reclaim = False  # TestClearPageReclaim → rotate_reclaimable_page
    from mmsim.page_writeback import test_clear_page_writeback

    if not test_clear_page_writeback(k, page):
        raise KernelBug(
            "mm/filemap.c", "end_page_writeback(): BUG() on a page not under writeback"
        )
