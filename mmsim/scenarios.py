"""The built-in scenarios, and lookup by id or by TOML file.

Ids follow xfstests (``dio/001``); groups (``quick``, ``seed``, …) select sets of
them. Each is a :class:`~mmsim.scenario_spec.ScenarioSpec`, the same structure a
TOML scenario file has; ``mmsim check path/to/scenario.toml`` runs one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmsim.scenario_spec import (
    DioRead,
    Fallocate,
    FileSpec,
    Flusher,
    Fsync,
    GetRefs,
    Kswapd,
    LegacyDriver,
    MachineSpec,
    MappingSpec,
    PunchHole,
    RdmaApp,
    ScenarioFileError,
    ScenarioSpec,
    Store,
    Truncate,
    load_scenario_file,
)

__all__ = [
    "MAX_PARAM",
    "PARAMETERS",
    "SCENARIOS",
    "ScenarioError",
    "get_scenario",
    "replayable_name",
]


class ScenarioError(ValueError):
    """An unknown or malformed scenario."""


def _seed(
    sid: str,
    title: str,
    description: str,
    oracles: list[str],
    *,
    reclaim: bool,
    readers: int = 1,
    requests: int = 1,
    flushers: int = 1,
) -> ScenarioSpec:
    """Jan Kara's set-up: file1 mapped MAP_SHARED, O_DIRECT read from file2 into it.

    file1's page 0 is cached, uptodate, clean, on the LRU and not yet mapped (the
    DIO's GUP faults it in); it has no buffers, as ``mpage_readpage`` leaves it.
    Both files' blocks are allocated. The flusher always runs; kswapd runs when
    ``reclaim`` is set, under dirty pressure (PGDAT_DIRTY).

    The parameters grow the work (``mmsim check dio/001 --param readers=2``):
    ``readers`` processes each make ``requests`` O_DIRECT reads, one after the
    other, into the same mapped page, against ``flushers`` flusher threads.
    Identical readers (and flushers) are interchangeable, so the search merges
    states that differ only by which of them stands where (symmetry).
    """
    reader = (
        DioRead(kind="dio-read", src="file2")
        if requests == 1
        else DioRead(kind="dio-read", src="file2", requests=requests)
    )
    tasks: list[DioRead | Flusher | Kswapd] = [reader] * readers
    tasks += [Flusher(kind="flusher")] * flushers
    if reclaim:
        tasks.append(Kswapd(kind="kswapd"))
    return ScenarioSpec(
        id=sid,
        title=title,
        description=description,
        # Writeback wrote the page (and, with reclaim, kswapd scanned it): a
        # Never on a run that never got there would prove nothing.
        goals=["nr_written", "pgscan_kswapd"] if reclaim else ["nr_written"],
        groups=["quick", "dio", "seed"],
        oracles=oracles,
        filesystems=["ext4", "iomap", "cow"],
        files=[
            FileSpec(name="file1", blocks=[0], cached=[0]),
            FileSpec(name="file2", blocks=[1]),
        ],
        mapping=MappingSpec(file="file1"),
        tasks=list(tasks),
    )


def _dio_001(**params: int) -> ScenarioSpec:
    return _seed(
        "dio/001",
        "DIO read into a MAP_SHARED page, with writeback and reclaim (race A)",
        "Jan Kara, 3 Jan 2018: read(fd2, addr) with O_DIRECT where addr maps file1 "
        "MAP_SHARED. The flusher cleans the page mid-read, kswapd strips its buffers "
        "and fails to free it, and DIO completion re-dirties a page with no buffers.",
        ["nobuffers-writeback", "lost-write", "unreserved-writeback"],
        reclaim=True,
        **params,
    )


def _dio_002(**params: int) -> ScenarioSpec:
    return _seed(
        "dio/002",
        "DIO read into a MAP_SHARED page, with writeback only (race B)",
        "Jan Kara, 4 Jan 2018: no reclaim needed. Writeback's clear_page_dirty_for_io "
        "write-protects the page mid-read; DIO completion re-dirties it without "
        "->page_mkwrite.",
        ["dirty-without-mkwrite", "unstable-writeback", "writable-clean-pte"],
        reclaim=False,
        **params,
    )


#: Scenarios whose size can grow: id → (builder, parameters with their defaults
#: and meaning). Each parameter is a count from 1 to :data:`MAX_PARAM`.
PARAMETERS: dict[
    str, tuple[Callable[..., ScenarioSpec], dict[str, tuple[int, str]]]
] = {
    sid: (
        builder,
        {
            "readers": (1, "processes making O_DIRECT reads into the mapped page"),
            "requests": (1, "reads each of them makes, one after the other"),
            "flushers": (1, "writeback flusher threads"),
        },
    )
    for sid, builder in (("dio/001", _dio_001), ("dio/002", _dio_002))
}

#: The largest value a scenario parameter takes.
MAX_PARAM = 8

_BUILTIN = [
    _dio_001(),
    _dio_002(),
    ScenarioSpec(
        id="dio/003",
        title="AIO DIO read completing in interrupt context (bio_check_pages_dirty)",
        description=(
            "The same race with io_submit: fs/direct-io.c dirties the pages before "
            "submitting (bio_set_pages_dirty); completion runs in interrupt context, "
            "where bio_check_pages_dirty hands pages that writeback cleaned meanwhile "
            "to the bio_dirty_fn workqueue, which re-dirties them without "
            "->page_mkwrite."
        ),
        groups=["quick", "dio", "irq"],
        oracles=["nobuffers-writeback", "lost-write", "dirty-without-mkwrite"],
        files=[
            FileSpec(name="file1", blocks=[0], cached=[0]),
            FileSpec(name="file2", blocks=[1]),
        ],
        mapping=MappingSpec(file="file1"),
        tasks=[
            DioRead(kind="dio-read", src="file2", aio=True),
            Flusher(kind="flusher"),
            Kswapd(kind="kswapd"),
        ],
    ),
    ScenarioSpec(
        id="dio/004",
        title="Hole punched under an in-flight DIO read; another file reuses the block",
        description=(
            "fallocate(PUNCH_HOLE) on file1 while a DIO read fills its mapped page: "
            "truncate removes the page whatever GUP holds (an orphan), the block is "
            "freed and file3 allocates it at once. Completion then dirties the "
            "orphan. Jan Kara, 2018: 'Data stored by GUP user ... could still get "
            "lost if someone e.g. punched hole under the buffer'."
        ),
        groups=["quick", "dio", "truncate"],
        oracles=["lost-write", "foreign-block-write", "nobuffers-writeback"],
        filesystems=["ext4", "iomap", "cow"],
        machine=MachineSpec(frames=3, blocks=2),
        files=[
            FileSpec(name="file1", blocks=[0], cached=[0]),
            FileSpec(name="file2", blocks=[1]),
            FileSpec(name="file3", blocks=[None]),
        ],
        mapping=MappingSpec(file="file1"),
        tasks=[
            DioRead(kind="dio-read", src="file2"),
            PunchHole(kind="punch-hole", file="file1"),
            Fallocate(kind="fallocate", file="file3"),
            Flusher(kind="flusher"),
        ],
    ),
]

_DIO_006 = next(s for s in _BUILTIN if s.id == "dio/004").model_copy(
    update={
        "id": "dio/006",
        "title": "Truncate under an in-flight DIO read; another file reuses the block",
        "description": (
            "dio/004 with ftruncate(file1, 0) instead of a hole punch: "
            "truncate_pagecache removes the mapped page whatever GUP holds, the "
            "block is freed and file3 allocates it; completion dirties the orphan, "
            "and i_size is now 0, so writeback must also cope with a page past EOF. "
            "Not on cow: with the disk full, btrfs_page_mkwrite refuses the DIO's "
            "write fault with ENOSPC before any race can start (see enospc/001)."
        ),
        "groups": ["dio", "truncate"],
        "filesystems": ["ext4", "iomap"],
        "tasks": [
            DioRead(kind="dio-read", src="file2"),
            Truncate(kind="truncate", file="file1"),
            Fallocate(kind="fallocate", file="file3"),
            Flusher(kind="flusher"),
        ],
    }
)

_DRV_001 = ScenarioSpec(
    id="drv/001",
    title="A FOLL_GET driver DMAs into a MAP_SHARED page and set_page_dirty()s it",
    description=(
        "Gavin Guo, Apr 2018, and John Hubbard's NIC/GPU reports: a driver takes "
        "the user page with get_user_pages (FOLL_GET), the device writes it, and "
        "the driver calls set_page_dirty without the page lock, then put_page "
        "(net/rds/rdma.c, v4.15). Writeback and kswapd run."
    ),
    groups=["quick", "driver"],
    oracles=["nobuffers-writeback", "lost-write"],
    files=[FileSpec(name="file1", blocks=[0], cached=[0])],
    mapping=MappingSpec(file="file1"),
    tasks=[
        LegacyDriver(kind="legacy-driver"),
        Flusher(kind="flusher"),
        Kswapd(kind="kswapd"),
    ],
)

_DRV_002 = _DRV_001.model_copy(
    update={
        "id": "drv/002",
        "title": "drv/001 with the completion in softirq context",
        "description": (
            "rds_rdma_free_op may run from the send completion, in softirq context "
            "(its WARN_ON(!page->mapping && irqs_disabled()) expects irqs off): "
            "set_page_dirty, and whatever a fix hooks into it, must not sleep there."
        ),
        "groups": ["quick", "driver", "irq"],
        "tasks": [
            LegacyDriver(kind="legacy-driver", softirq=True),
            Flusher(kind="flusher"),
            Kswapd(kind="kswapd"),
        ],
    }
)
_RDMA_001 = ScenarioSpec(
    id="rdma/001",
    title="A long-term writable RDMA registration on a MAP_SHARED file, with fsync",
    description=(
        "Leon Romanovsky, Jan 2018: an RDMA memory region on an ext4-backed mmap. "
        "ibv_reg_mr pins the page for as long as the registration lives; a peer "
        "RDMA-WRITEs into it; the application fsyncs, then deregisters, and "
        "ib_umem_release dirties the page. The flusher runs throughout."
    ),
    groups=["quick", "longterm", "rdma"],
    oracles=["dirty-without-mkwrite", "lost-write"],
    files=[FileSpec(name="file1", blocks=[0], cached=[0])],
    mapping=MappingSpec(file="file1"),
    tasks=[RdmaApp(kind="rdma-app"), Flusher(kind="flusher")],
)

_DIO_005 = ScenarioSpec(
    id="dio/005",
    title="Repeated short DIO pins against fsync",
    description=(
        "A process reads into the mapped page with O_DIRECT again and again while "
        "another fsyncs the file. Each pin is short, but a fix that makes writeback "
        "wait for pins can be kept waiting for ever (Jan Kara, Feb 2023: 'DoS "
        "potential')."
    ),
    groups=["quick", "dio", "fairness"],
    oracles=["starvation", "lost-write"],
    filesystems=["ext4", "iomap"],
    files=[
        FileSpec(name="file1", blocks=[0], cached=[0]),
        FileSpec(name="file2", blocks=[1]),
    ],
    mapping=MappingSpec(file="file1"),
    tasks=[
        DioRead(kind="dio-read", src="file2", repeat=True),
        Fsync(kind="fsync", file="file1"),
    ],
)

_RDMA_002 = ScenarioSpec(
    id="rdma/002",
    title="A long-term RDMA registration against truncate, with block reuse",
    description=(
        "ftruncate(file1, 0) while an RDMA registration holds its mapped page: "
        "truncate removes the page whatever the pin (an orphan), frees the block, "
        "and file3 allocates it. The peer's write then lands in memory no file "
        "owns, and the application's data is gone."
    ),
    groups=["quick", "longterm", "rdma", "truncate"],
    oracles=["lost-write", "foreign-block-write"],
    filesystems=["ext4", "iomap", "cow"],
    machine=MachineSpec(frames=2, blocks=2),
    files=[
        FileSpec(name="file1", blocks=[0], cached=[0]),
        FileSpec(name="file3", blocks=[None]),
    ],
    mapping=MappingSpec(file="file1"),
    tasks=[
        RdmaApp(kind="rdma-app"),
        Truncate(kind="truncate", file="file1"),
        Fallocate(kind="fallocate", file="file3"),
    ],
)

_DAX_001 = ScenarioSpec(
    id="dax/001",
    title="DIO into a DAX mapping against hole punch, with block reuse",
    description=(
        "file1 is on fs-dax and mapped; an O_DIRECT read from file2 (on a non-DAX "
        "filesystem, as generic/413 mixes them) DMAs straight into file1's "
        "persistent-memory block. Hole punch frees the block mid-I/O and file3 "
        "allocates it: the DMA then lands in file3 (xfstests generic/503)."
    ),
    groups=["quick", "dax", "truncate"],
    oracles=["foreign-block-write", "lost-write"],
    filesystems=["dax"],
    machine=MachineSpec(frames=1, blocks=2),
    files=[
        FileSpec(name="file1", blocks=[0]),
        FileSpec(name="file2", blocks=[1], fs="ext4"),
        FileSpec(name="file3", blocks=[None]),
    ],
    mapping=MappingSpec(file="file1"),
    tasks=[
        DioRead(kind="dio-read", src="file2"),
        PunchHole(kind="punch-hole", file="file1"),
        Fallocate(kind="fallocate", file="file3"),
    ],
)

_DAX_002 = _RDMA_002.model_copy(
    update={
        "id": "dax/002",
        "title": "A long-term RDMA registration of a DAX mapping, against truncate",
        "description": (
            "rdma/002 on fs-dax: a registration would pin the persistent-memory "
            "block itself, so a truncate that frees it lets the NIC write into "
            "whatever file reuses the block. v4.15 refuses long-term pins of "
            "fs-dax (-EOPNOTSUPP); layout leases (2019) would have allowed them."
        ),
        "groups": ["quick", "dax", "longterm", "rdma"],
        "filesystems": ["dax"],
        "machine": MachineSpec(frames=1, blocks=2),
        "files": [
            FileSpec(name="file1", blocks=[0]),
            FileSpec(name="file3", blocks=[None]),
        ],
    }
)

_REF_001 = ScenarioSpec(
    id="ref/001",
    title="A page holding 1024 ordinary references, written and written back",
    description=(
        "Something holds 1024 plain references to a mapped page (pipe buffers, "
        "a page-cache user): page_maybe_dma_pinned() cannot tell them from a "
        "pin. The user stores into the page; writeback and reclaim run. A fix "
        "that acts on 'maybe pinned' acts on a page no one pinned."
    ),
    groups=["quick", "pins"],
    oracles=["lost-write"],
    filesystems=["ext4", "iomap"],
    files=[FileSpec(name="file1", blocks=[0], cached=[0])],
    mapping=MappingSpec(file="file1"),
    tasks=[
        GetRefs(kind="get-refs"),
        Store(kind="store"),
        Flusher(kind="flusher"),
        Kswapd(kind="kswapd"),
    ],
)

_COW_001 = ScenarioSpec(
    id="cow/001",
    title="A COW filesystem's page re-dirtied by DIO completion, not ->page_mkwrite",
    description=(
        "Race B on btrfs: writeback (the flusher, or an fsync) COWs the page into "
        "a new block, consuming the space reserved at ->page_mkwrite; DIO "
        "completion re-dirties it with nothing reserved, and the next writeback "
        "needs space it never asked for (Dave Chinner, Feb 2023)."
    ),
    groups=["quick", "cow"],
    oracles=["unreserved-writeback", "dirty-without-mkwrite", "lost-write"],
    filesystems=["cow"],
    files=[
        FileSpec(name="file1", blocks=[0], cached=[0]),
        FileSpec(name="file2", blocks=[1]),
    ],
    mapping=MappingSpec(file="file1"),
    tasks=[
        DioRead(kind="dio-read", src="file2"),
        Flusher(kind="flusher"),
        Fsync(kind="fsync", file="file1"),
    ],
)

_ENOSPC_001 = ScenarioSpec(
    id="enospc/001",
    title="A full filesystem when DIO completion re-dirties the page",
    description=(
        "cow/001 on a disk with one spare block: writeback COWs the page into "
        "it, file3 then allocates the block the COW freed, and the filesystem "
        "is full when DIO completion re-dirties the page. The read already "
        "returned success; whoever must now find space finds none."
    ),
    groups=["quick", "cow", "enospc"],
    oracles=["lost-write", "unreserved-writeback"],
    filesystems=["cow"],
    machine=MachineSpec(frames=2, blocks=3),
    files=[
        FileSpec(name="file1", blocks=[0], cached=[0]),
        FileSpec(name="file2", blocks=[1]),
        FileSpec(name="file3", blocks=[None]),
    ],
    mapping=MappingSpec(file="file1"),
    tasks=[
        DioRead(kind="dio-read", src="file2"),
        Flusher(kind="flusher"),
        Fallocate(kind="fallocate", file="file3"),
    ],
)

_BUILTIN += [
    _DIO_005,
    _DIO_006,
    _DRV_001,
    _DRV_002,
    _RDMA_001,
    _RDMA_002,
    _COW_001,
    _ENOSPC_001,
    _DAX_001,
    _DAX_002,
    _REF_001,
]

#: Built-in scenarios by id.
SCENARIOS: dict[str, ScenarioSpec] = {s.id: s for s in _BUILTIN}


def replayable_name(name: str) -> str:
    """``name`` as a result file records it, to be replayed from anywhere: a
    scenario file by its absolute path, a built-in scenario by its id."""
    if name.endswith(".toml") or Path(name).is_file():
        return str(Path(name).resolve())
    return name


def get_scenario(name: str, params: dict[str, int] | None = None) -> ScenarioSpec:
    """A built-in scenario by id, or a TOML scenario file by path.

    ``params`` sizes a scenario that takes parameters (see :data:`PARAMETERS`);
    an unknown parameter or a value out of range is a :class:`ScenarioError`.
    """
    if name.endswith(".toml") or Path(name).is_file():
        if params:
            raise ScenarioError(f"scenario file {name} takes no parameters")
        try:
            return load_scenario_file(name)
        except ScenarioFileError as exc:
            raise ScenarioError(str(exc)) from None
    try:
        spec = SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ScenarioError(
            f"unknown scenario {name!r} (known: {known}; or give a .toml file)"
        ) from None
    if not params:
        return spec
    if name not in PARAMETERS:
        raise ScenarioError(f"scenario {name} takes no parameters")
    builder, known_params = PARAMETERS[name]
    for key, value in params.items():
        if key not in known_params:
            raise ScenarioError(
                f"scenario {name} has no parameter {key!r} "
                f"(it has: {', '.join(known_params)})"
            )
        if not isinstance(value, int) or isinstance(value, bool):
            raise ScenarioError(
                f"scenario {name}: parameter {key} must be a whole number, "
                f"not {value!r}"
            )
        if not 1 <= value <= MAX_PARAM:
            raise ScenarioError(
                f"scenario {name}: parameter {key} must be from 1 to {MAX_PARAM}, "
                f"not {value}"
            )
    return builder(**params)
