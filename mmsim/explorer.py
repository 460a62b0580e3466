"""The exhaustive explorer: depth-first search over interleavings with state caching.

Generators cannot be copied, so the search re-executes: the machine stepped down
the current branch is kept live, and going back to an earlier node rebuilds it by
replaying that node's schedule from a fresh machine. State caching over
:meth:`~mmsim.engine.Machine.snapshot` makes the search terminate on the cycles
that looping daemons create, and visits every distinct reachable state once.

Soundness: two machines with equal snapshots have equal futures (the snapshot
holds all shared state and every task's frames and locals), so pruning a revisited
state loses no reachable state and no violation. With a preemption bound the key
also holds the last task run and a state is revisited when reached with fewer
preemptions, so the bounded search explores exactly the runs within the bound.

Every branch ends in one of: a violation (an oracle fired), a finished run (every
non-daemon task done: the machine quiesces with a final sync and the end-of-run
oracles judge it), a deadlock, a revisited state, or a bound.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import attrs

from mmsim.engine import Machine, Violation

__all__ = [
    "Bounds",
    "Counterexample",
    "SearchResult",
    "SearchStats",
    "Verdict",
    "WalkResult",
    "explore",
    "random_walk",
    "replay",
]


class Verdict(enum.StrEnum):
    """Litmus-test result words (herd7): how often a violation is reachable."""

    NEVER = "Never"
    SOMETIMES = "Sometimes"
    ALWAYS = "Always"
    #: No violation found, but a bound cut the search: not a proof.
    UNKNOWN = "Unknown"


@attrs.frozen
class Bounds:
    """Limits on the search. ``None`` means unbounded.

    Attributes:
        max_steps: longest schedule explored (depth).
        preemption_bound: most preemptions (switching away from a task that could
            have continued) in a run, as CHESS and loom bound them.
        max_time: wall-clock seconds; the only bound that makes a result depend on
            the machine it ran on, so it is reported when hit.
        max_states: most distinct states visited.
    """

    max_steps: int | None = 400
    preemption_bound: int | None = None
    max_time: float | None = None
    max_states: int | None = None


@attrs.define
class SearchStats:
    """What the search did. ``complete`` is False when any bound cut it."""

    states: int = 0
    transitions: int = 0
    executions: int = 0
    finished_runs: int = 0
    violating_states: int = 0
    revisits: int = 0
    replays: int = 0
    replayed_steps: int = 0
    max_depth: int = 0
    seconds: float = 0.0
    complete: bool = True
    cut_by: list[str] = attrs.Factory(list)


@attrs.frozen
class Counterexample:
    """A schedule from the initial state to a violation."""

    schedule: tuple[int, ...]
    violations: tuple[Violation, ...]


@attrs.frozen
class SearchResult:
    """Verdict, statistics and the shortest counterexample found."""

    verdict: Verdict
    stats: SearchStats
    counterexample: Counterexample | None
    #: Violating states found, by oracle id (first violation of each state).
    by_oracle: dict[str, int]


def replay(
    make: Callable[[], Machine], schedule: tuple[int, ...] | list[int]
) -> Machine:
    """Rebuild a machine and step it through ``schedule``.

    Raises ``ValueError`` if the schedule asks for a task that is not enabled.
    """
    m = make()
    for i, tid in enumerate(schedule):
        if tid not in m.enabled():
            raise ValueError(
                f"step {i}: task {tid} is not enabled (schedule does not fit)"
            )
        m.step(tid)
    return m


def settle(m: Machine) -> str:
    """Classify the machine after a step: violation, finished, deadlock or running.

    A finished machine is quiesced (final sync) and judged by end-of-run oracles
    here; it is no longer usable for exploration afterwards.
    """
    if m.violations:
        return "violation"
    if m.finished():
        m.run_to_end()
        return "violation" if m.violations else "finished"
    if m.check_deadlock():
        return "violation"
    return "running"


@attrs.define(slots=True)
class _Frame:
    schedule: tuple[int, ...]
    key: Hashable
    todo: list[int]
    last: int | None
    preemptions: int


def explore(
    make: Callable[[], Machine],
    bounds: Bounds | None = None,
    *,
    stop_on_first: bool = False,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[SearchStats], None] | None = None,
    on_leaf: Callable[[Machine, str], None] | None = None,
) -> SearchResult:
    """Search every interleaving of the machine ``make()`` builds.

    Args:
        make: builds a fresh machine; called again for every replay.
        bounds: the search limits.
        stop_on_first: stop at the first violation (the counterexample is then the
            first found, not the shortest).
        clock: the wall clock, for ``max_time`` and the statistics.
        progress: called about every 4096 transitions with the statistics so far.
        on_leaf: called with the machine and ``"violation"`` or ``"finished"`` at
            each newly reached state where a run ends (after quiescing).
    """
    bounds = bounds or Bounds()
    stats = SearchStats()
    start = clock()
    bounded_preemption = bounds.preemption_bound is not None

    def key_of(m: Machine, last: int | None) -> Hashable:
        snap = m.snapshot()
        return (snap, last) if bounded_preemption else snap

    root = make()
    root_key = key_of(root, None)
    visited: dict[Hashable, int] = {root_key: 0}
    edges: dict[Hashable, list[tuple[int, Hashable]]] = {}
    violating: dict[Hashable, tuple[Violation, ...]] = {}
    stats.states = 1

    status = settle(root)
    if status != "running":
        if on_leaf is not None:
            on_leaf(root, status)
        stats.executions = 1
        if status == "violation":
            violating[root_key] = tuple(root.violations)
        else:
            stats.finished_runs = 1
        return _result(stats, violating, edges, root_key, start, clock)

    stack = [_Frame((), root_key, _order(root.enabled(), None), None, 0)]
    live: Machine | None = root
    live_schedule: tuple[int, ...] | None = ()

    def cut(reason: str) -> None:
        stats.complete = False
        if reason not in stats.cut_by:
            stats.cut_by.append(reason)

    while stack:
        frame = stack[-1]
        if not frame.todo:
            stack.pop()
            continue
        if bounds.max_time is not None and clock() - start > bounds.max_time:
            cut(f"max_time={bounds.max_time:g}s")
            break
        tid = frame.todo.pop(0)

        preemptions = frame.preemptions
        if frame.last is not None and tid != frame.last:
            # Switching away from a task that could have continued is a preemption.
            preemptions += 1
        if (
            bounds.preemption_bound is not None
            and preemptions > bounds.preemption_bound
        ):
            cut(f"preemption_bound={bounds.preemption_bound}")
            continue

        if live is None or live_schedule != frame.schedule:
            live = make()
            for t in frame.schedule:  # a schedule the search itself made: no checks
                live.step(t)
            stats.replays += 1
            stats.replayed_steps += len(frame.schedule)
        live.step(tid)
        schedule = (*frame.schedule, tid)
        live_schedule = schedule
        stats.transitions += 1
        if progress is not None and stats.transitions % 4096 == 0:
            stats.seconds = clock() - start
            progress(stats)

        # Whether the task that just ran can run on: it decides what is a preemption.
        last = tid if not live.tasks[tid].done else None
        key = key_of(live, last)
        edges.setdefault(frame.key, []).append((tid, key))
        seen = visited.get(key)
        if seen is not None and seen <= preemptions:
            stats.revisits += 1
            stats.executions += 1
            continue
        if seen is None:
            stats.states += 1
        visited[key] = preemptions
        stats.max_depth = max(stats.max_depth, len(schedule))

        status = settle(live)
        if status != "running":
            if on_leaf is not None:
                on_leaf(live, status)
            live_schedule = None  # quiescing consumed it
            stats.executions += 1
            if status == "violation":
                violating.setdefault(key, tuple(live.violations))
                if stop_on_first:
                    break
            else:
                stats.finished_runs += 1
            continue
        if bounds.max_steps is not None and len(schedule) >= bounds.max_steps:
            cut(f"max_steps={bounds.max_steps}")
            stats.executions += 1
            continue
        if bounds.max_states is not None and stats.states >= bounds.max_states:
            cut(f"max_states={bounds.max_states}")
            break
        stack.append(
            _Frame(schedule, key, _order(live.enabled(), last), last, preemptions)
        )

    if stack and not stats.cut_by and stop_on_first:
        stats.complete = False
        stats.cut_by.append("stopped at the first violation")
    return _result(stats, violating, edges, root_key, start, clock)


def _order(enabled: list[int], last: int | None) -> list[int]:
    """Children in the order explored: the running task first (no preemption)."""
    if last is not None and last in enabled:
        return [last, *(t for t in enabled if t != last)]
    return list(enabled)


def _result(
    stats: SearchStats,
    violating: dict[Hashable, tuple[Violation, ...]],
    edges: dict[Hashable, list[tuple[int, Hashable]]],
    root: Hashable,
    start: float,
    clock: Callable[[], float],
) -> SearchResult:
    stats.violating_states = len(violating)
    stats.seconds = clock() - start
    by_oracle: dict[str, int] = {}
    for vs in violating.values():
        by_oracle[vs[0].oracle] = by_oracle.get(vs[0].oracle, 0) + 1
    cex = _shortest(violating, edges, root)
    if cex is not None:
        verdict = Verdict.SOMETIMES
        if stats.complete and stats.finished_runs == 0:
            verdict = Verdict.ALWAYS
    else:
        verdict = Verdict.NEVER if stats.complete else Verdict.UNKNOWN
    return SearchResult(verdict, stats, cex, dict(sorted(by_oracle.items())))


def _shortest(
    violating: dict[Hashable, tuple[Violation, ...]],
    edges: dict[Hashable, list[tuple[int, Hashable]]],
    root: Hashable,
) -> Counterexample | None:
    """Breadth-first search of the explored state graph for the nearest violation."""
    if not violating:
        return None
    parent: dict[Hashable, tuple[Hashable, int] | None] = {root: None}
    queue: deque[Any] = deque([root])
    while queue:
        node = queue.popleft()
        if node in violating:
            path: list[int] = []
            cur = node
            while (p := parent[cur]) is not None:
                cur, tid = p
                path.append(tid)
            return Counterexample(tuple(reversed(path)), violating[node])
        for tid, child in edges.get(node, ()):
            if child not in parent:
                parent[child] = (node, tid)
                queue.append(child)
    return None


@attrs.frozen
class WalkResult:
    """Outcome of random walks: runs made, and the first violating schedule."""

    runs: int
    steps: int
    counterexample: Counterexample | None
    seed: int


def random_walk(
    make: Callable[[], Machine],
    *,
    seed: int,
    max_runs: int = 10_000,
    max_steps: int = 400,
) -> WalkResult:
    """Uniform random scheduling: each step picks an enabled task uniformly.

    All randomness comes from ``random.Random(seed)``; the seed is returned with
    the result so a run can be reproduced. Stops at the first violation.
    """
    import random

    rng = random.Random(seed)
    total = 0
    for run in range(1, max_runs + 1):
        m = make()
        schedule: list[int] = []
        while len(schedule) < max_steps:
            status = settle(m)
            if status != "running":
                break
            tid = rng.choice(m.enabled())
            m.step(tid)
            schedule.append(tid)
        total += len(schedule)
        if m.violations or settle(m) == "violation":
            return WalkResult(
                run, total, Counterexample(tuple(schedule), tuple(m.violations)), seed
            )
    return WalkResult(max_runs, total, None, seed)
