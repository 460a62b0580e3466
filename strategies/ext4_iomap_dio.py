"""ext4-iomap-dio: ext4's O_DIRECT reads go through iomap, as XFS's always have.

Upstream: Matthew Bobrowski, "ext4: introduce direct I/O read using iomap
infrastructure" (b1b4705d54ab, v5.5; reviewed by Jan Kara in October 2019).
Status: merged; every later ext4 reads so. Not a fix for the race, and
proposed as none: it moves the moment the user page is dirtied.

Effect in the model: ``ext4_file_read_iter`` becomes ``ext4_dio_read_iter``
→ ``iomap_dio_rw`` (:mod:`mmsim.iomap.direct_io`). The user page is dirtied
(``bio_set_pages_dirty``) before the bio is submitted, not after it
completes. At completion, in interrupt context, a page still dirty is
released at once; one that writeback cleaned meanwhile is re-dirtied by the
``bio_dirty_work`` workqueue after the read has returned. A hole is zeroed by
a CPU copy that write-faults the mapping, not by ``zero_user`` on the
GUP'd page. Other filesystems keep their own path: the model's XFS always
reads through iomap, its btrfs (v4.15) through fs/direct-io.c.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.ext4.file import ext4_dio_read_iter
from mmsim.policy import Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Vma


class Ext4IomapDio(Policy):
    """ext4 (v5.5) reads O_DIRECT through iomap_dio_rw, not fs/direct-io.c."""

    name = "ext4-iomap-dio"
    summary = "ext4 O_DIRECT reads through iomap: the page dirtied before the I/O"
    status = "merged v5.5 (b1b4705d54ab)"
    link = (
        "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/"
        "commit/?id=b1b4705d54abedfd69dcdf42779c521aa1e0fbd3"
    )
    kernel_version = "v5.5"

    def ext4_file_read_iter(
        self,
        nxt: Any,
        k: Kernel,
        src: Inode,
        lblk: int,
        vma: Vma,
        index: int,
        is_async: bool,
    ) -> Path:
        return (yield from ext4_dio_read_iter(k, src, lblk, vma, index, is_async))
