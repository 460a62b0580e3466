"""``mmsim compare`` of the quick group, and one cost workload: wall time, peak
memory, and the process-pool speed-up on this machine's cores.

The pool's speed-up is the ratio of the serial run's wall time to the pool's,
both measured in the same benchmark; it is reported in ``extra_info`` and
printed, not asserted (a timing assertion would be a flaky test). Peak memory is
the largest resident set of this process during the run (Linux: its high-water
mark, reset before the run, so that an earlier benchmark's memory is not
counted) and of the pool's workers (``getrusage``). Run with ``pytest benchmarks
-m benchmark``; with ``--benchmark-disable`` (CI's smoke run) each benchmark
runs a small subset once, so that it cannot rot.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mmsim import report
from mmsim._api import cost
from mmsim.report import build_report, judge_all, measure_all, write_report

pytestmark = pytest.mark.benchmark

JOBS = min(2, os.cpu_count() or 1)


def _reset_peak() -> None:
    """Start this process's high-water mark afresh (Linux 4.0 and later: ``5``
    to ``clear_refs``); elsewhere the peak stays the process's lifetime one."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mib() -> tuple[float, float]:
    """Peak RSS of this process since :func:`_reset_peak` (``VmHWM``), and of
    its finished children, MiB."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, children
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, children


def test_compare_quick_group(
    benchmark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = report.cells(quick=True)
    if benchmark.disabled:  # the smoke run: a few cheap cells
        quick = [c for c in quick if c[0] == "dio/002"][:4]
    monkeypatch.setattr(report, "cells", lambda **kw: quick)
    workloads = ["truncate-heavy"]

    def run(jobs: int) -> list[Path]:
        if jobs == 1:
            verdicts = judge_all()
            costs = measure_all(workloads=workloads)
        else:
            with ProcessPoolExecutor(jobs) as pool:
                verdicts = judge_all(pool)
                costs = measure_all(pool, workloads=workloads)
        return write_report(build_report(verdicts, costs), tmp_path / f"jobs{jobs}")

    _reset_peak()
    t = time.perf_counter()
    serial = run(1)
    serial_s = time.perf_counter() - t
    times: list[float] = []

    def pooled() -> list[Path]:
        t = time.perf_counter()
        out = run(JOBS)
        times.append(time.perf_counter() - t)
        return out

    written = benchmark.pedantic(pooled, rounds=1, iterations=1)
    pool_s = min(times)
    assert [p.name for p in written] == [p.name for p in serial]
    for a, b in zip(serial, written, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.name}: pool differs from serial"
    own, children = _peak_mib()
    benchmark.extra_info.update(
        cells=len(quick),
        serial_s=serial_s,
        jobs=JOBS,
        speedup=serial_s / pool_s,
        peak_rss_mib=own,
        peak_worker_rss_mib=children,
    )
    print(
        f"\ncompare of {len(quick)} quick cells + {workloads[0]}: serial "
        f"{serial_s:.1f}s, {JOBS} processes {pool_s:.1f}s "
        f"(speed-up {serial_s / pool_s:.2f}x); peak RSS {own:.0f} MiB, "
        f"workers {children:.0f} MiB"
    )


def test_cost_workload(benchmark: Any) -> None:
    scale = 0.1 if benchmark.disabled else 1.0
    _reset_peak()
    result = benchmark.pedantic(
        lambda: cost("db-dio", "upstream-6.4", seeds=1, scale=scale),
        rounds=1 if benchmark.disabled else 3,
        iterations=1,
    )
    assert result.endings == ["finished"]
    own, _ = _peak_mib()
    benchmark.extra_info.update(
        scale=scale,
        simulated_ms=result.metrics["sim_ms"].mean,
        peak_rss_mib=own,
    )
    print(
        f"\ndb-dio under upstream-6.4, scale {scale}: "
        f"{result.metrics['sim_ms'].mean:.2f} simulated ms; peak RSS {own:.0f} MiB"
    )
