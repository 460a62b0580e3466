"""``mmsim compare``: the verdict matrix and the cost tables, written under ``reports/``.

Every verdict cell is a :func:`mmsim.check` of a built-in scenario under a
registered policy on one of the filesystems the scenario runs on (skipping a
policy whose mechanism does not apply to that filesystem). Every cost cell is a
:func:`mmsim.cost` of a workload under a policy, over three seeds. Both go into
one :class:`ComparisonReport`, written as ``results.json`` (its JSON Schema is
``schema.json``); every other file is rendered from it: ``README.md``, and for
each failing cell under ``traces/`` the race diagram, the replayable
counterexample and a Chrome trace for https://ui.perfetto.dev.

The report holds only deterministic figures (no wall times), so two runs write
byte-identical files. Files are written through temporary names and moved into
place only when every cell has been judged, so an interrupted compare leaves the
previous report whole; traces of cells that no longer fail are removed.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from tabulate import tabulate

from mmsim import explorer
from mmsim._api import check, cost, traced_counterexample
from mmsim.cost_model import CostModel
from mmsim.perfetto import chrome_trace, dumps
from mmsim.plots import available as plots_available
from mmsim.plots import render_plots
from mmsim.policy import Objection, builtin_policy_names, load_entry, load_policy
from mmsim.results import CheckResult, CostResult
from mmsim.scenarios import SCENARIOS
from mmsim.vmstat import METRICS
from mmsim.workloads import WORKLOADS

__all__ = [
    "ComparisonReport",
    "build_report",
    "cells",
    "compare",
    "cost_cells",
    "judge_all",
    "measure_all",
    "write_report",
]

R = TypeVar("R")

#: Seeds of every cost cell (the report's runs are seeds 1, 2 and 3).
COST_SEEDS = 3


def _slug(scenario: str, policy: str, fs: str) -> str:
    return f"{scenario.replace('/', '-')}--{policy}--{fs}"


#: A report cell: (scenario, policy, filesystem).
Cell = tuple[str, str, str]


def _applies(policy: str, fs: str) -> bool:
    return all(not p.filesystems or fs in p.filesystems for p in load_policy(policy))


def cells(*, quick: bool = False) -> list[Cell]:
    """Every cell of the report, in report order.

    ``quick``: only the scenarios of the ``quick`` group, each on its first
    filesystem (what the test suite regenerates and compares).
    """
    out = []
    for sid, spec in SCENARIOS.items():
        if quick and "quick" not in spec.groups:
            continue
        for fs in spec.filesystems[:1] if quick else spec.filesystems:
            for policy in builtin_policy_names():
                if _applies(policy, fs):
                    out.append((sid, policy, fs))
    return out


def cost_cells(workloads: list[str] | None = None) -> list[Cell]:
    """Every cost cell, (workload, policy, filesystem), in report order: each
    workload on its first filesystem under every policy that applies there."""
    out: list[Cell] = []
    for wid in workloads or list(WORKLOADS):
        fs = WORKLOADS[wid].filesystems[0]
        out.extend((wid, p, fs) for p in builtin_policy_names() if _applies(p, fs))
    return out


def _judge(cell: Cell) -> CheckResult:
    scenario, policy, fs = cell
    return check(scenario, policy, fs=fs)


def _measure(cell: Cell) -> CostResult:
    workload, policy, fs = cell
    return cost(workload, policy, fs=fs, seeds=COST_SEEDS)


#: ``progress(done, total, what)``: called as cells finish (a progress bar).
Progress = Callable[[int, int, str], None]


def _run_cells(
    fn: Callable[[Cell], R],
    todo: list[Cell],
    executor: Executor | None,
    progress: Progress | None,
    what: str,
) -> list[R]:
    """``fn`` over ``todo``, serially or on ``executor``, results in cell order
    whatever finishes first (so the report does not depend on the executor)."""
    total = len(todo)
    if progress is not None:
        progress(0, total, what)
    if executor is None:
        out = []
        for i, cell in enumerate(todo):
            out.append(fn(cell))
            if progress is not None:
                progress(i + 1, total, what)
        return out
    futures = {executor.submit(_in_worker, fn, cell): i for i, cell in enumerate(todo)}
    results: dict[int, R] = {}
    ours = explorer._model_digest()
    for done, future in enumerate(as_completed(futures), 1):
        theirs, process, result = future.result()
        if theirs != ours:
            # A cell judged by another model would sit in this report as if
            # it were this one's.
            for other in futures:
                other.cancel()
            raise explorer.ModelMismatch(process, theirs, ours)
        results[futures[future]] = result
        if progress is not None:
            progress(done, total, what)
    return [results[i] for i in range(total)]


def _in_worker(fn: Callable[[Cell], R], cell: Cell) -> tuple[str, tuple[str, int], R]:
    """``fn(cell)`` in an executor's worker, with the model it ran there."""
    return explorer._model_digest(), explorer._process(), fn(cell)


