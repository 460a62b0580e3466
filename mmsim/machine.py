"""The kernel machine: every model object of one simulated system, and its tasks.

``Kernel`` is the ``k`` every path receives. It owns the page-frame pool, the
inodes and their page caches, the user mapping, the disk, the policy hook table
(``k.ops``) and the record of completed writes that the lost-write oracle reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mmsim.bio import Bio
from mmsim.engine import _CACHE_SIZE, Machine, Path, Task, Wait
from mmsim.fs import AddressSpaceOperations
from mmsim.mm_types import AddressSpace, BufferHead, Disk, Inode, Page, Pte, Vma
from mmsim.policy import Ops, Policy, build_ops

if TYPE_CHECKING:
    from mmsim.iomap.direct_io import IomapDio
    from mmsim.umem import IbUmem

__all__ = ["EVENTS", "Kernel"]

#: Every event the kernel model emits, by name: its tracepoints
#: (``k.tracepoint``, named as the kernel's own where it has one) and its
#: ``/proc/vmstat`` counters (``k.count``, the kernel's names; mmsim's own say
#: so). A reachability goal names one of these, or one a policy declares in
#: :attr:`~mmsim.policy.Policy.events`.
EVENTS: dict[str, str] = {
    # tracepoints
    "block_alloc": "a filesystem allocated a block (mmsim's)",
    "block_rq_complete": "a block request completed (include/trace/events/block.h)",
    "block_write": "data reached a disk or pmem block (mmsim's)",
    "fsync_done": "vfs_fsync returned (mmsim's)",
    "gup_refused": "GUP refused a page (a fix's check said no)",
    "iomap_hole_skipped": "iomap writeback skipped a page over a hole",
    "page_cleaned": "clear_page_dirty_for_io cleaned a page",
    "page_freed_pinned": "a page was freed while GUP still held it",
    "page_ref_add": "a program took plain references to a page",
    "page_store": "a CPU store reached a page",
    "pageout_orphaned": "kswapd met a dirty page its file no longer holds",
    "punch_hole": "a hole was punched in a file",
    "rdma_read_complete": "a NIC's RDMA read into a pinned page completed",
    "rdma_write": "a peer's RDMA write reached a registered page",
    "request_refused": "a request was refused (a fix's regression outcome)",
    "sleep_in_atomic": "a task slept where it may not (___might_sleep)",
    "truncate": "a file was truncated",
    "warn": "a WARN_ON() fired",
    "wbc_writepage": "writeback wrote a page (include/trace/events/writeback.h)",
    "writeback_dirty_page": "a page was dirtied (include/trace/events/writeback.h)",
    "writeback_unreserved": "writeback met a page with no block reserved",
    # /proc/vmstat counters
    "mmsim_efault": "a program's request failed with EFAULT (mmsim's)",
    "mmsim_enospc": "a program's request failed with ENOSPC (mmsim's)",
    "nr_block_alloc": "filesystem block allocations (mmsim's)",
    "nr_dirtied": "clean-to-dirty page transitions",
    "nr_dirty": "pages dirty now",
    "nr_foll_pin_acquired": "FOLL_PIN pins taken",
    "nr_foll_pin_released": "FOLL_PIN pins released",
    "nr_gup_refs": "FOLL_GET references GUP gave out (mmsim's)",
    "nr_redirtied": "pages dirtied again during writeback",
    "nr_writeback": "pages under writeback now",
    "nr_written": "writeback I/Os completed",
    "page_ref_mod": "page refcount changes (include/trace/events/page_ref.h)",
    "pgfault": "page faults",
    "pgpageout": "dirty pages kswapd wrote itself",
    "pgscan_kswapd": "pages kswapd scanned",
    "pgsteal_kswapd": "pages kswapd reclaimed",
}


class Kernel(Machine):
    """One simulated machine running the modelled kernel paths.

    Args:
        policies: the fix under test (a tuple of policies; empty is the baseline).
        nr_frames: size of the page-frame pool.
        nr_blocks: size of the disk, in blocks.
        pgdat_dirty: the node's PGDAT_DIRTY flag: reclaim has met many dirty pages,
            so kswapd may write a dirty file page itself (``shrink_page_list``).
    """

    def __init__(
        self,
        policies: tuple[Policy, ...] = (),
        *,
        nr_frames: int = 2,
        nr_blocks: int = 4,
        pgdat_dirty: bool = True,
    ) -> None:
        super().__init__()
        # Kernel paths start tasks through _spawn_slot only.
        self.trailing_finished_are_free = True
        self.policies = policies
        ops = _OPS.get(policies)
        if ops is None:
            if len(_OPS) >= _CACHE_SIZE:
                _OPS.clear()  # a search uses one stack: keep memory bounded
            ops = _OPS[policies] = build_ops(policies, _baseline_hooks())
        self.ops: Ops = ops
        self.frames = [Page(key=i) for i in range(nr_frames)]
        #: fs-dax ``ZONE_DEVICE`` pages, one per disk block, made by
        #: :meth:`enable_dax` when a DAX filesystem is mounted.
        self.dax_pages: list[Page] = []
        self.inodes: list[Inode] = []
        self.vmas: list[Vma] = []
        self.disk = Disk(data=[0] * nr_blocks, owner=[None] * nr_blocks)
        self.pgdat_dirty = pgdat_dirty
        #: The next data version a write will store.
        self.next_version = 1
        #: Last completed write per (inode key, page index): what sync must persist.
        self.expected: dict[tuple[int, int], int] = {}
        #: Bios in flight, by slot (see :mod:`mmsim.bio`).
        self.bios: list[Bio | None] = []
        #: The page ``redirty_page_for_writepage`` is dirtying again, during
        #: that call only (so never part of a state between steps).
        self.redirtying: Page | None = None
        #: RDMA registrations alive, by slot (:class:`mmsim.umem.IbUmem`).
        self.umems: list[IbUmem | None] = []
        #: iomap direct reads in progress, by slot
        #: (:class:`mmsim.iomap.direct_io.IomapDio`).
        self.dios: list[IomapDio | None] = []
        #: /proc/vmstat-style counters. Observations only: not part of the state.
        self.vmstat: dict[str, int] = {}
        #: Simulated time in ns, kept by the timed scheduler (0 under the explorer).
        self.now = 0
        #: Latency samples in ns by operation (``"fsync"``, ``"writeback"``), and
        #: the start times of operations in progress. Observations only.
        self.latencies: dict[str, list[int]] = {}
        self._started: dict[tuple[str, int], int] = {}

    # -- construction -----------------------------------------------------------

    def add_inode(self, name: str, a_ops: AddressSpaceOperations, size: int) -> Inode:
        """Create a file of ``size`` bytes whose page cache uses ``a_ops``."""
        inode = Inode(key=len(self.inodes), name=name, size=size)
        inode.mapping = AddressSpace(key=inode.key, host=inode, a_ops=a_ops)
        self.inodes.append(inode)
        return inode

    def add_vma(self, mapping: AddressSpace, nr_pages: int) -> Vma:
        """Map ``nr_pages`` of a file ``MAP_SHARED`` into the user's address space."""
        vma = Vma(key=len(self.vmas), mapping=mapping)
        vma.ptes = [Pte(key=i) for i in range(nr_pages)]
        self.vmas.append(vma)
        return vma

    def alloc_page(self) -> Page | None:
        """``alloc_page()``: the lowest free frame, with one reference, or None."""
        for page in self.frames:
            if page.refcount == 0:
                page.refcount = 1
                return page
        return None

    def nr_free_pages(self) -> int:
        """Free page frames (``NR_FREE_PAGES``)."""
        return sum(1 for page in self.frames if page.refcount == 0)

    def new_version(self) -> int:
        """A fresh data version for a write."""
        v = self.next_version
        self.next_version += 1
        return v

    def enable_dax(self) -> None:
        """Give every disk block its struct page, as ``devm_memremap_pages`` does
        for a pmem device: idle at refcount 1 (the fs-dax convention until v6.15),
        unmapped, never on an LRU."""
        if not self.dax_pages:
            base = len(self.frames)
            self.dax_pages = [
                Page(key=base + blk, refcount=1, uptodate=True, pmem_block=blk)
                for blk in range(len(self.disk.data))
            ]

    def store_data(self, page: Page, version: int, who: str) -> None:
        """New contents land in ``page`` (DMA, a NIC, a CPU store).

        An fs-dax page is the persistent-memory block itself: the store is a
        write into that block (the ``block_write`` tracepoint). Otherwise the page
        frame takes the data; ``page_store`` lets oracles judge the moment.
        """
        if page.pmem_block >= 0:
            blk = page.pmem_block
            self.tracepoint("block_write", (page, blk), f"{who} into pmem block {blk}")
            self.disk.data[blk] = version
        else:
            page.data = version
        self.tracepoint("page_store", page, f"{who}: version {version}")

    def read_returned(self, vma: Vma, index: int, src: Inode, lblk: int) -> None:
        """A direct read of page ``lblk`` of ``src`` into page ``index`` of
        ``vma`` returned to the user, who may rely on the data from here: it is
        the last completed write to that file page, which a final sync must
        persist (a hole reads as zeroes)."""
        blk = src.blocks.get(lblk)
        self.expected[(vma.mapping.host.key, index)] = (
            self.disk.data[blk] if blk is not None else 0
        )

    def page_data(self, page: Page) -> int:
        """What ``page`` holds now (an fs-dax page holds its block's contents)."""
        return self.disk.data[page.pmem_block] if page.pmem_block >= 0 else page.data

    def new_buffer(self) -> BufferHead:
        """A buffer head (``alloc_buffer_head``)."""
        return BufferHead(key=0)

    def spawn_irq(self, name: str, gen: Path, *, latency: str = "") -> Task:
        """Start an interrupt-context task (a completion), in a reusable slot.

        ``latency`` names the cost-model figure of the device work before the
        interrupt (``"bio_read"``): the timed scheduler charges it.
        """
        return self._spawn_slot("irq", name, gen, "irq", latency)

    def queue_work(self, name: str, gen: Path) -> Task:
        """Models schedule_work(): run ``gen`` in a kworker (process context)."""
        return self._spawn_slot("kworker", name, gen, "process", "")

    def _spawn_slot(
        self, kind: str, name: str, gen: Path, context: str, latency: str
    ) -> Task:
        # Reusing the first finished slot keeps the number of tasks, and so the
        # state space, finite while daemons keep submitting I/O. Any kind of
        # kernel-started task may take it: then a new task's id does not depend
        # on which kinds finished before, which is what lets snapshots leave out
        # the finished tasks at the end (trailing_finished_are_free).
        for task in self.tasks:
            if task.done and task.kind in _STARTED_MID_RUN:
                task.name, task.kind, task.gen = name, kind, gen
                task.done, task.wait, task.pos = False, None, None
                task.context, task.latency = context, latency
                return task
        return self.spawn(name, kind, gen, context=context, latency=latency)

    def discard(self) -> None:
        """Let go of the machine (see :meth:`Machine.discard`); a file's page
        cache and its inode point at each other, so they are parted too."""
        super().discard()
        for inode in self.inodes:
            inode.mapping.pages.clear()
            del inode.mapping

    def has_dirty_pages(self) -> bool:
        """Whether any file has a dirty page in its cache (the flusher's wake-up)."""
        return any(p.dirty for i in self.inodes for p in i.mapping.pages.values())

    def count(self, item: str, n: int = 1) -> None:
        """Add to a /proc/vmstat counter."""
        self.vmstat[item] = self.vmstat.get(item, 0) + n
        if self.events_seen is not None:
            self.events_seen.add(item)

    def latency_begin(self, key: tuple[str, int]) -> None:
        """An operation identified by ``key`` starts now (for its latency)."""
        self._started[key] = self.now

    def latency_end(self, op: str, key: tuple[str, int]) -> None:
        """The operation ``key`` ends now: record its latency under ``op``."""
        start = self._started.pop(key, None)
        if start is not None:
            self.latencies.setdefault(op, []).append(self.now - start)

    def alloc_block(self, inode: Inode, lblk: int, *, remap: bool = True) -> int | None:
        """The filesystem's block allocator (:meth:`Disk.alloc`), counted for the
        cost model as ``nr_block_alloc``."""
        blk = self.disk.alloc(inode, lblk, remap=remap)
        if blk is not None:
            self.count("nr_block_alloc")
        return blk

    # -- what the engine needs ------------------------------------------------------

    def state_snapshot(self) -> tuple[Any, ...]:
        return (
            tuple(p.snapshot() for p in self.frames),
            tuple(p.snapshot() for p in self.dax_pages),
            tuple(i.snapshot() for i in self.inodes),
            tuple(i.mapping.snapshot() for i in self.inodes),
            tuple(v.snapshot() for v in self.vmas),
            self.disk.snapshot(),
            self.next_version,
            tuple(sorted(self.expected.items())),
            _slots_snapshot(self.bios),
            _slots_snapshot(self.umems),
            _slots_snapshot(self.dios),
        )

    def wait_until(self, cond: Callable[[], bool], reason: str) -> Wait:
        """Sleep until ``cond()`` holds: ``yield k.wait_until(cond, "why")``."""
        return Wait(cond, reason)

    def wait_for_pins(self, cond: Callable[[], bool], reason: str) -> Wait:
        """Sleep until GUP references or pins are gone (a fix's wait, judged for
        starvation): ``yield k.wait_for_pins(cond, "why")``."""
        return Wait(cond, reason, pins=True)

    def might_sleep(self, where: str) -> None:
        """Models might_sleep() → ___might_sleep(): complain in atomic context."""
        task = self.current
        if task is not None and task.context != "process":
            self.tracepoint("sleep_in_atomic", task, f"might_sleep() in {where}")

    def idle_until(self, cond: Callable[[], bool], reason: str) -> Wait:
        """A daemon's idle point: ``yield k.idle_until(cond, "why")`` tops its loop."""
        return Wait(cond, reason, idle=True)

    def quiesce(self) -> Iterator[Task]:
        """The final ``sync(2)``: write back every dirty page, WB_SYNC_ALL."""
        from mmsim.fs_writeback import sync_filesystem

        yield self._spawn_slot("sync", "sync", sync_filesystem(self), "process", "")

    def page_name(self, page: Page) -> str:
        """How traces name a page: ``file1:0`` (or ``page 3`` when not cached)."""
        if page.mapping is not None:
            return f"{page.mapping.host.name}:{page.index}"
        return f"page {page.key}"


