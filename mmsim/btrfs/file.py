"""fs/btrfs/file.c (v5.10): the O_DIRECT read, once btrfs moved it to iomap.

The ``cow`` personality is v4.15's btrfs, which reads O_DIRECT through
fs/direct-io.c (``btrfs_direct_IO`` → ``__blockdev_direct_IO``, the default
``->read_iter`` path). From v5.10 (f85781fb505e, "btrfs: switch to iomap for
direct IO") it reads through iomap; the ``iomap-dio`` policy selects this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.iomap.direct_io import iomap_dio_rw

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Vma

__all__ = ["btrfs_direct_read"]


@kernel("fs/btrfs/file.c", version="v5.10")
def btrfs_direct_read(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool
) -> Path:
    """Models btrfs_file_read_iter() → btrfs_direct_read(), v5.10:
    ``iomap_dio_rw`` with ``btrfs_dio_iomap_ops``.

    Left out: ``inode_lock_shared`` (as ext4's: no built-in scenario or
    fuzzing rule writes, truncates or punches the file a direct read reads
    from), ``check_direct_read``'s alignment checks (the
    model reads whole pages), and what ``btrfs_submit_direct`` adds to the
    bio (checksum lookup and verification, which the model has no data
    for); the user page is dirtied and released by iomap's bio completion.
    """
    return (yield from iomap_dio_rw(k, src, lblk, vma, index, is_async))
