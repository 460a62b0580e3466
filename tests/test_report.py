"""The committed reports/ is the golden output: regenerating it changes nothing."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mmsim import report
from mmsim.report import ComparisonReport, build_report, measure_all, write_report
from tests.conftest import report_cells

GOLDEN = Path(__file__).resolve().parent.parent / "reports"
#: The cheapest workload: its cost rows are regenerated and compared.
WORKLOAD = "truncate-heavy"


def _rows(readme: str, marker: str) -> set[tuple[str, ...]]:
    """The table rows holding ``marker``, as cells (column widths vary)."""
    return {
        tuple(cell.strip() for cell in line.strip("|").split("|"))
        for line in readme.splitlines()
        if marker in line
    }


def test_compare_reproduces_the_committed_report(tmp_path: Path) -> None:
    # The quick group, judged once per session in a process pool (see
    # conftest.report_cells), and one workload's costs: their traces must equal
    # the committed ones byte for byte, their rows must appear cell for cell in
    # the committed README, and their results in the committed results.json.
    costs = measure_all(workloads=[WORKLOAD])
    built = build_report(list(report_cells().values()), costs)
    written = write_report(built, tmp_path, plots=False)
    assert written, "compare wrote nothing"
    golden_readme = (GOLDEN / "README.md").read_text()
    committed = json.loads((GOLDEN / "results.json").read_text())
    for path in written:
        rel = path.relative_to(tmp_path)
        if rel.name == "README.md":
            text = path.read_text()
            for marker in ("`mmsim check", f"`mmsim cost {WORKLOAD}"):
                rows = _rows(text, marker)
                assert rows, marker
                assert rows <= _rows(golden_readme, marker), f"{marker} rows differ"
            continue
        if rel.name == "index.html":
            continue  # a page of the quick subset; rendered whole below
        if rel.name == "results.json":
            ours = json.loads(path.read_text())
            for key in ("verdicts", "costs"):
                assert ours[key], key
                for entry in ours[key]:
                    assert entry in committed[key], f"results.json: {key} differs"
            assert ours["cost_model"] == committed["cost_model"]
            continue
        golden = GOLDEN / rel
        assert golden.is_file(), f"{rel} is not committed under reports/"
        assert path.read_bytes() == golden.read_bytes(), f"{rel} differs from reports/"
    assert not list(tmp_path.rglob("*.tmp"))


def test_every_file_renders_from_the_committed_results(tmp_path: Path) -> None:
    # results.json is the single source: rendering it again (README, page,
    # plots, schema, traces with their Perfetto exports) gives reports/ exactly.
    pytest.importorskip("matplotlib")
    data = (GOLDEN / "results.json").read_text()
    written = write_report(ComparisonReport.model_validate_json(data), tmp_path)
    for path in written:
        rel = path.relative_to(tmp_path)
        golden = GOLDEN / rel
        assert golden.is_file(), f"{rel} is not committed under reports/"
        assert path.read_bytes() == golden.read_bytes(), f"{rel} differs from reports/"
    committed = {p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file()}
    assert committed == {p.relative_to(tmp_path) for p in written}
    page = (tmp_path / "index.html").read_text()
    assert page.count("data:image/png;base64,") == len(list(GOLDEN.glob("plots/*.png")))


def test_a_failed_write_leaves_the_old_report_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk fills while the new report is written aside: the error comes
    # out, the files already written aside go, and the old report stays.
    data = (GOLDEN / "results.json").read_text()
    built = ComparisonReport.model_validate_json(data)
    old = write_report(built, tmp_path, plots=False)
    before = {p: p.read_bytes() for p in old}
    real = Path.write_text
    count = 0

    def fill_up(self: Path, *args: object, **kwargs: object) -> int:
        nonlocal count
        count += 1
        if count == 3:
            raise OSError(28, "No space left on device", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", fill_up)
    with pytest.raises(OSError, match="No space left"):
        write_report(built, tmp_path, plots=False)
    assert count == 3
    assert not list(tmp_path.rglob("*.tmp"))
    assert {p: p.read_bytes() for p in old} == before


def test_every_objection_names_a_measured_cell() -> None:
    from mmsim.oracles import ORACLES
    from mmsim.policy import builtin_policy_names, load_entry
    from mmsim.vmstat import METRICS

    verdict_cells = set(report.cells())
    cost_cells = set(report.cost_cells())
    for name in builtin_policy_names():
        for o in load_entry(name).objections:
            assert bool(o.scenario) != bool(o.workload), (name, o)
            if o.scenario:
                assert (o.scenario, name, o.fs) in verdict_cells, (name, o)
                assert o.oracle in ORACLES, (name, o)
            else:
                assert any(c[:2] == (o.workload, name) for c in cost_cells), (name, o)
                assert o.metric in METRICS or o.metric == "ending", (name, o)


def test_the_committed_results_validate_against_the_model() -> None:
    data = (GOLDEN / "results.json").read_text()
    parsed = ComparisonReport.model_validate_json(data)
    assert parsed.verdicts
    assert parsed.costs
    assert len(parsed.costs) == len(report.cost_cells())
    assert [(c.workload, c.policy) for c in parsed.costs] == [
        (w, p) for w, p, _ in report.cost_cells()
    ]
    assert parsed.objections
    assert all(o.outcome != "not measured" for o in parsed.objections)


def test_judging_on_an_executor_gives_the_serial_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two cheap cells are enough to check order and equality.
    picked = [c for c in report.cells() if c[0] == "dio/002"][:2]
    monkeypatch.setattr(report, "cells", lambda **kw: picked)
    seen: list[tuple[int, int, str]] = []
    with ThreadPoolExecutor(2) as pool:
        parallel = report.judge_all(pool, progress=lambda *a: seen.append(a))
    serial = report.judge_all()
    strip = {"stats": {"seconds", "peak_mib"}}
    assert [r.model_dump(exclude=strip) for r in parallel] == [
        r.model_dump(exclude=strip) for r in serial
    ]
    assert seen[0] == (0, 2, "verdicts")
    assert seen[-1] == (2, 2, "verdicts")


def test_a_dask_cluster_gives_the_same_costs() -> None:
    distributed = pytest.importorskip("distributed")
    # The documented way to run a compare on a cluster: any Executor will do.
    serial = measure_all(workloads=[WORKLOAD])
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = measure_all(client.get_executor(), workloads=[WORKLOAD])
    assert on_dask == serial
