"""What tables keyed by a step's footprint could save, measured before any is built.

A tabled search (``table_steps``) keys each step by the task, its position,
the finished slots and the *whole* shared state, so a step is learnt again,
with a replay, whenever any page, buffer or bio anywhere differs. Most steps
read a handful of fields. This benchmark counts how many steps a table keyed
by the step's footprint instead (the task, its position, the finished slots
and the shared values the step read before writing them) would have to learn.

It runs the ordinary tabled search of ``dio/001`` under defer-release with two
flushers, serially, with the model's objects instrumented while a step is
learnt: every slot read of a page, buffer head, PTE, VMA, mapping, inode, disk,
bio, umem or iomap DIO, and every read of one of the machine's shared-state
attributes (the ones :meth:`~mmsim.machine.Kernel.state_snapshot` covers), is
recorded with its value, unless the step wrote that field first. A container's
value counts whole (its items, objects by key): a step that looks up one page
of a mapping is taken to read them all, which only makes footprints larger.
Under the tables' own promise (a step reads the shared state, its own frames
and which slots hold finished tasks, and nothing else), two steps with the
same footprint do the same thing, so the count of distinct footprints is what
such tables would learn over the same search.

The instrumented search must find the same states as the plain one (checked).
Building footprint tables would also need a node to carry its shared state, not
only its fingerprint, to look a footprint up, and a hash the step's writes can
update; none of that is measured here.

Run with ``pytest benchmarks/bench_footprints.py -m benchmark -s``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest

from mmsim import bio, engine, explorer, machine, mm_types, umem
from mmsim._api import machine_factory
from mmsim.explorer import Bounds, explore
from mmsim.iomap import direct_io as iomap_direct_io

pytestmark = pytest.mark.benchmark

#: The model's shared-state objects: slotted attrs classes, known by ``key``
#: (the disk, the only one without, is one).
_SHARED = (
    mm_types.BufferHead,
    mm_types.Page,
    mm_types.Pte,
    mm_types.Vma,
    mm_types.AddressSpace,
    mm_types.Inode,
    mm_types.Disk,
    bio.Bio,
    umem.IbUmem,
    iomap_direct_io.IomapDio,
)
#: The machine's attributes that hold shared state (its snapshot's parts).
_KERNEL_STATE = frozenset(
    {
        "frames",
        "dax_pages",
        "inodes",
        "vmas",
        "disk",
        "next_version",
        "expected",
        "bios",
        "umems",
        "dios",
    }
)

_Location = tuple[str, int, str]


class _Footprint:
    """The reads and writes of the step being learnt (None between steps)."""

    def __init__(self) -> None:
        self.reads: dict[_Location, Any] | None = None
        self.writes: set[_Location] = set()

    def read(self, loc: _Location, value: Any) -> None:
        if self.reads is not None and loc not in self.writes and loc not in self.reads:
            self.reads[loc] = _value(value)

    def wrote(self, loc: _Location) -> None:
        if self.reads is not None:
            self.writes.add(loc)


def _value(v: Any) -> Any:
    """A read value as data: objects by class tag and key, containers whole."""
    if v is None or isinstance(v, int | str | float):
        return v
    tag = getattr(type(v), "snapshot_tag", None)
    if tag is not None and hasattr(v, "key"):
        return (tag, v.key)
    if isinstance(v, list | tuple):
        return tuple(_value(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _value(x)) for k, x in v.items()))
    if isinstance(v, set | frozenset):
        return tuple(sorted(_value(x) for x in v))
    return ("?", type(v).__name__)


class _Tracked:
    """A slot descriptor that reports reads and writes to a :class:`_Footprint`."""

    def __init__(self, cls: type, name: str, slot: Any, fp: _Footprint) -> None:
        self.cls, self.name, self.slot, self.fp = cls.__name__, name, slot, fp

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.slot.__get__(obj, owner)
        self.fp.read((self.cls, getattr(obj, "key", 0), self.name), value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        self.fp.wrote((self.cls, getattr(obj, "key", 0), self.name))
        self.slot.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        self.slot.__delete__(obj)


def _instrument(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Instrument the model (undone by ``monkeypatch``); returns the list each
    learnt step's footprint key is appended to."""
    fp = _Footprint()
    keys: list[Any] = []
    for cls in _SHARED:
        for name in cls.__slots__:
            if name not in ("__weakref__", "key"):
                slot = cls.__dict__[name]
                monkeypatch.setattr(cls, name, _Tracked(cls, name, slot, fp))

    get = machine.Kernel.__getattribute__
    put = machine.Kernel.__setattr__

    def kernel_get(self: Any, name: str) -> Any:
        value = get(self, name)
        if name in _KERNEL_STATE:
            fp.read(("Kernel", 0, name), value)
        return value

    def kernel_put(self: Any, name: str, value: Any) -> None:
        if name in _KERNEL_STATE:
            fp.wrote(("Kernel", 0, name))
        put(self, name, value)

    monkeypatch.setattr(machine.Kernel, "__getattribute__", kernel_get)
    monkeypatch.setattr(machine.Kernel, "__setattr__", kernel_put)

    learning = [False]
    machine_step = engine.Machine.step

    def step(self: Any, tid: int) -> None:
        if not learning[0]:
            return machine_step(self, tid)
        fp.reads, fp.writes = {}, set()
        try:
            return machine_step(self, tid)
        finally:
            keys.append(frozenset(fp.reads.items()))
            fp.reads = None

    tables_step: Callable[..., bytes] = explorer._Tables.step

    def learn(self: Any, m: Any, tid: int, pfps: list[int]) -> bytes:
        learning[0] = True
        try:
            out = tables_step(self, m, tid, pfps)
        finally:
            learning[0] = False
        reads = keys.pop()
        finished = tuple(p == explorer._FIN for p in pfps)
        keys.append((tid, pfps[tid], finished, reads))
        return out

    monkeypatch.setattr(engine.Machine, "step", step)
    monkeypatch.setattr(explorer._Tables, "step", learn)
    return keys


