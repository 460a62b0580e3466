"""Filesystem personalities: ``struct address_space_operations`` (include/linux/fs.h).

A personality supplies the operations the generic paths call through
``mapping->a_ops`` (and ``vma->vm_ops->page_mkwrite``). The generic paths never
test which filesystem they run on; they call these methods, as the kernel does.

Methods that may sleep are generator functions (paths); the others are plain.
A personality also carries what the kernel reaches through
``struct file_operations``: hole punch (``->fallocate``) and the O_DIRECT
read (``->read_iter``, :func:`call_read_iter`).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

import attrs

from mmsim.engine import kernel

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import BufferHead, Inode, Page, Vma

__all__ = ["AddressSpaceOperations", "SyncMode", "WritebackControl", "call_read_iter"]


class SyncMode(enum.IntEnum):
    """``enum writeback_sync_modes`` (include/linux/writeback.h)."""

    WB_SYNC_NONE = 0
    WB_SYNC_ALL = 1


@attrs.define(slots=True, eq=False)
class WritebackControl:
    """``struct writeback_control``: why writeback runs and how hard it tries."""

    snapshot_tag: ClassVar[int] = 9
    sync_mode: SyncMode = SyncMode.WB_SYNC_NONE
    #: Set by pageout(): writing for memory reclaim (PF_MEMALLOC in the caller).
    for_reclaim: bool = False

    @property
    def key(self) -> int:
        return int(self.sync_mode) | self.for_reclaim << 1


class AddressSpaceOperations:
    """The operations a filesystem plugs into the generic page-cache paths.

    ``name`` is the personality's name (``mmsim check --fs NAME``).
    """

    name: ClassVar[str] = ""
    #: One line for ``mmsim list``: what the personality models, and its version.
    summary: ClassVar[str] = ""
    #: Pages carry buffer heads in ``page->private`` (a page without them at
    #: writeback is the seed crash).
    buffer_heads: ClassVar[bool] = False
    #: fs-dax: no page cache; the mapping maps the persistent-memory blocks.
    dax: ClassVar[bool] = False
    #: Personalities are machine-wide constants: the fingerprint ignores them.
    snapshot_tag: ClassVar[int] = 0

    def page_mkwrite(self, k: Kernel, vma: Vma, page: Page) -> Path:
        """``vm_operations_struct->page_mkwrite``: prepare a page for a write fault.

        Returns a ``VM_FAULT_*`` code; on success the page is returned locked.
        """
        raise NotImplementedError

    def fault(self, k: Kernel, vma: Vma, index: int) -> Path:
        """``vm_operations_struct->fault``: find or read the page, return it locked.

        Returns ``(VM_FAULT_*, page)``. The default is ``filemap_fault``.
        """
        from mmsim.filemap import filemap_fault

        return filemap_fault(k, vma.mapping, index)

    def writepages(self, k: Kernel, mapping_key: int, wbc: WritebackControl) -> Path:
        """``->writepages``: write back the dirty pages of a mapping."""
        raise NotImplementedError

    def writepage(self, k: Kernel, page: Page, wbc: WritebackControl) -> Path:
        """``->writepage``: write one locked, just-cleaned page; unlocks it."""
        raise NotImplementedError

    def set_page_dirty(self, k: Kernel, page: Page) -> bool:
        """``->set_page_dirty``: mark a page dirty; True on a clean→dirty change."""
        raise NotImplementedError

    def releasepage(self, k: Kernel, page: Page) -> bool:
        """``->releasepage``: drop the page's private data; True on success."""
        raise NotImplementedError

    def get_block(self, k: Kernel, page: Page, bh: BufferHead) -> int:
        """``get_block_t`` with create=1 for the page's block: map, reserve or allocate.

        What ``->page_mkwrite`` and ``->write_begin`` pass to the buffer helpers.
        Returns 0 or -errno (-ENOSPC).
        """
        raise NotImplementedError

    def readpage(self, k: Kernel, page: Page) -> Path:
        """``->readpage``: read a locked, new page from disk; unlocks it."""
        raise NotImplementedError

    def punch_hole(self, k: Kernel, inode_key: int, index: int) -> Path:
        """``->fallocate(FALLOC_FL_PUNCH_HOLE)`` of one page-sized block.

        Returns 0 or -errno (a fix may refuse it).
        """
        raise NotImplementedError

    def prepare_write(self, k: Kernel, page: Page) -> int:
        """What ``->page_mkwrite`` does to a locked page before it may be dirtied,
        without the fault: attach private state, reserve or allocate the block.

        Returns 0 or -errno (-ENOSPC). A fix that dirties pages outside a fault
        calls this (``fault-on-dirty``).
        """
        raise NotImplementedError

    def read_iter(
        self, k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
    ) -> Path:
        """``file_operations->read_iter`` with IOCB_DIRECT: read page ``lblk`` of
        ``src`` into the user page ``index`` of ``vma``.

        The default is v4.15's ``generic_file_read_iter`` → ``->direct_IO`` →
        ``__blockdev_direct_IO`` (fs/direct-io.c), as ext4 reads before v5.5 and
        btrfs before v5.10.
        Returns what ``read(2)`` returns (bytes, -EIOCBQUEUED, -errno).
        """
        from mmsim.direct_io import do_blockdev_direct_IO

        return do_blockdev_direct_IO(k, src, lblk, vma, index, is_async)


@kernel("include/linux/fs.h")
def call_read_iter(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool = False
) -> Path:
    """Models ``read(fd2, addr, PAGE_SIZE)`` (or io_submit's IOCB_CMD_PREAD) on an
    O_DIRECT file: ``vfs_read``/``aio_read`` → call_read_iter() → the source
    file's ``->read_iter``, which picks the direct-I/O path of its filesystem.

    This is a hook: the filesystems' ``->read_iter`` changed over the years
    (ext4 and btrfs moved their direct reads to iomap), and a policy may take
    the later one.
    """
    return (yield from src.mapping.a_ops.read_iter(k, src, lblk, vma, index, is_async))
