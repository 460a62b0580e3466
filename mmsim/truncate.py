"""mm/truncate.c (v4.15): removing pages from the page cache for truncate and punch.

Nothing here looks at the page refcount: a page that GUP or a bio still holds is
removed from the cache all the same and lives on as an orphan (``mapping ==
NULL``), whose later dirtying no writeback will ever see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.filemap import (
    __delete_from_page_cache,
    lock_page,
    unlock_page,
    wait_on_page_writeback,
)
from mmsim.page_writeback import cancel_dirty_page
from mmsim.rmap import zap_pte

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import AddressSpace, Inode, Page

__all__ = [
    "block_invalidatepage",
    "break_layouts",
    "truncate_cleanup_page",
    "truncate_inode_page",
    "truncate_inode_pages_range",
    "truncate_pagecache_range",
    "unmap_mapping_range",
]


@kernel("mm/memory.c")
def unmap_mapping_range(k: Kernel, mapping: AddressSpace, index: int) -> None:
    """Models unmap_mapping_range() → zap_pte_range() for one page of a file.

    Each PTE is cleared; a dirty one moves its dirt to the page
    (``set_page_dirty``, without the page lock); ``page_remove_rmap`` and the
    PTE's page reference is dropped. GUP references are untouched.
    """
    for vma in k.vmas:
        if vma.mapping is not mapping or index >= len(vma.ptes):
            continue
        pte = vma.ptes[index]
        if pte.present and pte.page is not None:
            zap_pte(k, pte, pte.page)


@kernel("fs/buffer.c")
def block_invalidatepage(k: Kernel, page: Page) -> None:
    """Models block_invalidatepage(page, 0, PAGE_SIZE), v4.15.

    ``discard_buffer`` on every buffer: clear BH_Dirty, BH_Mapped, BH_New,
    BH_Delay (BH_Uptodate stays); then, since the whole page goes,
    ``try_to_release_page``. ext4's delalloc reservations of those buffers are
    released (``ext4_da_page_release_reservation``).
    """
    assert page.mapping is not None
    inode = page.mapping.host
    for bh in page.private or ():
        if bh.delay:
            inode.reserved -= 1
        bh.dirty = bh.mapped = bh.new = bh.delay = False
        bh.blocknr = -1
    k.ops.try_to_release_page(k, page)


@kernel("mm/truncate.c")
def truncate_cleanup_page(k: Kernel, mapping: AddressSpace, page: Page) -> None:
    """Models truncate_cleanup_page(): unmap, invalidate buffers, cancel dirty."""
    if page.mapcount:
        unmap_mapping_range(k, mapping, page.index)
    if page.private is not None:
        block_invalidatepage(k, page)
    cancel_dirty_page(k, page)


@kernel("mm/truncate.c")
def truncate_inode_page(k: Kernel, mapping: AddressSpace, page: Page) -> int:
    """Models truncate_inode_page(), v4.15, on a locked page.

    ``truncate_cleanup_page``, then ``delete_from_page_cache``: ``mapping =
    NULL`` and the page-cache reference is dropped. Returns -EIO if the page was
    already taken out of this mapping.
    """
    if page.mapping is not mapping:
        return -5
    truncate_cleanup_page(k, mapping, page)
    __delete_from_page_cache(k, page)
    k.ops.put_page(k, page)  # the page cache's reference
    return 0


@kernel("mm/truncate.c")
def truncate_inode_pages_range(k: Kernel, mapping: AddressSpace, index: int) -> Path:
    """Models truncate_inode_pages_range() for one whole page, v4.15.

    Takes the page with ``find_lock_page`` semantics (a reference and the page
    lock, sleeping for it), waits for writeback, and ``truncate_inode_page``.
    The refcount is never checked.
    """
    from mmsim.filemap import find_get_page

    if mapping.a_ops.dax:
        # truncate_exceptional_entry(): a DAX mapping holds entries, not pages.
        from mmsim.dax import dax_delete_mapping_entry

        dax_delete_mapping_entry(k, mapping, index)
        return
    page = find_get_page(k, mapping, index)
    if page is None:
        return
    yield from lock_page(k, page)
    yield from wait_on_page_writeback(k, page)
    truncate_inode_page(k, mapping, page)
    unlock_page(k, page)
    k.ops.put_page(k, page)


@kernel("fs/ext4/inode.c", version="v4.19", name="ext4_break_layouts")
def break_layouts(k: Kernel, inode: Inode) -> Path:
    """Where truncate and hole punch, holding the lock that keeps page faults out
    exclusively (ext4's ``i_mmap_sem``, XFS's MMAPLOCK; ``invalidate_lock`` from
    v5.15), make sure no one still uses the blocks about to be freed.

    v4.19 added the fs-dax part: ``ext4_break_layouts`` and, in XFS's
    ``xfs_break_layouts`` (which already broke pNFS layout leases),
    ``xfs_break_dax_layouts``. v4.15 does nothing here for fs-dax. This is a hook. Returns 0, or -errno to fail the
    truncate (a layout lease that cannot be broken: -ETXTBSY).
    """
    return 0
    yield  # a path: a fix may sleep here


@kernel("mm/truncate.c")
def truncate_pagecache_range(k: Kernel, mapping: AddressSpace, index: int) -> Path:
    """Models truncate_pagecache_range() for one whole page: unmap, then remove."""
    unmap_mapping_range(k, mapping, index)
    yield
    yield from truncate_inode_pages_range(k, mapping, index)
