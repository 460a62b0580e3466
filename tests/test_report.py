"""The committed reports/ is the golden output: regenerating it changes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mmsim import report
from mmsim.report import write_report
from tests.conftest import report_cells

GOLDEN = Path(__file__).resolve().parent.parent / "reports"


def _rows(readme: str) -> set[tuple[str, ...]]:
    """The verdict rows of a report, as cells (column widths depend on the rest)."""
    return {
        tuple(cell.strip() for cell in line.strip("|").split("|"))
        for line in readme.splitlines()
        if "`mmsim check" in line
    }


def test_compare_reproduces_the_committed_report(tmp_path: Path) -> None:
    # The quick group, judged once per session in a process pool (see
    # conftest.report_cells): its traces must equal the committed ones byte for
    # byte, and its rows must appear, cell for cell, in the committed README.
    results = list(report_cells().values())
    written = write_report(results, tmp_path)
    assert written, "compare wrote nothing"
    committed = _rows((GOLDEN / "README.md").read_text())
    for path in written:
        rel = path.relative_to(tmp_path)
        if rel.name == "README.md":
            rows = _rows(path.read_text())
            assert rows
            for row in rows:
                assert row in committed, f"README row differs: {row}"
            continue
        golden = GOLDEN / rel
        assert golden.is_file(), f"{rel} is not committed under reports/"
        assert path.read_bytes() == golden.read_bytes(), f"{rel} differs from reports/"
    assert not list(tmp_path.rglob("*.tmp"))


def test_judging_on_an_executor_gives_the_serial_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two cheap cells are enough to check order and equality.
    picked = [c for c in report.cells() if c[0] == "dio/002"][:2]
    monkeypatch.setattr(report, "cells", lambda **kw: picked)
    with ThreadPoolExecutor(2) as pool:
        parallel = report.judge_all(pool)
    serial = report.judge_all()
    strip = {"stats": {"seconds"}}
    assert [r.model_dump(exclude=strip) for r in parallel] == [
        r.model_dump(exclude=strip) for r in serial
    ]
