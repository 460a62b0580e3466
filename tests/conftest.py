"""Test configuration: Hypothesis profiles (our own ``ci`` replaces the built-in).

The profiles are mmsim's (``mmsim.fuzz.register_profiles``, which the pytest
plugin's ``--mmsim-profile`` loads too): ``ci`` when ``CI`` is set, else
``dev``; ``MMSIM_HYPOTHESIS_PROFILE`` names another.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import settings

from mmsim.engine import Path
from mmsim.fuzz import register_profiles

register_profiles()
settings.load_profile(
    os.environ.get("MMSIM_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


# Each (scenario, policy, fs) cell is deterministic, and an exhaustive search of
# one costs up to seconds: the quick group's cells are judged once per session,
# on both cores, and shared by the golden-report test and the known-outcome
# tests; a cell outside it is judged when a test first asks for it.
_CELLS: dict[tuple[str, str, str], object] = {}


def report_cells() -> dict[tuple[str, str, str], object]:
    """Every cell of the quick report, judged in a process pool (memoised)."""
    from mmsim.report import cells

    quick = cells(quick=True)
    if not all(c in _CELLS for c in quick):
        from concurrent.futures import ProcessPoolExecutor

        from mmsim.report import judge_all

        with ProcessPoolExecutor(2) as pool:
            _CELLS.update(zip(quick, judge_all(pool, quick=True), strict=True))
    return {c: _CELLS[c] for c in quick}


def cached_check(scenario: str, policy: str = "baseline", fs: str = "") -> object:
    """The report's result for a cell (the same ``mmsim.check`` it would run)."""
    from mmsim import check
    from mmsim.scenarios import SCENARIOS

    cell = (scenario, policy, fs or SCENARIOS[scenario].filesystems[0])
    if cell not in _CELLS:
        report_cells()
    if cell not in _CELLS:
        _CELLS[cell] = check(scenario, policy, fs=cell[2])
    return _CELLS[cell]


@pytest.fixture
def _sigalrm_free() -> None:
    import signal

    if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        pytest.skip("SIGALRM is in use (pytest-timeout?): mmsim's watchdog stands by")


#: For the tests of mmsim's step watchdog, which leaves a SIGALRM that is
#: someone else's (pytest-timeout's signal method, say) alone: checked when
#: the test runs, as such a handler is installed per test.
needs_sigalrm = pytest.mark.usefixtures("_sigalrm_free")


def finish(path: Path) -> Any:
    """Run a kernel path that no longer sleeps to its end; its return value."""
    try:
        while True:
            next(path)
    except StopIteration as stop:
        return stop.value


#: The stacks no entry point names (``mmsim.strategies.stacks``), by name.
COUNTERFACTUALS = {"pinned-dio-with-writepage": "PINNED_DIO_WITH_WRITEPAGE"}


@pytest.fixture
def counterfactuals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the unregistered stacks, for this test."""
    register_counterfactuals(monkeypatch)


def register_counterfactuals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the unregistered stacks as ``mmsim.policies`` entry points
    until ``monkeypatch`` undoes it."""
    import importlib.metadata

    from mmsim import policy

    eps = {
        ep.name: ep for ep in importlib.metadata.entry_points(group="mmsim.policies")
    }
    for name, attr in COUNTERFACTUALS.items():
        eps[name] = importlib.metadata.EntryPoint(
            name, f"mmsim.strategies.stacks:{attr}", "mmsim.policies"
        )
    monkeypatch.setattr(policy, "_REGISTERED", eps)
