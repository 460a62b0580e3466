"""The report's pictures (matplotlib, an optional extra: ``pip install '.[plots]'``).

* ``pareto.png``: correctness against cost, one point per policy: the share of
  its verdict cells in which some interleaving breaks an oracle, against its
  simulated time on the cost workloads as a ratio to the baseline (the geometric
  mean over workloads whose runs all finished and where it refused no request:
  a refused request means less work, not a cheaper fix). Lower-left is better.
* ``cost-<metric>.png``: one bar per policy and workload for a metric, as a
  ratio to the baseline.

PNG files are written without a timestamp or software tag (``metadata``), with
the Agg backend and fixed sizes, so the same results and the same matplotlib
give byte-identical files.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmsim.report import ComparisonReport

__all__ = ["BAR_METRICS", "available", "render_plots"]

#: Metrics drawn as bars (ratio to baseline).
BAR_METRICS = ("sim_ms", "pgfault", "scanned_not_reclaimed", "pin_wait_us")


def available() -> bool:
    """Whether matplotlib is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(  # type: ignore[attr-defined]
        buf, format="png", dpi=100, metadata={"Software": None}
    )
    return buf.getvalue()


def render_plots(report: ComparisonReport) -> dict[str, bytes]:
    """File name to PNG bytes for every plot of ``report``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "mmsim", "font.size": 8})
    out: dict[str, bytes] = {}
    base = {c.workload: c for c in report.costs if c.policy == "baseline"}
    policies = list(dict.fromkeys(r.policy for r in report.verdicts))

    xs, ys, labels = [], [], []
    undrawn: list[str] = []
    for policy in policies:
        mine = [r for r in report.verdicts if r.policy == policy]
        broken = sum(1 for r in mine if r.verdict != "Never")
        ratios = []
        refuses = False
        for c in report.costs:
            if c.policy != policy or c.workload not in base:
                continue
            if c.regressions:  # it did less work: its time is no cost figure
                refuses = True
                continue
            if set(c.endings) != {"finished"}:
                continue
            b = base[c.workload].metrics["sim_ms"].mean
            if b > 0 and c.metrics["sim_ms"].mean > 0:
                ratios.append(c.metrics["sim_ms"].mean / b)
        if not mine or not ratios:
            if mine:
                undrawn.append(policy)
            continue
        xs.append(math.exp(sum(math.log(r) for r in ratios) / len(ratios)))
        ys.append(100 * broken / len(mine))
        labels.append(policy + (" (refuses requests)" if refuses else ""))
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.scatter(xs, ys, color="tab:blue")
    # Policies at the same point share one label; neighbours' labels are
    # staggered so they do not print over each other.
    groups: dict[tuple[float, float], list[str]] = {}
    for x, y, label in zip(xs, ys, labels, strict=True):
        groups.setdefault((round(x, 3), round(y, 1)), []).append(label)
    for i, ((x, y), names) in enumerate(sorted(groups.items())):
        ax.annotate(
            "\n".join(names),
            (x, y),
            textcoords="offset points",
            xytext=(5, 4 + 10 * (i % 3)),
            fontsize=7,
        )
    if undrawn:
        fig.text(
            0.01,
            0.01,
            "not drawn (no cost run that finished and refused nothing): "
            + ", ".join(undrawn),
            fontsize=7,
        )
    ax.set_xlabel(
        "simulated time, ratio to baseline "
        "(geometric mean over finished runs that refused nothing)"
    )
    ax.set_ylabel("verdict cells where an oracle is broken (%)")
    ax.set_title("Correctness against cost, per policy (lower left is better)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out["pareto.png"] = _png(fig)
    plt.close(fig)

    workloads = [w.id for w in report.workloads if w.id in base]
    for metric in BAR_METRICS:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        width = 0.8 / max(1, len(workloads))
        for j, wid in enumerate(workloads):
            b = base[wid].metrics[metric].mean
            values = []
            for policy in policies:
                cell = next(
                    (
                        x
                        for x in report.costs
                        if (x.workload, x.policy) == (wid, policy)
                    ),
                    None,
                )
                v = cell.metrics[metric].mean if cell is not None else 0.0
                values.append(v / b if b else v)
            positions = [i + j * width for i in range(len(policies))]
            ax.bar(positions, values, width=width, label=wid)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(policies))])
        ax.set_xticklabels(policies, rotation=45, ha="right")
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_ylabel(f"{metric}: ratio to baseline (value when baseline is 0)")
        ax.set_title(f"{metric} per policy and workload")
        ax.legend()
        fig.tight_layout()
        out[f"cost-{metric}.png"] = _png(fig)
        plt.close(fig)
    return out
