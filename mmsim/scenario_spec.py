"""Scenarios as data: a pydantic spec that built-ins (Python) and TOML files share.

A :class:`ScenarioSpec` names the machine's size, the files (their blocks on disk,
their data versions, which pages start in the page cache), the user's
``MAP_SHARED`` mapping, the tasks (each a *kind* with its parameters) and the
oracles that judge the scenario. :func:`build` turns a validated spec into a
fresh :class:`~mmsim.machine.Kernel`; the explorer calls it for every replay, so
it validates nothing and makes objects in a fixed order.

A TOML file has the same fields; :func:`load_scenario_file` reports a malformed
one with the file, the field and the problem on one line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmsim.btrfs import Btrfs
from mmsim.engine import _CACHE_SIZE, Task
from mmsim.ext4 import Ext4
from mmsim.ext4.file import Ext4Dax
from mmsim.filemap import add_to_page_cache_lru
from mmsim.fs import AddressSpaceOperations
from mmsim.fs_writeback import vfs_fsync, wb_workfn
from mmsim.machine import Kernel
from mmsim.mm_types import PAGE_SIZE, Inode, Vma
from mmsim.open import do_truncate, vfs_fallocate
from mmsim.oracles import ORACLES
from mmsim.policy import Policy
from mmsim.programs import (
    dio_read_loop,
    dio_reads,
    hold_page_refs,
    rdma_app,
    user_store,
)
from mmsim.rds import rds_rdma_read
from mmsim.results import load_model
from mmsim.vmscan import kswapd
from mmsim.xfs import Xfs

__all__ = [
    "FILESYSTEMS",
    "FileSpec",
    "MachineSpec",
    "MappingSpec",
    "ScenarioFileError",
    "ScenarioSpec",
    "build",
    "load_scenario_file",
    "spawn_task",
]


#: Filesystem personalities by name (``--fs``).
FILESYSTEMS: dict[str, type[AddressSpaceOperations]] = {
    cls.name: cls for cls in (Ext4, Xfs, Btrfs, Ext4Dax)
}


class ScenarioFileError(ValueError):
    """A scenario file is missing or malformed; the message names file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MachineSpec(_Model):
    """The machine's size and memory pressure."""

    frames: int = Field(default=2, ge=1, le=64, description="page frames in the pool")
    blocks: int = Field(default=4, ge=1, le=256, description="disk blocks")
    pgdat_dirty: bool = Field(
        default=True,
        description="PGDAT_DIRTY: kswapd may write dirty file pages itself",
    )


class FileSpec(_Model):
    """A file: its disk blocks (None for a hole) and which pages start cached."""

    name: str = Field(min_length=1)
    size: int = Field(default=PAGE_SIZE, ge=0)
    #: Disk block of each page index; ``None`` is a hole.
    blocks: list[int | None] = Field(default_factory=list)
    #: Page indices in the page cache at the start: uptodate, clean, on the LRU,
    #: without buffers (as ``mpage_readpage`` leaves them).
    cached: list[int] = Field(default_factory=list)
    fs: str | None = Field(
        default=None,
        description="the file's own filesystem, when not the one under test "
        "(e.g. a non-DAX source file for a DIO into a DAX mapping)",
    )


class MappingSpec(_Model):
    """The user's ``MAP_SHARED`` mapping of a file (no PTE is present at first)."""

    file: str
    pages: int = Field(default=1, ge=1, le=256, description="pages mapped")


class DioRead(_Model):
    """``read(fd, addr, PAGE_SIZE)`` with O_DIRECT from ``src`` into the mapping."""

    kind: Literal["dio-read"]
    src: str
    src_page: int = Field(default=0, ge=0)
    page: int = Field(default=0, ge=0, description="page of the mapping read into")
    aio: bool = Field(
        default=False, description="io_submit: completion runs in interrupt context"
    )
    repeat: bool = Field(
        default=False,
        description="read again and again (short pins, one after another, for ever)",
    )
    requests: int = Field(
        default=1, ge=1, le=64, description="reads made, one after the other"
    )


