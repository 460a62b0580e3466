"""What partial-order reduction could save on this model, measured on the graph.

The issue asks for sleep sets or DPOR where they pay. This benchmark measures
whether they would, before any is built. It searches ``dio/001`` under
defer-release without symmetry, so that an edge's label is a task, and keeps
the whole state graph. Then it replays two reductions on that graph with all
the independence the graph can show.

Two steps count as independent at a state when both orders reach the same
state and each fires the same oracles as it does first (a diamond in the
graph). Per-field footprints would prove fewer pairs independent, so the
figures are close to the most these reductions could save. (Where one of the
two steps ends the run, the graph has no step after it, and the pair counts as
dependent.)

* **Sleep sets** (Godefroid), breadth first, with the re-expansion a cached
  state needs when it is met again with a smaller sleep set. They visit every
  state and save transitions, and every transition costs a replay here.
* **Persistent sets of one task**, the kind SPIN's partial-order reduction
  picks. At a state, one task's step is explored alone when:
  - it fires no oracle;
  - it commutes with every step the other tasks can take before it (a greatest
    fixpoint over the graph);
  - it leads to a state not yet visited (the cycle proviso).

Run with ``pytest benchmarks/bench_reductions.py -m benchmark -s``.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Any

import pytest

from mmsim._api import machine_factory
from mmsim.explorer import Bounds, _explore

pytestmark = pytest.mark.benchmark

#: node -> {task: (child, oracles its step fired)}
_Edges = dict[int, dict[int, tuple[int, frozenset[str]]]]


def _graph(readers: int) -> tuple[_Edges, int, set[int], float]:
    """The state graph of dio/001 under defer-release with ``readers`` DIO
    readers, without symmetry: its edges, root, run ends, and the seconds the
    search took."""
    make, _, _ = machine_factory(
        "dio/001", "defer-release", params={"readers": readers}
    )
    t = time.perf_counter()
    search = _explore(
        make,
        Bounds(),
        stop_on_first=False,
        symmetry=False,
        dead_variables=True,
        executor=None,
        batch_size=None,
        clock=time.monotonic,
        progress=None,
        leaf_key=None,
        checkpoint=None,
        resume=None,
    )
    seconds = time.perf_counter() - t
    assert search.stats.complete
    g = search.graph
    edges: _Edges = {
        node: {
            tid: (child, frozenset(v.oracle for v in g.violations(node, tid, child)))
            for tid, child, _ in g.out(node)
        }
        for node in g.edges
    }
    return edges, g.root, set(g.ends), seconds


def _commute(edges: _Edges, s: int, x: int, t: int) -> bool:
    """Whether ``x`` and ``t`` close a diamond at ``s``: both orders reach one
    state, and each step fires the same oracles second as first."""
    out = edges.get(s, {})
    if x not in out or t not in out:
        return False
    (sx, fired_x), (st, fired_t) = out[x], out[t]
    xt = edges.get(sx, {}).get(t)
    tx = edges.get(st, {}).get(x)
    return (
        xt is not None
        and tx is not None
        and xt[0] == tx[0]
        and xt[1] == fired_t
        and tx[1] == fired_x
    )


def _sleep_sets(edges: _Edges, root: int) -> tuple[int, int]:
    """Transitions explored and states visited by a breadth-first search with
    sleep sets and state caching."""
    sleep: dict[int, frozenset[int]] = {root: frozenset()}
    expanded: set[int] = set()
    level: list[tuple[int, frozenset[int] | None]] = [(root, None)]
    explored = 0
    while level:
        nxt: list[tuple[int, frozenset[int] | None]] = []
        for s, only in level:
            out = edges.get(s, {})
            asleep = sleep[s]
            # Expanded from now on: a step back to s itself must wake what it
            # finds asleep, in a re-expansion, as any other revisit does.
            expanded.add(s)
            before: list[int] = []  # steps explored here already: asleep after t
            for t in out:
                # A first expansion skips the sleeping steps; a re-expansion
                # takes only the steps that were asleep and are no longer.
                if (t in asleep) if only is None else (t not in only):
                    continue
                explored += 1
                child = out[t][0]
                z = frozenset(x for x in (*asleep, *before) if _commute(edges, s, x, t))
                before.append(t)
                if child not in sleep:
                    sleep[child] = z
                    nxt.append((child, None))
                elif child not in expanded:
                    sleep[child] &= z
                elif woken := sleep[child] - z:
                    sleep[child] &= z
                    nxt.append((child, woken))
        level = nxt
    return explored, len(sleep)


def _one_task_persistent(
    edges: _Edges, root: int, nodes: set[int]
) -> tuple[int, int, set[int]]:
    """States visited, transitions explored and states reached by a
    breadth-first search that takes one task's step alone wherever that task
    forms a persistent set."""
    back: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, out in edges.items():
        for x, (child, _) in out.items():
            back[child].append((s, x))
    tasks = sorted({t for out in edges.values() for t in out})
    alone: dict[int, set[int]] = {}
    for t in tasks:
        # Greatest fixpoint: start from the states where t's step fires nothing
        # and commutes with every other step, then drop every state from which
        # another task's step leads out of the set.
        ok = {
            s
            for s in nodes
            if t in edges.get(s, {})
            and not edges[s][t][1]
            and all(_commute(edges, s, x, t) for x in edges[s] if x != t)
        }
        work = deque(s for s in nodes if s not in ok)
        while work:
            c = work.popleft()
            for s, x in back[c]:
                if x != t and s in ok:
                    ok.discard(s)
                    work.append(s)
        alone[t] = ok
    visited = {root}
    level = [root]
    explored = 0
    while level:
        nxt = []
        for s in level:
            out = edges.get(s, {})
            pick = next(
                (t for t in sorted(out) if s in alone[t] and out[t][0] not in visited),
                None,
            )
            for t in [pick] if pick is not None else list(out):
                explored += 1
                child = out[t][0]
                if child not in visited:
                    visited.add(child)
                    nxt.append(child)
        level = nxt
    return len(visited), explored, visited


def test_partial_order_reduction_bounds(benchmark: Any) -> None:
    """The most sleep sets and one-task persistent sets could save on dio/001
    under defer-release with two DIO readers and one flusher (one reader in
    the smoke run)."""
    readers = 1 if benchmark.disabled else 2

    def run() -> dict[str, Any]:
        edges, root, ends, seconds = _graph(readers)
        nodes = set(edges) | {c for out in edges.values() for c, _ in out.values()}
        slept, sleep_states = _sleep_sets(edges, root)
        por_states, por_edges, reached = _one_task_persistent(edges, root, nodes)
        return {
            "states": len(nodes),
            "transitions": sum(len(out) for out in edges.values()),
            "search_s": seconds,
            "sleep_set_transitions": slept,
            "sleep_set_states": sleep_states,
            "persistent_states": por_states,
            "persistent_transitions": por_edges,
            "ends": len(ends),
            "persistent_ends": len(ends & reached),
        }

    r = benchmark.pedantic(run, rounds=1, iterations=1)
    # What the theory promises, so that a wrong replay of either reduction is
    # caught: sleep sets visit every state; persistent sets keep every state
    # where a run ends.
    assert r["sleep_set_states"] == r["states"]
    assert r["persistent_ends"] == r["ends"]
    benchmark.extra_info.update(r, readers=readers)
    saved_t = 1 - r["sleep_set_transitions"] / r["transitions"]
    saved_s = 1 - r["persistent_states"] / r["states"]
    print(
        f"\ndio/001 defer-release, {readers} reader(s), without symmetry: "
        f"{r['states']:,} states, {r['transitions']:,} transitions "
        f"(searched in {r['search_s']:.1f}s)\n"
        f"  sleep sets, at best: {r['sleep_set_transitions']:,} transitions "
        f"({saved_t:.0%} fewer), every state visited\n"
        f"  one-task persistent sets, at best: {r['persistent_states']:,} states "
        f"({saved_s:.1%} fewer), {r['persistent_transitions']:,} transitions, "
        f"all {r['ends']} run ends reached"
    )
