"""fs/open.c (v4.15): ``vfs_fallocate``, as another file's allocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel

__all__ = ["do_truncate", "vfs_fallocate"]

ENOSPC = 28


@kernel("fs/open.c")
def vfs_fallocate(k: Kernel, inode_key: int, index: int) -> Path:
    """Models fallocate(2) of one block (mode 0) and a direct write of new data.

    ``->fallocate`` of every modelled filesystem comes down to its block
    allocator, which the model shares: the lowest free block, so one another file
    just freed is reused at once. Blocks reserved for delayed allocation are not
    free (ext4's ``ext4_claim_free_clusters`` and XFS's ``xfs_mod_fdblocks``
    count them); with none left the call fails with -ENOSPC.
    """
    inode = k.inodes[inode_key]
    if k.disk.free() - sum(i.reserved for i in k.inodes) < 1:
        return -ENOSPC
    blk = k.alloc_block(inode, index)
    assert blk is not None
    version = k.new_version()
    k.disk.data[blk] = version  # the direct write of the new file's data
    k.expected[(inode_key, index)] = version
    k.tracepoint("block_alloc", inode, f"{inode.name}:{index} allocated block {blk}")
    return 0
    yield  # a path: allocation may sleep


@kernel("fs/open.c")
def do_truncate(k: Kernel, inode_key: int) -> Path:
    """Models ftruncate(fd, 0): do_truncate() → notify_change() → ``->setattr``.

    The steps ext4_setattr, xfs_setattr_size and btrfs_setsize share for a
    shrink to zero: the invalidate lock (``i_mmap_sem`` / MMAPLOCK) exclusive;
    the ``break_layouts`` hook (ext4 and XFS call their break_layouts here since
    v4.19), which may fail the call; ``truncate_setsize`` (``i_size_write``, then
    ``truncate_pagecache``: every page unmapped and removed whatever GUP holds);
    then the blocks and delalloc reservations are freed. Dirty data is
    discarded, not written: the user asked for it to go.
    """
    from mmsim.truncate import truncate_pagecache_range

    inode = k.inodes[inode_key]
    if inode.mmap_sem != 0:
        yield k.wait_until(lambda: inode.mmap_sem == 0, "down_write(i_mmap_sem)")
    inode.mmap_sem = -1
    err = yield from k.ops.break_layouts(k, inode)
    if err:
        inode.mmap_sem = 0
        k.tracepoint("request_refused", inode, f"truncate of {inode.name}: {err}")
        return err
    inode.size = 0
    indices = sorted(inode.mapping.pages)
    i = 0
    while i < len(indices):
        yield from truncate_pagecache_range(k, inode.mapping, indices[i])
        i += 1
    for lblk, blk in sorted(inode.blocks.items()):
        k.disk.owner[blk] = None
        k.expected.pop((inode_key, lblk), None)
    inode.blocks.clear()
    inode.reserved -= len(inode.delalloc)
    inode.delalloc.clear()
    inode.mmap_sem = 0
    k.tracepoint("truncate", inode, f"{inode.name} truncated to 0")
    return 0
