"""iomap-dio: ext4 and btrfs O_DIRECT reads go through iomap, as XFS's always have.

Upstream: Matthew Bobrowski, "ext4: introduce direct I/O read using iomap
infrastructure" (b1b4705d54ab, v5.5), and Goldwyn Rodrigues, "btrfs: switch
to iomap for direct IO" (f85781fb505e, in the btrfs pull for v5.10). Status:
merged; every later ext4 and btrfs read so. Not a fix for the race, and
proposed as none: it moves the moment the user page is dirtied.

Effect in the model: ``call_read_iter`` of an ext4 file becomes
``ext4_dio_read_iter``, of a btrfs file ``btrfs_direct_read``, each →
``iomap_dio_rw`` (:mod:`mmsim.iomap.direct_io`). The user page is dirtied
(``bio_set_pages_dirty``) before the bio is submitted, not after it
completes. At completion, in interrupt context, a page still dirty is
released at once; one that writeback cleaned meanwhile is re-dirtied by the
``bio_dirty_work`` workqueue after the read has returned. A hole is zeroed by
a CPU copy that write-faults the mapping, not by ``zero_user`` on the page GUP
took. The model's XFS reads through iomap without it; fs-dax has no bio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.btrfs.file import btrfs_direct_read
from mmsim.ext4.file import ext4_dio_read_iter
from mmsim.policy import Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Vma

#: The direct read through iomap, by the ``--fs`` name of the file read.
IOMAP_READS = {"ext4": ext4_dio_read_iter, "cow": btrfs_direct_read}


class IomapDio(Policy):
    """ext4 (v5.5) and btrfs (v5.10) read O_DIRECT through iomap_dio_rw."""

    name = "iomap-dio"
    summary = "ext4 and btrfs O_DIRECT reads through iomap: page dirtied before the I/O"
    status = "merged (ext4 v5.5, btrfs v5.10)"
    link = (
        "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/"
        "commit/?id=b1b4705d54abedfd69dcdf42779c521aa1e0fbd3"
    )
    kernel_version = "v5.10"

    def call_read_iter(
        self,
        nxt: Any,
        k: Kernel,
        src: Inode,
        lblk: int,
        vma: Vma,
        index: int,
        is_async: bool,
    ) -> Path:
        read = IOMAP_READS.get(src.mapping.a_ops.name)
        if read is None:
            return (yield from nxt(k, src, lblk, vma, index, is_async))
        return (yield from read(k, src, lblk, vma, index, is_async))