class LegacyDriver(_Model):
    """An RDS-style RDMA READ: FOLL_GET, NIC write, set_page_dirty without lock."""

    kind: Literal["legacy-driver"]
    page: int = Field(default=0, ge=0)
    softirq: bool = Field(
        default=False, description="the completion (set_page_dirty) runs in softirq"
    )


class RdmaApp(_Model):
    """An RDMA application: register the mapped page, a peer writes, fsync, dereg."""

    kind: Literal["rdma-app"]
    page: int = Field(default=0, ge=0)


class PunchHole(_Model):
    """fallocate(PUNCH_HOLE) of one page-sized block of a file (ext4_punch_hole)."""

    kind: Literal["punch-hole"]
    file: str
    page: int = Field(default=0, ge=0)


class Truncate(_Model):
    """ftruncate(file, 0): every page and block of the file goes."""

    kind: Literal["truncate"]
    file: str


class Store(_Model):
    """The user stores new data into a page of the mapping (a write fault first)."""

    kind: Literal["store"]
    page: int = Field(default=0, ge=0)


class Fsync(_Model):
    """fsync(2) of a file, once."""

    kind: Literal["fsync"]
    file: str


class GetRefs(_Model):
    """Something takes ordinary references to a mapped page and keeps them
    (pipe buffers, a page-cache user): ``refs`` of them, 1024 by default, which
    ``page_maybe_dma_pinned`` cannot tell from a pin."""

    kind: Literal["get-refs"]
    page: int = Field(default=0, ge=0)
    refs: int = Field(default=1024, ge=1, le=1 << 20)


class Fallocate(_Model):
    """Another file allocates a block (the lowest free: a freed one is reused)."""

    kind: Literal["fallocate"]
    file: str
    page: int = Field(default=0, ge=0)


class Flusher(_Model):
    """The writeback flusher thread (a daemon)."""

    kind: Literal["flusher"]


class Kswapd(_Model):
    """kswapd under memory pressure (a daemon)."""

    kind: Literal["kswapd"]


TaskSpec = Annotated[
    DioRead
    | LegacyDriver
    | RdmaApp
    | PunchHole
    | Truncate
    | Fallocate
    | Store
    | Fsync
    | GetRefs
    | Flusher
    | Kswapd,
    Field(discriminator="kind"),
]

#: Task kinds that work on the user's mapping.
_MAPPED = (DioRead, LegacyDriver, RdmaApp, Store, GetRefs)
#: Task kinds that name a file.
_FILED = (PunchHole, Truncate, Fallocate, Fsync)


