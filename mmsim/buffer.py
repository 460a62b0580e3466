"""fs/buffer.c (v4.15): buffer heads attached to page-cache pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.filemap import lock_page, unlock_page
from mmsim.mm_types import PAGE_SIZE
from mmsim.page_writeback import __set_page_dirty, cancel_dirty_page
from mmsim.swap import get_page

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import BufferHead, Inode, Page

__all__ = [
    "GetBlock",
    "__block_write_begin",
    "__set_page_dirty_buffers",
    "block_commit_write",
    "block_page_mkwrite",
    "create_empty_buffers",
    "drop_buffers",
    "mark_buffer_dirty",
    "try_to_free_buffers",
]

#: ``get_block_t``: map logical block ``lblk`` of ``inode`` into ``bh``; 0 or -errno.
GetBlock = Callable[["Kernel", "Inode", int, "BufferHead"], int]

EFAULT = 14


@kernel("fs/buffer.c")
def create_empty_buffers(k: Kernel, page: Page) -> None:
    """Models create_empty_buffers() → attach_page_buffers(): PG_private, one ref.

    New buffers inherit the page's uptodate and dirty state.
    """
    bh = k.new_buffer()
    bh.uptodate = page.uptodate
    bh.dirty = page.dirty
    get_page(k, page)
    page.private = [bh]


@kernel("fs/buffer.c")
def mark_buffer_dirty(k: Kernel, page: Page, bh: BufferHead) -> None:
    """Models mark_buffer_dirty(): dirty the buffer and, clean→dirty, its page."""
    if bh.dirty:
        return
    bh.dirty = True
    if not page.dirty:  # TestSetPageDirty
        page.dirty = True
        if page.mapping is not None:
            __set_page_dirty(k, page, page.mapping)


@kernel("fs/buffer.c")
def __set_page_dirty_buffers(k: Kernel, page: Page) -> bool:
    """Models __set_page_dirty_buffers(): dirty every attached buffer, then the page.

    Under ``mapping->private_lock``: a page without buffers is simply marked dirty.
    Returns True on a clean→dirty transition.
    """
    if page.private is not None:
        for bh in page.private:
            bh.dirty = True
    if page.dirty:
        return False
    page.dirty = True
    if page.mapping is not None:
        __set_page_dirty(k, page, page.mapping)
    return True


@kernel("fs/buffer.c")
def __block_write_begin(k: Kernel, page: Page, get_block: GetBlock) -> int:
    """Models __block_write_begin() → __block_write_begin_int() for a whole page.

    Attaches buffers if there are none (``create_empty_buffers``), then maps each
    unmapped buffer with ``get_block(create=1)``, which allocates or reserves.
    The page is uptodate in every modelled caller, so no read is issued.
    """
    assert page.mapping is not None
    inode = page.mapping.host
    # The filesystem now knows of this write: the page's mkwrite epoch opens (the
    # root-cause oracle's record; page_mkwrite and write_begin both come here).
    page.mkwrite = True
    if page.private is None:
        create_empty_buffers(k, page)
    assert page.private is not None
    for bh in page.private:
        if not bh.mapped:
            err = get_block(k, inode, page.index, bh)
            if err:
                return err
            if bh.new and page.uptodate:
                bh.new = False
                bh.uptodate = True
                mark_buffer_dirty(k, page, bh)
                continue
        if page.uptodate:
            bh.uptodate = True
    return 0


@kernel("fs/buffer.c")
def block_commit_write(k: Kernel, page: Page) -> None:
    """Models block_commit_write() → __block_commit_write(): buffers uptodate, dirty."""
    assert page.private is not None
    for bh in page.private:
        bh.uptodate = True
        mark_buffer_dirty(k, page, bh)
        bh.new = False
    page.uptodate = True


@kernel("fs/buffer.c")
def block_page_mkwrite(k: Kernel, page: Page, get_block: GetBlock) -> Path:
    """Models block_page_mkwrite(), v4.15: prepare a mapped page for writing.

    ``lock_page``; if the page was truncated (``page->mapping`` changed) return
    -EFAULT; ``__block_write_begin`` attaches buffers and allocates or reserves the
    block; ``block_commit_write`` dirties them; ``set_page_dirty``;
    ``wait_for_stable_page`` (stable pages are not modelled: a no-op). Returns 0
    with the page still locked.
    """
    from mmsim.page_writeback import set_page_dirty

    yield from lock_page(k, page)
    if page.mapping is None or page.index * PAGE_SIZE > page.mapping.host.size:
        unlock_page(k, page)
        return -EFAULT
    ret = __block_write_begin(k, page, get_block)
    if ret == 0:
        block_commit_write(k, page)
    if ret < 0:
        unlock_page(k, page)
        return ret
    set_page_dirty(k, page)
    return 0


@kernel("fs/buffer.c")
def drop_buffers(k: Kernel, page: Page) -> bool:
    """Models drop_buffers(): fail if any buffer is busy, else detach them.

    ``buffer_busy`` is ``b_count`` or BH_Dirty or BH_Lock. The model has no
    BH_Lock: the kernel locks a page's buffers for I/O only while the page is
    locked or under writeback, and reclaim (``trylock_page``) and
    ``try_to_free_buffers`` (PageWriteback) stop before they get here. Detaching
    (``__clear_page_buffers``) clears PG_private and drops its page reference.
    """
    assert page.private is not None
    if any(bh.count or bh.dirty for bh in page.private):
        return False
    page.private = None
    k.ops.put_page(k, page)
    return True


@kernel("fs/buffer.c")
def try_to_free_buffers(k: Kernel, page: Page) -> bool:
    """Models try_to_free_buffers(), v4.15.

    Refuses a page under writeback; ``drop_buffers``; on success
    ``cancel_dirty_page`` (clean buffers against a dirty page mean the filesystem
    wrote them by hand), except for a page without a mapping (an orphan, which
    only ``drop_buffers``: "can this still happen?"). Nothing checks the page
    refcount.
    """
    if page.writeback:
        return False
    if page.private is None:
        return True
    ret = drop_buffers(k, page)
    if ret and page.mapping is not None:
        cancel_dirty_page(k, page)
    return ret
