"""The explorer's performance goals, measured on this machine in one run.

Each benchmark prints its figures and stores them in ``extra_info``; none is
asserted (a timing assertion would be a flaky test). The reference figures (a
model checker, SPIN 6.5 with partial-order reduction, on an independently
written model of the same race, on the same kind of 2-core machine) are the
bar the issue sets; the printout puts mmsim's figure beside each.

Run with ``pytest benchmarks/bench_search.py -m benchmark -s``. With
``--benchmark-disable`` (CI's smoke run) each runs a small configuration once so
that it cannot rot.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import Record
from mmsim._api import machine_factory
from mmsim.explorer import Bounds, explore
from mmsim.report import cells
from mmsim.sampling import sample
from tests.conftest import register_counterfactuals

pytestmark = pytest.mark.benchmark

#: The committed comparison report (the golden verdicts).
REPORTS = Path(__file__).resolve().parent.parent / "reports"
SEED = 20180103  # the day of Jan Kara's report; printed with the results

#: The growth table's sizes: readers x requests, each against two flushers.
SIZES = [(1, 1), (2, 2), (3, 3)]

#: Budget of each search in the growth table (the issue's bar for 3x3).
BUDGET_S, BUDGET_MIB = 60.0, 1024.0

#: Budget of the defer-release proof on 2x2: time to finish it, on both cores.
PROOF_BUDGET_S = 1800.0


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of ``python -m mmsim ARGS`` in a new process, and its output."""
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "mmsim", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    return time.perf_counter() - t, out.stdout


def test_seed_race_shortest_counterexample_from_the_cli(
    benchmark: Any, tmp_path: Path, goal: Record
) -> None:
    """Goal: under 0.5 s from the command line, process start included, with the
    shortest counterexample printed (SPIN: about 1.8 s, 35 steps).

    Timed as a user runs it after ``pip install``, which compiles the bytecode:
    one untimed run writes it (to a private cache, whatever
    ``PYTHONDONTWRITEBYTECODE`` says), then the timed runs use it. The untimed
    run's time, every module compiled from source, is printed beside.
    """
    rounds = 1 if benchmark.disabled else 5
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    compiling, _ = _cli("check", "dio/001", "--first", env=env)
    times: list[float] = []

    def run() -> str:
        seconds, out = _cli("check", "dio/001", "--first", env=env)
        times.append(seconds)
        return out

    out = benchmark.pedantic(run, rounds=rounds, iterations=1)
    assert "shortest counterexample: 15 steps" in out
    wall = statistics.median(times)
    # The floor, measured in the same run: a Python process that only imports
    # pydantic, which every mmsim command needs for its scenarios and results.
    floor = statistics.median(
        _timed([sys.executable, "-c", "from pydantic import BaseModel"], env)
        for _ in range(rounds)
    )
    benchmark.extra_info.update(
        median_wall_s=wall,
        compiling_wall_s=compiling,
        floor_s=floor,
        steps=15,
        goal_s=0.5,
    )
    print(
        f"\nmmsim check dio/001 --first: median {wall:.2f}s over {rounds} runs "
        f"(goal 0.5s; {compiling:.2f}s in the run that compiled the bytecode); "
        f"Python start and importing pydantic alone: {floor:.2f}s "
        f"({wall / floor:.1f}x)"
    )
    goal(
        "seed race from the command line, shortest counterexample printed",
        "under 0.5 s (SPIN: 1.8 s)",
        f"median {wall:.2f} s of {rounds} runs, 15 steps",
        wall < 0.5,
    )