class ScenarioSpec(_Model):
    """A scenario: what runs, on what state, judged by which oracles."""

    id: str = Field(pattern=r"^[a-z0-9-]+/[0-9]{3}$")
    title: str
    description: str = ""
    groups: list[str] = Field(default_factory=list)
    oracles: list[str] = Field(min_length=1)
    filesystems: list[str] = Field(default_factory=lambda: ["ext4"], min_length=1)
    machine: MachineSpec = Field(default_factory=MachineSpec)
    files: list[FileSpec] = Field(min_length=1)
    mapping: MappingSpec | None = None
    tasks: list[TaskSpec] = Field(min_length=1)
    #: Reachability goals: events (a tracepoint or a /proc/vmstat counter, by
    #: name) that some run must meet, or the verdict is flagged as possibly
    #: vacuous ("the page is evicted": ``pgsteal_kswapd``).
    goals: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _references(self) -> ScenarioSpec:
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError("files: two files have the same name")
        for i, oid in enumerate(self.oracles):
            if oid not in ORACLES:
                raise ValueError(f"oracles.{i}: unknown oracle {oid!r}")
        for i, fs in enumerate(self.filesystems):
            if fs not in FILESYSTEMS:
                raise ValueError(f"filesystems.{i}: unknown filesystem {fs!r}")
        for f in self.files:
            if f.fs is not None and f.fs not in FILESYSTEMS:
                raise ValueError(f"files.{f.name}.fs: unknown filesystem {f.fs!r}")
        used: set[int] = set()
        for f in self.files:
            for blk in f.blocks:
                if blk is None:
                    continue
                if not 0 <= blk < self.machine.blocks:
                    raise ValueError(
                        f"files.{f.name}.blocks: block {blk} is not on the disk"
                    )
                if blk in used:
                    raise ValueError(
                        f"files.{f.name}.blocks: block {blk} is used twice"
                    )
                used.add(blk)
        if self.mapping is not None and self.mapping.file not in names:
            raise ValueError(f"mapping.file: no file named {self.mapping.file!r}")
        for f in self.files:
            for index in f.cached:
                if not 0 <= index * PAGE_SIZE < f.size:
                    raise ValueError(
                        f"files.{f.name}.cached: page {index} is not in the file "
                        f"({f.size} bytes)"
                    )
            if len(set(f.cached)) != len(f.cached):
                raise ValueError(f"files.{f.name}.cached: a page is named twice")
        if sum(len(f.cached) for f in self.files) > self.machine.frames:
            raise ValueError("files.cached: more cached pages than machine.frames")
        for i, task in enumerate(self.tasks):
            if isinstance(task, _MAPPED) and self.mapping is None:
                raise ValueError(f"tasks.{i}: a {task.kind} task needs a mapping")
            if isinstance(task, _FILED) and task.file not in names:
                raise ValueError(f"tasks.{i}.file: no file named {task.file!r}")
            if isinstance(task, DioRead):
                if task.src not in names:
                    raise ValueError(f"tasks.{i}.src: no file named {task.src!r}")
                src = self.files[names.index(task.src)]
                if (
                    task.src_page >= len(src.blocks)
                    or src.blocks[task.src_page] is None
                ):
                    raise ValueError(
                        f"tasks.{i}.src_page: page {task.src_page} of {task.src} "
                        "has no block to read"
                    )
            if (
                isinstance(task, _MAPPED)
                and self.mapping is not None
                and task.page >= self.mapping.pages
            ):
                raise ValueError(f"tasks.{i}.page: the mapping has no page {task.page}")
        return self


def build(spec: ScenarioSpec, policies: tuple[Policy, ...], fs: str = "ext4") -> Kernel:
    """Make a fresh machine in the state ``spec`` describes, running its tasks.

    Every file lives on ``fs`` unless it names its own. A file on fs-dax has no
    page cache: its ``cached`` pages are ignored.
    """
    m = spec.machine
    k = Kernel(
        policies, nr_frames=m.frames, nr_blocks=m.blocks, pgdat_dirty=m.pgdat_dirty
    )
    personalities = {name: cls() for name, cls in FILESYSTEMS.items()}
    inodes: dict[str, Inode] = {}
    for f in spec.files:
        a_ops = personalities[f.fs or fs]
        if a_ops.dax:
            k.enable_dax()
        inode = inodes[f.name] = k.add_inode(f.name, a_ops, f.size)
        for index, blk in enumerate(f.blocks):
            if blk is not None:
                inode.blocks[index] = blk
                k.disk.owner[blk] = (inode.key, index)
                k.disk.data[blk] = blk + 1  # every block starts with its own version
    k.next_version = m.blocks + 1
    for f in spec.files:
        inode = inodes[f.name]
        if inode.mapping.a_ops.dax:
            continue
        for index in f.cached:
            page = k.alloc_page()
            assert page is not None  # the spec was checked against machine.frames
            add_to_page_cache_lru(k, page, inode.mapping, index)
            k.ops.put_page(k, page)  # the allocation reference; the cache keeps its own
            page.locked = False
            page.uptodate = True
            blk = inode.blocks.get(index)
            page.data = k.disk.data[blk] if blk is not None else 0
    vma: Vma | None = None
    if spec.mapping is not None:
        vma = k.add_vma(inodes[spec.mapping.file].mapping, spec.mapping.pages)
    for task in spec.tasks:
        spawn_task(k, task, inodes, vma)
    k.symmetry = _symmetry(spec)
    return k


