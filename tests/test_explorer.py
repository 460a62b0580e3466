"""The explorer against brute force, and its bounds and verdicts.

Every reduction (state caching, symmetry, dead variables, finished slots), the
preemption bound, the stop at the first violation, the machines kept between
levels, the parallel search and a resumed search are checked against brute-force
enumeration (or the plain search) on Hypothesis-generated programs: as many as
the profile says (``ci``: 100 each; ``MMSIM_HYPOTHESIS_PROFILE=nightly``: 5,000).
On the kernel model, a slow test (``pytest -m slow``) searches every cell of the
committed report again with no state-merging reduction.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsim.engine import Machine, Oracle, Wait
from mmsim.engine import Path as KernelPath
from mmsim.explorer import (
    _CHECKPOINT_FORMAT,
    Bounds,
    CheckpointError,
    ModelMismatch,
    Verdict,
    explore,
)
from tests.programs import (
    ToyFactory,
    ToyMachine,
    brute_force,
    outcome,
    programs,
    replayed,
)


def _explored(
    make: Any, bounds: Bounds | None = None, **kw: Any
) -> tuple[set[Any], set[str], Any]:
    result = explore(make, bounds, leaf_key=_leaf, **kw)
    fired = {
        o
        for o, r in result.oracles.items()
        if r.verdict in (Verdict.SOMETIMES, Verdict.ALWAYS)
    }
    return set(result.leaves), fired, result


def _leaf(m: Any, status: str) -> Any:
    return outcome(m)


def _agree(on: Any, off: Any, make: Any) -> None:
    """The search ``on`` (a reduction) against ``off`` (without it): the same
    ends of runs and verdicts, and shortest counterexamples as short, which
    replay to their violation; and no more states."""
    assert on.leaves == off.leaves
    for oid, r in on.oracles.items():
        assert r.verdict == off.oracles[oid].verdict
        other = off.oracles[oid].counterexample
        if r.counterexample is None:
            assert other is None
            continue
        assert other is not None
        assert len(r.counterexample.schedule) == len(other.schedule)
        m = replayed(make, r.counterexample)
        assert any(v.oracle == oid for v in m.violations)
    assert on.stats.states <= off.stats.states


@pytest.mark.parametrize("compiled", [False, True])
def test_brute_force_runs_each_interleaving_once(compiled: bool) -> None:
    # The oracle itself: two tasks that never wait, one machine built per run
    # (the last child goes on with its parent's), so the runs are counted by
    # the machines; each interleaving of their steps is one run.
    prog = [[("set", 0, 1), ("set", 0, 2)], [("add", 1, 1)]]
    factory = ToyFactory(prog, 2, 0, compiled=compiled)
    solo = [_steps_alone(factory, tid) for tid in (0, 1)]
    built = 0

    def make() -> ToyMachine:
        nonlocal built
        built += 1
        return factory()

    outcomes, fired = brute_force(make)
    assert built == math.comb(solo[0] + solo[1], solo[0])
    assert {o[0] for o in outcomes} == {((2, 1), ())}
    assert fired == set()
    built = 0
    # No preemption: whichever task starts runs to its end.
    brute_force(make, preemption_bound=0)
    assert built == 2


def _steps_alone(make: Any, tid: int) -> int:
    m = make()
    n = 0
    while tid in m.enabled():
        m.step(tid)
        n += 1
    return n


@settings(deadline=None)
@given(st.one_of(programs(), programs(bugs=True)), st.integers(1, 3))
def test_reachable_outcomes_equal_brute_force(prog: Any, bad: int) -> None:
    """Every reduction on (state caching, symmetry): the same terminal states
    and the same violated oracles as every interleaving run without merging
    (oopses too)."""
    make = ToyFactory(*prog, bad=bad)
    expected, expected_fired = brute_force(make)
    got, fired, result = _explored(make)
    assert got == expected
    assert fired == expected_fired
    assert result.stats.complete
    assert (result.verdict != Verdict.NEVER) == bool(expected_fired)


@settings(deadline=None)
@given(programs(), st.integers(1, 3))
def test_symmetry_merges_states_and_changes_nothing_else(prog: Any, bad: int) -> None:
    make = ToyFactory(*prog, bad=bad)
    on = explore(make, leaf_key=_leaf)
    off = explore(make, leaf_key=_leaf, symmetry=False)
    assert on.oracles.keys() == off.oracles.keys()
    _agree(on, off, make)
    if not make().symmetry:
        assert on.stats.states == off.stats.states


@settings(deadline=None)
@given(programs(max_total=8, shapes=True), st.integers(1, 3))
def test_dead_variables_merge_states_and_change_nothing_else(
    prog: Any, bad: int
) -> None:
    """Tasks compiled to Python (registers die between uses; branches, loops,
    try/finally): with dead locals left out of the state, the same terminal
    states and violated oracles as brute force, and the same verdicts and
    shortest counterexamples as the search that keeps them."""
    make = ToyFactory(*prog, bad=bad, compiled=True)
    expected, expected_fired = brute_force(make)
    got, fired, on = _explored(make)
    assert got == expected
    assert fired == expected_fired
    off = explore(make, leaf_key=_leaf, dead_variables=False)
    _agree(on, off, make)


@settings(deadline=None)
@given(programs(max_tasks=2, max_total=6, spawns=True), st.integers(1, 3))
def test_finished_slots_merge_states_and_change_nothing_else(
    prog: Any, bad: int
) -> None:
    """Tasks that start helpers mid-run, in reusable slots: with the finished
    tasks at the end of the list left out of the state, the same terminal
    states and violated oracles as brute force, and the same verdicts and
    shortest counterexamples (which replay) as the search that keeps them."""
    make = ToyFactory(*prog, bad=bad)
    expected, expected_fired = brute_force(make)
    got, fired, on = _explored(make)
    assert got == expected
    assert fired == expected_fired
    off = explore(ToyFactory(*prog, bad=bad, free_slots=False), leaf_key=_leaf)
    _agree(on, off, make)


def _same_search(on: Any, off: Any, make: Any) -> None:
    """Two searches of one state graph: every figure and verdict equal, and
    shortest counterexamples as short, which replay to their violation (which
    of two identical tasks each names may differ: the two order positions
    differently to pick a state's canonical permutation)."""
    assert on.leaves == off.leaves
    assert on.oracles.keys() == off.oracles.keys()
    for oid, r in on.oracles.items():
        other = off.oracles[oid]
        assert (r.verdict, r.occurrences) == (other.verdict, other.occurrences)
        if r.counterexample is None:
            assert other.counterexample is None
            continue
        assert other.counterexample is not None
        assert len(r.counterexample.schedule) == len(other.counterexample.schedule)
        assert r.counterexample.at_end == other.counterexample.at_end
        m = replayed(make, r.counterexample)
        assert any(v.oracle == oid for v in m.violations)
    assert on.unreached == off.unreached
    assert on.events == off.events
    for figure in ("states", "transitions", "executions", "finished_runs"):
        assert getattr(on.stats, figure) == getattr(off.stats, figure), figure
    assert on.stats.complete == off.stats.complete
    assert on.stats.cut_by == off.stats.cut_by


@settings(deadline=None)
@given(
    st.one_of(
        programs(max_tasks=2, max_total=6, spawns=True, joins=True),
        programs(max_total=8, shapes=True),
        programs(bugs=True),
    ),
    st.integers(1, 3),
    st.sampled_from([None, 0, 1]),
    st.booleans(),
)
def test_tabled_steps_change_nothing_but_the_replays(
    prog: Any, bad: int, bound: int | None, compiled: bool
) -> None:
    """Children composed from tabled steps (tasks that start helpers in reused
    slots, that wait for another task to finish, compiled tasks with dead
    registers, identical tasks, oopses): the same terminal states and violated oracles
    as brute force, and the same search, state for state, as replaying every
    node, under a preemption bound or none."""
    joins = any(op[0] == "join" for ops in prog[0] for op in ops)
    shaped = any(op[0] in ("swap", "twice", "finally") for ops in prog[0] for op in ops)
    make = ToyFactory(*prog, bad=bad, compiled=(compiled or shaped) and not joins)
    bounds = Bounds(preemption_bound=bound)
    expected, expected_fired = brute_force(make, preemption_bound=bound)
    got, fired, tabled = _explored(make, bounds, table_steps=True)
    assert got == expected
    assert fired == expected_fired
    _same_search(tabled, explore(make, bounds, leaf_key=_leaf), make)
    assert tabled.stats.replays <= tabled.stats.transitions


@pytest.mark.parametrize("tabled", [False, True])
def test_an_oops_does_not_end_a_run_that_reaches_its_state_without_one(
    tabled: bool,
) -> None:
    # T1 oopses if T0 ran first; if T1 ran first, both finish. After T0's
    # increment and T1's last step the two runs stand in one snapshot, but
    # only the run without the oops goes on from there (to T0's end): the
    # snapshot does not hold the violation, the key must.
    make = ToyFactory([[("add", 0, 1)], [("bug", 0, 1)]], 2, 1)
    expected, _ = brute_force(make)
    assert len(expected) == 2
    assert _explored(make, table_steps=tabled)[0] == expected


def test_finished_slots_merge_a_helper_that_came_and_went() -> None:
    # T0 starts two helpers: the second takes the first's slot if it has
    # finished, else a slot of its own. Once both have finished and T0 has
    # overwritten what they wrote, two runs differ only by a finished slot at
    # the end of the list; the third helper writes its own id, which must not
    # depend on which of the two runs reached the merged state first.
    prog = [[("spawn", 1, 0), ("spawn", 1, 0), ("set", 1, 0), ("spawn", 0, 0)]]
    make = ToyFactory(prog, 2, 0)
    on = explore(make)
    off = explore(ToyFactory(prog, 2, 0, free_slots=False))
    assert on.stats.states < off.stats.states
    assert brute_force(make)[0] == _explored(make)[0]


def test_dead_variables_merge_a_register_that_is_stored_and_never_read() -> None:
    # T0's register holds 0 or 1 (whether T1 ran first); once it is stored and
    # the store overwritten, the register is dead and no longer splits states.
    prog = [[("load", 0), ("store", 1), ("set", 1, 0), ("set", 0, 2)], [("set", 0, 1)]]
    make = ToyFactory(prog, 2, 0, compiled=True)
    on = explore(make)
    off = explore(make, dead_variables=False)
    assert on.stats.states < off.stats.states
    assert brute_force(make)[0] == _explored(make)[0]


@settings(deadline=None)
@given(programs(), st.integers(1, 3), st.integers(1, 4))
def test_stop_on_first_gives_a_shortest_counterexample(
    prog: Any, bad: int, batch: int
) -> None:
    """Stopped at the first violation (each batch of a level is cut short there):
    a violation exactly when brute force finds one, as short as the whole
    search's shortest, replaying to it; and the same search whatever the batch
    size, so the cut never drops a state the search would have counted."""
    make = ToyFactory(*prog, bad=bad)
    _, expected_fired = brute_force(make)
    whole = explore(make)
    first = explore(make, stop_on_first=True)
    assert (first.counterexample is not None) == bool(expected_fired)
    assert first.stats.complete == (first.counterexample is None)
    if first.counterexample is None:
        assert first.stats.states == whole.stats.states
        return
    shortest = min(
        len(r.counterexample.schedule)
        for r in whole.oracles.values()
        if r.counterexample is not None
    )
    assert len(first.counterexample.schedule) == shortest
    m = replayed(make, first.counterexample)
    assert first.counterexample.violation in m.violations
    other = explore(make, stop_on_first=True, batch_size=batch)
    assert other.counterexample == first.counterexample
    assert other.stats.states == first.stats.states
    assert other.stats.transitions == first.stats.transitions


@settings(deadline=None)
@given(programs(), st.integers(1, 3), st.sampled_from([None, 1]))
def test_machines_kept_between_levels_change_nothing_but_the_replays(
    prog: Any, bad: int, bound: int | None
) -> None:
    """A node's first child steps the machine that reached the node, where one
    is kept: the same search as replaying every node, with fewer replays."""
    make = ToyFactory(*prog, bad=bad)
    kept = explore(make, Bounds(preemption_bound=bound), leaf_key=_leaf)
    with mock.patch("mmsim.explorer._LIVE_MAX", 0):
        replayed = explore(make, Bounds(preemption_bound=bound), leaf_key=_leaf)
    assert kept.leaves == replayed.leaves
    assert kept.oracles == replayed.oracles
    assert kept.stats.states == replayed.stats.states
    assert kept.stats.transitions == replayed.stats.transitions
    assert replayed.stats.replays == replayed.stats.transitions
    if replayed.stats.max_depth >= 2:  # a node below the root was expanded
        assert kept.stats.replays < replayed.stats.replays
    else:
        assert kept.stats.replays == replayed.stats.replays


@settings(deadline=None)
@given(programs(max_total=8), st.integers(1, 3), st.integers(0, 2))
def test_preemption_bound_explores_exactly_the_bounded_runs(
    prog: Any, bad: int, bound: int
) -> None:
    make = ToyFactory(*prog, bad=bad)
    expected, expected_fired = brute_force(make, preemption_bound=bound)
    got, fired, _ = _explored(make, Bounds(preemption_bound=bound))
    assert got == expected
    assert fired == expected_fired


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2) as executor:
        yield executor


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(programs(), st.integers(1, 3), st.integers(1, 3))
def test_parallel_search_equals_serial(
    pool: ProcessPoolExecutor, prog: Any, bad: int, batch: int
) -> None:
    """Batches of states expanded on a process pool: the same verdicts, the same
    distinct-state count and the same counterexamples as in one process."""
    make = ToyFactory(*prog, bad=bad)
    serial = explore(make, leaf_key=_leaf)
    parallel = explore(make, leaf_key=_leaf, executor=pool, batch_size=batch)
    assert parallel.leaves == serial.leaves
    assert parallel.stats.states == serial.stats.states
    assert parallel.stats.transitions == serial.stats.transitions
    assert parallel.oracles == serial.oracles


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(programs(max_tasks=2, max_total=6, spawns=True), st.integers(1, 3))
def test_tabled_parallel_search_equals_serial(
    pool: ProcessPoolExecutor, prog: Any, bad: int
) -> None:
    """Workers learn tables and take each other's: the same search as in one
    process."""
    make = ToyFactory(*prog, bad=bad)
    serial = explore(make, leaf_key=_leaf, table_steps=True)
    parallel = explore(
        make, leaf_key=_leaf, executor=pool, batch_size=1, table_steps=True
    )
    _same_search(parallel, serial, make)


