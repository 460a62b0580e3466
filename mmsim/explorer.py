"""The exhaustive explorer: breadth-first search over interleavings with state caching.

Generators cannot be copied, so the search re-executes: to expand a state it
replays that state's schedule on a fresh machine (with oracles and tracepoints
off: the prefix was judged when it was first run), then steps each enabled task,
one fresh replay per task. The search goes level by level (breadth first), so
the first violation found is one of the shortest, and a level's states can be
expanded anywhere: in this process, or in batches on any
``concurrent.futures.Executor`` (a process pool, a Dask cluster). The
coordinator merges the batches' results in a fixed order, so the verdicts,
counterexamples and distinct-state count do not depend on the executor.

Reductions, each sound and each checked against brute force by the tests:

* **State caching.** A state is a 64-bit fingerprint (BLAKE2b of the marshalled
  snapshot: the shared model state plus, for every task, its generator frames and
  locals). Two machines with equal snapshots have equal futures, so a revisited
  state is not expanded again (and, in the searching process, a run that ends
  there is not settled again). A fingerprint collision could merge two distinct
  states; with ``n`` states its probability is below ``n*n / 2**65`` (hash
  compaction, as SPIN's), which the statistics report. The state graph the
  verdicts need is kept packed, 13 bytes an edge (:data:`_EDGE`): on
  ``dio/001`` under defer-release with three readers of three requests, the
  search peaks at 84 MiB by 150,251 states, where tuples of ints took 159 MiB.
* **Symmetry.** Tasks of one :attr:`~mmsim.engine.Machine.symmetry` group (several
  identical DIO readers, several flushers) are interchangeable: states that
  differ by a permutation within a group are one state
  (:meth:`~mmsim.engine.Machine.canonical_snapshot`). Edges are labelled by the
  canonical place of the task that ran, and counterexamples are turned back
  into concrete schedules by replaying them.
* **Dead variables.** A task's position leaves out the locals that no later
  instruction of its frames can read (:func:`~mmsim.engine.dead_locals`, a
  liveness analysis of the bytecode, as SPIN removes dead variables): two states
  that differ only there have the same futures. On ``dio/001`` under
  defer-release with one reader and two flushers it halves the states (5,290 to
  2,588).
* **Finished slots.** When a machine starts every mid-run task in the first
  finished slot it may reuse, or else a new one
  (:attr:`~mmsim.engine.Machine.trailing_finished_are_free`, as the kernel
  model starts completions), the finished tasks at the end of its task list
  are left out of the state: with or without them, every later task gets the
  same id. On ``dio/001`` under defer-release with two readers, this and the
  free bio slots at the end (:mod:`mmsim.machine`) take the states from 19,460
  to 12,609.
* **Coarse steps** are in the kernel model itself, where the kernel holds a lock
  or where what a step changes is invisible to every other task (see
  ``kswapd``).

**Tabled steps** (``table_steps``; off by default here, on by default in
:func:`mmsim.check` and the command line) change how states are
expanded, not which: each process learns the steps it runs as a table
(:class:`_Tables`) and composes a node's children from it, so a node is replayed
only for a step or a wait the table does not hold yet, and where a run ends.
Nodes then carry their state (fingerprints) as well as their schedule. The
same states, transitions and verdicts, the tests check; only a state's
canonical order of identical tasks differs (by fingerprint), and so may which
of two identical tasks a counterexample names. On an executor, each batch
hands back what its process learnt (:class:`_Learnt`), and the next level's
first batches carry it to the other processes: a table is a cache of a
function of the state, so what one process learnt serves all. On ``dio/001``
under defer-release with two readers of two requests on two processes, that
took the replays from about 316,000 to about 219,000 (serially: 189,754).

Partial-order reduction is not used. It was measured on ``dio/001`` under
defer-release with two readers (``benchmarks/bench_reductions.py``), counting as
independent every pair of steps that the state graph shows commuting. Sleep sets
would skip at most a third of the transitions (87,949 to 58,647). Persistent
sets of one task, the kind SPIN's reduction picks, would save at most 6.5% of
the states (24,769 to 23,160): the flusher and kswapd keep coming back to the
one page, so almost no step is independent of everything the other tasks may do
before it. Sleep sets would also drop edges that the graph-wide verdicts below
(unbounded waits, starvation cycles, Always) are computed from.

With a preemption bound the key also holds the last task run, and a state is
expanded again when reached with fewer preemptions, so the bounded search
explores exactly the runs within the bound (as CHESS and loom bound them).

Every expansion ends each child in one of: a violation (an oracle fired), a
finished run (every non-daemon task done: the machine quiesces with a final sync
and the end-of-run oracles judge it), a deadlock, a known state, or a bound.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import itertools
import marshal
import math
import os
import pickle
import signal
import struct
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Generator, Hashable, Iterable, Iterator
from concurrent.futures import BrokenExecutor, Executor
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import attrs

from mmsim._files import check_writable, write_whole
from mmsim.engine import (
    _FINISHED,
    KERNEL_FUNCTIONS,
    Machine,
    Violation,
    _code_id,
    _instructions,
    watchdog,
)

__all__ = [
    "Bounds",
    "CheckpointError",
    "Counterexample",
    "Interrupted",
    "ModelMismatch",
    "OracleResult",
    "SearchResult",
    "SearchStats",
    "Unreached",
    "Verdict",
    "concretize",
    "explore",
    "settle",
]


class Verdict(enum.StrEnum):
    """Litmus-test result words (herd7): how often a violation is reachable."""

    NEVER = "Never"
    SOMETIMES = "Sometimes"
    ALWAYS = "Always"
    #: No violation found, but a bound cut the search: not a proof.
    UNKNOWN = "Unknown"


def _at_least(least: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{attribute.name} must be a whole number, not {value!r}")
        if value < least:
            raise ValueError(f"{attribute.name} must be at least {least}, not {value}")

    return check


def _above_zero(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be a number, not {value!r}")
    if not value > 0:  # NaN too
        raise ValueError(f"{attribute.name} must be above 0, not {value}")


@attrs.frozen
class Bounds:
    """Limits on the search. ``None`` means unbounded; a bound out of range
    raises ValueError (TypeError when it is not a number), naming it.

    Attributes:
        max_steps: longest schedule explored (depth).
        preemption_bound: most preemptions (switching away from a task that could
            have continued) in a run, as CHESS and loom bound them.
        max_time: wall-clock seconds, checked after every batch and while
            waiting for an executor's (whose workers may be gone or stuck).
            With ``max_memory``, a bound that makes a result depend on the
            machine it ran on, so each is reported when hit.
        max_states: most distinct states visited.
        max_memory: MiB of resident memory of the search, checked after every
            batch: the searching process's, plus, when an executor expands
            batches in other processes, each one's as its last batch reported
            it. On Linux a process's figure is what it holds then (with other
            processes, its proportional share, so that the pages a pool
            shares since it was forked count once), elsewhere its peak so far
            (all ``getrusage`` gives).
    """

    max_steps: int | None = attrs.field(default=400, validator=_at_least(1))
    preemption_bound: int | None = attrs.field(default=None, validator=_at_least(0))
    max_time: float | None = attrs.field(default=None, validator=_above_zero)
    max_states: int | None = attrs.field(default=None, validator=_at_least(1))
    max_memory: float | None = attrs.field(default=None, validator=_above_zero)


@attrs.define
class SearchStats:
    """What the search did. ``complete`` is False when any bound cut it.

    ``executions`` counts the maximal runs the search followed: every path of
    its search tree, ending in a finished run, a violation, a deadlock, a state
    already known, or a bound.
    """

    states: int = 0
    transitions: int = 0
    executions: int = 0
    finished_runs: int = 0
    revisits: int = 0
    replays: int = 0
    replayed_steps: int = 0
    max_depth: int = 0
    seconds: float = 0.0
    complete: bool = True
    cut_by: list[str] = attrs.Factory(list)
    #: Upper bound on the probability that two distinct states shared a
    #: fingerprint (and were wrongly merged): n^2 / 2^65.
    collision_bound: float = 0.0
    #: The most resident memory of the search seen during it (sampled after
    #: every batch, and while the verdicts are computed from the state graph:
    #: the searching process's, plus its workers' as their last batches
    #: reported, each its proportional share), MiB; not the process's lifetime
    #: peak, which may have come before the search.
    peak_mib: float = 0.0


@attrs.frozen
class Counterexample:
    """A schedule from the initial state to a violation of one oracle.

    ``at_end`` when the violation shows only once the run has finished and
    quiesced (the final sync and the end-of-run oracles), not in a step.
    """

    schedule: tuple[int, ...]
    violation: Violation
    at_end: bool = False


@attrs.frozen
class OracleResult:
    """One oracle's verdict, how many violating steps or run ends the search met,
    and the shortest counterexample."""

    oracle: str
    verdict: Verdict
    occurrences: int
    counterexample: Counterexample | None
    #: A regression outcome (a refused request), not a correctness violation.
    regression: bool = False


@attrs.frozen
class Unreached:
    """A step of a kernel path that no explored run took (as SPIN reports
    unreached statements): the yield at ``line`` of ``source`` (the Python file
    of mmsim's model), in ``function``, which models a function of the kernel
    file ``file``."""

    function: str
    file: str
    source: str
    line: int

    def __str__(self) -> str:
        return f"{self.function} ({self.file}) at {self.source}:{self.line}"


@attrs.frozen
class SearchResult:
    """The overall verdict (the worst over the oracles), each oracle's result, the
    statistics, the shortest counterexample of any oracle, and coverage: the
    steps never reached in the functions the search entered, and the events
    (tracepoints, counters) met."""

    verdict: Verdict
    stats: SearchStats
    oracles: dict[str, OracleResult]
    counterexample: Counterexample | None
    unreached: tuple[Unreached, ...] = ()
    events: frozenset[str] = frozenset()
    #: What ``leaf_key`` returned at the states where runs ended.
    leaves: frozenset[Hashable] = frozenset()


def settle(m: Machine) -> str:
    """Classify the machine after a step: ``stopped``, ``finished`` or ``running``.

    A run stops at a fatal violation or a deadlock. A machine whose non-daemon
    tasks are all done is quiesced (final sync) and judged by the end-of-run
    oracles here; it is no longer usable for exploration afterwards.
    """
    if m.stopped:
        return "stopped"
    if m.finished():
        m.run_to_end()
        return "stopped" if m.stopped else "finished"
    if m.check_deadlock():
        return "stopped"
    return "running"


def fingerprint(snapshot: tuple[Any, ...]) -> int:
    """64 bits of BLAKE2b over the marshalled snapshot (format 2: no object
    sharing, so equal snapshots give equal bytes in every process)."""
    digest = hashlib.blake2b(marshal.dumps(snapshot, 2), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _key(
    m: Machine, last: int | None, bounded: bool
) -> tuple[int, tuple[int, ...] | None]:
    """The state's fingerprint (with the last task's place under a preemption
    bound), and the permutation that canonicalised it."""
    snap, slot = m.canonical_snapshot()
    if m.stopped:
        # An oops ends the run where it stands, but the snapshot does not say
        # so: another run may reach the same snapshot without one, and go on.
        snap = (snap, _STOPPED)
    if bounded:
        place = _place(slot, -1 if last is None else last)
        return fingerprint((snap, place)), slot
    return fingerprint(snap), slot


#: Marks the key of a state a fatal violation stopped (:func:`_key`).
_STOPPED = -7

#: The status of a child the searching process already holds as a state, with
#: no more preemptions (:func:`_revisit`): a revisit, whose waits, end and
#: state were not computed again.
_KNOWN = "known"


# -- expanding states (in this process or in a worker) --------------------------------


#: A function seen on a task's stack: its kernel name, kernel file, mmsim's
#: source file, and the offset and line of each of its yields (for coverage).
_Code = tuple[str, str, str, tuple[tuple[int, int], ...]]

#: One node to expand: its fingerprint, concrete schedule (one byte a task id),
#: the task that ran last (or -1), the preemptions so far, and, when the search
#: tables steps, the node's state packed (:func:`_pack`; else empty).
_Node = tuple[int, bytes, int, int, bytes]


class _Child(NamedTuple):
    """What stepping one task from a node gave (a tuple: it crosses processes
    by the thousand, and tuples pickle fastest).

    ``place`` is the canonical place of the task that ran (the edge's label),
    ``tid`` its concrete id (for the child's schedule). ``smap`` maps the source's
    canonical places to the child's when symmetry moved them (None: identity).
    ``status`` is ``running``, ``finished``, ``stopped`` or, for a child the
    searching process already holds, :data:`_KNOWN`; ``end`` holds the
    violations found while the run ended, ``pins`` the tasks asleep in a wait for
    pins (canonical place, may run now).
    """

    place: int
    tid: int
    key: int
    found: tuple[Violation, ...]
    status: str
    end: tuple[Violation, ...]
    last: int
    preemptions: int
    pins: tuple[tuple[int, bool], ...]
    smap: tuple[int, ...] | None
    leaf: Hashable
    #: The child's state packed, when the search tables steps and the child
    #: runs on (:func:`_pack`); else empty.
    state: bytes = b""


@attrs.frozen
class _Expansion:
    """A node's children, and whether the preemption bound cut any."""

    children: tuple[_Child, ...]
    cut: bool


@attrs.frozen
class _Batch:
    """A batch's expansions, the work it took, and what it saw (for coverage)."""

    expansions: tuple[_Expansion, ...]
    replays: int
    replayed_steps: int
    positions: frozenset[tuple[int, int]]
    code: dict[int, _Code]
    events: frozenset[str]
    #: Each expansion's children's machines, still running, when the batch was
    #: expanded in the searching process (never sent between processes).
    live: tuple[tuple[Machine | None, ...], ...] = ()
    #: The process that expanded the batch (host name, pid), and its share of
    #: resident memory then, MiB (0 in the searching process): a search's
    #: memory is its workers' too.
    process: tuple[str, int] = ("", 0)
    rss: float = 0.0
    #: The model a worker ran (:func:`_model_digest`; "" in the searching
    #: process, which need not read its own source for a search on its own).
    model: str = ""
    #: What the batch's process learnt, for the others (tabled steps on an
    #: executor; else None).
    learnt: _Learnt | None = None


@attrs.frozen
class _Expander:
    """Expands batches of nodes; picklable when ``make`` and ``leaf_key`` are."""

    make: Callable[[], Machine]
    preemption_bound: int | None
    symmetry: bool = True
    leaf_key: Callable[[Machine, str], Hashable] | None = None
    dead_variables: bool = True
    #: Stop the batch at the first child that violates an oracle (on its edge or
    #: at its end), where the merge stops the search: the nodes after it would
    #: be expanded for nothing.
    stop_on_first: bool = False
    #: Table each task's steps (see :class:`_Tables`) rather than replay a
    #: node for every child; ``token`` names the search, whose tables (and
    #: :class:`_Recall`) a process keeps between its batches.
    tabled: bool = False
    token: str = ""
    #: Hand back what the batch learnt, for the search's other processes
    #: (:class:`_Learnt`), and take theirs from ``shared`` first.
    share: bool = False
    shared: _Shared = ()

    @watchdog()
    def __call__(
        self,
        nodes: list[_Node],
        machines: list[Machine | None] | None = None,
        keep: int = 0,
        known: _Known | None = None,
        emitted: dict[int, int] | None = None,
    ) -> _Batch:
        """Expand ``nodes``. ``machines``, in the searching process, holds for
        some nodes the machine that reached them, which saves their first
        child a replay; the batch then hands back the machines of up to
        ``keep`` of its children that are still running (few: every machine
        alive at once is more work for the garbage collector). ``known`` is
        the search's visited states (with their fewest preemptions) in the
        searching process, and what a worker recalls of them elsewhere
        (:class:`_Recall`): a child the merge will count as a revisit comes
        back as its edge only (:func:`_revisit`); ``emitted`` collects the
        keys the batch hands back."""
        if emitted is None:
            emitted = {}
        replays = replayed = 0
        reached: set[tuple[types.CodeType, int]] = set()
        events: set[str] = set()
        out = []
        live: list[tuple[Machine | None, ...]] = []
        bounded = self.preemption_bound is not None
        if self.tabled:
            return self._expand_tabled(nodes, machines, keep, known, emitted)
        for i, (_, schedule, last, preemptions, _) in enumerate(nodes):
            held = machines[i] if machines is not None else None
            if held is None:
                m = self._replay(schedule)
                replays += 1
                replayed += len(schedule)
            else:
                m = held
                m.violations.clear()  # as a replay leaves it: none recorded
            kept: list[Machine | None] = []
            # Every replay of this schedule reaches the same state: its tasks'
            # positions are computed once, and a child recomputes only those
            # of the tasks its step moved.
            at_node = [t.position() for t in m.tasks]
            fresh = True
            _, slot = m.canonical_snapshot() if m.symmetry else (None, None)
            enabled = _order(m.enabled(), None if last < 0 else last)
            # Switching away from a task that could go on is a preemption; from
            # one that finished or sleeps, it is not (CHESS's definition). A
            # daemon at its idle point sleeps there in the kernel (the flusher
            # until woken, kswapd until the next wake-up): leaving it is free.
            waits = m.tasks[last].wait if last >= 0 else None
            can_go_on = (
                last >= 0 and last in enabled and not (waits is not None and waits.idle)
            )
            children = []
            cut = False
            for tid in enabled:
                p = preemptions
                if bounded and can_go_on and tid != last:
                    p += 1
                if self.preemption_bound is not None and p > self.preemption_bound:
                    cut = True
                    continue
                if not fresh:
                    m = self._replay(schedule)
                    replays += 1
                    replayed += len(schedule)
                    for task, pos in zip(m.tasks, at_node, strict=True):
                        task.pos = pos
                fresh = False
                m.events_seen = events
                m.steps_seen = reached  # the final sync's steps count too
                before = len(m.violations)
                m.step(tid)
                found = tuple(m.violations[before:])
                now_last = -1 if m.tasks[tid].done else tid
                child_key, child_slot = _key(
                    m, None if now_last < 0 else now_last, bounded
                )
                place = slot[tid] if slot is not None else tid
                smap = _compose(slot, child_slot, len(m.tasks))
                if _revisit(known, emitted, child_key, p):
                    m.events_seen = m.steps_seen = None
                    m.discard()
                    kept.append(None)
                    children.append(
                        _edge_only(place, tid, child_key, found, now_last, p, smap)
                    )
                    if self.stop_on_first and found:
                        break
                    continue
                pins = tuple(
                    (child_slot[t] if child_slot is not None else t, ok)
                    for t, ok in m.pin_waiters()
                )
                before = len(m.violations)
                status = settle(m)
                end = tuple(m.violations[before:])
                leaf = (
                    self.leaf_key(m, status)
                    if self.leaf_key is not None and status != "running"
                    else None
                )
                m.events_seen = m.steps_seen = None
                if keep and status == "running":
                    kept.append(m)
                    keep -= 1
                else:
                    kept.append(None)
                    m.discard()
                children.append(
                    _Child(
                        place,
                        tid,
                        child_key,
                        found,
                        status,
                        end,
                        now_last,
                        p,
                        pins,
                        smap,
                        leaf,
                    )
                )
                if self.stop_on_first and (found or end):
                    break
            if fresh:
                m.discard()  # every child was cut by the preemption bound
            out.append(_Expansion(tuple(children), cut))
            live.append(tuple(kept))
            if (
                self.stop_on_first
                and children
                and (children[-1].found or children[-1].end)
            ):
                break
        return _batch(
            out, replays, replayed, *_coverage(reached), events, live, machines
        )

    def _replay(self, schedule: bytes) -> Machine:
        m = _fresh(self.make, self.symmetry, self.dead_variables)
        m.replaying = True
        for tid in schedule:
            m.step(tid)
        m.replaying = False
        return m

    def _expand_tabled(
        self,
        nodes: list[_Node],
        machines: list[Machine | None] | None,
        keep: int,
        known: _Known | None,
        emitted: dict[int, int],
    ) -> _Batch:
        """:meth:`__call__` from the tables: a node's children are composed
        from tabled steps, and a machine is replayed only for a step not yet
        tabled, for a task whose wait the tables do not know yet, and where a
        run ends (the final sync and the end-of-run oracles run on it), unless
        the search holds that state already (:func:`_revisit`)."""
        tables = _Tables.of(self)
        tables.sharing = self.share
        tables.take(self.shared)
        steps, fin = tables.steps, _FIN
        bounded = self.preemption_bound is not None
        replays = replayed = 0
        # Yield points by code id (as the tables keep them), and those the
        # final syncs of the runs that end reached, by code object.
        reached: set[tuple[int, int]] = set()
        ended: set[tuple[types.CodeType, int]] = set()
        events: set[str] = set()
        out = []
        live: list[tuple[Machine | None, ...]] = []
        # The extras whose events and yield points are counted already.
        met: set[int] = set()

        def replay(schedule: bytes) -> Machine:
            nonlocal replays, replayed
            replays += 1
            replayed += len(schedule)
            return self._replay(schedule)

        for i, (_, schedule, last, preemptions, state) in enumerate(nodes):
            held = machines[i] if machines is not None else None
            if held is not None:
                held.violations.clear()  # as a replay leaves it: none recorded
            sfp, pfps, waits = _unpack(state)
            n = len(pfps)
            tail = _tail(sfp, pfps)
            enabled = [t for t, w in enumerate(waits) if w is not None and w[0]]
            _, slot = tables.canonical(pfps)
            enabled = _order(enabled, None if last < 0 else last)
            at_last = waits[last] if last >= 0 else None
            idle = at_last is not None and at_last[2]
            can_go_on = last >= 0 and last in enabled and not idle
            children = []
            kept: list[Machine | None] = []
            cut = False
            for tid in enabled:
                p = preemptions
                if bounded and can_go_on and tid != last:
                    p += 1
                if self.preemption_bound is not None and p > self.preemption_bound:
                    cut = True
                    continue
                key = _KEY.pack(tid, pfps[tid]) + tail
                step = steps.get(key)
                cm: Machine | None = None
                if step is None:
                    cm, held = held if held is not None else replay(schedule), None
                    step = steps[key] = tables.step(cm, tid, pfps)
                    tables.learnt(key, step)
                sfp2, n2, extra = _STEP.unpack_from(step)
                found, step_events, step_reached = tables.extras[extra]
                changes = _CHANGE.iter_unpack(step[_STEP.size :])
                if extra not in met:  # a few extras serve most steps
                    met.add(extra)
                    events |= step_events
                    reached |= step_reached
                pfps2 = pfps[:n2] + [fin] * (n2 - n)
                for t, q in changes:
                    pfps2[t] = q
                now_last = -1 if tid >= n2 or pfps2[tid] == fin else tid
                child_pfps, child_slot = tables.canonical(pfps2)
                fatal = any(v.fatal for v in found)
                child_key = _tabled_key(
                    sfp2,
                    child_pfps,
                    None if not bounded else _place(child_slot, now_last),
                    fatal,
                )
                place = slot[tid] if slot is not None else tid
                smap = _compose(slot, child_slot, max(n, n2, tables.span))
                if _revisit(known, emitted, child_key, p):
                    if cm is not None:
                        cm.discard()
                    kept.append(None)
                    children.append(
                        _edge_only(place, tid, child_key, found, now_last, p, smap)
                    )
                    if self.stop_on_first and found:
                        break
                    continue
                tail2 = _tail(sfp2, pfps2)
                waits2 = tables.waits(pfps2, tail2)
                if waits2 is None:
                    if cm is None:
                        cm = replay(schedule + bytes((tid,)))
                    waits2 = tables.learn(cm, pfps2, tail2)
                pins = tuple(
                    (child_slot[t] if child_slot is not None else t, w[0])
                    for t, w in enumerate(waits2)
                    if w is not None and w[1]
                )
                end: tuple[Violation, ...] = ()
                leaf: Hashable = None
                if fatal:
                    status = "stopped"
                elif tables.finished(pfps2) or not any(
                    w is not None and w[0] for w in waits2
                ):
                    # A run ends here: the machine itself is needed, for the
                    # final sync, the end-of-run oracles or the deadlock.
                    if cm is None:
                        cm = replay(schedule + bytes((tid,)))
                    cm.violations.clear()  # the step's are on the edge
                    cm.events_seen, cm.steps_seen = events, ended
                    status = settle(cm)
                    end = tuple(cm.violations)
                    cm.events_seen = cm.steps_seen = None
                else:
                    status = "running"
                if self.leaf_key is not None and status != "running":
                    if cm is None:
                        cm = replay(schedule + bytes((tid,)))
                    leaf = self.leaf_key(cm, status)
                if cm is not None and keep and status == "running":
                    kept.append(cm)
                    keep -= 1
                else:
                    kept.append(None)
                    if cm is not None:
                        cm.discard()
                children.append(
                    _Child(
                        place,
                        tid,
                        child_key,
                        found,
                        status,
                        end,
                        now_last,
                        p,
                        pins,
                        smap,
                        leaf,
                        _pack(sfp2, pfps2, waits2) if status == "running" else b"",
                    )
                )
                if self.stop_on_first and (found or end):
                    break
            if held is not None:
                held.discard()
            out.append(_Expansion(tuple(children), cut))
            live.append(tuple(kept))
            if (
                self.stop_on_first
                and children
                and (children[-1].found or children[-1].end)
            ):
                break
        positions, code = _coverage(ended)
        code.update((cid, tables.code[cid]) for cid in {cid for cid, _ in reached})
        return _batch(
            out,
            replays,
            replayed,
            positions | reached,
            code,
            events,
            live,
            machines,
            tables.export() if self.share else None,
        )


def _revisit(
    known: _Known | None, emitted: dict[int, int], key: int, preemptions: int
) -> bool:
    """Whether the merge will take a child of ``key``, reached with
    ``preemptions``, for a revisit: the search holds it (``known``: its visited
    states, or what a worker recalls of them) or an earlier child of the batch
    was handed back with it (``emitted``, kept here; the merge takes a batch's
    children in order), with no more preemptions.

    Such a child is handed back as its edge only (:func:`_edge_only`): the merge
    reads no more of a revisit, and its run's end was judged, and its final
    sync's steps and events counted, where the state was first reached. Most
    children are such (on ``dio/001`` under defer-release with two readers,
    about 70%): a replaying search then runs no final sync for them, and a
    tabled one computes no waits and replays no run that ends there.
    """
    if known is None:
        return False
    seen = emitted.get(key)
    if seen is None:
        seen = known.get(key)
    if seen is not None and seen <= preemptions:
        return True
    emitted[key] = preemptions
    return False


class _Before:
    """What a worker process recalls of the keys it handed back in the
    search's earlier batches (:class:`_Recall`), for :func:`_revisit`: a key
    is held (with no preemptions: the search has no bound) if a batch numbered
    below ``number`` handed it back, as the merge takes batches in their
    numbers' order and every child it takes is visited after."""

    __slots__ = ("maps", "number")

    def __init__(self, maps: list[dict[int, int]], number: int) -> None:
        self.maps = maps
        self.number = number

    def get(self, key: int) -> int | None:
        for handed in self.maps:
            number = handed.get(key)
            if number is not None and number < self.number:
                return 0
        return None


#: What :func:`_revisit` looks a key up in.
_Known = dict[int, int] | _Before


class _Recall:
    """A worker process's memory of the children it handed back in one search,
    by key, with the number of the batch that did: of the last two levels
    only, so that it holds about a level's keys (on ``dio/001`` under
    defer-release with two readers of one request, 70% of the revisits are
    of states first met in the level being expanded or the one before).

    Only a search with no preemption bound keeps one (there every visit has
    no preemptions). A Dask worker's threads share it: a key counts only for
    batches numbered after the one that handed it back, whatever order they
    run in. Kept by search, as :class:`_Tables` (:data:`_RECALL`).
    """

    __slots__ = ("levels", "token")

    def __init__(self, token: str) -> None:
        self.token = token
        self.levels: dict[int, dict[int, int]] = {}

    @classmethod
    def of(cls, token: str) -> _Recall:
        return _RECALL.get(token, lambda: cls(token))

    def before(self, depth: int, number: int) -> _Before:
        """The view of batch ``number``, of level ``depth``."""
        for old in [d for d in list(self.levels) if d < depth - 1]:
            self.levels.pop(old, None)
        maps = [self.levels.setdefault(depth, {})]
        if depth - 1 in self.levels:
            maps.append(self.levels[depth - 1])
        return _Before(maps, number)

    def remember(self, depth: int, number: int, emitted: dict[int, int]) -> None:
        """Keep what batch ``number`` of level ``depth`` handed back."""
        self.levels.setdefault(depth, {}).update(dict.fromkeys(emitted, number))


_T = TypeVar("_T")


class _PerSearch(Generic[_T]):
    """What a process keeps for each search it works for, by the search's
    token.

    The searching process holds its search's from start to end (:meth:`hold`,
    :meth:`drop`). So searches that run at once in threads of one process
    (``compare`` on a thread pool, a Dask worker's threads on several cells)
    each keep their own: kept one at a time, each would have thrown away the
    other's tables at every batch, and its replays, which the report records,
    would have depended on how the threads ran. A worker cannot tell when a
    search it serves ends: it keeps those of the last few it served
    (:data:`_SERVED_KEPT`), each as big as the search's tables.
    """

    __slots__ = ("_by_token", "_held", "_lock")

    def __init__(self) -> None:
        self._by_token: dict[str, _T] = {}
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def hold(self, token: str) -> None:
        """Keep the search's until :meth:`drop` (this process runs it)."""
        with self._lock:
            self._held.add(token)

    def get(self, token: str, make: Callable[[], _T]) -> _T:
        """The search's, made (by ``make``) if this process has none yet."""
        with self._lock:
            got = self._by_token.get(token)
            if got is None:
                got = self._by_token[token] = make()
                served = [t for t in self._by_token if t not in self._held]
                for old in served[:-_SERVED_KEPT]:
                    del self._by_token[old]
            return got

    def peek(self, token: str) -> _T | None:
        """The search's, if this process keeps it."""
        return self._by_token.get(token)

    def drop(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)
            self._held.discard(token)

    def __len__(self) -> int:
        return len(self._by_token)

    def forked(self) -> None:
        """In a process just forked: the searches the parent holds are not
        this one's to hold (it only serves them), and a lock another thread
        of the parent held would never be released here."""
        self._lock = threading.Lock()
        self._held = set()


#: How many searches served (run elsewhere) a process keeps tables and recall
#: for: a pool may serve two searches at once.
_SERVED_KEPT = 2

#: Each search's :class:`_Recall` in this process.
_RECALL: _PerSearch[_Recall] = _PerSearch()


def _edge_only(
    place: int,
    tid: int,
    key: int,
    found: tuple[Violation, ...],
    last: int,
    preemptions: int,
    smap: tuple[int, ...] | None,
) -> _Child:
    """A child the search holds (:func:`_revisit`): its edge, and no end."""
    return _Child(place, tid, key, found, _KNOWN, (), last, preemptions, (), smap, None)


def _coverage(
    reached: set[tuple[types.CodeType, int]],
) -> tuple[frozenset[tuple[int, int]], dict[int, _Code]]:
    """Yield points reached, by code id (code objects do not cross processes),
    and each function's description, once."""
    positions = frozenset((_code_id(co), lasti) for co, lasti in reached)
    code = {_code_id(co): _describe(co) for co in {co for co, _ in reached}}
    return positions, code


def _batch(
    out: list[_Expansion],
    replays: int,
    replayed: int,
    positions: frozenset[tuple[int, int]],
    code: dict[int, _Code],
    events: set[str],
    live: list[tuple[Machine | None, ...]],
    machines: list[Machine | None] | None,
    learnt: _Learnt | None = None,
) -> _Batch:
    """A batch's result, as the process that expanded it reports it."""
    return _Batch(
        tuple(out),
        replays,
        replayed,
        positions,
        code,
        frozenset(events),
        tuple(live) if machines is not None else (),
        _process(),
        # In the searching process (it passes ``machines``) the figure is
        # its own, measured after the merge; elsewhere a worker's share.
        _rss_mib(shared=True) if machines is None else 0.0,
        _model_digest() if machines is None else "",
        learnt,
    )


#: The fingerprint of a finished task's position.
_FIN = fingerprint(_FINISHED)
#: Marks the positions a step did not move (:meth:`_Tables.step`).
_UNMOVED: tuple[Any, ...] = ("unmoved",)

#: A tabled step, packed: the shared state's fingerprint after it, the number
#: of slots after it and the index of what it found, met and reached (in
#: :attr:`_Tables.extras`); then, :data:`_CHANGE` each, the slots whose
#: positions it changed (the task's own, any it started) and their new ones.
_STEP = struct.Struct("<QBI")
_CHANGE = struct.Struct("<BQ")
#: What a step found (violations), met (events) and reached (yield points, by
#: code id and offset: they cross processes, where code objects do not).
_Extra = tuple[tuple[Violation, ...], frozenset[str], frozenset[tuple[int, int]]]


class _Learnt(NamedTuple):
    """What one process learnt of a search's steps in one batch, for the other
    processes of the search (:meth:`_Tables.export`): tables are a cache of a
    function of the state, so any process may use any other's entries.

    ``steps`` holds tabled steps whose extras index ``extras`` (not the
    learner's own list), ``code`` describes the functions those extras reached,
    and ``origin`` is the learner (which skips its own entries when they come
    back).
    """

    origin: tuple[str, int]
    steps: dict[bytes, bytes]
    info: dict[bytes, _Wait]
    bare: frozenset[int]
    extras: tuple[_Extra, ...]
    code: dict[int, _Code]


#: A process's entries, numbered by the searching process in the order it
#: merged them (each process applies a number once).
_Shared = tuple[tuple[int, _Learnt], ...]


def _pack(sfp: int, pfps: list[int], waits: list[_Wait | None]) -> bytes:
    """A tabled state, compact for the frontier: the shared state's fingerprint
    and each task slot's position's, 8 bytes each, then each task's wait in a
    byte (:data:`_WAITS`), as the expansion that found the state learnt it."""
    return struct.pack(f"<{len(pfps) + 1}Q", sfp, *pfps) + bytes(
        _WAIT_CODE[w] for w in waits
    )


def _unpack(state: bytes) -> tuple[int, list[int], list[_Wait | None]]:
    n = (len(state) - 8) // 9
    sfp, *pfps = struct.unpack_from(f"<{n + 1}Q", state)
    return sfp, pfps, [_WAITS[c] for c in state[8 * (n + 1) :]]


def _tail(sfp: int, pfps: list[int]) -> bytes:
    """What every table key of a state ends with: the shared state, and which
    slots hold a finished task (a bit each, above them the number of slots):
    a task started mid-run takes the first finished slot, and a wait may be
    for another task to finish."""
    bits = 1 << len(pfps)
    for t, p in enumerate(pfps):
        if p == _FIN:
            bits |= 1 << t
    return sfp.to_bytes(8, "little") + bits.to_bytes(
        (bits.bit_length() + 7) // 8, "little"
    )


#: A table key's head: the task's id and its position's fingerprint.
_KEY = struct.Struct("<BQ")

#: What the tables know of a task's wait: whether it may run, whether it waits
#: for pins, whether it is a daemon's idle point.
_Wait = tuple[bool, bool, bool]
#: Every wait by its code in a packed state, and a finished task's (None).
_WAITS: list[_Wait | None] = [
    (bool(c & 1), bool(c & 2), bool(c & 4)) for c in range(8)
] + [None]
_WAIT_CODE: dict[_Wait | None, int] = {w: c for c, w in enumerate(_WAITS)}
#: One copy of each wait, which every table entry of it shares.
_ONE_WAIT: dict[_Wait, _Wait] = {w: w for w in _WAITS if w is not None}
#: The wait of a task that yielded none: it may run.
_RUNS: _Wait = _ONE_WAIT[(True, False, False)]


def _at_bare_yield(task: Any) -> bool:
    """Whether ``task`` stands at a bare ``yield`` (``LOAD_CONST None`` then
    ``YIELD_VALUE``), or has not started: then it yielded no wait, and its
    position alone says so (the bytecode at the position's innermost frame)."""
    gen: Any = task.gen
    while isinstance(gen, types.GeneratorType) and isinstance(
        gen.gi_yieldfrom, types.GeneratorType
    ):
        gen = gen.gi_yieldfrom
    if not isinstance(gen, types.GeneratorType) or gen.gi_yieldfrom is not None:
        return False
    frame = gen.gi_frame
    if frame is None:
        return False
    key = (gen.gi_code, frame.f_lasti)
    bare = _BARE.get(key)
    if bare is None:
        instrs = _instructions(gen.gi_code)
        at = next((i for i, ins in enumerate(instrs) if ins.offset == key[1]), None)
        bare = _BARE[key] = at is not None and (
            instrs[at].opname == "RETURN_GENERATOR"
            or (
                instrs[at].opname == "YIELD_VALUE"
                and at > 0
                and instrs[at - 1].opname == "LOAD_CONST"
                and instrs[at - 1].argval is None
            )
        )
    return bare


_BARE: dict[tuple[types.CodeType, int], bool] = {}


def _place(slot: tuple[int, ...] | None, last: int) -> int:
    return -1 if last < 0 else (slot[last] if slot is not None else last)


def _tabled_key(
    sfp: int, pfps: list[int], place: int | None, stopped: bool = False
) -> int:
    """A tabled state's fingerprint: BLAKE2b over its canonical fingerprints
    (and the last task's place, under a preemption bound; and a mark when a
    fatal violation stopped the run there, as :func:`_key`)."""
    data = struct.pack(f"<{len(pfps) + 1}Q", sfp, *pfps)
    if place is not None:
        data += struct.pack("<q", place)
    if stopped:
        data += b"stopped"
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


@attrs.define(slots=True, eq=False)
class _Tables:
    """A process's tabled steps for one search: the kernel's transition
    relation, learnt as the search meets it.

    A task's step is a function of the shared state, the task's own position
    (its frames and live locals) and which slots hold finished tasks, and of
    nothing else: tasks meet only in shared state, which the machine's
    snapshot holds whole (what state caching already needs), and a task
    started mid-run takes the first finished slot. So a step run once from
    some state is known from every state that agrees on those three, however
    the other tasks stand: ``steps`` maps ``(task, shared state, position,
    finished slots)``, as fingerprints, to what the step did. Likewise whether
    a task may run is a function of the same four (its wait's condition reads
    shared state, its own locals and, at most, whether another task finished):
    ``info`` maps them to (may run, waits for pins, idle).

    The soundness of this rests on that promise of the model, beyond what
    state caching needs: a step that read another task's frames would be
    composed wrongly. The kernel model keeps it (no wait of its reads another
    task: ``rdma_app`` polls its registration's completions, shared state),
    and the tests check tabled searches against brute force, with waits for
    another task's end, and against every cell of the report.

    On ``dio/001`` under defer-release with two readers of two requests and two
    flushers, the search's 960,591 transitions came from 153,240 tabled steps.
    """

    token: str
    groups: tuple[tuple[int, ...], ...]
    daemons: tuple[bool, ...]
    free_tail: bool
    steps: dict[bytes, bytes] = attrs.Factory(dict)
    info: dict[bytes, _Wait] = attrs.Factory(dict)
    #: Positions at a bare ``yield`` (or not started): such a task yielded no
    #: wait, so it may run whatever the shared state (no ``info`` entry).
    bare: set[int] = attrs.Factory(set)
    #: Each distinct extra of a step, once (few: most steps find nothing and
    #: meet the same few events and yield points), and its index.
    extras: list[_Extra] = attrs.Factory(list)
    extra_index: dict[_Extra, int] = attrs.Factory(dict)
    #: What the functions the extras reached are (for coverage), by code id.
    code: dict[int, _Code] = attrs.Factory(dict)
    #: Whether to keep what this process learns for the others (a search on
    #: an executor); then the entries learnt since the last :meth:`export`.
    sharing: bool = False
    fresh_steps: dict[bytes, bytes] = attrs.Factory(dict)
    fresh_info: dict[bytes, _Wait] = attrs.Factory(dict)
    fresh_bare: set[int] = attrs.Factory(set)
    #: The numbers of the other processes' entries applied here.
    applied: set[int] = attrs.Factory(set)
    #: A Dask worker's threads share the tables: an extra gets its index
    #: under this lock, or two threads could give two extras one index.
    lock: threading.Lock = attrs.Factory(threading.Lock)
    #: The slots the symmetry groups take (read for every child: computed once).
    span: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self.span = max((t + 1 for group in self.groups for t in group), default=0)

    @classmethod
    def of(cls, expander: _Expander) -> _Tables:
        """This process's tables for ``expander``'s search (new ones for a new
        search; kept by search, :data:`_TABLES`). A Dask worker's threads on
        one search share them: each entry is written whole, and two threads
        that learn the same step learn the same bytes."""

        def make() -> _Tables:
            m = _fresh(expander.make, expander.symmetry, expander.dead_variables)
            tables = cls(
                expander.token,
                m.symmetry,
                tuple(t.daemon for t in m.tasks),
                m.trailing_finished_are_free,
            )
            m.discard()
            return tables

        return _TABLES.get(expander.token, make)

    def abstract(self, m: Machine) -> tuple[int, list[int]]:
        """The fingerprints of ``m``'s shared state and of each task's position,
        without the finished slots at the end when they are free (as the
        snapshot leaves them out: a state behaves the same with or without
        them, and the tables then key on fewer distinct sets of slots)."""
        pfps = [fingerprint(t.position()) for t in m.tasks]
        if self.free_tail:
            while pfps and pfps[-1] == _FIN:
                pfps.pop()
        return fingerprint(m.state_snapshot()), pfps

    def waits(self, pfps: list[int], tail: bytes) -> list[_Wait | None] | None:
        """What the tables know of each task's wait at a state (None for a
        finished task), or None if they do not know it of every task."""
        info, pack, bare = self.info, _KEY.pack, self.bare
        out: list[_Wait | None] = []
        for t, p in enumerate(pfps):
            if p == _FIN:
                out.append(None)
                continue
            if p in bare:
                out.append(_RUNS)
                continue
            w = info.get(pack(t, p) + tail)
            if w is None:
                return None
            out.append(w)
        return out

    def learn(self, m: Machine, pfps: list[int], tail: bytes) -> list[_Wait | None]:
        """Table each wait of ``m``'s tasks (``m`` stands at ``pfps``, ``tail``)."""
        out: list[_Wait | None] = [None] * len(pfps)
        for t in m.tasks:
            if t.done:
                continue
            if _at_bare_yield(t):
                self.bare.add(pfps[t.tid])
                if self.sharing:
                    self.fresh_bare.add(pfps[t.tid])
                out[t.tid] = _RUNS
                continue
            w = t.wait
            got = _ONE_WAIT[
                (
                    w is None or w.cond(),
                    w is not None and w.pins,
                    w is not None and w.idle,
                )
            ]
            key = _KEY.pack(t.tid, pfps[t.tid]) + tail
            out[t.tid] = self.info[key] = got
            if self.sharing:
                self.fresh_info[key] = got
        return out

    def step(self, m: Machine, tid: int, pfps: list[int]) -> bytes:
        """Step task ``tid`` of ``m`` (standing at ``pfps``) and say what it did;
        ``m`` is left standing at the child."""
        events: set[str] = set()
        reached: set[tuple[types.CodeType, int]] = set()
        m.events_seen, m.steps_seen = events, reached
        before = len(m.violations)
        # A step clears the cached position of the task it moves and of any
        # task it starts: the others stand where ``pfps`` says, and only the
        # moved ones need their frames read again.
        for t in m.tasks:
            t.pos = _UNMOVED
        m.step(tid)
        m.events_seen = m.steps_seen = None
        found = tuple(m.violations[before:])
        n = len(pfps)
        pfps2 = pfps + [_FIN] * (len(m.tasks) - n)
        for t in m.tasks:
            if t.pos is _UNMOVED:
                t.pos = None
            else:
                pfps2[t.tid] = fingerprint(t.position())
        if self.free_tail:
            while pfps2 and pfps2[-1] == _FIN:
                pfps2.pop()
        sfp2 = fingerprint(m.state_snapshot())
        # The slots past the child's last are finished: cut, not changed.
        changes = tuple((t, q) for t, q in enumerate(pfps2) if t >= n or q != pfps[t])
        code, ids = self.code, set()
        for co, offset in reached:
            cid = _code_id(co)
            if cid not in code:
                code[cid] = _describe(co)
            ids.add((cid, offset))
        extra = (found, frozenset(events), frozenset(ids))
        return _STEP.pack(sfp2, len(pfps2), self.index(extra)) + b"".join(
            _CHANGE.pack(t, q) for t, q in changes
        )

    def index(self, extra: _Extra) -> int:
        """``extra``'s index in :attr:`extras`, given it if it has none yet."""
        index = self.extra_index.get(extra)
        if index is None:
            with self.lock:
                index = self.extra_index.get(extra)
                if index is None:
                    index = self.extra_index[extra] = len(self.extras)
                    self.extras.append(extra)
        return index

    def learnt(self, key: bytes, step: bytes) -> None:
        """Keep a step :meth:`step` just tabled for the other processes."""
        if self.sharing:
            self.fresh_steps[key] = step

    def export(self) -> _Learnt | None:
        """What this process learnt since the last export (None: nothing), its
        steps' extras renumbered into the export's own list."""
        if not (self.fresh_steps or self.fresh_info or self.fresh_bare):
            return None
        renumber: dict[int, int] = {}
        steps: dict[bytes, bytes] = {}
        for key, step in self.fresh_steps.items():
            sfp2, n2, index = _STEP.unpack_from(step)
            ours = renumber.setdefault(index, len(renumber))
            steps[key] = _STEP.pack(sfp2, n2, ours) + step[_STEP.size :]
        extras = tuple(self.extras[index] for index in renumber)
        cids = {cid for extra in extras for cid, _ in extra[2]}
        out = _Learnt(
            _process(),
            steps,
            self.fresh_info,
            frozenset(self.fresh_bare),
            extras,
            {cid: self.code[cid] for cid in cids},
        )
        self.fresh_steps, self.fresh_info, self.fresh_bare = {}, {}, set()
        return out

    def take(self, shared: _Shared) -> None:
        """Apply the other processes' entries not applied here yet."""
        me = _process()
        for number, learnt in shared:
            if number in self.applied:
                continue
            self.applied.add(number)
            if learnt.origin == me:
                continue
            steps = self.steps
            ours = [self.index(extra) for extra in learnt.extras]
            for key, step in learnt.steps.items():
                if key not in steps:
                    sfp2, n2, index = _STEP.unpack_from(step)
                    steps[key] = _STEP.pack(sfp2, n2, ours[index]) + step[_STEP.size :]
            info = self.info
            for key, wait in learnt.info.items():
                if key not in info:
                    info[key] = _ONE_WAIT[wait]
            self.bare |= learnt.bare
            self.code.update(learnt.code)

    def canonical(self, pfps: list[int]) -> tuple[list[int], tuple[int, ...] | None]:
        """:meth:`~mmsim.engine.Machine.canonical_snapshot` on fingerprints: each
        symmetry group's positions sorted (by fingerprint, which orders the
        positions as well as any order does), finished slots at the end left
        out; and the place each task takes."""
        # A group's finished tasks at the end are cut from ``pfps``: back in.
        positions = pfps + [_FIN] * (self.span - len(pfps))
        pfps = positions[:]
        slot: list[int] | None = None
        for group in self.groups:
            order = sorted(group, key=lambda t: (pfps[t], t))
            if order == list(group):
                continue
            if slot is None:
                slot = list(range(len(pfps)))
            for place, tid in zip(group, order, strict=True):
                slot[tid] = place
                positions[place] = pfps[tid]
        if self.free_tail:
            while positions and positions[-1] == _FIN:
                positions.pop()
        return positions, (tuple(slot) if slot is not None else None)

    def finished(self, pfps: list[int]) -> bool:
        """Whether every task but the daemons is done (tasks started mid-run
        are never daemons)."""
        daemons = self.daemons
        return all(
            p == _FIN or (t < len(daemons) and daemons[t]) for t, p in enumerate(pfps)
        )


#: Each search's tables in this process.
_TABLES: _PerSearch[_Tables] = _PerSearch()
if hasattr(os, "register_at_fork"):  # a pool's worker forked mid-search
    os.register_at_fork(after_in_child=_TABLES.forked)
    os.register_at_fork(after_in_child=_RECALL.forked)
#: Numbers this process's searches, to name their tables.
_SEARCHES = itertools.count()


def _compose(
    src: tuple[int, ...] | None, dst: tuple[int, ...] | None, n: int
) -> tuple[int, ...] | None:
    """Where the task at each canonical place of the source stands in the child:
    ``dst[src^-1[place]]`` (None when that is the identity). Remembered: a
    search meets few pairs of permutations, on nearly every edge."""
    if src is None and dst is None:
        return None
    key = (src, dst, n)
    try:
        return _COMPOSED[key]
    except KeyError:
        if len(_COMPOSED) >= _COMPOSED_MAX:
            _COMPOSED.clear()
        out = _COMPOSED[key] = _composed(src, dst, n)
        return out


def _composed(
    src: tuple[int, ...] | None, dst: tuple[int, ...] | None, n: int
) -> tuple[int, ...] | None:
    inverse = list(range(n))
    if src is not None:
        for tid, place in enumerate(src):
            inverse[place] = tid
    out = tuple(
        (dst[inverse[p]] if dst is not None and inverse[p] < len(dst) else inverse[p])
        for p in range(n)
    )
    return None if out == tuple(range(n)) else out


_COMPOSED: dict[
    tuple[tuple[int, ...] | None, tuple[int, ...] | None, int], tuple[int, ...] | None
] = {}
#: Bounds :data:`_COMPOSED` (many tasks in large groups could meet many pairs).
_COMPOSED_MAX = 4096


def _describe(co: types.CodeType) -> _Code:
    """A function's kernel name, its file, and the offset and line of each yield."""
    known = _DESCRIBED.get(co)
    if known is not None:
        return known
    info = KERNEL_FUNCTIONS.get(co)
    basename = co.co_filename.rsplit("/", 1)[-1]
    if info is not None:
        name, where = info.name, info.file
        source = info.module.replace(".", "/") + ".py"
    else:
        name, where, source = co.co_qualname, "-", basename
    yields = tuple(
        (ins.offset, ins.positions.lineno if ins.positions is not None else 0)
        for ins in _instructions(co)
        if ins.opname == "YIELD_VALUE"
    )
    out = _DESCRIBED[co] = (
        name,
        where,
        source,
        tuple((o, line or 0) for o, line in yields),
    )
    return out


_DESCRIBED: dict[types.CodeType, _Code] = {}


# -- the search -------------------------------------------------------------------


#: One stored edge: the canonical place of the task that ran (a byte, as in a
#: schedule), the child's fingerprint, and the index + 1 of the symmetry map
#: it applied (0: none). Thirteen bytes where a tuple of three ints and its
#: list slot took about 130: the graph is most of a search's memory, and a
#: verdict reads it once, at the end.
_EDGE = struct.Struct("<BQI")


@attrs.define
class _Graph:
    """The explored state graph (nodes are fingerprints): what the verdicts are
    computed from. Edges are labelled by the canonical place of the task that
    ran, and packed (:data:`_EDGE`, read back by :meth:`out`); ``perms`` holds
    the maps of the edges where symmetry moved tasks (where each place went),
    each distinct map once."""

    root: int
    #: Each expanded node's out-edges, packed records of :data:`_EDGE`.
    edges: dict[int, bytes] = attrs.Factory(dict)
    #: The violations found on the edges that found any: (node, place, child).
    found: dict[tuple[int, int, int], tuple[Violation, ...]] = attrs.Factory(dict)
    perms: list[tuple[int, ...]] = attrs.Factory(list)
    #: Nodes where a run ended, with the violations found as it ended.
    ends: dict[int, tuple[Violation, ...]] = attrs.Factory(dict)
    oracle_ids: list[str] = attrs.Factory(list)
    regressions: set[str] = attrs.Factory(set)
    #: Nodes where some task sleeps in a wait for pins: (place, may run now).
    pin_waits: dict[int, tuple[tuple[int, bool], ...]] = attrs.Factory(dict)
    #: Task names by id, for messages.
    names: list[str] = attrs.Factory(list)
    _perm_index: dict[tuple[int, ...], int] = attrs.Factory(dict)

    def add_edge(
        self,
        node: int,
        place: int,
        child: int,
        found: tuple[Violation, ...],
        smap: tuple[int, ...] | None,
    ) -> None:
        """Store the edge ``node --place--> child``."""
        perm = 0
        if smap is not None:
            perm = self._perm_index.get(smap, 0)
            if not perm:
                self.perms.append(smap)
                perm = self._perm_index[smap] = len(self.perms)
        if found:
            self.found[(node, place, child)] = found
        self.edges[node] = self.edges.get(node, b"") + _EDGE.pack(place, child, perm)

    def out(self, node: int) -> Iterator[tuple[int, int, int]]:
        """``node``'s out-edges: (place, child, symmetry map index + 1 or 0)."""
        return _EDGE.iter_unpack(self.edges.get(node, b""))

    def violations(self, node: int, place: int, child: int) -> tuple[Violation, ...]:
        """What the edge ``node --place--> child`` found (mostly nothing)."""
        return self.found.get((node, place, child), ())

    def smap(self, perm: int) -> tuple[int, ...] | None:
        """The symmetry map an edge's record names (None: no place moved)."""
        return self.perms[perm - 1] if perm else None


class CheckpointError(ValueError):
    """A checkpoint file cannot be resumed (missing, malformed, another search)."""


class ModelMismatch(RuntimeError):
    """A process of the search ran another build of the model than the searching
    one (an executor's worker with another mmsim installed): its states are not
    this model's, and the search stops rather than merge them."""

    def __init__(self, process: tuple[str, int], theirs: str, ours: str) -> None:
        host, pid = process
        super().__init__(
            f"process {pid} on {host or 'this host'} ran another build of the "
            f"model (source digest {theirs}, this process's {ours}): every worker "
            "of the executor must have the same mmsim installed"
        )


class Interrupted(KeyboardInterrupt):
    """The search was interrupted; ``stats`` says how far it got and
    ``checkpoint`` where it was saved (None when no checkpoint was asked for)."""

    def __init__(self, stats: SearchStats, checkpoint: Path | None) -> None:
        super().__init__("search interrupted")
        self.stats = stats
        self.checkpoint = checkpoint


_CHECKPOINT_FORMAT = "mmsim-search/6"


@attrs.define
class _Search:
    """Everything a search knows between two batches: what a checkpoint holds.

    ``level`` holds the nodes of the current depth still to expand, ``nxt`` the
    nodes of the next depth found so far.
    """

    make: Callable[[], Machine]
    symmetry: bool
    preemption_bound: int | None
    stats: SearchStats
    graph: _Graph
    visited: dict[int, int]
    level: list[_Node]
    nxt: list[_Node] = attrs.Factory(list)
    depth: int = 0
    positions: set[tuple[int, int]] = attrs.Factory(set)
    code: dict[int, _Code] = attrs.Factory(dict)
    events: set[str] = attrs.Factory(set)
    leaves: set[Hashable] = attrs.Factory(set)
    #: Seconds spent before a resume (the statistics add them up).
    before: float = 0.0
    dead_variables: bool = True
    #: The model the search ran (:func:`_model_digest`), written with a
    #: checkpoint: a resume must run it too.
    model: str = ""
    #: The executor's workers' share of resident memory as their last batches
    #: reported, MiB (0 without workers): they hold it while the verdicts are
    #: computed, which :attr:`SearchStats.peak_mib` charges too.
    workers_mib: float = 0.0
    #: Whether the search tables steps (its fingerprints are of another kind).
    table_steps: bool = False

    def save(self, path: Path) -> None:
        """Write the search to ``path`` whole or not at all (a temporary file
        beside it, renamed: :mod:`mmsim._files`)."""
        self.model = _model_digest()
        state = attrs.asdict(self, recurse=False)
        try:
            write_whole(
                path,
                lambda f: pickle.dump(
                    (_CHECKPOINT_FORMAT, state), f, pickle.HIGHEST_PROTOCOL
                ),
            )
        except OSError as exc:
            raise CheckpointError(
                f"{path}: cannot write the checkpoint ({exc.strerror or exc})"
            ) from None

    @staticmethod
    def check_writable(path: Path) -> None:
        """Fail now, not at the end of a long search, where ``path`` cannot be
        written (``path`` itself is left alone: it may be the checkpoint being
        resumed)."""
        try:
            check_writable(path)
        except OSError as exc:
            raise CheckpointError(
                f"{path}: cannot write a checkpoint there ({exc.strerror or exc})"
            ) from None

    @classmethod
    def load(cls, path: Path) -> _Search:
        """Read a checkpoint :meth:`save` wrote. It is a pickle (it holds the
        machine factory, a callable), and unpickling can run code: resume only
        checkpoints you made."""
        try:
            with path.open("rb") as f:
                if f.read(1) != pickle.PROTO:
                    raise CheckpointError(
                        f"{path}: not a search checkpoint (not a pickle, which is "
                        "what mmsim writes)"
                    )
                f.seek(0)
                fmt, state = pickle.load(f)
        except CheckpointError:
            raise
        except FileNotFoundError:
            raise CheckpointError(f"{path}: no such checkpoint file") from None
        except Exception as exc:
            raise CheckpointError(
                f"{path}: not a search checkpoint, or a damaged one "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if fmt != _CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: checkpoint format {fmt!r}, not {_CHECKPOINT_FORMAT!r}"
            )
        try:
            return cls(**state)
        except TypeError as exc:
            raise CheckpointError(
                f"{path}: a damaged search checkpoint ({exc})"
            ) from None


def explore(
    make: Callable[[], Machine],
    bounds: Bounds | None = None,
    *,
    stop_on_first: bool = False,
    symmetry: bool = True,
    dead_variables: bool = True,
    executor: Executor | None = None,
    batch_size: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[SearchStats], None] | None = None,
    leaf_key: Callable[[Machine, str], Hashable] | None = None,
    checkpoint: Path | None = None,
    resume: Path | None = None,
    table_steps: bool = False,
) -> SearchResult:
    """Search every interleaving of the machine ``make()`` builds.

    Args:
        make: builds a fresh machine; called again for every replay. With an
            ``executor`` it (and ``leaf_key``) must be picklable; with a
            ``checkpoint``, it must pickle and compare equal to itself.
        bounds: the search limits.
        stop_on_first: stop at the first violation; the search is breadth first,
            so it is one of the shortest.
        symmetry: merge states that differ by a permutation of identical tasks.
        dead_variables: merge states that differ only in locals no task will
            read again (:func:`~mmsim.engine.dead_locals`).
        executor: expand each level's states in batches on this executor (a
            ``ProcessPoolExecutor``, Dask's ``Client.get_executor()``); the result
            is the same as without one. Its workers must run this build of
            mmsim (else :class:`ModelMismatch`); a cluster with no worker is
            waited for, for ever unless ``max_time`` bounds the search.
        batch_size: states per batch (default: a level split in four per
            worker, at most 256).
        clock: the wall clock, for ``max_time`` and the statistics.
        progress: called after every batch with the statistics so far (states,
            transitions, depth, seconds).
        leaf_key: called in the expanding process at each state where a run ends
            (after quiescing) with the machine and ``"stopped"`` or
            ``"finished"``; the values are returned in ``SearchResult.leaves``.
        checkpoint: where to save the search when it is interrupted (Ctrl-C:
            :class:`Interrupted` is raised once it is saved) or cut by the time,
            memory or state budget.
        resume: a checkpoint to continue from, for the same ``make`` (a
            pickle: resume only checkpoints you made).
        table_steps: learn each task's steps as a table and compose children
            from it, replaying a node only for a step not yet tabled
            (:class:`_Tables`: the same states and verdicts, on the model's
            promise that tasks meet only in shared state).
    """
    search = _explore(
        make,
        bounds or Bounds(),
        stop_on_first=stop_on_first,
        symmetry=symmetry,
        dead_variables=dead_variables,
        executor=executor,
        batch_size=batch_size,
        clock=clock,
        progress=progress,
        leaf_key=leaf_key,
        checkpoint=checkpoint,
        resume=resume,
        table_steps=table_steps,
    )
    return _result(search, make, symmetry, dead_variables)


@watchdog()
def _explore(
    make: Callable[[], Machine],
    bounds: Bounds,
    *,
    stop_on_first: bool,
    symmetry: bool,
    dead_variables: bool,
    executor: Executor | None,
    batch_size: int | None,
    clock: Callable[[], float],
    progress: Callable[[SearchStats], None] | None,
    leaf_key: Callable[[Machine, str], Hashable] | None,
    checkpoint: Path | None,
    resume: Path | None,
    table_steps: bool = False,
) -> _Search:
    """:func:`explore`'s search, returned whole: its state graph as well as its
    statistics (the verdicts are computed from the graph; the benchmarks of
    :mod:`benchmarks.bench_reductions` read it)."""
    start = clock()
    if checkpoint is not None:
        _Search.check_writable(checkpoint)
    if resume is not None:
        search = _Search.load(resume)
        differs = _differences(search.make, make)
        for name, ours in (
            ("symmetry", symmetry),
            ("dead_variables", dead_variables),
            ("table_steps", table_steps),
        ):
            theirs = getattr(search, name)
            if theirs != ours:
                # Told as the API and the command line spell it: a user of
                # either must learn how to resume it.
                flag = f"--no-{name.replace('_', '-')}"
                if theirs:
                    flag = "--table-steps" if name == "table_steps" else f"no {flag}"
                differs.append(
                    f"{name} {theirs}, not {ours}: resume with {name}={theirs}, {flag}"
                )
        if differs:
            raise CheckpointError(
                f"{resume}: the checkpoint is of another search ({'; '.join(differs)})"
            )
        if search.model != _model_digest():
            raise CheckpointError(
                f"{resume}: the checkpoint was made with another build of the "
                f"model (source digest {search.model}, this one {_model_digest()}): "
                "its states are not this model's"
            )
        if search.preemption_bound != bounds.preemption_bound:
            raise CheckpointError(
                f"{resume}: the checkpoint was made with preemption bound "
                f"{search.preemption_bound}, not {bounds.preemption_bound}"
            )
        # A budget cut the saved search; the new bounds decide afresh. Other
        # cuts (the preemption bound) stand: what they left out stays out.
        budgets = ("max_time=", "max_states=", "max_memory=")
        search.stats.cut_by = [
            c for c in search.stats.cut_by if not c.startswith(budgets)
        ]
        search.stats.complete = not search.stats.cut_by
    else:
        search = _start(make, bounds, symmetry, leaf_key, dead_variables, table_steps)
    stats = search.stats
    before = search.before
    expander = _Expander(
        make,
        bounds.preemption_bound,
        symmetry,
        leaf_key,
        dead_variables,
        stop_on_first,
        table_steps,
        # Unique to the search, even on a cluster that outlives its client.
        f"{_process()}/{next(_SEARCHES)}/{time.time_ns()}",
        share=table_steps and executor is not None,
    )
    # What the processes learnt in the level before this one (numbered) and in
    # this one: a level's batches take the one before's, as every batch of a
    # level is handed out at its start.
    before_level: _Shared = ()
    this_level: list[tuple[int, _Learnt]] = []
    numbers = itertools.count()

    def cut(reason: str) -> None:
        stats.complete = False
        if reason not in stats.cut_by:
            stats.cut_by.append(reason)

    def save() -> None:
        """Bring the time up to now and write the checkpoint, if one is kept."""
        stats.seconds = before + clock() - start
        if checkpoint is not None:
            search.before = stats.seconds
            search.save(checkpoint)

    # Machines standing at nodes still to expand, in this process only: a
    # checkpoint does not hold them, and without them a node is replayed.
    live: dict[bytes, Machine] = {}
    # Each worker process's resident memory, as its last batch reported it.
    workers: dict[tuple[str, int], float] = {}
    search.workers_mib = 0.0
    stopped = False
    # Numbers the batches in the order they are merged (see :class:`_Recall`).
    numbered = 0
    _TABLES.hold(expander.token)
    _RECALL.hold(expander.token)
    try:
        while (search.level or search.nxt) and not stopped:
            if not search.level:
                search.level, search.nxt = search.nxt, []
                search.depth += 1
            if bounds.max_steps is not None and search.depth >= bounds.max_steps:
                cut(f"max_steps={bounds.max_steps}")
                stats.executions += len(search.level)
                break
            at_once = _workers(executor) if executor is not None else 1
            size = batch_size or _batch_size(len(search.level), executor, at_once)
            batches = [
                search.level[i : i + size] for i in range(0, len(search.level), size)
            ]
            # An executor's batches are waited for no longer than the time left: a
            # cluster with no worker, or a stuck one, would otherwise hold the
            # search past its budget, for ever.
            timeout = (
                max(0.0, bounds.max_time - (clock() - start))
                if executor is not None and bounds.max_time is not None
                else None
            )
            if expander.share:
                before_level, this_level = tuple(this_level), []
            results = _run_batches(
                expander,
                batches,
                executor,
                live,
                timeout,
                before_level,
                at_once,
                search.visited,
                search.depth,
                numbered,
            )
            numbered += len(batches)
            # A Ctrl-C anywhere here finds the search whole: a batch is merged in
            # full (the signal waits) or not at all (its states stay to expand).
            try:
                for nodes in batches:
                    try:
                        batch = next(results)
                    except TimeoutError:
                        results.close()  # cancels the batches not yet started
                        cut(f"max_time={bounds.max_time:g}s")
                        save()
                        stopped = True
                        break
                    if batch.model and batch.model != _model_digest():
                        raise ModelMismatch(batch.process, batch.model, _model_digest())
                    if batch.learnt is not None:
                        this_level.append((next(numbers), batch.learnt))
                    with _sigint_deferred() as caught:
                        stopped = _merge(
                            search, nodes, batch, stop_on_first, leaf_key, cut, live
                        )
                        del search.level[: len(nodes)]
                    if caught:
                        raise KeyboardInterrupt
                    stats.seconds = before + clock() - start
                    if batch.process != _process():
                        workers[batch.process] = batch.rss
                        search.workers_mib = sum(workers.values())
                    rss = _rss_mib(shared=bool(workers)) + search.workers_mib
                    stats.peak_mib = max(stats.peak_mib, rss)
                    if progress is not None:
                        progress(stats)
                    if stopped:
                        break
                    if not (search.level or search.nxt):
                        break  # nothing left: a budget reached now cuts nothing
                    if (
                        bounds.max_time is not None
                        and clock() - start > bounds.max_time
                    ):
                        cut(f"max_time={bounds.max_time:g}s")
                        stopped = True
                    elif (
                        bounds.max_states is not None
                        and stats.states >= bounds.max_states
                    ):
                        cut(f"max_states={bounds.max_states}")
                        stopped = True
                    elif bounds.max_memory is not None and rss > bounds.max_memory:
                        cut(f"max_memory={bounds.max_memory:g}MiB")
                        stopped = True
                    if stopped:
                        save()
                        break
            except (KeyboardInterrupt, BrokenExecutor):
                _discard_all(live)
                save()
                raise Interrupted(stats, checkpoint) from None
        _discard_all(live)
        stats.seconds = before + clock() - start
        return search
    finally:
        # This process's tables and recall of the search serve no other.
        _TABLES.drop(expander.token)
        _RECALL.drop(expander.token)


def _differences(theirs: Any, ours: Any) -> list[str]:
    """How a checkpoint's machine builder differs from this search's, field by
    field where both are the same attrs class (a scenario, policy, filesystem)."""
    if theirs == ours:
        return []
    if type(theirs) is type(ours) and attrs.has(type(ours)):
        return [
            f"{f.name} {getattr(theirs, f.name)!r}, not {getattr(ours, f.name)!r}"
            for f in attrs.fields(type(ours))
            if getattr(theirs, f.name) != getattr(ours, f.name)
        ]
    return [f"machines from {theirs!r}, not {ours!r}"]


def _start(
    make: Callable[[], Machine],
    bounds: Bounds,
    symmetry: bool,
    leaf_key: Callable[[Machine, str], Hashable] | None,
    dead_variables: bool,
    table_steps: bool = False,
) -> _Search:
    root = _fresh(make, symmetry, dead_variables)
    bounded = bounds.preemption_bound is not None
    state = b""
    if table_steps:
        tables = _Tables("", root.symmetry, (), root.trailing_finished_are_free)
        sfp, pfps = tables.abstract(root)
        state = _pack(sfp, pfps, tables.learn(root, pfps, _tail(sfp, pfps)))
        root_key = _tabled_key(sfp, tables.canonical(pfps)[0], -1 if bounded else None)
    else:
        root_key, _ = _key(root, None, bounded)
    graph = _Graph(
        root_key,
        oracle_ids=[o.id for o in root.oracles],
        regressions={o.id for o in root.oracles if o.regression},
        names=[t.name for t in root.tasks],
    )
    search = _Search(
        make,
        symmetry,
        bounds.preemption_bound,
        SearchStats(states=1),
        graph,
        {root_key: 0},  # least preemptions each state was reached with
        [(root_key, b"", -1, 0, state)],
        dead_variables=dead_variables,
        table_steps=table_steps,
    )
    status = settle(root)
    if status != "running":
        graph.ends[root_key] = tuple(root.violations)
        search.stats.executions = 1
        search.stats.finished_runs = int(status == "finished")
        if leaf_key is not None:
            search.leaves.add(leaf_key(root, status))
        search.level = []
    return search


def _merge(
    search: _Search,
    nodes: list[_Node],
    batch: _Batch,
    stop_on_first: bool,
    leaf_key: Callable[[Machine, str], Hashable] | None,
    cut: Callable[[str], None],
    live: dict[bytes, Machine] | None = None,
) -> bool:
    """Fold a batch's expansions into the search; True to stop (first violation).

    ``live`` collects, by schedule, the machines of up to :data:`_LIVE_MAX` new
    nodes of the next level, when the batch handed them back; the others are
    discarded.
    """
    try:
        stats, graph, visited = search.stats, search.graph, search.visited
        stats.replays += batch.replays
        stats.replayed_steps += batch.replayed_steps
        search.positions |= batch.positions
        search.code.update(batch.code)
        search.events |= batch.events
        # A batch stopped at its first violation holds fewer expansions than nodes;
        # the merge stops at that violation too.
        for n, ((node, schedule, _, _, _), exp) in enumerate(
            zip(nodes, batch.expansions, strict=False)
        ):
            if exp.cut:
                cut(f"preemption_bound={search.preemption_bound}")
            for c, ch in enumerate(exp.children):
                stats.transitions += 1
                # The node's own key, not the batch's copy: a worker's batch
                # arrives unpickled, and one int object per node is enough.
                graph.add_edge(node, ch.place, ch.key, ch.found, ch.smap)
                if ch.found and stop_on_first:
                    graph.ends.setdefault(ch.key, ())
                    cut("stopped at the first violation")
                    return True
                seen = visited.get(ch.key)
                if seen is not None and seen <= ch.preemptions:
                    stats.revisits += 1
                    stats.executions += 1
                    if stop_on_first and ch.end:
                        cut("stopped at the first violation")
                        return True
                    continue
                if ch.status == _KNOWN:  # its end was left out: it must be held
                    raise RuntimeError(
                        f"state {ch.key:#x} was taken for held, but is new"
                    )
                if seen is None:
                    stats.states += 1
                    if ch.pins:
                        graph.pin_waits[ch.key] = ch.pins
                visited[ch.key] = ch.preemptions
                stats.max_depth = max(stats.max_depth, search.depth + 1)
                if ch.status != "running":
                    graph.ends[ch.key] = ch.end
                    stats.executions += 1
                    stats.finished_runs += ch.status == "finished"
                    if leaf_key is not None:
                        search.leaves.add(ch.leaf)
                    if stop_on_first and ch.end:
                        cut("stopped at the first violation")
                        return True
                    continue
                child = schedule + bytes((ch.tid,))
                search.nxt.append((ch.key, child, ch.last, ch.preemptions, ch.state))
                if live is not None and batch.live and len(live) < _LIVE_MAX:
                    m = batch.live[n][c]
                    if m is not None:
                        live[child] = m
        # A batch cut short stops at its violation above: no node is ever dropped.
        assert len(batch.expansions) == len(nodes)
        return False
    finally:
        kept = {id(m) for m in live.values()} if live is not None else set()
        for machines in batch.live:
            for m in machines:
                if m is not None and id(m) not in kept:
                    m.discard()


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C while a batch is merged, so a checkpoint is never half a batch;
    the list it gives is not empty when Ctrl-C came meanwhile."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


def _fresh(
    make: Callable[[], Machine], symmetry: bool, dead_variables: bool = True
) -> Machine:
    m = make()
    if not symmetry:
        m.symmetry = ()
    if not dead_variables:
        m.dead_variables = False
        for task in m.tasks:
            task.dead_variables, task.pos = False, None
    return m


def _batch_size(n: int, executor: Executor | None, workers: int) -> int:
    if executor is None:
        return max(1, min(256, n))
    return max(1, min(256, -(-n // (4 * workers))))


def _workers(executor: Executor) -> int:
    """How many batches ``executor`` runs at once: a process or thread pool's
    workers; a Dask cluster's threads, asked at each level, as its workers come
    and go; else 2.

    The batches of a level are sized to give each about four, and the shared
    tables ride on the first two each: had a cluster of sixteen been taken for
    two, a level of a thousand states would have gone out as eight batches,
    and half the cluster would have sat idle.
    """
    pool = getattr(executor, "_max_workers", None)
    if isinstance(pool, int) and pool > 0:
        return pool
    # distributed's ClientExecutor keeps its Client there (no public accessor).
    nthreads = getattr(getattr(executor, "_client", None), "nthreads", None)
    if callable(nthreads):
        try:
            # Bounded: a scheduler gone silent must not hold the search here,
            # past its time budget, which only the batches' wait enforces.
            threads = sum(nthreads(callback_timeout=_ASK_DASK_S).values())
        except Exception:  # a scheduler that cannot say: the batches wait for it
            threads = 0
        if isinstance(threads, int) and threads > 0:
            return threads
    return 2


#: How long :func:`_workers` waits for a Dask scheduler to say its threads.
_ASK_DASK_S = 5.0


def _run_batches(
    expander: _Expander,
    batches: list[list[_Node]],
    executor: Executor | None,
    live: dict[bytes, Machine],
    timeout: float | None = None,
    shared: _Shared = (),
    workers: int = 2,
    known: dict[int, int] | None = None,
    depth: int = 0,
    number: int = 0,
) -> Generator[_Batch, None, None]:
    """Expand ``batches`` (of level ``depth``, numbered from ``number`` on)
    here or on ``executor``; with ``shared``, the other processes' tabled
    steps go with the batches first handed out. A batch expanded here sees
    ``known`` (the visited states) as the batches before it left it: the
    caller merges each before it asks for the next. On ``executor``, a worker
    recalls what its own earlier batches handed back (:class:`_Recall`)."""
    # A level too small to share costs more in messages than it saves: the
    # first levels of every search, and the last of most, run here.
    if executor is None or sum(len(b) for b in batches) < _SMALL_LEVEL:
        if shared:
            expander = attrs.evolve(expander, shared=shared)
        for batch in batches:
            machines = [live.pop(node[1], None) for node in batch]
            yield expander(batch, machines, _LIVE_MAX - len(live), known)
        return
    _discard_all(live)
    # Each worker takes what it lacks once, from the first batch it gets: a
    # pool hands the batches out in order, so the first two per worker reach
    # every worker (very likely; a worker that misses them only replays more).
    first = 2 * workers if shared else 0
    carrying = attrs.evolve(expander, shared=shared)
    expanders = [carrying if i < first else expander for i in range(len(batches))]
    yield from executor.map(
        _expand,
        expanders,
        batches,
        [depth] * len(batches),  # sized: Dask's map wants lists
        list(range(number, number + len(batches))),
        timeout=timeout,
    )


def _expand(
    expander: _Expander, nodes: list[_Node], depth: int = 0, number: int = 0
) -> _Batch:
    """Expand batch ``number`` of level ``depth`` in a worker."""
    if expander.preemption_bound is not None or not expander.token:
        return expander(nodes)
    recall = _Recall.of(expander.token)
    emitted: dict[int, int] = {}
    batch = expander(nodes, known=recall.before(depth, number), emitted=emitted)
    recall.remember(depth, number, emitted)
    return batch


def _discard_all(live: dict[bytes, Machine]) -> None:
    for m in live.values():
        m.discard()
    live.clear()


#: Levels with fewer states than this are expanded in the searching process.
_SMALL_LEVEL = 16
#: Machines kept running between two levels, each saving one replay. Few: the
#: garbage collector walks every object they hold at each full collection,
#: which costs more than the replays once there are thousands.
_LIVE_MAX = 256


def _model_digest() -> str:
    """Which model this process runs: a digest of the source of mmsim's modules
    and of its built-in strategies, as installed here (read once a process).

    A state one process finds is the same kernel state in another only if both
    run the same model: a search refuses batches, and a resume a checkpoint,
    made under another digest. The version number would not do: an edited
    checkout keeps it. The digest names each file by its module, so an editable
    install and a wheel of the same source agree. Third-party policies and
    scenarios are not in it. Nor is pytest's rewriting of the asserts, which
    positions do not see (:func:`~mmsim.engine._frame_plan`); but the bytecode
    version and ``-O`` are: they change the bytecode positions are read from,
    and ``-O`` drops the model's own asserts.
    """
    global _DIGEST
    if _DIGEST is None:
        import importlib

        sources: dict[str, bytes] = {}
        for name in ("mmsim", "mmsim.strategies"):
            pkg = importlib.import_module(name)
            assert pkg.__file__ is not None
            root = Path(pkg.__file__).parent
            for f in root.rglob("*.py"):
                module = ".".join((name, *f.relative_to(root).with_suffix("").parts))
                # A wheel installs the strategies inside the package: count them once.
                sources.setdefault(module, f.read_bytes())
        h = hashlib.blake2b(digest_size=8)
        h.update(f"{sys.implementation.cache_tag} -O{sys.flags.optimize}\0".encode())
        for module, text in sorted(sources.items()):
            h.update(module.encode() + b"\0" + len(text).to_bytes(8, "big") + text)
        _DIGEST = h.hexdigest()
    return _DIGEST


_DIGEST: str | None = None


def _process() -> tuple[str, int]:
    """This process, among those of a search: host name and pid."""
    return (os.uname().nodename if hasattr(os, "uname") else "", os.getpid())


def _rss_mib(shared: bool = False) -> float:
    """Resident memory of this process now, MiB.

    With ``shared`` (a search that has other processes), the proportional set
    size, from ``/proc/self/smaps_rollup`` (Linux 4.14): a page shared by
    ``n`` processes counts ``1/n`` in each, so the figures of a pool forked
    from the searching process add up to the memory they hold together,
    where resident sizes would count every page shared since the fork once
    in each process. Reading it walks the process's page tables (1.5 to 2 ms
    at 100 to 170 MiB: 1.7% of a search's time when read at every batch), so
    a search without other processes does not, and a reading less than
    :data:`_PSS_FRESH_S` old is used again.

    Linux says the resident size in ``/proc/self/statm``. Elsewhere
    ``getrusage`` gives only the process's peak so far, which is returned
    instead: there a memory budget counts what the process held before the
    search too. (The peak is no use on Linux: it even carries over an
    ``exec`` from the process that started this one, so a search run by a
    large parent would be charged for the parent's memory.)
    """
    if shared:
        now, pid = time.monotonic(), os.getpid()
        if _PSS_READ[0] == pid and now - _PSS_READ[1] < _PSS_FRESH_S:
            return _PSS_READ[2]
        try:
            with open("/proc/self/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        _PSS_READ[:] = [pid, now, int(line.split()[1]) / 1024]
                        return _PSS_READ[2]
        except OSError:
            pass
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_MIB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows: no figure, so no memory budget either
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


_PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0

#: The last proportional set size read (by which process, when on the
#: monotonic clock, MiB: a forked worker inherits its parent's), and how long
#: it is used again, seconds: a budget checked against it is that much late at
#: most.
_PSS_READ: list[float] = [0, -math.inf, 0.0]
_PSS_FRESH_S = 0.5


def _order(enabled: list[int], last: int | None) -> list[int]:
    """Children in the order explored: the running task first (no preemption)."""
    if last is not None and last in enabled:
        return [last, *(t for t in enabled if t != last)]
    return list(enabled)


# -- verdicts from the graph ------------------------------------------------------------


def concretize(
    make: Callable[[], Machine],
    places: Iterable[int],
    *,
    symmetry: bool = True,
    dead_variables: bool = True,
    table_steps: bool = False,
) -> tuple[int, ...]:
    """Turn a path of canonical places into the task ids of a concrete run.

    Without symmetry a place is the task id. With it, the task at a canonical
    place is found again at every step of a replay (in the order of positions
    the search used: a tabled search orders them by fingerprint).
    """
    places = list(places)
    m = _fresh(make, symmetry, dead_variables)
    if not m.symmetry:
        return tuple(places)
    tables = _Tables("", m.symmetry, (), m.trailing_finished_are_free)
    m.replaying = True
    out: list[int] = []
    for place in places:
        if out:
            # Each step runs once the next place is asked for, so the last never
            # runs: it may oops (KernelBug), which a replay does not catch, and
            # only its task is wanted.
            m.step(out[-1])
        if table_steps:
            slot = tables.canonical(tables.abstract(m)[1])[1]
        else:
            _, slot = m.canonical_snapshot()
        out.append(place if slot is None else slot.index(place))
    return tuple(out)


def _shortest_paths(graph: _Graph) -> dict[int, tuple[int, int] | None]:
    """Breadth-first parents from the root: (parent, place of the task run)."""
    parent: dict[int, tuple[int, int] | None] = {graph.root: None}
    queue: deque[int] = deque([graph.root])
    while queue:
        node = queue.popleft()
        for place, child, _ in graph.out(node):
            if child not in parent:
                parent[child] = (node, place)
                queue.append(child)
    return parent


def _path(parent: dict[int, tuple[int, int] | None], node: int) -> list[int]:
    path: list[int] = []
    while (p := parent[node]) is not None:
        node, place = p
        path.append(place)
    path.reverse()
    return path


def _reachable(graph: _Graph, skip: str) -> set[int]:
    """The states the root reaches without an edge that violates ``skip``."""
    seen = {graph.root}
    queue: deque[int] = deque([graph.root])
    while queue:
        node = queue.popleft()
        for place, child, _ in graph.out(node):
            if child in seen or any(
                v.oracle == skip for v in graph.violations(node, place, child)
            ):
                continue
            seen.add(child)
            queue.append(child)
    return seen


def _note_peak(stats: SearchStats, workers: float) -> None:
    """Charge what the process holds now to the search's peak memory.

    The verdicts are computed after the last batch, from structures as large
    as the state graph (on ``dio/001`` 2x2 under defer-release, breadth-first
    parents and a reverse graph took the process from 100 to 200 MiB): a peak
    sampled only after batches would leave them out.
    """
    if workers:
        _PSS_READ[1] = -math.inf  # this phase allocates fast: read afresh
    stats.peak_mib = max(stats.peak_mib, _rss_mib(shared=workers > 0) + workers)


@attrs.define
class _Paths:
    """Shortest paths from the root, computed on first use: a breadth-first
    parent for every state is as large as the graph, and a search with nothing
    to show (a proof, a cut search that found nothing) does not need one."""

    graph: _Graph
    #: Called once the parents are built (:func:`_note_peak`).
    note: Callable[[], None]
    _parent: dict[int, tuple[int, int] | None] | None = attrs.field(
        default=None, init=False
    )

    @property
    def parent(self) -> dict[int, tuple[int, int] | None]:
        if self._parent is None:
            self._parent = _shortest_paths(self.graph)
            self.note()
        return self._parent

    def path(self, node: int) -> list[int]:
        """The places of the tasks run on a shortest path from the root."""
        return _path(self.parent, node)

    def order(self, nodes: Iterable[int]) -> dict[int, int]:
        """The breadth-first rank of each of ``nodes`` the root reaches: of two
        equally short counterexamples, the first found is shown."""
        wanted = set(nodes)
        if not wanted:
            return {}
        return {n: i for i, n in enumerate(self.parent) if n in wanted}


def _result(
    search: _Search, make: Callable[[], Machine], symmetry: bool, dead_variables: bool
) -> SearchResult:
    stats, graph = search.stats, search.graph

    def note() -> None:
        _note_peak(stats, search.workers_mib)

    note()
    stats.collision_bound = stats.states**2 / 2.0**65
    paths = _Paths(graph, note)
    ids = list(graph.oracle_ids)
    for vs in [
        *graph.ends.values(),
        *graph.found.values(),
    ]:
        ids += [v.oracle for v in vs if v.oracle not in ids]

    results: dict[str, OracleResult] = {}
    if UNBOUNDED_WAIT in ids:
        ids.remove(UNBOUNDED_WAIT)
        results[UNBOUNDED_WAIT] = _unbounded_wait(stats, graph, search.visited, paths)
    if STARVATION in ids:
        ids.remove(STARVATION)
        results[STARVATION] = _starvation(stats, graph, paths)
    ends = {node for node, found in graph.ends.items() if found}
    order = paths.order({node for node, _, _ in graph.found} | ends)
    for oid in ids:
        best: tuple[int, int, Counterexample] | None = None
        count = 0
        for (node, place, _), found in graph.found.items():
            hit = next((v for v in found if v.oracle == oid), None)
            if hit is None or node not in order:
                continue
            count += 1
            path = (*paths.path(node), place)
            cand = (len(path), order[node], Counterexample(path, hit))
            if best is None or cand[:2] < best[:2]:
                best = cand
        for node, found in graph.ends.items():
            if not found:
                continue
            hit = next((v for v in found if v.oracle == oid), None)
            if hit is None or node not in order:
                continue
            count += 1
            path = tuple(paths.path(node))
            cand = (len(path), order[node], Counterexample(path, hit, at_end=True))
            if best is None or cand[:2] < best[:2]:
                best = cand
        if best is None:
            verdict = Verdict.NEVER if stats.complete else Verdict.UNKNOWN
            results[oid] = OracleResult(oid, verdict, 0, None)
            continue
        verdict = Verdict.SOMETIMES
        if stats.complete and _always(graph, oid, note):
            verdict = Verdict.ALWAYS
        results[oid] = OracleResult(
            oid, verdict, count, best[2], regression=oid in graph.regressions
        )

    # Counterexamples were found as canonical places: make them concrete runs.
    for oid, r in list(results.items()):
        if r.counterexample is not None:
            cex = r.counterexample
            results[oid] = attrs.evolve(
                r,
                counterexample=attrs.evolve(
                    cex,
                    schedule=concretize(
                        make,
                        cex.schedule,
                        symmetry=symmetry,
                        dead_variables=dead_variables,
                        table_steps=search.table_steps,
                    ),
                ),
            )

    # The correctness verdict: regression outcomes are reported beside it.
    judged = [r for r in results.values() if not r.regression]
    rank = [Verdict.ALWAYS, Verdict.SOMETIMES, Verdict.UNKNOWN, Verdict.NEVER]
    overall = min((r.verdict for r in judged), key=rank.index, default=None)
    if overall is None:
        overall = Verdict.NEVER if stats.complete else Verdict.UNKNOWN
    shown = [r.counterexample for r in judged if r.counterexample is not None]
    if not shown:  # nothing is wrong: show a regression's run, if there is one
        shown = [r.counterexample for r in results.values() if r.counterexample]
    headline = min(shown, key=lambda c: len(c.schedule), default=None)
    note()
    return SearchResult(
        overall,
        stats,
        results,
        headline,
        unreached=_unreached(search.positions, search.code),
        events=frozenset(search.events),
        leaves=frozenset(search.leaves),
    )


def _unreached(
    positions: set[tuple[int, int]], code: dict[int, _Code]
) -> tuple[Unreached, ...]:
    """The yields of the entered kernel functions that no run stopped at."""
    out = []
    for cid, (name, where, source, yields) in sorted(
        code.items(), key=lambda kv: kv[1][:3]
    ):
        for offset, line in yields:
            if (cid, offset) not in positions:
                out.append(Unreached(name, where, source, line))
    return tuple(dict.fromkeys(out))


#: The liveness oracle, judged on the whole state graph once the search is complete.
UNBOUNDED_WAIT = "unbounded-wait"


def _unbounded_wait(
    stats: SearchStats, graph: _Graph, states: dict[int, int], paths: _Paths
) -> OracleResult:
    """States from which no run can ever finish: someone waits for ever.

    A deadlock stops every task; this also catches the waits that only daemons
    outlive (kswapd spinning while DIO completion waits for a lock that writeback
    holds while it waits for the DIO). A state is stuck when no run-ending state
    is reachable from it; the counterexample leads to the nearest stuck state.
    Only a complete search can tell: a cut search says Unknown. (Symmetry keeps
    this exact: a permuted state can end exactly when the original can.)

    The states that can end are a fixpoint over the forward edges, taken in
    ``states``' order reversed (the order they were found in, so deepest
    first): a pass settles every state whose way to an end goes deeper, and a
    way that goes back to an earlier state costs another pass. A reverse graph
    would need one pass, and memory as large as the graph itself.
    """
    if not stats.complete:
        return OracleResult(UNBOUNDED_WAIT, Verdict.UNKNOWN, 0, None)
    can_end = set(graph.ends)
    changed = True
    while changed:
        changed = False
        for node in reversed(states):
            if node not in can_end and any(
                child in can_end for _, child, _ in graph.out(node)
            ):
                can_end.add(node)
                changed = True
    paths.note()
    if all(node in can_end for node in states):
        return OracleResult(UNBOUNDED_WAIT, Verdict.NEVER, 0, None)
    stuck = [n for n in paths.parent if n not in can_end]  # breadth-first order
    first = stuck[0]
    message = "from here no run can finish: the waiting tasks wait for ever"
    cex = Counterexample(
        tuple(paths.path(first)), Violation(UNBOUNDED_WAIT, message, "-")
    )
    verdict = Verdict.ALWAYS if first == graph.root else Verdict.SOMETIMES
    return OracleResult(UNBOUNDED_WAIT, verdict, len(stuck), cex)


#: The fairness oracle: a wait for pins that other tasks can postpone for ever.
STARVATION = "starvation"


def _starvation(stats: SearchStats, graph: _Graph, paths: _Paths) -> OracleResult:
    """A task waiting for pins that an endless run never lets through.

    For each task T asleep in a wait for pins, take the states where T sits in
    that wait and the steps other tasks take between them. A cycle there on which
    T's condition is false at some states and true at others is an infinite run
    in which T never proceeds although the pins keep going away: even a weakly
    fair scheduler (one that runs a task continuously able to run) may follow
    it, because T is not continuously able to run. The kernel's wait queues give no
    stronger guarantee: a woken waiter that finds a new pin sleeps again. This is
    Jan Kara's "repeated short pins" denial of service.

    Under symmetry T is followed by its canonical place, which an edge may move
    (``graph.perms``): the cycles are sought over (state, place) pairs.

    A cycle found is a real infinite run, so a cut search can report one; only a
    complete search can say Never.
    """
    # Every state in pin_waits was reached by an edge of the search (the merge
    # records it as it is found): no reachability test, and no shortest paths
    # unless a cycle is found.
    waiting: dict[tuple[int, int], bool] = {}
    for node, pins in graph.pin_waits.items():
        for place, can_run in pins:
            waiting[(node, place)] = can_run
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for node, place in waiting:
        nxt = []
        for ran, child, perm in graph.out(node):
            if ran == place:
                continue
            smap = graph.smap(perm)
            moved = (child, smap[place] if smap is not None else place)
            if moved in waiting:
                nxt.append(moved)
        succ[(node, place)] = nxt
    # Never able to run on the cycle is a plain endless wait (deadlock,
    # unbounded-wait); always able, weak fairness would run it.
    starved = [
        comp
        for comp in _cycles(succ)
        if any(not waiting[n] for n in comp) and any(waiting[n] for n in comp)
    ]
    order = paths.order(node for comp in starved for node, _ in comp)
    found: list[tuple[int, int, int]] = []  # (breadth-first order, node, place)
    for comp in starved:
        first = min(comp, key=lambda n: (order[n[0]], n[1]))
        found.append((order[first[0]], first[0], first[1]))
    if not found:
        verdict = Verdict.NEVER if stats.complete else Verdict.UNKNOWN
        return OracleResult(STARVATION, verdict, 0, None)
    _, node, place = min(found)
    name = graph.names[place] if place < len(graph.names) else str(place)
    message = f"{name} waits for pins while the other tasks can take new ones for ever"
    cex = Counterexample(tuple(paths.path(node)), Violation(STARVATION, message, name))
    return OracleResult(STARVATION, Verdict.SOMETIMES, len(found), cex)


def _cycles(succ: dict[Any, list[Any]]) -> list[list[Any]]:
    """Strongly connected components that hold a cycle (Tarjan, iterative)."""
    index: dict[Any, int] = {}
    low: dict[Any, int] = {}
    on_stack: set[Any] = set()
    stack: list[Any] = []
    out: list[list[Any]] = []
    counter = 0
    for start in succ:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = succ[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:
                up = work[-1][0]
                low[up] = min(low[up], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    comp.append(n)
                    if n == node:
                        break
                if len(comp) > 1 or node in succ[node]:
                    out.append(comp)
    return out


def _always(graph: _Graph, oid: str, note: Callable[[], None]) -> bool:
    """Whether every run violates ``oid``: no run ends without it, avoiding it."""
    reached = _reachable(graph, skip=oid)
    note()
    return all(
        any(v.oracle == oid for v in graph.ends[n]) for n in reached if n in graph.ends
    )
