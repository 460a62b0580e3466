"""``mmsim compare``: the verdict matrix, written under ``reports/``.

Every cell is a :func:`mmsim.check` of a built-in scenario under a registered
policy on one of the filesystems the scenario runs on (skipping a policy whose
mechanism does not apply to that filesystem). The report holds only deterministic figures (no wall times), so two runs
write byte-identical files. Files are written through temporary names and moved
into place only when every cell has been judged, so an interrupted compare leaves
the previous report whole; traces of cells that no longer fail are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from tabulate import tabulate

from mmsim._api import check
from mmsim.policy import builtin_policy_names, load_policy
from mmsim.results import CheckResult
from mmsim.scenarios import SCENARIOS

__all__ = ["cells", "compare", "judge_all", "write_report"]


def _slug(scenario: str, policy: str, fs: str) -> str:
    return f"{scenario.replace('/', '-')}--{policy}--{fs}"


#: A report cell: (scenario, policy, filesystem).
Cell = tuple[str, str, str]


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
                applies = all(
                    not p.filesystems or fs in p.filesystems
                    for p in load_policy(policy)
                )
                if applies:
                    out.append((sid, policy, fs))
    return out


def _judge(cell: Cell) -> CheckResult:
    scenario, policy, fs = cell
    return check(scenario, policy, fs=fs)


def judge_all(
    executor: Executor | None = None,
    *,
    echo: Callable[[str], None] = lambda s: None,
    quick: bool = False,
) -> list[CheckResult]:
    """Judge every cell, serially or on ``executor`` (any concurrent.futures one).

    Results come back in cell order whatever finishes first, so the report does
    not depend on the executor.
    """
    todo = cells(quick=quick)
    if executor is None:
        results = []
        for cell in todo:
            echo(f"checking {cell[0]} under {cell[1]} on {cell[2]}")
            results.append(_judge(cell))
        return results
    echo(f"checking {len(todo)} cells")
    return list(executor.map(_judge, todo))


def compare(
    out: Path,
    *,
    executor: Executor | None = None,
    echo: Callable[[str], None] = lambda s: None,
) -> list[Path]:
    """Judge every (scenario, policy) cell and write the report under ``out``."""
    return write_report(judge_all(executor, echo=echo), out)


def write_report(results: list[CheckResult], out: Path) -> list[Path]:
    """Write the report for ``results`` under ``out``; returns the files written."""
    files: dict[Path, str] = {}
    rows = []
    for r in results:
        cell: str = r.verdict
        if r.counterexample is not None:
            slug = _slug(r.scenario, r.policy, r.fs)
            files[out / "traces" / f"{slug}.txt"] = (
                f"{r.scenario} under {r.policy} on {r.fs}: {r.verdict}\n"
                f"reproduce: {r.command}\n\n{r.diagram or ''}"
            )
            files[out / "traces" / f"{slug}.json"] = (
                r.counterexample.model_dump_json(indent=2) + "\n"
            )
            cell = f"{r.verdict} ([trace](traces/{slug}.txt))"
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
                f"`{r.command}`",
            )
        )
    table = tabulate(
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
            "reproduce",
        ],
        tablefmt="github",
    )
    scen = tabulate(
        [
            (s.id, s.title, ", ".join(s.filesystems), ", ".join(s.oracles))
            for s in SCENARIOS.values()
        ],
        headers=["scenario", "what", "filesystems", "judged by"],
        tablefmt="github",
    )
    files[out / "README.md"] = (
        "# mmsim comparison report\n\n"
        "Generated by `python -m mmsim compare`; do not edit. Every verdict comes from an "
        "exhaustive search of the scenario's interleavings (Never / Sometimes / Always; "
        "Unknown when a bound cut the search).\n\n"
        "## Verdicts\n\n" + table + "\n\n## Scenarios\n\n" + scen + "\n"
    )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(path.name + ".tmp").write_text(text)
    for path in files:
        path.with_name(path.name + ".tmp").replace(path)
    # Traces of cells that no longer fail (or no longer exist) go too.
    for stale in sorted((out / "traces").glob("*")):
        if stale not in files and stale.suffix in (".txt", ".json"):
            stale.unlink()
    return sorted(files)
