"""The built-in scenarios, and lookup by id or by TOML file.

Ids follow xfstests (``dio/001``); groups (``quick``, ``seed``, …) select sets of
them. Each is a :class:`~mmsim.scenario_spec.ScenarioSpec`, the same structure a
TOML scenario file has; ``mmsim check path/to/scenario.toml`` runs one.
"""

from __future__ import annotations

from pathlib import Path

from mmsim.scenario_spec import (
    DioRead,
    Fallocate,
    FileSpec,
    Flusher,
    Kswapd,
    LegacyDriver,
    MachineSpec,
    MappingSpec,
    PunchHole,
    RdmaApp,
    ScenarioFileError,
    ScenarioSpec,
    load_scenario_file,
)

__all__ = ["SCENARIOS", "ScenarioError", "get_scenario"]


class ScenarioError(ValueError):
    """An unknown or malformed scenario."""


def _seed(
    sid: str, title: str, description: str, oracles: list[str], *, reclaim: bool
) -> ScenarioSpec:
    """Jan Kara's set-up: file1 mapped MAP_SHARED, O_DIRECT read from file2 into it.

    file1's page 0 is cached, uptodate, clean, on the LRU and not yet mapped (the
    DIO's GUP faults it in); it has no buffers, as ``mpage_readpage`` leaves it.
    Both files' blocks are allocated. The flusher always runs; kswapd runs when
    ``reclaim`` is set, under dirty pressure (PGDAT_DIRTY).
    """
    tasks: list[DioRead | Flusher | Kswapd] = [
        DioRead(kind="dio-read", src="file2"),
        Flusher(kind="flusher"),
    ]
    if reclaim:
        tasks.append(Kswapd(kind="kswapd"))
    return ScenarioSpec(
        id=sid,
        title=title,
        description=description,
        groups=["quick", "dio", "seed"],
        oracles=oracles,
        files=[
            FileSpec(name="file1", blocks=[0], cached=[0]),
            FileSpec(name="file2", blocks=[1]),
        ],
        mapping=MappingSpec(file="file1"),
        tasks=list(tasks),
    )


_BUILTIN = [
    _seed(
        "dio/001",
        "DIO read into a MAP_SHARED page, with writeback and reclaim (race A)",
        "Jan Kara, 3 Jan 2018: read(fd2, addr) with O_DIRECT where addr maps file1 "
        "MAP_SHARED. The flusher cleans the page mid-read, kswapd strips its buffers "
        "and fails to free it, and DIO completion re-dirties a page with no buffers.",
        ["nobuffers-writeback", "lost-write"],
        reclaim=True,
    ),
    _seed(
        "dio/002",
        "DIO read into a MAP_SHARED page, with writeback only (race B)",
        "Jan Kara, 4 Jan 2018: no reclaim needed. Writeback's clear_page_dirty_for_io "
        "write-protects the page mid-read; DIO completion re-dirties it without "
        "->page_mkwrite.",
        ["dirty-without-mkwrite"],
        reclaim=False,
    ),
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

_BUILTIN += [_DRV_001, _DRV_002, _RDMA_001]

#: Built-in scenarios by id.
SCENARIOS: dict[str, ScenarioSpec] = {s.id: s for s in _BUILTIN}


def get_scenario(name: str) -> ScenarioSpec:
    """A built-in scenario by id, or a TOML scenario file by path."""
    if name.endswith(".toml") or Path(name).is_file():
        try:
            return load_scenario_file(name)
        except ScenarioFileError as exc:
            raise ScenarioError(str(exc)) from None
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ScenarioError(
            f"unknown scenario {name!r} (known: {known}; or give a .toml file)"
        ) from None
