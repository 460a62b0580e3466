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
from mmsim.usercopy import copy_to_user

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Vma
    from mmsim.umem import IbUmem

__all__ = [
    "dio_read_loop",
    "dio_reads",
    "hold_page_refs",
    "rdma_app",
    "rdma_peer",
    "user_store",
]

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
    k.spawn_irq("nic:rdma-write", rdma_peer(k, vma, index, umem), latency="rdma_write")
    yield k.wait_until(lambda: umem.completions > 0, "ibv_poll_cq")
    yield from vfs_fsync(k, vma.mapping.host.key)
    yield from ib_umem_release(k, umem)
    return 0


@kernel("user space", version="-")
def user_store(k: Kernel, vma: Vma, index: int) -> Path:
    """A CPU store of new data into the mapped page.

    The MMU's path is the kernel's own stores' (``copy_to_user``): write-fault
    until the PTE is present and writable, then the store lands in the same
    step and sets the PTE dirty bit. A fault that fails (SIGBUS, e.g. ENOSPC)
    ends the program.
    """
    ret = yield from copy_to_user(k, vma, index, None, "CPU store")
    if ret == 0:
        page = vma.ptes[index].page
        assert page is not None
        k.expected[(vma.mapping.host.key, index)] = k.page_data(page)
    return ret


@kernel("user space", version="-")
def dio_read_loop(k: Kernel, src: Inode, lblk: int, vma: Vma, index: int) -> Path:
    """``while (1) read(fd2, addr, PAGE_SIZE)`` with O_DIRECT: short pins, one
    after another, for ever (a daemon; it may stop between two reads)."""
    while True:
        yield k.idle_until(lambda: True, "between two reads")
        yield from k.ops.call_read_iter(k, src, lblk, vma, index, False)


@kernel("user space", version="-")
def dio_reads(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool, n: int
) -> Path:
    """``n`` O_DIRECT reads into the same mapped page, one after the other (a
    database re-reading a block into its buffer)."""
    done = 0
    while done < n:
        done += 1
        yield from k.ops.call_read_iter(k, src, lblk, vma, index, is_async)


@kernel("user space", version="-")
def hold_page_refs(k: Kernel, vma: Vma, index: int, refs: int) -> Path:
    """Something takes ``refs`` ordinary references to the cached page and keeps
    them (``page_ref_add``: pipe buffers, a page-cache user). With 1024 of them
    ``page_maybe_dma_pinned`` says the page is pinned."""
    page = vma.mapping.pages.get(index)
    if page is None:
        return
    yield
    page.refcount += refs
    k.tracepoint("page_ref_add", page, f"{refs} references to {k.page_name(page)}")
