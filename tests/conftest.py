"""Test configuration: Hypothesis profiles (our own ``ci`` replaces the built-in)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100)
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("nightly", max_examples=5000, deadline=None)
settings.load_profile(
    os.environ.get("MMSIM_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


# Each (scenario, policy) cell is deterministic, and an exhaustive search of one
# costs seconds: the report's cells are judged once per session, on both cores,
# and shared by the golden-report test and the known-outcome tests.
_CELLS: dict[tuple[str, str], object] = {}


def report_cells() -> dict[tuple[str, str], object]:
    """Every cell of the comparison report, judged in a process pool (memoised)."""
    if not _CELLS:
        from concurrent.futures import ProcessPoolExecutor

        from mmsim.report import cells, judge_all

        with ProcessPoolExecutor(2) as pool:
            _CELLS.update(zip(cells(), judge_all(pool), strict=True))
    return _CELLS


def cached_check(scenario: str, policy: str = "baseline") -> object:
    """The report's result for a cell (the same ``mmsim.check`` it would run)."""
    return report_cells()[(scenario, policy)]