def _dropped_tables(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The tables of each search, as the search drops them at its end."""
    dropped: list[Any] = []
    drop = explorer._PerSearch.drop

    def counted(self: Any, token: str) -> None:
        got = self.peek(token)
        if isinstance(got, explorer._Tables):
            dropped.append(got)
        drop(self, token)

    monkeypatch.setattr(explorer._PerSearch, "drop", counted)
    return dropped


def test_steps_a_footprint_table_would_learn(
    benchmark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = [(1, 1)] if benchmark.disabled else [(1, 1), (2, 1)]

    def run() -> list[dict[str, Any]]:
        rows = []
        for readers, requests in sizes:
            make, _, _ = machine_factory(
                "dio/001",
                "defer-release",
                params={"readers": readers, "requests": requests, "flushers": 2},
            )
            plain = explore(make, Bounds(), table_steps=True)
            with monkeypatch.context() as patch:
                keys = _instrument(patch)
                tables = _dropped_tables(patch)
                traced = explore(make, Bounds(), table_steps=True)
                learnt = len(tables[0].steps)
            assert (traced.verdict, traced.stats.states) == (
                plain.verdict,
                plain.stats.states,
            )
            assert len(keys) == learnt  # every step learnt was traced once
            reads = [len(k[3]) for k in keys]
            rows.append(
                {
                    "size": f"{readers}x{requests}",
                    "states": plain.stats.states,
                    "transitions": plain.stats.transitions,
                    "replays": plain.stats.replays,
                    "learnt": learnt,
                    "footprints": len(set(keys)),
                    "positions": len({k[:3] for k in keys}),
                    "reads_median": statistics.median(reads),
                    "reads_max": max(reads),
                }
            )
        return rows

    rows = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    print(
        "\ndio/001 under defer-release, two flushers, tabled, serial:\n"
        f"{'size':>5} {'states':>9} {'transitions':>12} {'replays':>9} "
        f"{'steps learnt':>13} {'footprints':>11} {'positions':>10} {'reads':>9}"
    )
    for r in rows:
        print(
            f"{r['size']:>5} {r['states']:>9,} {r['transitions']:>12,} "
            f"{r['replays']:>9,} {r['learnt']:>13,} {r['footprints']:>11,} "
            f"{r['positions']:>10,} {r['reads_median']:>4g}/{r['reads_max']:<4}"
        )
    print(
        "(steps learnt: keyed by the whole shared state; footprints: keyed by "
        "the values each step read; positions: by the task's position and the "
        "finished slots alone; reads: fields a step read, median/most)"
    )