#: The kinds of task the kernel itself starts mid-run, in reusable slots.
_STARTED_MID_RUN = frozenset({"irq", "kworker", "sync"})


def _slots_snapshot(
    slots: list[Bio | None] | list[IbUmem | None] | list[IomapDio | None],
) -> tuple[Any, ...]:
    # bio_alloc, ib_umem_get and iomap_dio_rw take the lowest free slot or
    # append one, so free slots at the end change nothing: a state with them
    # is the state without.
    end = len(slots)
    while end and slots[end - 1] is None:
        end -= 1
    return tuple(b.snapshot() if b is not None else () for b in slots[:end])


#: Hook tables by policy stack: a search builds thousands of machines from one
#: stack (the key holds the policies, so no id is reused).
_OPS: dict[tuple[Policy, ...], Ops] = {}


def _baseline_hooks() -> dict[str, Callable[..., Any]]:
    from mmsim import (
        bio,
        filemap,
        fs,
        gup,
        iov_iter,
        page_writeback,
        rmap,
        swap,
        truncate,
        vmscan,
    )
    from mmsim.ext4 import inode as ext4_inode

    return {
        "get_user_pages_fast": gup.get_user_pages_fast,
        "iov_iter_get_pages": iov_iter.iov_iter_get_pages,
        "get_user_pages_longterm": gup.get_user_pages_longterm,
        "check_vma_flags": gup.check_vma_flags,
        "put_user_page": gup.put_user_page,
        "unpin_user_page": gup.unpin_user_page,
        "writeback_before_lock": page_writeback.writeback_before_lock,
        "break_layouts": truncate.break_layouts,
        "blk_queue_bounce": bio.blk_queue_bounce,
        "reclaim_keep_pinned": vmscan.reclaim_keep_pinned,
        "has_writepage": vmscan.has_writepage,
        "ext4_page_buffers": ext4_inode.ext4_page_buffers,
        "call_read_iter": fs.call_read_iter,
        "set_page_dirty_lock": page_writeback.set_page_dirty_lock,
        "clear_page_dirty_for_io": page_writeback.clear_page_dirty_for_io,
        "page_mkclean": rmap.page_mkclean,
        "try_to_release_page": filemap.try_to_release_page,
        "put_page": swap.put_page,
    }
