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
# costs seconds: the golden-report test and the known-outcome tests share one
# computation of each cell per session.
_CELLS: dict[tuple[object, ...], object] = {}


def cached_check(scenario: str, policy: str = "baseline", **kw: object) -> object:
    """``mmsim.check`` memoised for the session (the results are frozen models)."""
    import mmsim

    key = (scenario, policy, tuple(sorted(kw.items())))
    if key not in _CELLS:
        _CELLS[key] = mmsim.check(scenario, policy, **kw)  # type: ignore[arg-type]
    return _CELLS[key]