def _timed(command: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - t


def _search(
    readers: int,
    requests: int,
    flushers: int,
    policy: str,
    budget_s: float = BUDGET_S,
    jobs: int = 1,
    table_steps: bool = True,
) -> dict[str, Any]:
    """One exhaustive search in a fresh process, for its own peak memory (the
    searching process's and, with ``jobs`` > 1, its workers' as their last
    batches reported: ``SearchStats.peak_mib``); with tabled steps unless
    ``table_steps`` is False."""
    code = (
        "import json, sys\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from mmsim._api import machine_factory\n"
        "from mmsim.explorer import Bounds, explore\n"
        f"make, _, _ = machine_factory('dio/001', {policy!r}, params="
        f"dict(readers={readers}, requests={requests}, flushers={flushers}))\n"
        f"bounds = Bounds(max_time={budget_s}, max_memory={BUDGET_MIB})\n"
        f"if {jobs} > 1:\n"
        f"    with ProcessPoolExecutor({jobs}) as pool:\n"
        f"        r = explore(make, bounds, executor=pool, table_steps={table_steps})\n"
        "else:\n"
        f"    r = explore(make, bounds, table_steps={table_steps})\n"
        "s = r.stats\n"
        "json.dump(dict(verdict=r.verdict.value, states=s.states, "
        "transitions=s.transitions, executions=s.executions, seconds=s.seconds, "
        "replays=s.replays, "
        "peak_mib=s.peak_mib, complete=s.complete, cut_by=s.cut_by), sys.stdout)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_defer_release_two_readers_two_requests_two_flushers(
    benchmark: Any, goal: Record
) -> None:
    """Goal: defer-release proved (Never) on 2 readers x 2 requests with two
    flushers in under 5 s (SPIN: about 1.8 s, 454 thousand states). The search
    runs to its end, on both cores, so that the time to the proof is measured,
    with tabled steps (``--table-steps``) and, as the baseline in the same
    run, replaying a state for each child (a few minutes here)."""
    size = (1, 1) if benchmark.disabled else (2, 2)
    jobs = min(2, os.cpu_count() or 1)
    result = benchmark.pedantic(
        lambda: _search(*size, 2, "defer-release", PROOF_BUDGET_S, jobs),
        rounds=1,
        iterations=1,
    )
    replayed = _search(*size, 2, "defer-release", PROOF_BUDGET_S, jobs, False)
    assert (result["verdict"], result["states"]) == (
        replayed["verdict"],
        replayed["states"],
    )
    benchmark.extra_info.update(result, jobs=jobs, replayed=replayed)
    for how, row in (("tabled steps", result), ("replayed", replayed)):
        print(
            f"\ndefer-release on dio/001 {size[0]}x{size[1]}, 2 flushers, "
            f"{jobs} processes, {how}: "
            f"{row['verdict']}, {row['states']:,} states in "
            f"{row['seconds']:.1f}s ({row['replays']:,} replays), "
            f"peak {row['peak_mib']:.0f} MiB"
            + ("" if row["complete"] else f", cut by {', '.join(row['cut_by'])}")
        )
    print(
        "tabled steps against replayed, same run: "
        f"{result['seconds'] / replayed['seconds']:.2f}x the time, "
        f"{result['peak_mib'] / replayed['peak_mib']:.2f}x the peak memory"
    )
    goal(
        "defer-release proved on 2x2, two flushers",
        "under 5 s (SPIN: 1.8 s)",
        f"{result['verdict']}, {result['states']:,} states, "
        f"{result['seconds']:.1f} s on {jobs} processes",
        _proved(result, 5.0),
    )


def test_growth_table(benchmark: Any, goal: Record) -> None:
    """Distinct states, executions, wall time and peak memory against the size
    (readers x requests, two flushers), under defer-release, with tabled steps
    on both cores (as the 3x3 goal has it), so the growth is visible (SPIN at
    3x3: 34.7 million states, 44 s, 2.1 GB)."""
    sizes = SIZES[:1] if benchmark.disabled else SIZES
    jobs = min(2, os.cpu_count() or 1)
    rows = benchmark.pedantic(
        lambda: [_search(r, q, 2, "defer-release", jobs=jobs) for r, q in sizes],
        rounds=1,
        iterations=1,
    )
    lines = [
        f"{jobs} processes, budget {BUDGET_S:g} s and {BUDGET_MIB:g} MiB each",
        f"{'size':>5} {'verdict':>9} {'states':>12} {'executions':>12} "
        f"{'wall s':>8} {'peak MiB':>9}  search",
    ]
    for (r, q), row in zip(sizes, rows, strict=True):
        scope = "complete" if row["complete"] else "cut by " + ", ".join(row["cut_by"])
        lines.append(
            f"{r}x{q:<3} {row['verdict']:>9} {row['states']:>12,} "
            f"{row['executions']:>12,} {row['seconds']:>8.1f} "
            f"{row['peak_mib']:>9.0f}  {scope}"
        )
    benchmark.extra_info["table"] = rows
    print("\n" + "\n".join(lines))
    big = rows[-1]
    goal(
        "defer-release proved on 3x3, two flushers",
        f"under {BUDGET_S:g} s and {BUDGET_MIB / 1024:g} GiB (SPIN: 44 s, 2.1 GB)",
        f"{big['verdict']}, {big['states']:,} states, {big['seconds']:.1f} s, "
        f"{big['peak_mib']:.0f} MiB"
        + ("" if big["complete"] else ", cut by " + ", ".join(big["cut_by"])),
        _proved(big, BUDGET_S) and big["peak_mib"] < BUDGET_MIB,
    )


def _proved(row: dict[str, Any], seconds: float) -> bool:
    """Whether a :func:`_search` row is a complete proof (Never) within ``seconds``."""
    return bool(
        row["complete"] and row["verdict"] == "Never" and row["seconds"] < seconds
    )


def test_preemption_bounds_and_random_walk(
    benchmark: Any, monkeypatch: pytest.MonkeyPatch, goal: Record
) -> None:
    """Races under preemption bounds 0..2, and the runs a uniform random walk
    needs on the seed race (goal: a median of at most 4).

    The issue's reference model needed two preemptions for the seed race. Here
    it needs none: the DIO read sleeps until its bio completes and writeback
    until its page is written, and switching away from a sleeping task is free.
    The race that needs exactly two here is the one the v6.4 reclaim check
    leaves where reclaim still writes pages (kswapd's pageout window, on the
    unregistered ``pinned-dio-with-writepage`` stack, ``tests/test_strategies.py``):
    bound 1 cannot meet it (Unknown: the bound cut the search), bound 2 finds it.
    """
    register_counterfactuals(monkeypatch)
    races = {
        "seed race (baseline)": "baseline",
        "pageout-window race (pinned-dio-with-writepage)": "pinned-dio-with-writepage",
    }
    bounds = [0, 1, 2]

    def run() -> dict[str, dict[int, str]]:
        out: dict[str, dict[int, str]] = {}
        for race, policy in races.items():
            make, _, _ = machine_factory("dio/001", policy)
            out[race] = {
                b: explore(make, Bounds(preemption_bound=b))
                .oracles["nobuffers-writeback"]
                .verdict.value
                for b in bounds
            }
        return out

    found = benchmark.pedantic(run, rounds=1, iterations=1)
    make, _, _ = machine_factory("dio/001")
    seeds = range(SEED, SEED + (3 if benchmark.disabled else 21))
    runs = [sample(make, "random", seed=s).runs for s in seeds]
    median = statistics.median(runs)
    benchmark.extra_info.update(by_bound=found, random_median_runs=median)
    print()
    for race, by_bound in found.items():
        print(
            f"{race}, nobuffers-writeback by preemption bound: "
            + ", ".join(f"{b}: {v}" for b, v in by_bound.items())
        )
    print(
        f"seed race, uniform random: median {median} runs over seeds "
        f"{seeds.start}..{seeds.stop - 1}"
    )
    seed = found["seed race (baseline)"]
    violated = ("Sometimes", "Always")
    goal(
        "the seed race needs exactly two preemptions",
        "bound 1 finds nothing, bound 2 finds it",
        ", ".join(f"bound {b}: {v}" for b, v in seed.items()),
        seed[1] not in violated and seed[2] in violated,
    )
    goal(
        "uniform random walk on the seed race",
        "a median of at most 4 runs",
        f"median {median} runs over {len(runs)} seeds",
        median <= 4,
    )


def _steps_show_a_violation(report: Any, cell: tuple[str, str, str]) -> bool:
    """Whether ``report`` (results.json) has ``cell`` violating an oracle that
    a step shows (any but a regression outcome, starvation and unbounded waits,
    which only the whole state graph shows)."""
    (verdict,) = [
        v
        for v in report["verdicts"]
        if (v["scenario"], v["policy"], v["fs"]) == cell and not v["params"]
    ]
    graph_only = {"starvation", "unbounded-wait"}
    return any(
        o["verdict"] in ("Sometimes", "Always")
        and o["oracle"] not in graph_only
        and not o.get("regression")
        for o in verdict["per_oracle"]
    )


def test_portfolio_against_uniform_random(benchmark: Any, goal: Record) -> None:
    """On the cell where uniform random scheduling needs the most runs, the
    portfolio (random, PCT, swarm) against uniform random alone, same seeds.

    Every baseline cell of the report is screened with a few seeds; a cell in
    which uniform random finds nothing in ``cap`` runs is left out, and must be
    one where no sampler can find anything: Never in the committed report, or
    violated only by starvation or unbounded waits, which no step shows (else
    the hardest cell would have been dropped). The three hardest are measured
    over more seeds, and the hardest of them is the one compared.
    """
    # Runs-to-first-bug vary a lot from seed to seed: many seeds, or the
    # comparison says more about the seeds than about the schedulers.
    nseeds = 3 if benchmark.disabled else 41
    seeds = range(SEED, SEED + nseeds)
    cap = 300
    candidates = [c for c in cells() if c[1] == "baseline"]
    if benchmark.disabled:
        candidates = candidates[:3]

    def runs(cell: tuple[str, str, str], strategy: str, n: int) -> list[int]:
        make, _, _ = machine_factory(cell[0], cell[1], fs=cell[2])
        return [
            sample(make, strategy, seed=s, max_runs=cap).runs
            for s in range(SEED, SEED + n)
        ]

    def run() -> tuple[tuple[str, str, str], list[int], list[int]]:
        screened = [(statistics.median(runs(c, "random", 5)), c) for c in candidates]
        found = sorted((r, c) for r, c in screened if r < cap)
        left_out = [c for r, c in screened if r >= cap]
        golden = json.loads((REPORTS / "results.json").read_text())
        dropped = [c for c in left_out if _steps_show_a_violation(golden, c)]
        assert not dropped, dropped
        top = [c for _, c in found[-3:]]
        measured = [(runs(c, "random", nseeds), c) for c in top]
        uniform, cell = max(measured, key=lambda m: statistics.median(m[0]))
        return cell, uniform, runs(cell, "portfolio", nseeds)

    cell, uniform, portfolio = benchmark.pedantic(run, rounds=1, iterations=1)
    figures = {
        "uniform_median": statistics.median(uniform),
        "uniform_mean": statistics.mean(uniform),
        "portfolio_median": statistics.median(portfolio),
        "portfolio_mean": statistics.mean(portfolio),
    }
    benchmark.extra_info.update(cell=list(cell), **figures)
    print(
        f"\nhardest for uniform random: {cell[0]} on {cell[2]} (seeds "
        f"{seeds.start}..{seeds.stop - 1}): uniform median "
        f"{figures['uniform_median']} runs (mean {figures['uniform_mean']:.1f}), "
        f"portfolio median {figures['portfolio_median']} "
        f"(mean {figures['portfolio_mean']:.1f})"
    )
    goal(
        f"portfolio on the hardest cell ({cell[0]} on {cell[2]})",
        "fewer runs than uniform random",
        f"median {figures['portfolio_median']} against "
        f"{figures['uniform_median']} runs, {nseeds} seeds",
        figures["portfolio_median"] < figures["uniform_median"],
    )


@pytest.mark.parametrize("table_steps", [False, True], ids=["replaying", "tabled"])
def test_parallel_speedup(benchmark: Any, goal: Record, table_steps: bool) -> None:
    """The same search serial and on a 2-process pool: the same states, and the
    speed-up (goal: at least 1.7x on 2 cores), replaying every state and with
    tabled steps (``mmsim check``'s default, which has less work to share: a
    process learns its steps afresh, and the others' only a level later). The
    search is one worth sharing (two readers: about 12,600 states, 8 s serial
    replaying); one of a few seconds gains little, as its levels are too small
    to outweigh the messages. Serial and pooled runs alternate, three of each,
    and the medians are compared: this machine's speed drifts by a third, so
    one pair could say either way."""
    params = {"readers": 2} if not benchmark.disabled else {}
    rounds = 1 if benchmark.disabled else 3
    make, _, _ = machine_factory("dio/001", "defer-release", params=params)
    jobs = min(2, os.cpu_count() or 1)
    serial_times: list[float] = []
    times: list[float] = []

    def alternate() -> tuple[Any, Any]:
        for _ in range(rounds):
            t = time.perf_counter()
            serial = explore(make, table_steps=table_steps)
            serial_times.append(time.perf_counter() - t)
            with ProcessPoolExecutor(jobs) as pool:
                t = time.perf_counter()
                parallel = explore(make, executor=pool, table_steps=table_steps)
                times.append(time.perf_counter() - t)
        return serial, parallel

    serial, parallel = benchmark.pedantic(alternate, rounds=1, iterations=1)
    assert parallel.stats.states == serial.stats.states
    assert parallel.oracles == serial.oracles
    serial_s, parallel_s = statistics.median(serial_times), statistics.median(times)
    speedup = serial_s / parallel_s
    mode = "tabled steps" if table_steps else "replaying"
    benchmark.extra_info.update(
        states=serial.stats.states,
        serial_s=serial_times,
        parallel_s=times,
        jobs=jobs,
        speedup=speedup,
        table_steps=table_steps,
    )
    print(
        f"\ndio/001 defer-release {params or ''} ({mode}): "
        f"{serial.stats.states:,} states; "
        f"serial {', '.join(f'{x:.2f}' for x in serial_times)} s, "
        f"{jobs} processes {', '.join(f'{x:.2f}' for x in times)} s "
        f"(speed-up of the medians {speedup:.2f}x)"
    )
    goal(
        f"parallel search on 2 cores, {mode}",
        "at least 1.7x faster",
        f"{speedup:.2f}x ({serial.stats.states:,} states, {jobs} processes, "
        f"medians of {rounds}: {serial_s:.2f} s against {parallel_s:.2f} s)",
        speedup >= 1.7,
    )
