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
