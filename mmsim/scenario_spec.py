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

from mmsim.ext4 import Ext4
from mmsim.filemap import add_to_page_cache_lru
from mmsim.fs import AddressSpaceOperations
from mmsim.machine import Kernel
from mmsim.mm_types import Inode, Vma
from mmsim.oracles import ORACLES
from mmsim.policy import Policy
from mmsim.results import load_model

__all__ = [
    "FILESYSTEMS",
    "FileSpec",
    "MachineSpec",
    "MappingSpec",
    "ScenarioFileError",
    "ScenarioSpec",
    "build",
    "load_scenario_file",
]

PAGE_SIZE = 4096

#: Filesystem personalities by name.
FILESYSTEMS: dict[str, type[AddressSpaceOperations]] = {"ext4": Ext4}


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


class MappingSpec(_Model):
    """The user's ``MAP_SHARED`` mapping of a file (no PTE is present at first)."""

    file: str
    pages: int = Field(default=1, ge=1)


class DioRead(_Model):
    """``read(fd, addr, PAGE_SIZE)`` with O_DIRECT from ``src`` into the mapping."""

    kind: Literal["dio-read"]
    src: str
    src_page: int = Field(default=0, ge=0)
    page: int = Field(default=0, ge=0, description="page of the mapping read into")
    aio: bool = Field(
        default=False, description="io_submit: completion runs in interrupt context"
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
    DioRead | LegacyDriver | RdmaApp | PunchHole | Fallocate | Flusher | Kswapd,
    Field(discriminator="kind"),
]


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
        if sum(len(f.cached) for f in self.files) > self.machine.frames:
            raise ValueError("files.cached: more cached pages than machine.frames")
        for i, task in enumerate(self.tasks):
            if (
                isinstance(task, DioRead | LegacyDriver | RdmaApp)
                and self.mapping is None
            ):
                raise ValueError(f"tasks.{i}: a {task.kind} task needs a mapping")
            if isinstance(task, PunchHole | Fallocate) and task.file not in names:
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
                isinstance(task, DioRead | LegacyDriver | RdmaApp)
                and self.mapping is not None
                and task.page >= self.mapping.pages
            ):
                raise ValueError(f"tasks.{i}.page: the mapping has no page {task.page}")
        return self


def build(spec: ScenarioSpec, policies: tuple[Policy, ...], fs: str = "ext4") -> Kernel:
    """Make a fresh machine in the state ``spec`` describes, running its tasks."""
    from mmsim.direct_io import do_blockdev_direct_IO
    from mmsim.ext4.inode import ext4_fallocate, ext4_punch_hole
    from mmsim.fs_writeback import wb_workfn
    from mmsim.programs import rdma_app
    from mmsim.rds import rds_rdma_read
    from mmsim.vmscan import kswapd

    m = spec.machine
    k = Kernel(
        policies, nr_frames=m.frames, nr_blocks=m.blocks, pgdat_dirty=m.pgdat_dirty
    )
    a_ops = FILESYSTEMS[fs]()
    inodes: dict[str, Inode] = {}
    for f in spec.files:
        inode = inodes[f.name] = k.add_inode(f.name, a_ops, f.size)
        for index, blk in enumerate(f.blocks):
            if blk is not None:
                inode.blocks[index] = blk
                k.disk.owner[blk] = (inode.key, index)
                k.disk.data[blk] = blk + 1  # every block starts with its own version
    k.next_version = m.blocks + 1
    for f in spec.files:
        inode = inodes[f.name]
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
        if isinstance(task, DioRead):
            assert vma is not None
            gen = do_blockdev_direct_IO(
                k, inodes[task.src], task.src_page, vma, task.page, task.aio
            )
            k.spawn("io_submit(O_DIRECT)" if task.aio else "read(O_DIRECT)", "dio", gen)
        elif isinstance(task, LegacyDriver):
            assert vma is not None
            gen = rds_rdma_read(k, vma, task.page, task.softirq)
            k.spawn("rds-rdma-read", "driver", gen)
        elif isinstance(task, RdmaApp):
            assert vma is not None
            k.spawn("rdma-app", "rdma", rdma_app(k, vma, task.page))
        elif isinstance(task, PunchHole):
            gen = ext4_punch_hole(k, inodes[task.file].key, task.page)
            k.spawn("fallocate(PUNCH_HOLE)", "punch", gen)
        elif isinstance(task, Fallocate):
            gen = ext4_fallocate(k, inodes[task.file].key, task.page)
            k.spawn(f"fallocate({task.file})", "alloc", gen)
        elif isinstance(task, Flusher):
            k.spawn("flush-8:0", "flusher", wb_workfn(k), daemon=True)
        else:
            k.spawn("kswapd0", "kswapd", kswapd(k), daemon=True)
    return k


def load_scenario_file(path: str | Path) -> ScenarioSpec:
    """Read and validate a TOML scenario, with an error naming file, field, problem."""
    return load_model(path, ScenarioSpec, tomllib.loads, "TOML", ScenarioFileError)
