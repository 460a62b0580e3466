"""User-space programs: the system calls a scenario's processes make, in order.

Each program is a generator like the kernel paths it calls, so the explorer
interleaves it with everything else; the model of each system call lives in the
module of the kernel file that implements it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.fs_writeback import vfs_fsync
from mmsim.umem import ib_umem_get, ib_umem_release, rdma_write_into

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Vma
    from mmsim.umem import IbUmem

__all__ = ["rdma_app", "rdma_peer"]

EFAULT = 14


@kernel("user space", version="-")
def rdma_peer(k: Kernel, vma: Vma, index: int, umem: IbUmem) -> Path:
    """The remote peer: one RDMA WRITE into the registered page, at any time."""
    yield  # the network: the write lands whenever it lands
    rdma_write_into(k, vma, index, umem)


@kernel("user space", version="-")
def rdma_app(k: Kernel, vma: Vma, index: int) -> Path:
    """An RDMA application on a MAP_SHARED file (Jan Kara's "sensible pattern").

    ``ibv_reg_mr`` (``ib_umem_get``) on the mapped page; a peer writes into it;
    the application polls the completion queue for that write, calls
    ``fsync`` to make it durable, then ``ibv_dereg_mr`` (``ib_umem_release``).
    A refused registration (-EFAULT) ends the program.
    """
    umem = yield from ib_umem_get(k, vma, index)
    if umem is None:
        return -EFAULT
    k.spawn_irq("nic:rdma-write", rdma_peer(k, vma, index, umem))
    yield k.wait_until(
        lambda: (vma.mapping.host.key, index) in k.expected, "ibv_poll_cq"
    )
    yield from vfs_fsync(k, vma.mapping.host.key)
    yield from ib_umem_release(k, umem)
    return 0
