"""fs/ext4/inode.c (v4.15): ext4's address-space operations, delalloc mode.

The journal is not modelled: data=ordered journaling adds no state to the page
paths here, and ``ext4_releasepage`` reaches ``try_to_free_buffers`` as it does
for data buffers without journal heads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

# Imported under another name: a double-underscore name in a class body is mangled.
from mmsim.buffer import __block_write_begin as block_write_begin
from mmsim.buffer import (
    __set_page_dirty_buffers,
    block_commit_write,
    block_page_mkwrite,
    try_to_free_buffers,
)
from mmsim.engine import KernelBug, kernel
from mmsim.ext4.page_io import ext4_bio_write_page, ext4_io_submit, page_len
from mmsim.filemap import lock_page, unlock_page, wait_on_page_writeback
from mmsim.fs import AddressSpaceOperations, SyncMode, WritebackControl
from mmsim.mm_types import NO_BLOCK, PAGE_SIZE
from mmsim.page_writeback import redirty_page_for_writepage
from mmsim.swap import get_page

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import AddressSpace, BufferHead, Inode, Page, Vma

__all__ = [
    "Ext4",
    "ext4_da_get_block_prep",
    "ext4_filemap_fault",
    "ext4_page_buffers",
    "ext4_page_mkwrite",
    "ext4_punch_hole",
    "ext4_readpage",
    "ext4_releasepage",
    "ext4_set_page_dirty",
    "ext4_writepage",
    "ext4_writepages",
    "mpage_prepare_extent_to_map",
]

ENOSPC = 28


@kernel("fs/ext4/inode.c")
def ext4_page_buffers(k: Kernel, page: Page, where: str) -> list[BufferHead] | None:
    """``page_buffers()`` where ext4 writeback calls it, v4.15.

    ``page_buffers()`` is ``BUG_ON(!PagePrivate(page))``: a dirty page without
    buffers oopses ("kernel BUG at fs/ext4/inode.c"). This is a hook: v5.18
    (cc5095747edf) warns, drops the dirty bit and skips the page instead, which a
    hook signals by returning None (the caller unlocks the page and moves on).
    """
    if page.private is None:
        raise KernelBug(
            f"fs/ext4/inode.c:{where}", "page_buffers(): BUG_ON(!PagePrivate(page))"
        )
    return page.private


@kernel("fs/ext4/inode.c")
def ext4_da_get_block_prep(k: Kernel, inode: Inode, lblk: int, bh: BufferHead) -> int:
    """Models ext4_da_get_block_prep() → ext4_da_map_blocks(), v4.15.

    An allocated block is mapped. A hole gets a delalloc reservation
    (``ext4_da_reserve_space``: -ENOSPC when no free block is left unreserved) and
    the buffer is mapped to the invalid block with BH_New and BH_Delay.
    """
    blk = inode.blocks.get(lblk)
    if blk is not None:
        bh.mapped = True
        bh.blocknr = blk
        return 0
    free = sum(1 for owner in k.disk.owner if owner is None)
    reserved = sum(i.reserved for i in k.inodes)
    if free - reserved < 1:
        return -ENOSPC
    inode.reserved += 1
    bh.mapped = True
    bh.blocknr = NO_BLOCK
    bh.new = True
    bh.delay = True
    return 0


@kernel("fs/ext4/inode.c")
def down_read_i_mmap_sem(k: Kernel, inode: Inode) -> Path:
    """``down_read(&EXT4_I(inode)->i_mmap_sem)``: sleep while punch/truncate holds it."""
    if inode.mmap_sem < 0:
        yield k.wait_until(lambda: inode.mmap_sem >= 0, "down_read(i_mmap_sem)")
    inode.mmap_sem += 1


@kernel("fs/ext4/inode.c")
def ext4_filemap_fault(k: Kernel, vma: Vma, index: int) -> Path:
    """Models ext4_filemap_fault(), v4.15: ``filemap_fault`` under i_mmap_sem (read)."""
    from mmsim.filemap import filemap_fault

    inode = vma.mapping.host
    yield from down_read_i_mmap_sem(k, inode)
    ret = yield from filemap_fault(k, vma.mapping, index)
    inode.mmap_sem -= 1  # up_read
    return ret


@kernel("fs/ext4/inode.c")
def ext4_page_mkwrite(k: Kernel, vma: Vma, page: Page) -> Path:
    """Models ext4_page_mkwrite(), v4.15, delalloc branch.

    ``sb_start_pagefault`` is not modelled (no freeze); under ``i_mmap_sem``
    (read) it calls ``block_page_mkwrite(vma, vmf, ext4_da_get_block_prep)`` and
    returns
    ``VM_FAULT_LOCKED`` on success, ``VM_FAULT_NOPAGE`` if the page was truncated,
    ``VM_FAULT_SIGBUS`` on ENOSPC.
    """
    inode = vma.mapping.host
    yield from down_read_i_mmap_sem(k, inode)
    ret = yield from block_page_mkwrite(k, page, ext4_da_get_block_prep)
    inode.mmap_sem -= 1  # up_read
    if ret == 0:
        return 0x0200  # VM_FAULT_LOCKED
    if ret == -14:  # -EFAULT: truncated under us
        return 0x0100  # VM_FAULT_NOPAGE
    return 0x0002  # VM_FAULT_SIGBUS


@kernel("fs/ext4/inode.c")
def ext4_set_page_dirty(k: Kernel, page: Page) -> bool:
    """Models ext4_set_page_dirty(), v4.15 (6dcc693bc57f, v4.10).

    ``WARN_ON_ONCE(!PageLocked(page) && !PageDirty(page))`` and
    ``WARN_ON_ONCE(!page_has_buffers(page))``, then ``__set_page_dirty_buffers``.
    """
    if not page.locked and not page.dirty:
        k.warn(
            "fs/ext4/inode.c:ext4_set_page_dirty",
            "!PageLocked(page) && !PageDirty(page)",
        )
    if page.private is None:
        k.warn("fs/ext4/inode.c:ext4_set_page_dirty", "!page_has_buffers(page)")
    return __set_page_dirty_buffers(k, page)


@kernel("fs/ext4/inode.c")
def ext4_releasepage(k: Kernel, page: Page) -> bool:
    """Models ext4_releasepage(): no journal heads on data buffers → try_to_free_buffers."""
    return try_to_free_buffers(k, page)


@kernel("fs/ext4/inode.c")
def ext4_readpage(k: Kernel, page: Page) -> Path:
    """Models ext4_readpage() → ext4_mpage_readpages() for a locked, new page.

    The block is read with a bio built without buffer heads (as mpage does for a
    contiguous mapping), so the page comes back uptodate with no buffers. The
    read is synchronous here: the faulting task waits for it in the kernel too.
    """
    assert page.mapping is not None
    blk = page.mapping.host.blocks.get(page.index)
    yield
    page.data = k.disk.data[blk] if blk is not None else 0  # a hole reads zeroes
    page.uptodate = True
    unlock_page(k, page)


@kernel("fs/ext4/inode.c")
def ext4_writepage(k: Kernel, page: Page, wbc: WritebackControl) -> Path:
    """Models ext4_writepage(), v4.15: write one page (reclaim's ``->writepage``).

    ``page_buffers`` BUGs on a page without buffers. A page with delayed or
    unwritten buffers before ``len`` (:func:`~mmsim.ext4.page_io.page_len`)
    cannot be allocated here: it is redirtied and, since the block size equals
    the page size, left alone. Otherwise ``ext4_bio_write_page`` and
    ``ext4_io_submit``. Returns 0; the page is unlocked.
    """
    k.tracepoint("wbc_writepage", page, k.page_name(page))
    length = page_len(page)
    bufs = k.ops.ext4_page_buffers(k, page, "ext4_writepage")
    if bufs is None:
        unlock_page(k, page)
        return 0
    if length and any(bh.delay for bh in bufs):  # ext4_walk_page_buffers(0, len)
        redirty_page_for_writepage(k, wbc, page)
        unlock_page(k, page)
        return 0
    blocks = ext4_bio_write_page(k, page, length, wbc)
    if blocks:
        ext4_io_submit(k, page, blocks)
    return 0
    yield  # a path: ->writepage may sleep


@kernel("fs/ext4/inode.c")
def mpage_map_one_extent(k: Kernel, page: Page, bh: BufferHead) -> int:
    """Models mpage_map_one_extent() → ext4_map_blocks(CREATE): allocate delalloc.

    The reservation becomes a block. Returns 0 or -ENOSPC.
    """
    assert page.mapping is not None
    inode = page.mapping.host
    blk = k.alloc_block(inode, page.index)
    if blk is None:
        return -ENOSPC
    inode.reserved -= 1
    bh.delay = False
    bh.new = False
    bh.blocknr = blk
    return 0


@kernel("fs/ext4/inode.c")
def mpage_prepare_extent_to_map(
    k: Kernel, mapping: AddressSpace, page: Page, wbc: WritebackControl
) -> Path:
    """Models one page of mpage_prepare_extent_to_map(), v4.15, and its submission.

    ``lock_page``; skip a page that is no longer dirty, was truncated, or is under
    writeback in WB_SYNC_NONE mode; ``wait_on_page_writeback``; ``page_buffers``
    (the BUG Leon Romanovsky hit); map delayed buffers
    (``mpage_map_and_submit_extent``), but none of a page past EOF, which
    ``mpage_process_page_bufs`` submits unmapped (``lblk >= blocks``: truncate
    has shrunk ``i_size`` and will remove the page); then
    ``mpage_submit_page``: ``clear_page_dirty_for_io`` and
    ``ext4_bio_write_page``. ``mapping`` is the file's (``mpd->inode``'s): a
    page truncated since the lookup no longer has it.
    """
    if not (yield from k.ops.writeback_before_lock(k, page, wbc)):
        return
    yield from lock_page(k, page)
    if (
        not page.dirty
        or page.mapping is not mapping
        or (page.writeback and wbc.sync_mode == SyncMode.WB_SYNC_NONE)
    ):
        unlock_page(k, page)
        return
    yield from wait_on_page_writeback(k, page)
    k.tracepoint("wbc_writepage", page, k.page_name(page))
    bufs = k.ops.ext4_page_buffers(k, page, "mpage_prepare_extent_to_map")
    if bufs is None:
        unlock_page(k, page)
        return
    past_eof = page.index * PAGE_SIZE >= mapping.host.size
    for bh in () if past_eof else bufs:
        if bh.dirty and bh.delay and mpage_map_one_extent(k, page, bh) < 0:
            k.warn(
                "fs/ext4/inode.c:mpage_map_and_submit_extent",
                "delayed block allocation failed",
            )
            unlock_page(k, page)
            return
    yield from mpage_submit_page(k, page, wbc)


@kernel("fs/ext4/inode.c")
def mpage_submit_page(k: Kernel, page: Page, wbc: WritebackControl) -> Path:
    """Models mpage_submit_page(): ``clear_page_dirty_for_io``, ``ext4_bio_write_page``."""
    length = page_len(page)
    yield from k.ops.clear_page_dirty_for_io(k, page, None)
    blocks = ext4_bio_write_page(k, page, length, wbc)
    if blocks:
        ext4_io_submit(k, page, blocks)


@kernel("fs/ext4/inode.c")
def ext4_writepages(k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
    """Models ext4_writepages(), v4.15: write back every dirty page of the file.

    ``pagevec_lookup_range_tag`` finds the pages tagged dirty and takes a reference
    on each (dropped by ``pagevec_release``); each page then goes through
    ``mpage_prepare_extent_to_map``. Pages dirtied after the lookup wait for the
    next pass.
    """
    mapping = k.inodes[mapping_key].mapping
    pvec = [p for _, p in sorted(mapping.pages.items()) if p.dirty]
    for page in pvec:
        get_page(k, page)
    i = 0
    while i < len(pvec):
        yield from mpage_prepare_extent_to_map(k, mapping, pvec[i], wbc)
        i += 1
    for page in pvec:  # pagevec_release
        k.ops.put_page(k, page)


@kernel("fs/ext4/inode.c")
def ext4_punch_hole(k: Kernel, inode_key: int, index: int) -> Path:
    """Models ext4_punch_hole(), v4.15, for one whole page-sized block.

    Dirty pages in the range are written back first (``filemap_write_and_wait_range``,
    before ``inode_lock``); ``down_write(i_mmap_sem)`` stops new faults;
    ``truncate_pagecache_range`` unmaps and removes the page whatever its
    refcount; ``ext4_ext_remove_space`` frees the block, which another file may
    then allocate. Data in the punched range is gone by the user's own request.

    Simplified: ``inode_lock``, the return when the range starts at or past
    EOF, and ``inode_dio_wait`` (which waits for direct I/O *to or from this
    file*, never for GUP users of its pages) are left out. No scenario of the
    suite punches a file that is also a direct-I/O source, the only case where
    the wait would matter: there the model would let the read see a freed
    block.

    On fs-dax the same function runs: ``filemap_write_and_wait_range`` flushes
    nothing, and truncate deletes the DAX entry. v4.19 added
    ``ext4_break_layouts`` after taking ``i_mmap_sem``; here that is the
    ``break_layouts`` hook, which may fail the punch.
    """
    from mmsim.fs_writeback import vfs_fsync
    from mmsim.truncate import truncate_pagecache_range

    inode = k.inodes[inode_key]
    mapping = inode.mapping
    yield from vfs_fsync(k, inode_key)  # filemap_write_and_wait_range
    if inode.mmap_sem != 0:
        yield k.wait_until(lambda: inode.mmap_sem == 0, "down_write(i_mmap_sem)")
    inode.mmap_sem = -1
    err = yield from k.ops.break_layouts(k, inode)
    if err:
        inode.mmap_sem = 0  # up_write
        k.tracepoint("request_refused", inode, f"punch hole of {inode.name}: {err}")
        return err
    yield from truncate_pagecache_range(k, mapping, index)
    blk = inode.blocks.pop(index, None)  # ext4_ext_remove_space
    if blk is not None:
        k.disk.owner[blk] = None
    k.expected.pop((inode_key, index), None)
    inode.mmap_sem = 0  # up_write
    k.tracepoint("punch_hole", inode, f"{inode.name}:{index} punched")
    return 0


class Ext4(AddressSpaceOperations):
    """ext4 with delayed allocation (the default mount), v4.15."""

    name: ClassVar[str] = "ext4"
    summary: ClassVar[str] = (
        "ext4 v4.15, delalloc: buffer heads made at ->page_mkwrite, BUG at "
        "writeback without them"
    )
    buffer_heads: ClassVar[bool] = True

    def punch_hole(self, k: Kernel, inode_key: int, index: int) -> Path:
        return ext4_punch_hole(k, inode_key, index)

    def read_iter(
        self, k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
    ) -> Path:
        from mmsim.ext4.file import ext4_file_read_iter

        return ext4_file_read_iter(k, src, lblk, vma, index, is_async)

    def prepare_write(self, k: Kernel, page: Page) -> int:
        # block_page_mkwrite's preparation: __block_write_begin with
        # ext4_da_get_block_prep, then block_commit_write.
        assert page.mapping is not None
        inode = page.mapping.host

        def get_block(k: Kernel, _inode: Inode, lblk: int, bh: BufferHead) -> int:
            return ext4_da_get_block_prep(k, inode, lblk, bh)

        err = block_write_begin(k, page, get_block)
        if not err:
            block_commit_write(k, page)
        return err

    def fault(self, k: Kernel, vma: Vma, index: int) -> Path:
        return ext4_filemap_fault(k, vma, index)

    def page_mkwrite(self, k: Kernel, vma: Vma, page: Page) -> Path:
        return ext4_page_mkwrite(k, vma, page)

    def writepages(self, k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
        return ext4_writepages(k, mapping_key, wbc)

    def writepage(self, k: Kernel, page: Page, wbc: WritebackControl) -> Path:
        return ext4_writepage(k, page, wbc)

    def set_page_dirty(self, k: Kernel, page: Page) -> bool:
        return ext4_set_page_dirty(k, page)

    def releasepage(self, k: Kernel, page: Page) -> bool:
        return ext4_releasepage(k, page)

    def readpage(self, k: Kernel, page: Page) -> Path:
        return ext4_readpage(k, page)

    def get_block(self, k: Kernel, page: Page, bh: BufferHead) -> int:
        assert page.mapping is not None
        return ext4_da_get_block_prep(k, page.mapping.host, page.index, bh)