def test_tabled_kernel_search_on_a_pool_equals_serial(
    pool: ProcessPoolExecutor,
) -> None:
    """The kernel model, whose levels are large enough to go to the workers
    (the toy programs' mostly stay in the searching process), which take each
    other's tabled steps: the same search as in one process."""
    from mmsim._api import machine_factory

    make, _, _ = machine_factory("dio/001", "baseline")
    serial = explore(make, table_steps=True)
    parallel = explore(make, executor=pool, table_steps=True)
    _same_search(parallel, serial, make)


def _a_level(expander: Any, nodes: list[Any]) -> list[Any]:
    """The first level of at least four nodes below ``nodes``, every running child
    kept (so that the level meets runs that end, and states twice)."""
    while len(nodes) < 4:
        batch = expander(nodes)
        nodes = [
            (ch.key, node[1] + bytes((ch.tid,)), ch.last, ch.preemptions, ch.state)
            for node, ex in zip(nodes, batch.expansions, strict=True)
            for ch in ex.children
            if ch.status == "running"
        ]
    return nodes


@pytest.mark.parametrize("tabled", [True, False])
def test_a_child_the_search_holds_is_handed_back_as_its_edge(tabled: bool) -> None:
    """A child whose key the search already holds (with no more preemptions)
    comes back as its edge only (tabled: with no replay for its waits or its
    run's end); one new to the search, or reached with fewer preemptions, comes
    back whole; and a key handed back earlier in the batch counts as held."""
    from mmsim._api import machine_factory
    from mmsim.explorer import _KNOWN, _Expander, _start

    make, _, _ = machine_factory("dio/001", "baseline")
    root = _start(make, Bounds(), True, None, True, table_steps=tabled)
    expander = _Expander(make, None, tabled=tabled, token="known")
    nodes = _a_level(expander, root.level)
    whole = expander(nodes)  # the steps are tabled from here on
    edges = [
        [(ch.place, ch.tid, ch.key, ch.found, ch.smap) for ch in ex.children]
        for ex in whole.expansions
    ]
    keys = [ch.key for ex in whole.expansions for ch in ex.children]
    assert len(set(keys)) < len(keys), "the test needs a state met twice"

    held = expander(nodes, known=dict.fromkeys(keys, 0))
    if tabled:
        assert held.replays == 0
    assert [
        [(ch.place, ch.tid, ch.key, ch.found, ch.smap) for ch in ex.children]
        for ex in held.expansions
    ] == edges
    assert {ch.status for ex in held.expansions for ch in ex.children} == {_KNOWN}

    # Held with more preemptions than this run has: not a revisit.
    again = expander(nodes, known=dict.fromkeys(keys[1:], 1))
    first = again.expansions[0].children[0]
    assert first.status != _KNOWN
    assert first == whole.expansions[0].children[0]
    statuses = [ch.status for ex in again.expansions for ch in ex.children]
    assert statuses.count(_KNOWN) == len(keys) - len(set(keys))