def spawn_task(
    k: Kernel, task: TaskSpec, inodes: dict[str, Inode], vma: Vma | None
) -> Task:
    """Start the program or kernel thread that ``task`` names, as a new task of
    ``k`` (``inodes`` by file name; ``vma`` the user's mapping, if any)."""
    if isinstance(task, DioRead):
        assert vma is not None
        src = inodes[task.src]
        if task.repeat:
            gen = dio_read_loop(k, src, task.src_page, vma, task.page)
            return k.spawn("read(O_DIRECT) loop", "dio", gen, daemon=True)
        name = "io_submit(O_DIRECT)" if task.aio else "read(O_DIRECT)"
        if task.requests > 1:
            gen = dio_reads(
                k, src, task.src_page, vma, task.page, task.aio, task.requests
            )
        else:
            gen = k.ops.call_read_iter(k, src, task.src_page, vma, task.page, task.aio)
        return k.spawn(name, "dio", gen)
    if isinstance(task, LegacyDriver):
        assert vma is not None
        gen = rds_rdma_read(k, vma, task.page, task.softirq)
        return k.spawn("rds-rdma-read", "driver", gen)
    if isinstance(task, RdmaApp):
        assert vma is not None
        return k.spawn("rdma-app", "rdma", rdma_app(k, vma, task.page))
    if isinstance(task, Store):
        assert vma is not None
        return k.spawn("store", "store", user_store(k, vma, task.page))
    if isinstance(task, GetRefs):
        assert vma is not None
        return k.spawn("get-refs", "refs", hold_page_refs(k, vma, task.page, task.refs))
    if isinstance(task, PunchHole):
        inode = inodes[task.file]
        gen = inode.mapping.a_ops.punch_hole(k, inode.key, task.page)
        return k.spawn("fallocate(PUNCH_HOLE)", "punch", gen)
    if isinstance(task, Truncate):
        return k.spawn("ftruncate", "truncate", do_truncate(k, inodes[task.file].key))
    if isinstance(task, Fallocate):
        gen = vfs_fallocate(k, inodes[task.file].key, task.page)
        return k.spawn(f"fallocate({task.file})", "alloc", gen)
    if isinstance(task, Fsync):
        return k.spawn(
            f"fsync({task.file})", "fsync", vfs_fsync(k, inodes[task.file].key)
        )
    if isinstance(task, Flusher):
        return k.spawn("flush-8:0", "flusher", wb_workfn(k), daemon=True)
    return k.spawn("kswapd0", "kswapd", kswapd(k), daemon=True)


def _symmetry(spec: ScenarioSpec) -> tuple[tuple[int, ...], ...]:
    """Groups of tasks with identical specs: the same code from the same
    arguments, and nothing in the model names a task, so they are interchangeable
    (the explorer's symmetry reduction). Cached: a search builds thousands of
    machines from one spec."""
    known = _GROUPS.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1]
    by_spec: dict[int, list[int]] = {}
    for tid, task in enumerate(spec.tasks):
        first = next(i for i, t in enumerate(spec.tasks) if t == task)
        by_spec.setdefault(first, []).append(tid)
    groups = tuple(tuple(g) for g in by_spec.values() if len(g) > 1)
    if len(_GROUPS) >= _CACHE_SIZE:
        _GROUPS.clear()  # a search uses one spec: keep memory bounded
    _GROUPS[id(spec)] = (spec, groups)  # holds the spec: its id is not reused
    return groups


_GROUPS: dict[int, tuple[ScenarioSpec, tuple[tuple[int, ...], ...]]] = {}


def load_scenario_file(path: str | Path) -> ScenarioSpec:
    """Read and validate a TOML scenario, with an error naming file, field, problem."""
    return load_model(path, ScenarioSpec, tomllib.loads, "TOML", ScenarioFileError)
