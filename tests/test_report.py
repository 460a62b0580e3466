"""The committed reports/ is the golden output: regenerating it changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsim import report
from mmsim.report import compare
from tests.conftest import cached_check

GOLDEN = Path(__file__).resolve().parent.parent / "reports"


def test_compare_reproduces_the_committed_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cells are deterministic: reuse those other tests already computed.
    monkeypatch.setattr(report, "check", cached_check)
    written = compare(tmp_path)
    assert written, "compare wrote nothing"
    for path in written:
        rel = path.relative_to(tmp_path)
        golden = GOLDEN / rel
        assert golden.is_file(), f"{rel} is not committed under reports/"
        assert path.read_bytes() == golden.read_bytes(), f"{rel} differs from reports/"
    assert not list(tmp_path.rglob("*.tmp"))