def test_a_worker_recalls_only_what_batches_merged_before_handed_back() -> None:
    """A worker counts a child as held if one of its own batches handed the
    key back, numbered before (the merge takes batches in their numbers'
    order, whichever a Dask worker's threads run first), in this level or the
    one before; and never under a preemption bound."""
    from mmsim._api import machine_factory
    from mmsim.explorer import _KNOWN, _RECALL, _expand, _Expander, _start

    make, _, _ = machine_factory("dio/001", "baseline")
    root = _start(make, Bounds(), True, None, True)
    expander = _Expander(make, None, token="recall")
    nodes = _a_level(expander, root.level)

    def held(depth: int, number: int, e: _Expander = expander) -> int:
        out = _expand(e, nodes, depth, number)
        return sum(ch.status == _KNOWN for ex in out.expansions for ch in ex.children)

    keys = [ch.key for ex in expander(nodes).expansions for ch in ex.children]
    twice = len(keys) - len(set(keys))  # held within the batch itself
    assert held(5, 10) == twice
    assert held(5, 9) == twice  # batch 10 is merged after batch 9
    assert held(5, 11) == len(keys)
    assert held(6, 12) == len(keys)  # the level before is recalled
    assert held(8, 13) == twice  # older levels are not, nor kept
    recall = _RECALL.peek("recall")
    assert recall is not None
    assert set(recall.levels) == {8}
    bounded = attrs.evolve(expander, preemption_bound=2)
    assert held(8, 14, bounded) == 0 == held(8, 15, bounded)


def test_the_merge_refuses_a_new_state_taken_for_held() -> None:
    """A child handed back as its edge only, as held, whose state the search
    does not hold: its end was never judged, so the merge refuses it rather
    than record a run end it did not see."""
    from mmsim._api import machine_factory
    from mmsim.explorer import _Batch, _edge_only, _Expansion, _merge, _start

    make, _, _ = machine_factory("dio/001", "baseline")
    search = _start(make, Bounds(), True, None, True)
    child = _edge_only(0, 0, 12345, (), 0, 0, None)
    batch = _Batch((_Expansion((child,), False),), 0, 0, frozenset(), {}, frozenset())
    with pytest.raises(RuntimeError, match="taken for held, but is new"):
        _merge(search, search.level, batch, False, None, lambda _: None)


def test_searches_at_once_in_threads_keep_their_own_tables() -> None:
    """Tabled searches that run at once in threads of one process (``compare``
    on a thread pool, a Dask worker's threads) each keep their own tables and
    recall: each replays exactly as often as it does alone, which the report
    records. The searching process drops them at the search's end."""
    from concurrent.futures import ThreadPoolExecutor

    from mmsim._api import machine_factory
    from mmsim.explorer import _RECALL, _TABLES

    makes = [
        machine_factory(scenario, "baseline")[0] for scenario in ("dio/001", "dio/002")
    ] * 2
    kept = len(_TABLES), len(_RECALL)

    def replays(make: Any) -> tuple[int, int]:
        stats = explore(make, table_steps=True).stats
        return stats.states, stats.replays

    alone = [replays(make) for make in makes]
    with ThreadPoolExecutor(len(makes)) as pool:
        assert list(pool.map(replays, makes)) == alone
    assert (len(_TABLES), len(_RECALL)) == kept


