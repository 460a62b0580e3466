"""drivers/infiniband/core/umem.c (v4.15): RDMA memory registration.

``ib_umem_get`` takes the pages of a memory region for as long as the
registration lives (``get_user_pages_longterm``, FOLL_GET in v4.15; a
FOLL_PIN|FOLL_LONGTERM pin from v5.6); the NIC then writes into them at will,
without faults; ``ib_umem_release`` → ``__ib_umem_release`` dirties
(``set_page_dirty_lock``) and drops them at deregistration. This is the path of
Leon Romanovsky's 2018 report (``kernel BUG at fs/ext4/inode.c:2297``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs

from mmsim.engine import kernel
from mmsim.gup import FOLL_WRITE, unpin_user_pages_dirty_lock
from mmsim.mm_types import lowest_free_slot

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Vma

__all__ = ["IbUmem", "ib_umem_get", "ib_umem_release", "rdma_write_into"]

EFAULT = 14


@attrs.define(slots=True, eq=False)
class IbUmem:
    """``struct ib_umem`` for one writable page; ``pinned`` when taken with FOLL_PIN.

    ``key`` is its slot in ``Kernel.umems``, the registrations alive (the lowest
    free one, as bios take theirs). ``completions`` stands for the completion
    queue the application polls: the RDMA WRITEs into the region that the NIC
    has completed. It is shared state, so the application waits on it rather
    than on the task that models the peer, whose slot a later task may take.
    """

    snapshot_tag: ClassVar[int] = 12
    key: int
    page: Page
    pinned: bool
    completions: int = 0

    def snapshot(self) -> tuple[int, ...]:
        return (self.page.key, self.pinned, self.completions)


@kernel("drivers/infiniband/core/umem.c")
def ib_umem_get(k: Kernel, vma: Vma, index: int) -> Path:
    """Models ib_umem_get() for a writable region of one page.

    Returns the registration, or None when GUP refused (the user sees -EFAULT).
    """
    page, pinned = yield from k.ops.get_user_pages_longterm(k, vma, index, FOLL_WRITE)
    if page is None:
        return None
    slot = lowest_free_slot(k.umems)
    umem = k.umems[slot] = IbUmem(key=slot, page=page, pinned=pinned)
    return umem


@kernel("drivers/infiniband/core/umem.c")
def ib_umem_release(k: Kernel, umem: IbUmem) -> Path:
    """Models ib_umem_release() → __ib_umem_release(umem, dirty=1).

    v4.15: ``set_page_dirty_lock`` then ``put_page``; a pinned region goes through
    ``unpin_user_pages_dirty_lock`` (v5.6). The registration is then freed.
    """
    if umem.pinned:
        yield from unpin_user_pages_dirty_lock(k, umem.page, True)
    else:
        yield from k.ops.set_page_dirty_lock(k, umem.page)
        yield
        k.ops.put_user_page(k, umem.page)
    k.umems[umem.key] = None


@kernel("drivers/infiniband/core/umem.c")
def rdma_write_into(k: Kernel, vma: Vma, index: int, umem: IbUmem) -> None:
    """A remote peer's RDMA WRITE lands in the registered page (the NIC's DMA).

    The NIC needs no fault and looks at no page flag: the page may be clean,
    write-protected, or stripped of its buffers. Once the write completes the data
    is the user's: the model records it as the last completed write to the page,
    and the NIC posts its completion (``umem.completions``), which
    ``ibv_poll_cq`` finds.
    """
    version = k.new_version()
    k.store_data(umem.page, version, "RDMA WRITE")
    k.expected[(vma.mapping.host.key, index)] = version
    k.tracepoint("rdma_write", umem.page, f"remote write of version {version}")
    umem.completions += 1
