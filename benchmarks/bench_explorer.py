"""Explorer throughput on dio/001, and time to a first counterexample.

The exhaustive breadth-first search is compared with a uniform-random
scheduler measured in the same run (same machine, same process), and the ratio
is reported in ``extra_info`` and printed. Run with ``pytest benchmarks -m benchmark``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from mmsim._api import machine_factory
from mmsim.explorer import Bounds, explore
from mmsim.sampling import sample

pytestmark = pytest.mark.benchmark

SEED = 20180103  # the day of Jan Kara's report; printed with the results


def test_exhaustive_throughput_dio001(benchmark: Any) -> None:
    make, _, _ = machine_factory("dio/001")
    result = benchmark.pedantic(lambda: explore(make, Bounds()), rounds=1, iterations=1)
    st = result.stats
    benchmark.extra_info.update(
        states=st.states,
        transitions=st.transitions,
        executions=st.executions,
        states_per_s=st.states / st.seconds,
        executions_per_s=st.executions / st.seconds,
        transitions_per_s=st.transitions / st.seconds,
    )
    print(
        f"\ndio/001 exhaustive: {st.states} states, {st.executions} executions in "
        f"{st.seconds:.2f}s ({st.states / st.seconds:,.0f} states/s, "
        f"{st.executions / st.seconds:,.0f} executions/s)"
    )
    assert result.verdict == "Sometimes"


def _median_seconds(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def test_first_counterexample_breadth_first_vs_random(benchmark: Any) -> None:
    make, _, _ = machine_factory("dio/001")

    def bfs() -> Any:
        return explore(make, Bounds(), stop_on_first=True)

    walks = [sample(make, "random", seed=SEED + i, max_runs=100_000) for i in range(5)]
    result = benchmark.pedantic(bfs, rounds=3, iterations=1)
    assert result.counterexample is not None
    bfs_s = _median_seconds(bfs, 3)
    random_s = (
        _median_seconds(
            lambda: [
                sample(make, "random", seed=SEED + i, max_runs=100_000)
                for i in range(5)
            ],
            1,
        )
        / 5
    )
    runs = statistics.median(w.runs for w in walks)
    benchmark.extra_info.update(
        bfs_first_s=bfs_s,
        random_first_s=random_s,
        random_over_bfs=random_s / bfs_s,
        random_median_runs=runs,
        seed=SEED,
    )
    print(
        f"\nfirst counterexample on dio/001: breadth first {bfs_s * 1000:.1f} ms "
        f"({len(result.counterexample.schedule)} steps); uniform random "
        f"{random_s * 1000:.1f} ms (median {runs} runs, seeds {SEED}..{SEED + 4}); "
        f"random/breadth-first = {random_s / bfs_s:.2f}"
    )
    assert all(w.counterexample is not None for w in walks)
