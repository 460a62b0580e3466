"""fs/fs-writeback.c and fs/sync.c (v4.15): the flusher thread and sync(2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.filemap import __filemap_fdatawait_range
from mmsim.fs import SyncMode, WritebackControl
from mmsim.page_writeback import do_writepages

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel

__all__ = ["filemap_fdatawait", "sync_filesystem", "vfs_fsync", "wb_workfn"]


@kernel("fs/fs-writeback.c")
def wb_workfn(k: Kernel) -> Path:
    """Models the flusher: wb_workfn → wb_writeback → writeback_sb_inodes.

    Runs for ever (a daemon): it sleeps until some file has dirty pages (the
    kernel wakes it from ``__mark_inode_dirty`` and on the writeback timer), then
    ``__writeback_single_inode`` → ``do_writepages`` with WB_SYNC_NONE for each
    dirty file. Dirty expiry and bandwidth are not modelled.
    """
    wbc = WritebackControl(sync_mode=SyncMode.WB_SYNC_NONE)
    while True:
        yield k.idle_until(k.has_dirty_pages, "wb_workfn: no dirty inodes")
        ino = 0
        while ino < len(k.inodes):
            mapping = k.inodes[ino].mapping
            ino += 1
            if any(p.dirty for p in mapping.pages.values()):
                yield from do_writepages(k, mapping, wbc)


@kernel("mm/filemap.c")
def filemap_fdatawait(k: Kernel) -> Path:
    """Models filemap_fdatawait() over every file: sleep until no page is under writeback."""
    if any(p.writeback for p in k.frames):
        yield k.wait_until(
            lambda: not any(p.writeback for p in k.frames), "filemap_fdatawait"
        )


@kernel("fs/sync.c")
def vfs_fsync(k: Kernel, inode_key: int) -> Path:
    """Models fsync(2) → vfs_fsync_range() → ext4_sync_file(), v4.15.

    ``file_write_and_wait_range``: WB_SYNC_ALL writeback of the file
    (``__filemap_fdatawrite_range`` → ``do_writepages``), then
    ``__filemap_fdatawait_range``: wait for each page then under writeback. The
    jbd2 commit that follows is not modelled.
    """
    mapping = k.inodes[inode_key].mapping
    wbc = WritebackControl(sync_mode=SyncMode.WB_SYNC_ALL)
    if any(p.dirty for p in mapping.pages.values()):  # mapping_tagged(DIRTY)
        yield from do_writepages(k, mapping, wbc)
    yield from __filemap_fdatawait_range(k, mapping)
    k.tracepoint("fsync_done", inode_key, k.inodes[inode_key].name)


@kernel("fs/sync.c")
def sync_filesystem(k: Kernel) -> Path:
    """Models sync_filesystem(): WB_SYNC_ALL writeback of every file, then wait.

    Runs once every scenario task has finished, with the daemons stopped: the
    run's data must then be on disk.
    """
    wbc = WritebackControl(sync_mode=SyncMode.WB_SYNC_ALL)
    yield from filemap_fdatawait(k)
    ino = 0
    while ino < len(k.inodes):
        ino += 1
        yield from do_writepages(k, k.inodes[ino - 1].mapping, wbc)
    yield from filemap_fdatawait(k)