def test_a_process_keeps_the_searches_it_runs_and_the_last_it_served() -> None:
    """What a process keeps per search: its own searches' until they end,
    however many; of the searches it serves (batches of a search run
    elsewhere), the last two."""
    from mmsim.explorer import _PerSearch

    kept: _PerSearch[str] = _PerSearch()
    kept.hold("own")
    for token in ("own", "a", "b", "c"):
        assert kept.get(token, lambda t=token: t.upper()) == token.upper()
    assert kept.get("a", lambda: "made again") == "made again"  # a was pushed out
    assert [kept.peek(t) for t in ("own", "b", "c")] == ["OWN", None, "C"]
    kept.drop("own")
    assert kept.peek("own") is None
    assert len(kept) == 2


def _holds_after_fork(token: str) -> bool:
    from mmsim.explorer import _SERVED_KEPT, _TABLES

    for n in range(_SERVED_KEPT + 1):
        _TABLES.get(f"served {n}", str)
    return _TABLES.peek(token) is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_worker_does_not_hold_its_parent_s_search() -> None:
    """A pool's worker forked while the parent searches inherits the parent's
    tables, but only serves that search: it lets them go as it serves others,
    where the parent keeps them to the end."""
    import multiprocessing

    from mmsim.explorer import _SERVED_KEPT, _TABLES

    token = "parent's search"
    _TABLES.hold(token)
    try:
        _TABLES.get(token, str)
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            assert pool.submit(_holds_after_fork, token).result() is False
        assert _holds_after_fork(token) is True
    finally:
        _TABLES.drop(token)
        for n in range(_SERVED_KEPT + 1):
            _TABLES.drop(f"served {n}")


def test_tabled_steps_learnt_in_one_process_serve_another() -> None:
    """What one process tabled (steps, with what each found, met and reached;
    and waits) another takes, its own extras numbered differently, and composes
    the same children from, replaying only the runs that end there."""
    from mmsim._api import machine_factory
    from mmsim.explorer import _TABLES, _Expander, _start

    make, _, _ = machine_factory("dio/001", "baseline")
    root = _start(make, Bounds(), True, None, True, table_steps=True)
    learner = _Expander(make, None, tabled=True, token="learner", share=True)
    levels = []
    nodes = root.level
    seen = {root.graph.root}
    found = False
    while not found:
        # Breadth first, to the first level where a violation is found.
        batch = learner(nodes)
        levels.append((nodes, batch))
        expanded, nodes = nodes, []
        for node, exp in zip(expanded, batch.expansions, strict=True):
            for ch in exp.children:
                found = found or bool(ch.found or ch.end)
                if ch.status == "running" and ch.key not in seen:
                    seen.add(ch.key)
                    schedule = node[1] + bytes((ch.tid,))
                    nodes.append((ch.key, schedule, ch.last, ch.preemptions, ch.state))
    tables = _TABLES.peek("learner")
    assert tables is not None
    learnt_extras = list(tables.extras)
    shared = tuple(
        (n, batch.learnt._replace(origin=("elsewhere", 0)))
        for n, (_, batch) in enumerate(levels)
        if batch.learnt is not None
    )
    # The taker tables the deepest level first, for itself: its extras come
    # in another order than the learner's.
    taker = _Expander(make, None, tabled=True, token="taker")
    taker(levels[-1][0])
    taker = attrs.evolve(taker, shared=shared)
    for nodes, learnt in levels:
        took = taker(nodes)
        assert took.expansions == learnt.expansions
        assert (took.positions, took.events) == (learnt.positions, learnt.events)
        assert took.code == learnt.code
        # A run that ends needs its machine (the final sync and the end-of-run
        # oracles), unless an oops on the edge stopped it.
        ends = sum(
            ch.status != "running" and not any(v.fatal for v in ch.found)
            for ex in learnt.expansions
            for ch in ex.children
        )
        assert took.replays == ends
    # The test's premise: the two processes number their extras differently.
    took_tables = _TABLES.peek("taker")
    assert took_tables is not None
    assert took_tables.extras != learnt_extras
    assert set(took_tables.extras) == set(learnt_extras)


@settings(deadline=None)
@given(
    programs(),
    st.integers(1, 3),
    st.integers(1, 6),
    st.sampled_from([None, 0, 1]),
    st.booleans(),
)
def test_resumed_search_equals_uninterrupted(
    tmp_path_factory: pytest.TempPathFactory,
    prog: Any,
    bad: int,
    cut: int,
    bound: int | None,
    tabled: bool,
) -> None:
    """A search cut by a budget, saved and resumed, ends where one run would,
    with or without a preemption bound (whose own cuts stand after a resume),
    with or without tabled steps (the resumed process learns them afresh)."""
    make = ToyFactory(*prog, bad=bad)
    path = tmp_path_factory.mktemp("ckpt") / "search.ckpt"
    whole = explore(
        make, Bounds(preemption_bound=bound), leaf_key=_leaf, table_steps=tabled
    )
    first = explore(
        make,
        Bounds(max_states=cut, preemption_bound=bound),
        leaf_key=_leaf,
        batch_size=1,
        checkpoint=path,
        table_steps=tabled,
    )
    if "max_states" not in " ".join(first.stats.cut_by):
        assert first.oracles == whole.oracles
        return
    resumed = explore(
        make,
        Bounds(preemption_bound=bound),
        leaf_key=_leaf,
        batch_size=1,
        resume=path,
        table_steps=tabled,
    )
    assert resumed.stats.complete == whole.stats.complete
    assert resumed.stats.cut_by == whole.stats.cut_by
    assert resumed.stats.states == whole.stats.states
    assert resumed.oracles == whole.oracles
    assert first.leaves <= resumed.leaves == whole.leaves


