"""Cost workloads: hundreds of pages, thousands of system calls, on the timed clock.

A workload builds a :class:`~mmsim.machine.Kernel` like a scenario does, with
user-space programs that loop over the same modelled system calls (O_DIRECT
reads, CPU stores, fsync, RDMA registration, hole punch, truncate). Every random
choice (which page, which block) is drawn when the workload is built, from a
``random.Random(seed)``, so a run is fixed by the workload, its size and the
seed; the timed scheduler draws only tie-breaks, from the same seed.

Time compression: the kernel's flusher wakes every 5 s
(``dirty_writeback_centisecs`` = 500) and a workload here spans a few simulated
milliseconds, so each workload gives the flusher a shorter period (its
``idle_periods``): several writeback passes then meet the other traffic, as
they would over a longer real run.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from mmsim.direct_io import EFAULT
from mmsim.engine import Path, kernel
from mmsim.filemap import add_to_page_cache_lru
from mmsim.fs_writeback import vfs_fsync, wb_workfn
from mmsim.machine import Kernel
from mmsim.mm_types import PAGE_SIZE, Inode, Vma
from mmsim.open import do_truncate, vfs_fallocate
from mmsim.policy import Policy
from mmsim.programs import rdma_peer, user_store
from mmsim.umem import IbUmem, ib_umem_get, ib_umem_release
from mmsim.vmscan import kswapd, throttle_direct_reclaim

__all__ = ["WORKLOADS", "Workload", "WorkloadError", "get_workload"]

#: Free frames below which an allocating task waits for kswapd.
_MIN_FREE = 4


class WorkloadError(ValueError):
    """An unknown workload, or one that does not run on the filesystem asked for."""


@attrs.frozen
class Workload:
    """A named cost workload. ``build(policies, fs, seed, scale)`` makes the machine.

    ``scale`` multiplies the number of operations (1.0 is the report's size).
    """

    id: str
    title: str
    description: str
    build: Callable[[tuple[Policy, ...], str, int, float], Kernel]
    filesystems: tuple[str, ...] = ("ext4", "iomap")
    #: Idle-wake-up period by task kind, ns (see the module docstring).
    idle_periods: tuple[tuple[str, int], ...] = (("flusher", 500_000),)

    def make(
        self, policies: tuple[Policy, ...], fs: str, seed: int, scale: float
    ) -> Kernel:
        """The machine, ready to run: counters zeroed after the set-up."""
        k = self.build(policies, fs, seed, scale)
        k.vmstat.clear()
        return k


# -- building blocks ---------------------------------------------------------------


def _file(
    k: Kernel, fs: str, name: str, pages: int, *, cached: int = 0, on_disk: bool = True
) -> Inode:
    """A file of ``pages`` pages with its blocks allocated (when ``on_disk``) and
    its first ``cached`` pages clean in the page cache."""
    from mmsim.scenario_spec import FILESYSTEMS

    inode = k.add_inode(name, FILESYSTEMS[fs](), pages * PAGE_SIZE)
    if on_disk:
        for index in range(pages):
            blk = k.alloc_block(inode, index)
            assert blk is not None, "workload disk too small"
            k.disk.data[blk] = k.new_version()
    for index in range(cached):
        page = k.alloc_page()
        assert page is not None, "workload memory too small"
        add_to_page_cache_lru(k, page, inode.mapping, index)
        k.ops.put_page(k, page)
        page.locked = False
        page.uptodate = True
        page.data = k.disk.data[inode.blocks[index]] if on_disk else 0
    return inode


def _daemons(k: Kernel, frames: int) -> None:
    k.spawn("flush-8:0", "flusher", wb_workfn(k), daemon=True)
    low, high = max(_MIN_FREE + 2, frames // 16), max(_MIN_FREE + 4, frames // 8)
    k.spawn("kswapd0", "kswapd", kswapd(k, (low, high)), daemon=True)


def _n(base: int, scale: float) -> int:
    return max(1, round(base * scale))


# -- user-space programs -------------------------------------------------------------


def _reached(progress: list[int], target: int) -> Callable[[], bool]:
    return lambda: progress[0] >= target


def _completed(k: Kernel, tid: int, gen: object) -> Callable[[], bool]:
    """Whether task ``tid`` finished ``gen`` (its slot may already run another)."""
    return lambda: k.tasks[tid].done or k.tasks[tid].gen is not gen


@kernel("user space", version="-")
def dio_reader(
    k: Kernel,
    src: Inode,
    vma: Vma,
    reads: list[tuple[int, int]],
    stores: list[int],
    progress: list[int],
) -> Path:
    """A database worker: O_DIRECT reads of table blocks into mmap'd buffers,
    with a CPU store into a buffer every so often (an updated row)."""
    j = 0
    for i, (lblk, index) in enumerate(reads):
        yield from throttle_direct_reclaim(k, _MIN_FREE)
        ret = yield from k.ops.call_read_iter(k, src, lblk, vma, index, False)
        if ret == -EFAULT:
            k.count("mmsim_efault")
        if stores and i % 4 == 3:
            yield from throttle_direct_reclaim(k, _MIN_FREE)
            if (yield from user_store(k, vma, stores[j % len(stores)])) == -EFAULT:
                k.count("mmsim_efault")
            j += 1
        progress[0] += 1


@kernel("user space", version="-")
def storer(k: Kernel, vma: Vma, pages: list[int], progress: list[int]) -> Path:
    """CPU stores into the mapped file, one page after another."""
    for index in pages:
        yield from throttle_direct_reclaim(k, _MIN_FREE)
        if (yield from user_store(k, vma, index)) == -EFAULT:
            k.count("mmsim_efault")
        progress[0] += 1


@kernel("user space", version="-")
def checkpointer(
    k: Kernel, inode: Inode, every: int, rounds: int, progress: list[int]
) -> Path:
    """fsync the file after every ``every`` operations of the others (a database
    checkpoint), ``rounds`` times; each fsync's latency is recorded."""
    for r in range(1, rounds + 1):
        target = r * every
        # A user-space wait (the application's own pacing), not a kernel sleep.
        yield k.idle_until(_reached(progress, target), "checkpoint interval")
        k.latency_begin(("fsync", inode.key))
        yield from vfs_fsync(k, inode.key)
        k.latency_end("fsync", ("fsync", inode.key))


@kernel("user space", version="-")
def rdma_registrar(
    k: Kernel, vma: Vma, pages: list[int], writes: list[int], fsync_every: int
) -> Path:
    """An RDMA application: register every page (long-term), let the peer write
    into them one after another, fsync every ``fsync_every`` writes, deregister."""
    regs: dict[int, IbUmem] = {}
    for index in pages:
        yield from throttle_direct_reclaim(k, _MIN_FREE)
        umem = yield from ib_umem_get(k, vma, index)
        if umem is None:
            k.count("mmsim_efault")
            continue
        regs[index] = umem
    key = vma.mapping.host.key
    for i, index in enumerate(writes):
        umem = regs.get(index)
        if umem is not None:
            peer = k.spawn_irq(
                "nic:rdma-write", rdma_peer(k, vma, index, umem), latency="rdma_write"
            ).tid
            # Polling the completion queue: the network's time, not a kernel sleep.
            yield k.idle_until(
                _completed(k, peer, k.tasks[peer].gen),
                "ibv_poll_cq",
            )
        if i % fsync_every == fsync_every - 1:
            k.latency_begin(("fsync", key))
            yield from vfs_fsync(k, key)
            k.latency_end("fsync", ("fsync", key))
    for index in sorted(regs):
        yield from ib_umem_release(k, regs[index])


@kernel("user space", version="-")
def hole_puncher(k: Kernel, inode: Inode, pages: list[int]) -> Path:
    """fallocate(PUNCH_HOLE) of one page at a time; each call's latency recorded."""
    for index in pages:
        k.latency_begin(("truncate", inode.key))
        yield from inode.mapping.a_ops.punch_hole(k, inode.key, index)
        k.latency_end("truncate", ("truncate", inode.key))


@kernel("user space", version="-")
def scratch_cycle(
    k: Kernel, files: list[tuple[Inode, Vma]], src: Inode, lblk: int
) -> Path:
    """Write a scratch file through its mapping, read one block into it with
    O_DIRECT, then ftruncate it to 0; the next file reuses the freed blocks."""
    for inode, vma in files:
        for index in range(len(vma.ptes)):
            yield from throttle_direct_reclaim(k, _MIN_FREE)
            if (yield from user_store(k, vma, index)) == -EFAULT:
                k.count("mmsim_efault")
        ret = yield from k.ops.call_read_iter(k, src, lblk, vma, 0, False)
        if ret == -EFAULT:
            k.count("mmsim_efault")
        k.latency_begin(("truncate", inode.key))
        yield from do_truncate(k, inode.key)
        k.latency_end("truncate", ("truncate", inode.key))


@kernel("user space", version="-")
def appender(k: Kernel, inode: Inode, count: int) -> Path:
    """fallocate() one new block at a time at the end of a log file (block reuse)."""
    for index in range(count):
        if (yield from vfs_fallocate(k, inode.key, index)) != 0:
            k.count("mmsim_enospc")
        yield


# -- the workloads -------------------------------------------------------------------


def _db_dio(policies: tuple[Policy, ...], fs: str, seed: int, scale: float) -> Kernel:
    rng = random.Random(seed)
    pages, frames = 128, 96
    k = Kernel(policies, nr_frames=frames, nr_blocks=1024)
    table = _file(k, fs, "table", 512)
    buffers = _file(k, fs, "buffers", pages)
    vma = k.add_vma(buffers.mapping, pages)
    progress = [0]
    per = _n(1000, scale)
    for w in range(2):
        reads = [(rng.randrange(512), rng.randrange(pages)) for _ in range(per)]
        stores = [rng.randrange(pages) for _ in range(per // 4)]
        gen = dio_reader(k, table, vma, reads, stores, progress)
        k.spawn(f"db-worker{w}", "dio", gen)
    k.spawn("checkpoint", "fsync", checkpointer(k, buffers, per // 2, 3, progress))
    _daemons(k, frames)
    return k


def _rdma_fsync(
    policies: tuple[Policy, ...], fs: str, seed: int, scale: float
) -> Kernel:
    rng = random.Random(seed)
    pages, frames = 64, 128
    k = Kernel(policies, nr_frames=frames, nr_blocks=256)
    region = _file(k, fs, "region", pages)
    vma = k.add_vma(region.mapping, pages)
    writes = [rng.randrange(pages) for _ in range(_n(2000, scale))]
    gen = rdma_registrar(k, vma, list(range(pages)), writes, 250)
    k.spawn("rdma-app", "rdma", gen)
    other = _file(k, fs, "log", 64)
    ovma = k.add_vma(other.mapping, 64)
    stores = [rng.randrange(64) for _ in range(_n(1000, scale))]
    k.spawn("logger", "store", storer(k, ovma, stores, [0]))
    _daemons(k, frames)
    return k


def _mixed(policies: tuple[Policy, ...], fs: str, seed: int, scale: float) -> Kernel:
    rng = random.Random(seed)
    pages, frames = 128, 112
    k = Kernel(policies, nr_frames=frames, nr_blocks=512)
    src = _file(k, fs, "src", 256)
    data = _file(k, fs, "data", pages, cached=pages // 2)
    vma = k.add_vma(data.mapping, pages)
    progress = [0]
    for w in range(2):
        stores = [rng.randrange(pages) for _ in range(_n(1000, scale))]
        k.spawn(f"writer{w}", "store", storer(k, vma, stores, progress))
    reads = [(rng.randrange(256), rng.randrange(pages)) for _ in range(_n(500, scale))]
    k.spawn("dio-reader", "dio", dio_reader(k, src, vma, reads, [], progress))
    every = _n(500, scale)
    k.spawn("fsync", "fsync", checkpointer(k, data, every, 3, progress))
    _daemons(k, frames)
    return k


def _truncate_heavy(
    policies: tuple[Policy, ...], fs: str, seed: int, scale: float
) -> Kernel:
    rng = random.Random(seed)
    pages, frames = 64, 96
    k = Kernel(policies, nr_frames=frames, nr_blocks=512)
    src = _file(k, fs, "src", 64)
    data = _file(k, fs, "data", pages, cached=pages // 2)
    vma = k.add_vma(data.mapping, pages)
    progress = [0]
    stores = [rng.randrange(pages) for _ in range(_n(1000, scale))]
    k.spawn("writer", "store", storer(k, vma, stores, progress))
    reads = [(rng.randrange(64), rng.randrange(pages)) for _ in range(_n(500, scale))]
    k.spawn("dio-reader", "dio", dio_reader(k, src, vma, reads, [], progress))
    punches = [rng.randrange(pages) for _ in range(_n(300, scale))]
    k.spawn("puncher", "punch", hole_puncher(k, data, punches))
    scratch = []
    for i in range(_n(16, scale)):
        inode = _file(k, fs, f"scratch{i}", 8, on_disk=False)
        scratch.append((inode, k.add_vma(inode.mapping, 8)))
    k.spawn("scratch", "truncate", scratch_cycle(k, scratch, src, 0))
    log = _file(k, fs, "log", 0, on_disk=False)
    k.spawn("appender", "alloc", appender(k, log, _n(128, scale)))
    _daemons(k, frames)
    return k


WORKLOADS: dict[str, Workload] = {
    w.id: w
    for w in (
        Workload(
            "db-dio",
            "A database: O_DIRECT reads into mmap'd buffers under memory pressure",
            "Two workers each make 1,000 O_DIRECT reads of random table blocks "
            "into random pages of a 128-page MAP_SHARED buffer file (96 page "
            "frames: kswapd must evict), storing into a buffer after every fourth "
            "read; a checkpointer fsyncs the buffer file three times.",
            _db_dio,
        ),
        Workload(
            "rdma-fsync",
            "A long-lived RDMA registration with periodic fsync",
            "An application registers all 64 pages of a mapped file (long-term "
            "GUP), the peer RDMA-WRITEs into them 2,000 times, the application "
            "fsyncs every 250 writes and deregisters at the end; a logger makes "
            "1,000 stores into another mapped file meanwhile.",
            _rdma_fsync,
        ),
        Workload(
            "mixed",
            "CPU stores, O_DIRECT reads, writeback and reclaim on one file",
            "Two writers make 1,000 stores each into random pages of a 128-page "
            "mapped file, a reader makes 500 O_DIRECT reads into random pages of "
            "it, an fsync follows every 500 operations, with 112 page frames.",
            _mixed,
        ),
        Workload(
            "truncate-heavy",
            "Hole punches and truncates against stores and O_DIRECT reads",
            "A writer (1,000 stores) and an O_DIRECT reader (500 reads) work on a "
            "mapped 64-page file while a puncher punches 300 holes in it; 16 "
            "scratch files are written through their mappings, read into with "
            "O_DIRECT and truncated to 0; a log file allocates 128 new blocks, "
            "reusing the freed ones.",
            _truncate_heavy,
        ),
    )
}


def get_workload(name: str) -> Workload:
    """A built-in workload by id; an unknown one is a one-line error."""
    try:
        return WORKLOADS[name]
    except KeyError:
        known = ", ".join(WORKLOADS)
        raise WorkloadError(f"unknown workload {name!r} (known: {known})") from None
