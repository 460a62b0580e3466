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

import attrs

from mmsim.engine import Machine, Violation

__all__ = [
    "Bounds",
    "Counterexample",
    "OracleResult",
    "SearchResult",
    "SearchStats",
    "Verdict",
    "WalkResult",
    "explore",
    "random_walk",
    "settle",
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
    revisits: int = 0
    replays: int = 0
    replayed_steps: int = 0
    max_depth: int = 0
    seconds: float = 0.0
    complete: bool = True
    cut_by: list[str] = attrs.Factory(list)


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
class SearchResult:
    """The overall verdict (the worst over the oracles), each oracle's result, the
    statistics, and the shortest counterexample of any oracle."""

    verdict: Verdict
    stats: SearchStats
    oracles: dict[str, OracleResult]
    counterexample: Counterexample | None


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


@attrs.define(slots=True)
class _Frame:
    schedule: tuple[int, ...]
    key: Hashable
    todo: list[int]
    last: int | None
    preemptions: int


@attrs.define
class _Graph:
    """The explored state graph: what the verdicts are computed from."""

    root: Hashable
    edges: dict[Hashable, list[tuple[int, Hashable, tuple[Violation, ...]]]] = (
        attrs.Factory(dict)
    )
    #: Nodes where a run ended, with the violations found as it ended.
    ends: dict[Hashable, tuple[Violation, ...]] = attrs.Factory(dict)
    oracle_ids: list[str] = attrs.Factory(list)
    regressions: set[str] = attrs.Factory(set)
    #: Nodes where some task sleeps in a wait for pins: (task id, may run now).
    pin_waits: dict[Hashable, tuple[tuple[int, bool], ...]] = attrs.Factory(dict)
    #: Task names by id, for messages.
    names: list[str] = attrs.Factory(list)


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
        on_leaf: called with the machine and ``"stopped"`` or ``"finished"`` at
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
    graph = _Graph(
        root_key,
        oracle_ids=[o.id for o in root.oracles],
        regressions={o.id for o in root.oracles if o.regression},
    )
    visited: dict[Hashable, int] = {root_key: 0}
    stats.states = 1
    graph.names = [t.name for t in root.tasks]

    status = settle(root)
    if status != "running":
        graph.ends[root_key] = tuple(root.violations)
        stats.executions = 1
        stats.finished_runs = int(status == "finished")
        if on_leaf is not None:
            on_leaf(root, status)
        return _result(stats, graph, start, clock)

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
        before = len(live.violations)
        live.step(tid)
        found = tuple(live.violations[before:])
        schedule = (*frame.schedule, tid)
        live_schedule = schedule
        stats.transitions += 1
        if progress is not None and stats.transitions % 4096 == 0:
            stats.seconds = clock() - start
            progress(stats)

        # Whether the task that just ran can run on: it decides what is a preemption.
        last = tid if not live.tasks[tid].done else None
        key = key_of(live, last)
        graph.edges.setdefault(frame.key, []).append((tid, key, found))
        if found and stop_on_first:
            cut("stopped at the first violation")
            graph.ends.setdefault(key, ())
            break
        seen = visited.get(key)
        if seen is not None and seen <= preemptions:
            stats.revisits += 1
            stats.executions += 1
            continue
        if seen is None:
            stats.states += 1
            waiting = live.pin_waiters()
            if waiting:
                graph.pin_waits[key] = waiting
                graph.names = [t.name for t in live.tasks]
        visited[key] = preemptions
        stats.max_depth = max(stats.max_depth, len(schedule))

        before = len(live.violations)
        status = settle(live)
        if status != "running":
            graph.ends[key] = tuple(live.violations[before:])
            if on_leaf is not None:
                on_leaf(live, status)
            live_schedule = None  # quiescing consumed it
            stats.executions += 1
            stats.finished_runs += status == "finished"
            if stop_on_first and graph.ends[key]:
                cut("stopped at the first violation")
                break
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

    return _result(stats, graph, start, clock)


def _order(enabled: list[int], last: int | None) -> list[int]:
    """Children in the order explored: the running task first (no preemption)."""
    if last is not None and last in enabled:
        return [last, *(t for t in enabled if t != last)]
    return list(enabled)


def _shortest_paths(
    graph: _Graph, skip: str | None = None
) -> dict[Hashable, tuple[Hashable, int] | None]:
    """Breadth-first parents from the root; edges violating ``skip`` are not taken."""
    parent: dict[Hashable, tuple[Hashable, int] | None] = {graph.root: None}
    queue: deque[Hashable] = deque([graph.root])
    while queue:
        node = queue.popleft()
        for tid, child, found in graph.edges.get(node, ()):
            if child in parent or (
                skip is not None and any(v.oracle == skip for v in found)
            ):
                continue
            parent[child] = (node, tid)
            queue.append(child)
    return parent


def _path(
    parent: dict[Hashable, tuple[Hashable, int] | None], node: Hashable
) -> list[int]:
    path: list[int] = []
    while (p := parent[node]) is not None:
        node, tid = p
        path.append(tid)
    path.reverse()
    return path


def _result(
    stats: SearchStats, graph: _Graph, start: float, clock: Callable[[], float]
) -> SearchResult:
    stats.seconds = clock() - start
    parent = _shortest_paths(graph)
    order = {node: i for i, node in enumerate(parent)}  # breadth-first order
    ids = list(graph.oracle_ids)
    for vs in [
        *graph.ends.values(),
        *(f for es in graph.edges.values() for _, _, f in es),
    ]:
        ids += [v.oracle for v in vs if v.oracle not in ids]

    results: dict[str, OracleResult] = {}
    if UNBOUNDED_WAIT in ids:
        ids.remove(UNBOUNDED_WAIT)
        results[UNBOUNDED_WAIT] = _unbounded_wait(stats, graph, parent)
    if STARVATION in ids:
        ids.remove(STARVATION)
        results[STARVATION] = _starvation(stats, graph, parent)
    for oid in ids:
        best: tuple[int, int, Counterexample] | None = None
        count = 0
        for node, out in graph.edges.items():
            if node not in parent:
                continue
            for tid, _, found in out:
                hit = next((v for v in found if v.oracle == oid), None)
                if hit is None:
                    continue
                count += 1
                path = (*_path(parent, node), tid)
                cand = (len(path), order[node], Counterexample(path, hit))
                if best is None or cand[:2] < best[:2]:
                    best = cand
        for node, found in graph.ends.items():
            hit = next((v for v in found if v.oracle == oid), None)
            if hit is None or node not in parent:
                continue
            count += 1
            path = tuple(_path(parent, node))
            cand = (len(path), order[node], Counterexample(path, hit, at_end=True))
            if best is None or cand[:2] < best[:2]:
                best = cand
        if best is None:
            verdict = Verdict.NEVER if stats.complete else Verdict.UNKNOWN
            results[oid] = OracleResult(oid, verdict, 0, None)
            continue
        verdict = Verdict.SOMETIMES
        if stats.complete and _always(graph, oid):
            verdict = Verdict.ALWAYS
        results[oid] = OracleResult(
            oid, verdict, count, best[2], regression=oid in graph.regressions
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
    return SearchResult(overall, stats, results, headline)


#: The liveness oracle, judged on the whole state graph once the search is complete.
UNBOUNDED_WAIT = "unbounded-wait"


def _unbounded_wait(
    stats: SearchStats,
    graph: _Graph,
    parent: dict[Hashable, tuple[Hashable, int] | None],
) -> OracleResult:
    """States from which no run can ever finish: someone waits for ever.

    A deadlock stops every task; this also catches the waits that only daemons
    outlive (kswapd spinning while DIO completion waits for a lock that writeback
    holds while it waits for the DIO). A state is stuck when no run-ending state
    is reachable from it; the counterexample leads to the nearest stuck state.
    Only a complete search can tell: a cut search says Unknown.
    """
    if not stats.complete:
        return OracleResult(UNBOUNDED_WAIT, Verdict.UNKNOWN, 0, None)
    back: dict[Hashable, list[Hashable]] = {}
    for node, out in graph.edges.items():
        for _, child, _ in out:
            back.setdefault(child, []).append(node)
    can_end = set(graph.ends)
    queue: deque[Hashable] = deque(graph.ends)
    while queue:
        for prev in back.get(queue.popleft(), ()):
            if prev not in can_end:
                can_end.add(prev)
                queue.append(prev)
    stuck = [n for n in parent if n not in can_end]  # breadth-first order
    if not stuck:
        return OracleResult(UNBOUNDED_WAIT, Verdict.NEVER, 0, None)
    first = stuck[0]
    message = "from here no run can finish: the waiting tasks wait for ever"
    cex = Counterexample(
        tuple(_path(parent, first)), Violation(UNBOUNDED_WAIT, message, "-")
    )
    verdict = Verdict.ALWAYS if first == graph.root else Verdict.SOMETIMES
    return OracleResult(UNBOUNDED_WAIT, verdict, len(stuck), cex)


#: The fairness oracle: a wait for pins that other tasks can postpone for ever.
STARVATION = "starvation"


def _starvation(
    stats: SearchStats,
    graph: _Graph,
    parent: dict[Hashable, tuple[Hashable, int] | None],
) -> OracleResult:
    """A task waiting for pins that an endless run never lets through.

    For each task T asleep in a wait for pins, take the states where T sits in
    that wait and the steps other tasks take between them. A cycle there on which
    T's condition is false at some states and true at others is an infinite run
    in which T never proceeds although the pins keep going away: even a weakly
    fair scheduler (one that runs a task continuously able to run) may follow
    it, because T is not continuously able to run. The kernel's wait queues give no
    stronger guarantee: a woken waiter that finds a new pin sleeps again. This is
    Jan Kara's "repeated short pins" denial of service.

    A cycle found is a real infinite run, so a cut search can report one; only a
    complete search can say Never.
    """
    by_task: dict[int, dict[Hashable, bool]] = {}
    for node, waiting in graph.pin_waits.items():
        if node in parent:
            for tid, can_run in waiting:
                by_task.setdefault(tid, {})[node] = can_run
    found: list[tuple[int, Hashable, int]] = []  # (breadth-first order, node, task)
    order = {node: i for i, node in enumerate(parent)}
    for tid, nodes in sorted(by_task.items()):
        succ = {
            n: [c for t, c, _ in graph.edges.get(n, ()) if t != tid and c in nodes]
            for n in nodes
        }
        for comp in _cycles(succ):
            # Never able to run on the cycle is a plain endless wait (deadlock,
            # unbounded-wait); always able, weak fairness would run it.
            if any(not nodes[n] for n in comp) and any(nodes[n] for n in comp):
                first = min(comp, key=order.__getitem__)
                found.append((order[first], first, tid))
    if not found:
        verdict = Verdict.NEVER if stats.complete else Verdict.UNKNOWN
        return OracleResult(STARVATION, verdict, 0, None)
    _, node, tid = min(found, key=lambda f: f[0])
    name = graph.names[tid] if tid < len(graph.names) else str(tid)
    message = f"{name} waits for pins while the other tasks can take new ones for ever"
    cex = Counterexample(
        tuple(_path(parent, node)), Violation(STARVATION, message, name)
    )
    return OracleResult(STARVATION, Verdict.SOMETIMES, len(found), cex)


def _cycles(succ: dict[Hashable, list[Hashable]]) -> list[list[Hashable]]:
    """Strongly connected components that hold a cycle (Tarjan, iterative)."""
    index: dict[Hashable, int] = {}
    low: dict[Hashable, int] = {}
    on_stack: set[Hashable] = set()
    stack: list[Hashable] = []
    out: list[list[Hashable]] = []
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


def _always(graph: _Graph, oid: str) -> bool:
    """Whether every run violates ``oid``: no run ends without it, avoiding it."""
    parent = _shortest_paths(graph, skip=oid)
    return all(
        any(v.oracle == oid for v in graph.ends[n]) for n in parent if n in graph.ends
    )


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
        while len(schedule) < max_steps and not m.violations:
            if settle(m) != "running":
                break
            tid = rng.choice(m.enabled())
            m.step(tid)
            schedule.append(tid)
        total += len(schedule)
        if m.violations:
            cex = Counterexample(tuple(schedule), m.violations[0])
            return WalkResult(run, total, cex, seed)
    return WalkResult(max_runs, total, None, seed)