def test_a_checkpoint_of_another_search_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "search.ckpt"
    prog = [[("add", 0, 1)] * 3, [("add", 1, 1)] * 3]
    explore(ToyFactory(prog, 2, 0), Bounds(max_states=3), checkpoint=path)
    with pytest.raises(CheckpointError, match=r"another search \(bad None, not 1\)$"):
        explore(ToyFactory(prog, 2, 0, bad=1), resume=path)
    with pytest.raises(
        CheckpointError,
        match=r"another search \(table_steps False, not True: resume with "
        r"table_steps=False, --no-table-steps\)$",
    ):
        explore(ToyFactory(prog, 2, 0), resume=path, table_steps=True)
    with pytest.raises(
        CheckpointError,
        match=r"another search \(symmetry True, not False: resume with "
        r"symmetry=True, no --no-symmetry\)$",
    ):
        explore(ToyFactory(prog, 2, 0), resume=path, symmetry=False)
    saved = path.read_bytes()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(
        CheckpointError, match=r"not a search checkpoint \(not a pickle"
    ):
        explore(ToyFactory(prog, 2, 0), resume=path)
    path.write_bytes(saved[: len(saved) // 2])  # cut short, as by a full disk
    with pytest.raises(CheckpointError, match="or a damaged one"):
        explore(ToyFactory(prog, 2, 0), resume=path)
    path.write_bytes(pickle.dumps((_CHECKPOINT_FORMAT, {"depth": 3})))
    with pytest.raises(CheckpointError, match="a damaged search checkpoint"):
        explore(ToyFactory(prog, 2, 0), resume=path)


class _Stalled(Executor):
    """An executor that takes work and never does it (a cluster with no worker)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        return Future()


def test_time_budget_stops_a_search_waiting_on_a_stalled_executor(
    tmp_path: Path,
) -> None:
    prog = [[("add", 0, 1)] * 3, [("add", 1, 1)] * 3, [("set", 0, 2)] * 2]
    make = ToyFactory(prog, 2, 0)
    path = tmp_path / "search.ckpt"
    done: list[Any] = []

    def search() -> None:
        bounds = Bounds(max_time=0.5)
        done.append(explore(make, bounds, executor=_Stalled(), checkpoint=path))

    # Run aside, so that a search that waits for ever fails the test rather
    # than hang it.
    worker = threading.Thread(target=search, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "the search waited past its budget"
    (result,) = done
    assert result.verdict == Verdict.UNKNOWN
    assert result.stats.cut_by == ["max_time=0.5s"]
    # What was merged before the wait is saved, and a working executor ends it.
    with ProcessPoolExecutor(2) as pool:
        resumed = explore(make, executor=pool, resume=path)
    assert resumed.stats.complete
    assert resumed.stats.states == explore(make).stats.states


def test_a_checkpoint_of_another_build_of_the_model_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "search.ckpt"
    prog = [[("add", 0, 1)] * 3, [("add", 1, 1)] * 3]
    explore(ToyFactory(prog, 2, 0), Bounds(max_states=3), checkpoint=path)
    with (
        mock.patch("mmsim.explorer._DIGEST", "0123456789abcdef"),
        pytest.raises(CheckpointError, match="another build of the model"),
    ):
        explore(ToyFactory(prog, 2, 0), resume=path)
    # The same build resumes it.
    assert explore(ToyFactory(prog, 2, 0), resume=path).stats.complete


def _another_build() -> None:
    import mmsim.explorer

    mmsim.explorer._DIGEST = "0123456789abcdef"


def test_a_worker_running_another_build_of_the_model_stops_the_search() -> None:
    # A real pool whose workers compute another digest, as a worker with
    # another mmsim installed would: its first batch stops the search.
    prog = [[("add", 0, 1)] * 3, [("add", 1, 1)] * 3, [("set", 0, 2)] * 2]
    make = ToyFactory(prog, 2, 0)
    with (
        ProcessPoolExecutor(2, initializer=_another_build) as other,
        pytest.raises(ModelMismatch, match=r"ran another build of the model"),
    ):
        explore(make, executor=other)
    with ProcessPoolExecutor(2) as same:
        assert explore(make, executor=same).stats.states == explore(make).stats.states


def test_the_model_digest_is_of_the_source() -> None:
    from mmsim.explorer import _model_digest

    first = _model_digest()
    with mock.patch("mmsim.explorer._DIGEST", None):
        assert _model_digest() == first  # read afresh: the same files
    read = Path.read_bytes

    def edited(self: Path) -> bytes:
        # One line added to one kernel file, as in an edited checkout.
        return read(self) + (b"# edited\n" if self.name == "vmscan.py" else b"")

    with (
        mock.patch("mmsim.explorer._DIGEST", None),
        mock.patch.object(Path, "read_bytes", edited),
    ):
        assert _model_digest() != first


def test_the_graph_reads_back_every_edge_it_stored() -> None:
    from mmsim.engine import Violation
    from mmsim.explorer import _Graph

    g = _Graph(root=1)
    bad = (Violation("lost-write", "the write was lost", "task 0"),)
    big = 2**64 - 1  # a fingerprint is 64 bits, unsigned
    g.add_edge(1, 0, big, (), None)
    g.add_edge(1, 2, 7, bad, (1, 0, 2))
    g.add_edge(7, 255, 1, (), (1, 0, 2))
    g.add_edge(7, 1, 3, (), (0, 2, 1))
    assert list(g.out(1)) == [(0, big, 0), (2, 7, 1)]
    assert [(p, c, g.smap(m)) for p, c, m in g.out(7)] == [
        (255, 1, (1, 0, 2)),
        (1, 3, (0, 2, 1)),
    ]
    assert g.perms == [(1, 0, 2), (0, 2, 1)]  # each map stored once
    assert g.violations(1, 2, 7) == bad
    assert g.violations(1, 0, big) == ()
    assert list(g.out(3)) == []  # a node never expanded


def _stuck_by_reverse_graph(
    root: int, edges: dict[int, list[int]], ends: set[int]
) -> list[int]:
    """The states the root reaches that reach no end, breadth first: what
    ``_unbounded_wait`` computed before, with a reverse graph."""
    back: dict[int, list[int]] = {}
    for node, children in edges.items():
        for child in children:
            back.setdefault(child, []).append(node)
    can_end, todo = set(ends), list(ends)
    while todo:
        for prev in back.get(todo.pop(), []):
            if prev not in can_end:
                can_end.add(prev)
                todo.append(prev)
    order, queue = [root], [root]
    while queue:
        for child in edges.get(queue.pop(0), []):
            if child not in order:
                order.append(child)
                queue.append(child)
    return [n for n in order if n not in can_end]


@settings(deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 11), st.lists(st.integers(0, 11), max_size=3), max_size=12
    ),
    st.sets(st.integers(0, 11), max_size=4),
    st.randoms(use_true_random=False),
)
def test_unbounded_wait_finds_the_states_no_end_is_reachable_from(
    edges: dict[int, list[int]], ends: set[int], rnd: Any
) -> None:
    """The fixpoint over forward edges, whatever order the states come in,
    finds exactly the stuck states a reverse graph finds, and the first of them
    breadth first."""
    from mmsim.explorer import (
        SearchStats,
        _Graph,
        _Paths,
        _shortest_paths,
        _unbounded_wait,
    )

    graph = _Graph(root=0)
    for node, children in edges.items():
        for place, child in enumerate(children):
            graph.add_edge(node, place, child, (), None)
    reached = list(_shortest_paths(graph))
    graph.edges = {n: e for n, e in graph.edges.items() if n in reached}
    graph.ends = {n: () for n in ends if n in reached}
    rnd.shuffle(reached)  # the fixpoint must not depend on the order
    states = dict.fromkeys(reached, 0)
    stats = SearchStats(states=len(states), complete=True)
    result = _unbounded_wait(stats, graph, states, _Paths(graph, lambda: None))
    live = {n: edges.get(n, []) for n in states}
    stuck = _stuck_by_reverse_graph(0, live, set(graph.ends))
    assert result.occurrences == len(stuck)
    if not stuck:
        assert result.verdict == Verdict.NEVER
        return
    assert result.verdict == (Verdict.ALWAYS if stuck[0] == 0 else Verdict.SOMETIMES)
    assert result.counterexample is not None
    node = 0
    for place in result.counterexample.schedule:
        node = edges[node][place]
    assert node == stuck[0]


def test_a_proof_computes_no_shortest_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent for every state is as large as the graph: a search with no
    counterexample to show must not build one."""
    from mmsim import explorer

    def refuse(*_: Any) -> None:
        raise AssertionError("shortest paths computed for a proof")

    monkeypatch.setattr(explorer, "_shortest_paths", refuse)
    prog = [[("add", 0, 1)] * 3, [("add", 1, 1)] * 3]
    result = explore(ToyFactory(prog, 2, 0, bad=99))
    assert result.stats.complete
    assert result.verdict == Verdict.NEVER
    # The kernel model's graph-wide oracles too (unbounded waits, starvation).
    from mmsim._api import machine_factory

    make, _, _ = machine_factory("dio/001", "defer-release")
    result = explore(make)
    assert result.stats.complete
    assert {r.verdict for r in result.oracles.values()} == {Verdict.NEVER}
    assert {"unbounded-wait", "starvation"} <= set(result.oracles)


@pytest.mark.skipif(
    not Path("/proc/self/statm").exists(), reason="no figure of memory held now"
)
def test_the_peak_counts_the_memory_the_verdicts_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The verdicts are computed after the last batch, from structures as large
    as the graph: the peak charges them. Here the shortest paths hold 64 MiB
    of their own (written, so resident)."""
    from mmsim import explorer

    shortest = explorer._shortest_paths

    class Heavy(dict[int, Any]):
        ballast = b""

    def heavy(*args: Any, **kwargs: Any) -> Heavy:
        parent = Heavy(shortest(*args, **kwargs))
        parent.ballast = b"\x01" * (64 << 20)
        return parent

    monkeypatch.setattr(explorer, "_shortest_paths", heavy)
    before = explorer._rss_mib()
    prog = [[("set", 1, 1), ("set", 0, 9)], [("add", 1, 1)]]
    result = explore(ToyFactory(prog, 2, 0, bad=9))
    assert result.verdict == Verdict.ALWAYS
    assert result.stats.peak_mib > before + 48


def test_symmetry_merges_identical_tasks() -> None:
    # Three identical tasks of two steps each: a task is not started, after its
    # first step, after its second, or done: 4**3 states, and up to symmetry
    # the multisets of three of the four places, C(6, 3).
    prog = [[("add", 0, 1), ("add", 1, 1)]] * 3
    on = explore(ToyFactory(prog, 2, 0))
    off = explore(ToyFactory(prog, 2, 0), symmetry=False)
    assert off.stats.states == 4**3
    assert on.stats.states == 20
    assert on.stats.complete
    assert off.stats.complete


def test_unreached_steps_are_reported() -> None:
    # The lock's wait is a step only a contended lock reaches: with one locker it
    # is reported unreached, with two it is not.
    source, first = inspect.getsourcelines(ToyMachine._run)
    wait_line = first + next(
        i for i, text in enumerate(source) if "Wait(lambda lk=lk" in text
    )
    locked = [("lock", 0), ("add", 0, 1), ("unlock", 0)]
    alone = explore(ToyFactory([locked, [("set", 1, 1)]], 2, 1))
    contended = explore(ToyFactory([locked, list(locked)], 2, 1))
    assert all(u.function == "ToyMachine._run" for u in alone.unreached)
    assert wait_line in {u.line for u in alone.unreached}
    assert wait_line not in {u.line for u in contended.unreached}
    assert set(contended.unreached) < set(alone.unreached)


def test_verdict_words() -> None:
    never = explore(lambda: ToyMachine([[("set", 0, 1)], [("set", 1, 1)]], 2, 0, bad=7))
    assert never.verdict == Verdict.NEVER
    assert never.counterexample is None
    always = explore(
        lambda: ToyMachine([[("set", 0, 7)], [("set", 1, 1)]], 2, 0, bad=7)
    )
    assert always.verdict == Verdict.ALWAYS
    # var0 becomes 1 only if T1 runs before T0 copies var1 into var0.
    prog = [[("load", 1), ("store", 0)], [("set", 1, 1)]]
    sometimes = explore(lambda: ToyMachine(prog, 2, 0, bad=1))
    assert sometimes.verdict == Verdict.SOMETIMES


def test_shortest_counterexample_is_shortest() -> None:
    # T0 reaches the bad value only at its third step; T1 at its first.
    prog = [
        [("set", 1, 1), ("set", 1, 2), ("set", 0, 9)],
        [("add", 1, 1), ("set", 0, 9)],
    ]
    result = explore(lambda: ToyMachine(prog, 2, 0, bad=9))
    assert result.counterexample is not None
    assert result.counterexample.schedule == (1, 1)
    assert result.oracles["var0-bad"].counterexample == result.counterexample


def test_step_bound_makes_the_search_incomplete() -> None:
    prog = [[("add", 0, 1)] * 4, [("add", 1, 1)] * 4]
    result = explore(lambda: ToyMachine(prog, 2, 0, bad=99), Bounds(max_steps=3))
    assert not result.stats.complete
    assert result.stats.cut_by == ["max_steps=3"]
    assert result.verdict == Verdict.UNKNOWN


def test_memory_budget_cuts_the_search_and_a_resume_ends_it(tmp_path: Path) -> None:
    """A budget below what the process holds cuts the search at its first
    check, which saves it; resumed without the budget, it ends where one run
    would."""
    make = ToyFactory([[("add", 0, 1)] * 4, [("add", 1, 1)] * 4], 2, 0)
    path = tmp_path / "search.ckpt"
    cut = explore(make, Bounds(max_memory=1), batch_size=1, checkpoint=path)
    assert cut.stats.cut_by == ["max_memory=1MiB"]
    assert cut.verdict == Verdict.UNKNOWN
    whole = explore(make)
    resumed = explore(make, resume=path)
    assert cut.stats.states < whole.stats.states
    assert resumed.stats.complete
    assert resumed.stats.states == whole.stats.states
    assert resumed.oracles == whole.oracles


@pytest.mark.skipif(
    not Path("/proc/self/statm").exists(), reason="no figure of memory held now"
)
def test_memory_budget_charges_the_search_what_it_holds() -> None:
    """Memory the process held and gave back before the search is not charged
    to it: getrusage's peak would charge it, and cut this search at once."""
    ballast = b"\x01" * (256 << 20)  # written, so resident
    del ballast
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    budget = pages * os.sysconf("SC_PAGE_SIZE") / 2**20 + 128
    make = ToyFactory([[("add", 0, 1)] * 4, [("add", 1, 1)] * 4], 2, 0)
    result = explore(make, Bounds(max_memory=budget), batch_size=1)
    assert result.stats.complete
    assert 0 < result.stats.peak_mib < budget


#: What a :class:`_WorkerBallast` holds in the process it runs in.
_BALLAST: dict[str, bytes] = {}


class _WorkerBallast:
    """A machine factory that, called in any process but the one that made it,
    holds 64 MiB there (written, so resident) for that process's life."""

    def __init__(self, make: Any) -> None:
        self.make, self.home = make, os.getpid()

    def __call__(self) -> Any:
        if os.getpid() != self.home and not _BALLAST:
            _BALLAST["worker"] = b"\x01" * (64 << 20)
        return self.make()


@pytest.mark.skipif(
    not Path("/proc/self/statm").exists(), reason="no figure of memory held now"
)
def test_memory_of_a_parallel_search_counts_its_workers() -> None:
    """On a process pool the search's memory is its workers' too: a worker that
    holds 64 MiB of its own is charged for them. (A pool of its own: the
    ballast goes with it.)"""
    from mmsim._api import machine_factory
    from mmsim.explorer import _rss_mib

    make, _, _ = machine_factory("dio/001", "defer-release")
    with ProcessPoolExecutor(2) as pool:
        result = explore(_WorkerBallast(make), executor=pool)
        own = _rss_mib(shared=True)
    assert result.stats.complete
    assert result.stats.peak_mib > own + 48


def _memory_now() -> tuple[float, float]:
    from mmsim.explorer import _rss_mib

    return _rss_mib(shared=True), _rss_mib()


@pytest.mark.skipif(
    not Path("/proc/self/smaps_rollup").exists(),
    reason="no proportional set size (Linux 4.14)",
)
def test_a_worker_is_charged_half_the_pages_it_shares_with_its_parent() -> None:
    """A forked worker's figure is its proportional share: the pages it still
    shares with the searching process count half in each, so that the two
    figures add up to what the pair holds, not to twice the shared pages."""
    import multiprocessing

    ballast = b"\x01" * (64 << 20)  # written before the fork: shared after it
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context) as worker:
        share, resident = worker.submit(_memory_now).result()
    assert len(ballast) == 64 << 20
    assert resident > 64
    assert share < resident - 24


@pytest.mark.parametrize(
    ("policy", "needed"),
    [
        # Every switch the seed race needs is away from a sleeping task (the
        # DIO read waits for its bio, writeback for its page): free.
        ("baseline", 0),
        # The race the v6.4 reclaim check leaves where reclaim still writes
        # pages (kswapd's pageout window) needs two switches away from a task
        # that could have gone on.
        ("pinned-dio-with-writepage", 2),
    ],
)
@pytest.mark.usefixtures("counterfactuals")
def test_preemptions_a_race_needs(policy: str, needed: int) -> None:
    """A bound below what a race needs cannot meet it, and says so (Unknown:
    the bound cut the search); the bound it needs finds it."""
    from mmsim._api import machine_factory

    make, _, _ = machine_factory("dio/001", policy, oracles=["nobuffers-writeback"])
    for bound in range(needed + 1):
        result = explore(make, Bounds(preemption_bound=bound))
        verdict = result.oracles["nobuffers-writeback"].verdict
        if bound < needed:
            assert verdict == Verdict.UNKNOWN
            assert result.stats.cut_by == [f"preemption_bound={bound}"]
        else:
            assert verdict == Verdict.SOMETIMES


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"max_steps": 0}, "max_steps must be at least 1, not 0"),
        ({"preemption_bound": -1}, "preemption_bound must be at least 0, not -1"),
        ({"max_time": 0.0}, "max_time must be above 0, not 0.0"),
        ({"max_memory": float("nan")}, "max_memory must be above 0, not nan"),
        ({"max_states": 2.5}, "max_states must be a whole number, not 2.5"),
    ],
)
def test_bad_bounds_are_refused(bad: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Bounds(**bad)


def test_an_unwritable_checkpoint_fails_before_the_search(tmp_path: Path) -> None:
    """Not at the search's end, where a long search would be lost."""
    runs = []

    def make() -> Machine:
        runs.append(1)
        return ToyFactory([[("add", 0, 1)]], 1, 0)()

    with pytest.raises(CheckpointError, match="cannot write a checkpoint there"):
        explore(make, checkpoint=tmp_path / "missing" / "search.ckpt")
    assert runs == []
    assert list(tmp_path.iterdir()) == []


def test_preemption_bound() -> None:
    prog = [[("load", 0), ("store", 1)], [("set", 0, 1), ("set", 0, 0)]]

    def make() -> ToyMachine:
        m = ToyMachine(prog, 2, 0)
        m.install_oracles([_Var1Is1()])
        return m

    # var1 == 1 needs T0 to load between T1's two sets: T1, T0 (a preemption of
    # T1), then anything. One preemption suffices; zero does not.
    assert explore(make, Bounds(preemption_bound=0)).verdict == Verdict.UNKNOWN
    assert explore(make, Bounds(preemption_bound=1)).verdict == Verdict.SOMETIMES


class _Var1Is1(Oracle):
    id = "var1"

    def after_step(self, m: Any) -> str | None:
        return "var1 is 1" if m.vars[1] == 1 else None


def test_deadlock_is_found() -> None:
    prog = [[("await", 0, 1)], [("set", 1, 1)]]
    result = explore(lambda: ToyMachine(prog, 2, 0))
    assert result.verdict == Verdict.ALWAYS
    assert result.oracles["deadlock"].verdict == Verdict.ALWAYS
    assert result.oracles["deadlock"].occurrences == 1


def test_a_non_fatal_violation_does_not_end_the_run() -> None:
    # var0 is bad (1) only transiently; T1 then sets var1, which a second oracle
    # watches. Both must be found on the same run.
    prog = [[("set", 0, 1), ("set", 0, 0), ("set", 1, 5)]]

    class Var1Is5(Oracle):
        id = "var1-5"

        def after_step(self, m: Any) -> str | None:
            return "var1 is 5" if m.vars[1] == 5 else None

    def make() -> ToyMachine:
        m = ToyMachine(prog, 2, 0, bad=1)
        m.install_oracles([*m.oracles, Var1Is5()])
        return m

    result = explore(make)
    assert result.oracles["var0-bad"].verdict == Verdict.ALWAYS
    assert result.oracles["var1-5"].verdict == Verdict.ALWAYS
    cex = result.oracles["var1-5"].counterexample
    assert cex is not None
    assert cex.schedule == (0, 0, 0)


class _PinLoop(Machine):
    """A daemon that pins and unpins for ever, and a task waiting for no pins.

    ``fair`` makes the pinner wait for the waiter to be done before pinning
    again, so the waiter cannot be starved.
    """

    def __init__(self, fair: bool) -> None:
        super().__init__()
        self.pins = 0
        self.done = False
        self.spawn("pinner", "dio", self._pinner(fair), daemon=True)
        self.spawn("fsync", "fsync", self._waiter())
        from mmsim.oracles import make_oracles

        self.install_oracles(make_oracles(["starvation"]))

    def state_snapshot(self) -> tuple[int, ...]:
        return (self.pins, self.done)

    def _pinner(self, fair: bool) -> KernelPath:
        while True:
            yield Wait(lambda: True, "between requests", idle=True)
            if fair and not self.done:
                continue
            self.pins += 1
            yield
            self.pins -= 1

    def _waiter(self) -> KernelPath:
        yield
        yield Wait(lambda: self.pins == 0, "wait for unpin", pins=True)
        self.done = True


def test_starvation_needs_the_condition_to_come_and_go() -> None:
    unfair = explore(lambda: _PinLoop(fair=False))
    assert unfair.oracles["starvation"].verdict == Verdict.SOMETIMES
    cex = unfair.oracles["starvation"].counterexample
    assert cex is not None
    assert cex.violation.task == "fsync"
    assert explore(lambda: _PinLoop(fair=True)).oracles["starvation"].verdict == (
        Verdict.NEVER
    )


def test_a_dask_cluster_gives_the_same_search() -> None:
    """The documented way to search on a cluster: the same verdicts, state count
    and counterexamples as in one process, for a kernel scenario; and with
    tabled steps, which the workers share through the cluster."""
    distributed = pytest.importorskip("distributed")
    from mmsim._api import machine_factory

    make, _, _ = machine_factory("dio/002", params={"readers": 2})
    serial = explore(make)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = explore(make, executor=client.get_executor())
        tabled = explore(make, executor=client.get_executor(), table_steps=True)
    assert on_dask.stats.states == serial.stats.states
    assert on_dask.stats.transitions == serial.stats.transitions
    assert on_dask.oracles == serial.oracles
    _same_search(tabled, explore(make, table_steps=True), make)


def test_a_level_is_cut_into_batches_for_every_worker_the_executor_has() -> None:
    """A level goes out as about four batches per worker, and the shared tables
    ride on two per worker: both need the executor's true width, a Dask
    cluster's included (its executor does not say it as a pool does)."""
    from concurrent.futures import ThreadPoolExecutor

    from mmsim.explorer import _batch_size, _workers

    distributed = pytest.importorskip("distributed")

    class Opaque(Executor):
        pass

    with ThreadPoolExecutor(5) as threads:
        assert _workers(threads) == 5
    assert _workers(ProcessPoolExecutor(3)) == 3  # no process starts until used
    assert _workers(Opaque()) == 2  # unknown: the two cores the issue names

    class Silent:
        def nthreads(self, **kwargs: Any) -> dict[str, int]:
            raise TimeoutError("the scheduler did not answer")

    class Empty:
        def nthreads(self, **kwargs: Any) -> dict[str, int]:
            return {}

    for client in (Silent(), Empty()):  # a cluster that cannot say, or has none
        unknown = Opaque()
        unknown._client = client  # type: ignore[attr-defined]
        assert _workers(unknown) == 2
    with (
        distributed.LocalCluster(
            n_workers=3, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        executor = client.get_executor()
        width = _workers(executor)
        size = _batch_size(1000, executor, width)
    assert width == 6
    assert len(range(0, 1000, size)) >= 4 * width


class _EverySlot:
    """A kernel scenario's machine builder with the finished-slots reduction
    off (picklable, for a process pool)."""

    def __init__(self, make: Any) -> None:
        self.make = make

    def __call__(self) -> Machine:
        m = self.make()
        m.trailing_finished_are_free = False
        return m


def _unreduced(cell: tuple[str, str, str]) -> dict[str, tuple[str, int | None]]:
    """Each oracle's verdict and shortest counterexample length on a report
    cell, found with no state-merging reduction."""
    from mmsim._api import machine_factory

    scenario, policy, fs = cell
    make, _, _ = machine_factory(scenario, policy, fs=fs)
    result = explore(_EverySlot(make), symmetry=False, dead_variables=False)
    assert result.stats.complete, cell
    return {
        oid: (
            r.verdict.value,
            len(r.counterexample.schedule) if r.counterexample else None,
        )
        for oid, r in result.oracles.items()
    }


@pytest.mark.slow
def test_the_report_s_verdicts_need_no_reduction() -> None:
    """Every cell of the committed report searched again without symmetry, dead
    variables or finished slots: each oracle has the verdict and the shortest
    counterexample length the report gives (about a minute on two processes)."""
    from mmsim.report import cells

    golden = Path(__file__).resolve().parent.parent / "reports" / "results.json"
    committed = {
        (v["scenario"], v["policy"], v["fs"]): {
            o["oracle"]: (o["verdict"], o["steps"]) for o in v["per_oracle"]
        }
        for v in json.loads(golden.read_text())["verdicts"]
    }
    todo = cells()
    assert set(todo) == set(committed)
    with ProcessPoolExecutor(2) as pool:
        for cell, found in zip(todo, pool.map(_unreduced, todo), strict=True):
            assert found == committed[cell], cell


@pytest.mark.skipif(
    not Path("/proc/self/smaps_rollup").exists(),
    reason="no proportional set size (Linux 4.14)",
)
def test_a_share_of_memory_is_read_again_after_half_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading it walks the page tables: a reading is used again for half a
    second (so a budget is that much late at most), then taken afresh."""
    from mmsim import explorer

    now = [1000.0]
    monkeypatch.setattr(explorer.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(explorer, "_PSS_READ", [0, -math.inf, 0.0])
    first = explorer._rss_mib(shared=True)
    ballast = b"\x01" * (64 << 20)
    now[0] += 0.4
    assert explorer._rss_mib(shared=True) == first
    now[0] += 0.2
    assert explorer._rss_mib(shared=True) > first + 48
    assert len(ballast) == 64 << 20


def _replayed_cell(cell: tuple[str, str, str]) -> dict[str, Any]:
    """What a report cell's search found replaying every state (the report
    tables steps, ``check``'s default), in the report's terms (figures that do
    not depend on the replays)."""
    from mmsim._api import check

    r = check(cell[0], cell[1], fs=cell[2], diagram=False, table_steps=False)
    return _cell_figures(r.model_dump(mode="json"))


def _cell_figures(v: dict[str, Any]) -> dict[str, Any]:
    stats = {
        k: v["stats"][k]
        for k in (
            "states",
            "transitions",
            "executions",
            "finished_runs",
            "revisits",
            "max_depth",
            "complete",
        )
    }
    return {
        "verdict": v["verdict"],
        "per_oracle": [
            (o["oracle"], o["verdict"], o["occurrences"], o["steps"])
            for o in v["per_oracle"]
        ],
        "stats": stats,
        "coverage": v["coverage"],
    }


def _golden_cells() -> dict[tuple[str, str, str], dict[str, Any]]:
    golden = Path(__file__).resolve().parent.parent / "reports" / "results.json"
    return {
        (v["scenario"], v["policy"], v["fs"]): _cell_figures(v)
        for v in json.loads(golden.read_text())["verdicts"]
    }


@pytest.mark.parametrize(
    "cell",
    [
        ("dio/001", "baseline", "ext4"),  # the seed race
        ("dio/001", "defer-release", "ext4"),  # a fix's waits for pins
        ("rdma/001", "baseline", "ext4"),  # a wait for another task's end
        ("dio/004", "baseline", "iomap"),
    ],
)
def test_replaying_searches_the_kernel_model_as_the_tabled_report_did(
    cell: tuple[str, str, str],
) -> None:
    """The kernel model searched by replaying every state: the committed
    report's (tabled) verdicts, counterexample lengths, coverage and state
    graph figures."""
    assert _replayed_cell(cell) == _golden_cells()[cell]


@pytest.mark.slow
def test_every_report_cell_searched_by_replaying() -> None:
    """Every cell of the committed report searched by replaying every state:
    the same verdicts, counterexample lengths, coverage, states, transitions
    and executions as the report, which tabled its steps (a few minutes on two
    processes)."""
    from mmsim.report import cells

    committed = _golden_cells()
    todo = cells()
    assert set(todo) == set(committed)
    with ProcessPoolExecutor(2) as pool:
        for cell, found in zip(todo, pool.map(_replayed_cell, todo), strict=True):
            assert found == committed[cell], cell