def judge_all(
    executor: Executor | None = None,
    *,
    progress: Progress | None = None,
    quick: bool = False,
) -> list[CheckResult]:
    """Judge every verdict cell, serially or on ``executor`` (any
    concurrent.futures one: a process pool, Dask's ``Client.get_executor()``)."""
    return _run_cells(_judge, cells(quick=quick), executor, progress, "verdicts")


def measure_all(
    executor: Executor | None = None,
    *,
    progress: Progress | None = None,
    workloads: list[str] | None = None,
) -> list[CostResult]:
    """Run every cost cell, serially or on ``executor``; results in cell order."""
    return _run_cells(_measure, cost_cells(workloads), executor, progress, "costs")


class _Info(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioInfo(_Info):
    id: str
    title: str
    filesystems: list[str]
    oracles: list[str]


class WorkloadInfo(_Info):
    id: str
    title: str
    description: str
    fs: str


class MetricInfo(_Info):
    name: str
    unit: str
    meaning: str


class ObjectionResult(_Info):
    """A maintainer's objection to a policy, and what the report measured."""

    policy: str
    who: str
    said: str
    #: What was measured: ``dio/005 (ext4): starvation`` or ``db-dio: pin_wait_us``.
    test: str
    figure: str
    outcome: Literal["confirmed", "not confirmed", "not measured"]


class ComparisonReport(_Info):
    """Everything ``mmsim compare`` found: the one source every output renders."""

    format: Literal["mmsim-report/1"] = "mmsim-report/1"
    scenarios: list[ScenarioInfo]
    verdicts: list[CheckResult]
    workloads: list[WorkloadInfo]
    metrics: list[MetricInfo]
    cost_model: CostModel
    costs: list[CostResult]
    objections: list[ObjectionResult]


def _judge_objection(
    policy: str, o: Objection, verdicts: list[CheckResult], costs: list[CostResult]
) -> ObjectionResult:
    def result(test: str, figure: str, outcome: str) -> ObjectionResult:
        return ObjectionResult.model_validate(
            {
                "policy": policy,
                "who": o.who,
                "said": o.said,
                "test": test,
                "figure": figure,
                "outcome": outcome,
            }
        )

    if o.scenario:
        test = f"{o.scenario} ({o.fs}): {o.oracle}"
        cell = next(
            (
                r
                for r in verdicts
                if (r.scenario, r.policy, r.fs) == (o.scenario, policy, o.fs)
            ),
            None,
        )
        ov = (
            None
            if cell is None
            else {v.oracle: v for v in cell.per_oracle}.get(o.oracle)
        )
        if ov is None:
            return result(test, "-", "not measured")
        if ov.verdict == "Never":
            return result(test, f"{o.oracle} Never", "not confirmed")
        steps = f" ({ov.steps} steps)" if ov.steps else ""
        return result(test, f"{o.oracle} {ov.verdict}{steps}", "confirmed")
    test = f"{o.workload}: {o.metric}"
    mine = next(
        (c for c in costs if (c.workload, c.policy) == (o.workload, policy)), None
    )
    base = next(
        (c for c in costs if (c.workload, c.policy) == (o.workload, "baseline")), None
    )
    if mine is None or base is None:
        return result(test, "-", "not measured")
    if o.metric == "ending":
        ended = sorted(set(mine.endings) - {"finished"})
        figure = ", ".join(
            f"{e} ({mine.endings.count(e)}/{len(mine.endings)})" for e in ended
        )
        return result(
            test,
            figure or "every run finished",
            "confirmed" if ended else "not confirmed",
        )
    mm, bm = mine.metrics[o.metric], base.metrics[o.metric]
    unit = METRICS[o.metric].unit
    figure = f"{_num(mm.mean)} {unit} against {_num(bm.mean)} for the baseline"
    if bm.mean:
        figure += f" ({(mm.mean - bm.mean) / bm.mean:+.1%})"
    # Above the baseline by more than either side's spread over seeds, and by
    # enough to matter: an objection says "expensive", not "measurably dearer".
    noise = max(mm.max - mm.min, bm.max - bm.min) / 2
    material = not bm.mean or (mm.mean - bm.mean) / bm.mean >= MATERIAL
    if mm.mean > bm.mean and mm.mean - bm.mean <= noise:
        figure += ", within the spread over seeds"
    elif mm.mean > bm.mean and not material:
        figure += f", less than {MATERIAL:.0%}"
    confirmed = mm.mean - bm.mean > noise and material
    return result(test, figure, "confirmed" if confirmed else "not confirmed")


#: The least rise over the baseline that confirms a cost objection.
MATERIAL = 0.05


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _objections(
    verdicts: list[CheckResult], costs: list[CostResult]
) -> list[ObjectionResult]:
    out = []
    for name in dict.fromkeys(r.policy for r in verdicts):
        for o in load_entry(name).objections:
            out.append(_judge_objection(name, o, verdicts, costs))
    return out


def build_report(
    verdicts: list[CheckResult], costs: list[CostResult]
) -> ComparisonReport:
    """The report of these results (wall times dropped: they are not reproducible)."""
    return ComparisonReport(
        scenarios=[
            ScenarioInfo(
                id=s.id, title=s.title, filesystems=s.filesystems, oracles=s.oracles
            )
            for s in SCENARIOS.values()
        ],
        verdicts=[
            r.model_copy(
                update={
                    "stats": r.stats.model_copy(
                        update={"seconds": None, "peak_mib": None}
                    )
                }
            )
            for r in verdicts
        ],
        workloads=[
            WorkloadInfo(
                id=w.id, title=w.title, description=w.description, fs=w.filesystems[0]
            )
            for w in WORKLOADS.values()
        ],
        metrics=[
            MetricInfo(name=n, unit=m.unit, meaning=m.meaning)
            for n, m in METRICS.items()
        ],
        cost_model=CostModel(),
        costs=costs,
        objections=_objections(verdicts, costs),
    )


def compare(
    out: Path,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Judge every verdict cell, run every cost cell, and write the report.

    Nothing is written until every cell is done: an interrupted compare leaves
    the previous report whole.
    """
    verdicts = judge_all(executor, progress=progress)
    costs = measure_all(executor, progress=progress)
    return write_report(build_report(verdicts, costs), out)


#: The cost table's columns: (metric, heading).
COST_COLUMNS = [
    ("sim_ms", "time"),
    ("pgfault", "faults"),
    ("scanned_not_reclaimed", "scanned, not reclaimed"),
    ("nr_written", "writeback I/Os"),
    ("bounce_bytes", "bounce bytes"),
    ("gup_ref_ms", "GUP ref·ms"),
    ("fsync_p99_us", "fsync p99"),
    ("writeback_p99_us", "writeback p99"),
    ("truncate_p99_us", "truncate p99"),
    ("pin_wait_us", "pin wait"),
    ("refused_efault", "EFAULTs"),
    ("refused_requests", "refused"),
]


def _absolute(name: str, value: float) -> str:
    unit = METRICS[name].unit
    shown = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return (
        shown
        if unit in ("pages", "calls", "count", "faults", "bytes")
        else (f"{shown} {unit}")
    )


def _ratio(value: float, base: float, spread: float) -> str:
    """A cost as a ratio to the baseline's, with the half-range over seeds."""
    if base == 0:
        return "0" if value == 0 else f"+{value:,.3g}"
    text = f"{value / base:.2f}×"  # noqa: RUF001 (a ratio)
    if value and spread / value >= 0.005:
        text += f" ±{100 * spread / value:.0f}%"
    return text


def _cost_table(results: list[CostResult]) -> str:
    base = next((r for r in results if r.policy == "baseline"), None)
    rows = []
    for r in results:
        ended = ", ".join(sorted(set(r.endings)))
        row = [r.policy, ended]
        for name, _ in COST_COLUMNS:
            m = r.metrics[name]
            if r is base or base is None:
                row.append(_absolute(name, m.mean))
            else:
                b = base.metrics[name].mean
                row.append(_ratio(m.mean, b, (m.max - m.min) / 2))
        row.append(_met(r, len(r.seeds)))
        row.append(f"`{r.command}`")
        rows.append(row)
    headers = [
        "policy",
        "runs ended",
        *(h for _, h in COST_COLUMNS),
        "violations met (seeds)",
        "reproduce",
    ]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _met(r: CostResult, seeds: int) -> str:
    met = [f"{o} ({n}/{seeds})" for o, n in r.violations.items()]
    met += [f"{o} ({n}/{seeds}, regression)" for o, n in r.regressions.items()]
    return ", ".join(met) or "-"


def _summary(report: ComparisonReport) -> str:
    """One row per policy: where it is wrong, and what it costs (time ratio)."""
    policies = list(dict.fromkeys(r.policy for r in report.verdicts))
    base = {c.workload: c for c in report.costs if c.policy == "baseline"}
    rows = []
    for policy in policies:
        mine = [r for r in report.verdicts if r.policy == policy]
        wrong = sorted({f"{r.scenario} ({r.fs})" for r in mine if r.verdict != "Never"})
        row = [policy, f"{len(mine) - len(wrong)} of {len(mine)}"]
        row.append(", ".join(wrong) or "-")
        for w in report.workloads:
            c = next(
                (x for x in report.costs if x.policy == policy and x.workload == w.id),
                None,
            )
            if c is None or w.id not in base:
                row.append("n/a")
                continue
            b = base[w.id].metrics["sim_ms"].mean
            text = _ratio(c.metrics["sim_ms"].mean, b, 0.0)
            notes = sorted(set(c.endings) - {"finished"})
            if c.regressions:
                notes.append("refuses requests")
            row.append(text + (f" ({', '.join(notes)})" if notes else ""))
        rows.append(row)
    headers = ["policy", "cells Never", "scenarios where it fails"]
    headers += [f"{w.id} time" for w in report.workloads]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _verdict_table(results: list[CheckResult]) -> str:
    rows = []
    for r in results:
        cell: str = r.verdict
        if r.counterexample is not None:
            slug = _slug(r.scenario, r.policy, r.fs)
            cell = (
                f"{r.verdict} ([trace](traces/{slug}.txt), "
                f"[perfetto](traces/{slug}.perfetto.json))"
            )
        broken = ", ".join(
            f"{ov.oracle} {ov.verdict}" + (f" ({ov.steps} steps)" if ov.steps else "")
            for ov in r.per_oracle
            if ov.verdict != "Never" and not ov.regression
        )
        refused = ", ".join(
            f"{ov.oracle} {ov.verdict}"
            for ov in r.per_oracle
            if ov.verdict != "Never" and ov.regression
        )
        st = r.stats
        scope = "complete" if st.complete else "cut by " + ", ".join(st.cut_by)
        unmet = r.coverage.unmet
        if unmet:
            scope += "; goal never reached: " + ", ".join(unmet)
        rows.append(
            (
                r.scenario,
                r.policy,
                r.fs,
                cell,
                broken or "-",
                refused or "-",
                f"{st.states:,}",
                scope,
                str(len(r.coverage.unreached)),
                f"`{r.command}`",
            )
        )
    return tabulate(
        rows,
        headers=[
            "scenario",
            "policy",
            "fs",
            "verdict",
            "oracles violated (shortest run)",
            "regressions",
            "states",
            "search",
            "steps unreached",
            "reproduce",
        ],
        tablefmt="github",
    )


def _readme(report: ComparisonReport) -> str:
    scen = tabulate(
        [
            (s.id, s.title, ", ".join(s.filesystems), ", ".join(s.oracles))
            for s in report.scenarios
        ],
        headers=["scenario", "what", "filesystems", "judged by"],
        tablefmt="github",
    )
    parts = [
        "# mmsim comparison report\n\n"
        "Generated by `python -m mmsim compare` from `results.json` (schema: "
        "`schema.json`); do not edit. Every verdict comes from an exhaustive search "
        "of the scenario's interleavings (Never / Sometimes / Always; Unknown when "
        "a bound cut the search). Every failing cell links its race diagram and a "
        "Chrome trace that opens in https://ui.perfetto.dev.\n",
        "## At a glance\n\n"
        "For each policy: in how many (scenario, filesystem) cells no "
        "interleaving breaks an oracle, the scenarios where one does, and each "
        "cost workload's simulated time as a ratio to the baseline's (with how a "
        "run ended, when it did not finish, and whether the policy refused "
        "requests, which makes it do less work). Details below.\n\n"
        + _summary(report)
        + "\n",
        "## Verdicts\n\n"
        "*states*: distinct states, up to symmetry between identical tasks. "
        "*steps unreached*: yields of the kernel functions the search entered "
        "that no run took (`mmsim check … --coverage` lists them); a scenario's "
        "reachability goals, when one is never met, are named under *search*.\n\n"
        + _verdict_table(report.verdicts)
        + "\n",
        "## Costs\n\n"
        "Each workload runs on the timed scheduler under every policy, over "
        f"{COST_SEEDS} seeds. The baseline row gives the mean; every other row "
        "gives the ratio of its mean to the baseline's (± half the range over "
        "seeds, when it is at least 0.5%); where the baseline measured 0, the "
        "figure itself (+N). A run that ended early (a kernel BUG, a deadlock) "
        "measured only up to that point: read its row with its ending. Costs are "
        "simulated time from the cost model in `results.json` (`cost_model`), not "
        "wall time.\n",
    ]
    for w in report.workloads:
        rows = [r for r in report.costs if r.workload == w.id]
        if rows:
            parts.append(
                f"### {w.id}: {w.title} ({w.fs})\n\n{w.description}\n\n"
                + _cost_table(rows)
                + "\n"
            )
    parts.append(
        "## Objections, tested\n\n"
        "What maintainers objected to, each with the verdict cell or cost figure "
        "that tests it: *confirmed* when the oracle is not Never for the policy, "
        "or its cost is above the baseline's by more than the spread over seeds "
        f"and by at least {MATERIAL:.0%} (or a run did not finish).\n\n"
        + tabulate(
            [
                (o.policy, o.who, o.said, o.test, o.figure, o.outcome)
                for o in report.objections
            ],
            headers=["policy", "who", "objection", "tested by", "figure", "outcome"],
            tablefmt="github",
            disable_numparse=True,
        )
        + "\n"
    )
    metrics = tabulate(
        [(m.name, m.unit, m.meaning) for m in report.metrics],
        headers=["metric", "unit", "meaning"],
        tablefmt="github",
    )
    parts.append("### Metrics\n\n" + metrics + "\n")
    parts.append("## Scenarios\n\n" + scen + "\n")
    return "\n".join(parts)


def _html(report: ComparisonReport, plots: dict[str, bytes]) -> str:
    """One self-contained page: the same tables as README.md, and the plots inline."""

    def table(rows: Sequence[Sequence[str]], headers: list[str]) -> str:
        return tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True)

    def pictures() -> str:
        if not plots:
            return "<p>No plots: matplotlib was not installed (pip install '.[plots]').</p>"
        return "\n".join(
            f'<figure><img alt="{name}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode()}"><figcaption>{name}</figcaption></figure>'
            for name, data in plots.items()
        )

    sections = [
        "<h2>At a glance</h2>",
        markdown_table_to_html(_summary(report)),
        "<h2>Plots</h2>",
        pictures(),
        "<h2>Verdicts</h2>",
        markdown_table_to_html(_verdict_table(report.verdicts)),
        "<h2>Costs</h2>",
    ]
    for w in report.workloads:
        rows = [r for r in report.costs if r.workload == w.id]
        if rows:
            sections.append(f"<h3>{html.escape(w.id)}: {html.escape(w.title)}</h3>")
            sections.append(f"<p>{html.escape(w.description)}</p>")
            sections.append(markdown_table_to_html(_cost_table(rows)))
    sections.append("<h2>Objections, tested</h2>")
    sections.append(
        table(
            [
                (o.policy, o.who, o.said, o.test, o.figure, o.outcome)
                for o in report.objections
            ],
            ["policy", "who", "objection", "tested by", "figure", "outcome"],
        )
    )
    sections.append("<h2>Metrics</h2>")
    sections.append(
        table(
            [(m.name, m.unit, m.meaning) for m in report.metrics],
            ["metric", "unit", "meaning"],
        )
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:100%}"
        "table{border-collapse:collapse;font-size:12px;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        "img{max-width:100%}figure{display:inline-block;margin:0 1em 1em 0}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>mmsim comparison report</title><style>{style}</style></head>"
        "<body><h1>mmsim comparison report</h1>"
        "<p>Generated by <code>python -m mmsim compare</code> from results.json.</p>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def markdown_table_to_html(text: str) -> str:
    """A GitHub-style Markdown table (as the README renders it) as an HTML table;
    a ``[label](target)`` link and a ``code`` span become their HTML."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return ""

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    def inline(cell: str) -> str:
        cell = html.escape(cell, quote=False)
        cell = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', cell)
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", cell)

    head = "".join(f"<th>{inline(c)}</th>" for c in cells(lines[0]))
    body = "".join(
        "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells(line)) + "</tr>\n"
        for line in lines[2:]
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def write_report(
    report: ComparisonReport, out: Path, *, plots: bool = True
) -> list[Path]:
    """Write ``report`` under ``out``; returns the files written.

    ``plots``: draw the PNG plots (when matplotlib is installed) and put them in
    ``index.html``.
    """
    files: dict[Path, str | bytes] = {}
    for r in report.verdicts:
        if r.counterexample is None:
            continue
        slug = _slug(r.scenario, r.policy, r.fs)
        files[out / "traces" / f"{slug}.txt"] = (
            f"{r.scenario} under {r.policy} on {r.fs}: {r.verdict}\n"
            f"reproduce: {r.command}\n\n{r.diagram or ''}"
        )
        files[out / "traces" / f"{slug}.json"] = (
            r.counterexample.model_dump_json(indent=2) + "\n"
        )
        m = traced_counterexample(r.counterexample)
        title = f"{r.scenario} under {r.policy} on {r.fs}: {r.counterexample.violation.oracle}"
        files[out / "traces" / f"{slug}.perfetto.json"] = dumps(
            chrome_trace(m, title=title)
        )
    pngs = render_plots(report) if plots and plots_available() else {}
    for name, data in pngs.items():
        files[out / "plots" / name] = data
    files[out / "index.html"] = _html(report, pngs)
    files[out / "README.md"] = _readme(report)
    files[out / "results.json"] = report.model_dump_json(indent=1) + "\n"
    files[out / "schema.json"] = (
        json.dumps(ComparisonReport.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
    )
    # Every file is written aside first, so that a failure (a full disk, a
    # Ctrl-C) leaves the old report whole: the files written so far go.
    written: list[Path] = []
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            written.append(tmp)
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                tmp.write_text(content)
    except BaseException:
        for tmp in written:
            tmp.unlink(missing_ok=True)
        raise
    for path in files:
        path.with_name(path.name + ".tmp").replace(path)
    # Traces of cells that no longer fail (or no longer exist) go too.
    for stale in sorted((out / "traces").glob("*")) + sorted((out / "plots").glob("*")):
        if stale not in files and stale.suffix in (".txt", ".json", ".png"):
            stale.unlink()
    return sorted(files)
