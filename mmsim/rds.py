"""net/rds/rdma.c (v4.15): a driver that DMAs into GUP'd pages the old way.

RDS's RDMA READ path is the pattern of the drivers Gavin Guo's and John
Hubbard's reports came from: ``rds_pin_pages`` takes the user pages with
``get_user_pages_fast`` (a FOLL_GET reference), the NIC writes remote data into
them, and ``rds_rdma_free_op`` calls ``set_page_dirty`` *without the page lock*
(its comment: "Mark page dirty if it was possibly modified") and ``put_page``.
Such a driver is invisible to ``page_maybe_dma_pinned()``; fixes that convert
callers to FOLL_PIN do not convert this model (it stands for every driver never
converted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.gup import FOLL_WRITE
from mmsim.page_writeback import set_page_dirty

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Vma

__all__ = ["rds_pin_pages", "rds_rdma_complete", "rds_rdma_free_op", "rds_rdma_read"]

EFAULT = 14


@kernel("net/rds/rdma.c")
def rds_pin_pages(k: Kernel, vma: Vma, index: int) -> Path:
    """Models rds_pin_pages(): ``get_user_pages_fast(write)``, a FOLL_GET reference."""
    return (yield from k.ops.get_user_pages_fast(k, vma, index, FOLL_WRITE))


@kernel("net/rds/rdma.c")
def rds_rdma_free_op(k: Kernel, page: Page) -> None:
    """Models rds_rdma_free_op() for an RDMA READ: ``set_page_dirty``, ``put_page``.

    No page lock: ``ext4_set_page_dirty`` warns about that (``!PageLocked &&
    !PageDirty``), and the dirtying bypasses ``->page_mkwrite`` as DIO's does.
    """
    set_page_dirty(k, page)
    k.ops.put_user_page(k, page)


@kernel("net/rds/rdma.c")
def rds_rdma_complete(k: Kernel, vma: Vma, index: int, page: Page) -> Path:
    """The RDMA READ completing: the NIC writes the page, then the op is freed.

    The device does not look at page flags or PTEs. ``rds_rdma_free_op`` dirties
    and releases the page; the completion notification tells the user the data
    is there, which the model records as the last completed write to the page.
    """
    yield  # the RDMA READ is in flight
    version = k.new_version()
    k.store_data(page, version, "NIC")
    k.tracepoint(
        "rdma_read_complete",
        page,
        f"NIC wrote version {version} into {k.page_name(page)}",
    )
    yield
    rds_rdma_free_op(k, page)
    k.expected[(vma.mapping.host.key, index)] = version


@kernel("net/rds/rdma.c")
def rds_rdma_read(k: Kernel, vma: Vma, index: int, softirq: bool = False) -> Path:
    """An RDS RDMA READ into a user page: ``__rds_rdma_map`` pins, then completion.

    With ``softirq`` the completion (and so ``set_page_dirty``) runs in interrupt
    context, as when the send completion drops the last message reference;
    otherwise in this task.
    """
    page = yield from rds_pin_pages(k, vma, index)
    if page is None:
        return -EFAULT
    if softirq:
        k.spawn_irq(
            "softirq:rds_rdma_complete",
            rds_rdma_complete(k, vma, index, page),
            latency="rdma_write",
        )
        return 0
    yield from rds_rdma_complete(k, vma, index, page)
    return 0
