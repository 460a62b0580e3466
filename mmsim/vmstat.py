"""Cost metrics: /proc/vmstat counters as the kernel names them, plus derived costs.

:func:`metrics` turns one :class:`~mmsim.timed.TimedRun` into a flat mapping of
metric name to value; :data:`METRICS` documents each (unit, meaning, and whether
more is worse). Names are the kernel's where it has one (``pgfault``,
``pgscan_kswapd``, ``nr_foll_pin_acquired``, ``nr_bounce``) or a tracepoint's
(``page_ref_mod``); mmsim's own names say so in their meaning.
"""

from __future__ import annotations

import attrs

from mmsim.mm_types import PAGE_SIZE
from mmsim.oracles import ORACLES
from mmsim.timed import TimedRun

__all__ = ["METRICS", "Metric", "metrics", "percentile"]


@attrs.frozen
class Metric:
    unit: str
    meaning: str


#: Every metric a cost run reports, in report order.
METRICS: dict[str, Metric] = {
    "sim_ms": Metric("ms", "simulated time until every program finished"),
    "pgfault": Metric("faults", "page faults (vmstat pgfault)"),
    "pgscan_kswapd": Metric("pages", "pages kswapd scanned (vmstat)"),
    "pgsteal_kswapd": Metric("pages", "pages kswapd reclaimed (vmstat)"),
    "scanned_not_reclaimed": Metric(
        "pages", "pgscan_kswapd - pgsteal_kswapd: LRU churn that freed nothing"
    ),
    "pgpageout": Metric("pages", "dirty pages kswapd wrote itself (vmstat pgpgout)"),
    "nr_written": Metric("pages", "writeback I/Os completed (vmstat nr_written)"),
    "nr_dirtied": Metric("pages", "clean-to-dirty transitions (vmstat nr_dirtied)"),
    "nr_foll_pin_acquired": Metric("pins", "FOLL_PIN pins taken (vmstat)"),
    "page_ref_mod": Metric("atomics", "refcount atomics (tracepoint page_ref_mod)"),
    "nr_block_alloc": Metric("blocks", "filesystem block allocations (mmsim's)"),
    "nr_bounce": Metric("pages", "pages bounced for writeback (vmstat nr_bounce)"),
    "bounce_bytes": Metric("bytes", "bytes copied into bounce pages"),
    "nr_pinned_skipped": Metric(
        "pages", "pinned pages background writeback skipped (mmsim's)"
    ),
    "gup_ref_ms": Metric(
        "ref·ms", "outstanding GUP references integrated over time (pinned page-time)"
    ),
    "fsync_p50_us": Metric("µs", "fsync latency, median"),
    "fsync_p99_us": Metric("µs", "fsync latency, 99th percentile"),
    "fsync_max_us": Metric("µs", "fsync latency, maximum"),
    "writeback_p50_us": Metric("µs", "one do_writepages() call, median"),
    "writeback_p99_us": Metric("µs", "one do_writepages() call, 99th percentile"),
    "writeback_max_us": Metric("µs", "one do_writepages() call, maximum"),
    "truncate_p50_us": Metric("µs", "truncate / hole punch latency, median"),
    "truncate_p99_us": Metric("µs", "truncate / hole punch latency, 99th percentile"),
    "truncate_max_us": Metric("µs", "truncate / hole punch latency, maximum"),
    "blocked_us": Metric("µs", "time tasks slept (all waits but idle), summed"),
    "pin_wait_us": Metric("µs", "time tasks slept waiting for pins (a fix's wait)"),
    "refused_efault": Metric("calls", "system calls that failed with EFAULT"),
    "refused_requests": Metric(
        "calls", "requests a fix refused (pins, fsync, truncate: request_refused)"
    ),
    "warnings": Metric("count", "WARN_ON()s that fired"),
    "violations": Metric(
        "count", "correctness violations met during the run (not regressions)"
    ),
}


def percentile(samples: list[int], q: float) -> int:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``samples``."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def metrics(run: TimedRun) -> dict[str, float]:
    """The metrics of one run, in :data:`METRICS` order, each total followed by
    its per-task-kind breakdown (``pin_wait_us.fsync``)."""
    v = run.vmstat
    out: dict[str, float] = {"sim_ms": run.now / 1e6}
    for name in (
        "pgfault",
        "pgscan_kswapd",
        "pgsteal_kswapd",
        "pgpageout",
        "nr_written",
        "nr_dirtied",
        "nr_foll_pin_acquired",
        "page_ref_mod",
        "nr_block_alloc",
        "nr_bounce",
        "nr_pinned_skipped",
    ):
        out[name] = v.get(name, 0)
    out["scanned_not_reclaimed"] = v.get("pgscan_kswapd", 0) - v.get(
        "pgsteal_kswapd", 0
    )
    out["bounce_bytes"] = v.get("nr_bounce", 0) * PAGE_SIZE
    out["gup_ref_ms"] = run.gup_ref_ns / 1e6
    for op in ("fsync", "writeback", "truncate"):
        samples = run.latencies.get(op, [])
        for label, q in (("p50", 50.0), ("p99", 99.0), ("max", 100.0)):
            value = percentile(samples, q) / 1e3 if samples else 0.0
            out[f"{op}_{label}_us"] = value
    out["blocked_us"] = sum(run.blocked_ns.values()) / 1e3
    out["pin_wait_us"] = sum(run.pin_wait_ns.values()) / 1e3
    out["refused_efault"] = v.get("mmsim_efault", 0)
    out["refused_requests"] = run.events.get("request_refused", 0) + run.events.get(
        "gup_refused", 0
    )
    out["warnings"] = run.events.get("warn", 0)
    out["violations"] = sum(
        1 for v in run.violations if v in ORACLES and not ORACLES[v].regression
    )
    ordered: dict[str, float] = {}
    for name in METRICS:
        ordered[name] = out[name]
        by_kind = {"blocked_us": run.blocked_ns, "pin_wait_us": run.pin_wait_ns}
        for kind, ns in sorted(by_kind.get(name, {}).items()):
            ordered[f"{name}.{kind}"] = ns / 1e3
    return ordered
