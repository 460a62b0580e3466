"""mmsim's pytest plugin: fixtures for a fresh machine and for each policy.

pytest loads this module (entry point ``pytest11``) in every session of every
user who has mmsim installed, so it imports nothing of mmsim at import time
(the kernel model, pydantic and Hypothesis are imported inside the hooks and
fixtures that need them), and it changes no Hypothesis setting unless asked.

* ``--mmsim-policy NAME`` (repeatable): the policies ``mmsim_policy`` runs a
  test under; every registered policy by default.
* ``--mmsim-profile NAME``: register mmsim's Hypothesis profiles (``dev``,
  ``ci``, ``nightly``: :func:`mmsim.fuzz.register_profiles`) and load this one.
* ``mmsim_policy``: a policy name, one test per selected policy.
* ``mmsim_machine``: a fresh machine for the test's scenario
  (``@pytest.mark.scenario("dio/002")``, ``dio/001`` by default; ``fs=`` picks
  the filesystem), under ``mmsim_policy`` when the test uses it, else
  ``baseline``; ``mmsim_factory`` builds such machines, for Hypothesis tests
  (``mmsim.fuzz.schedules(mmsim_factory)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mmsim.machine import Kernel

#: The scenario a test without a ``scenario`` marker runs.
DEFAULT_SCENARIO = "dio/001"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mmsim", "mmsim (kernel race model)")
    group.addoption(
        "--mmsim-policy",
        action="append",
        default=None,
        metavar="NAME",
        help="run tests using the mmsim_policy fixture under this policy "
        "(repeatable; default: every registered policy)",
    )
    group.addoption(
        "--mmsim-profile",
        default=None,
        metavar="NAME",
        help="register mmsim's Hypothesis profiles (dev, ci, nightly) and load "
        "this one; without it the plugin leaves Hypothesis's settings alone",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "scenario(id, fs=None): the mmsim scenario (built-in id or TOML file) and "
        "filesystem the mmsim_machine and mmsim_factory fixtures build",
    )
    profile = config.getoption("mmsim_profile")
    if profile is not None:
        from hypothesis import settings

        from mmsim.fuzz import PROFILES, register_profiles

        if profile not in PROFILES:
            raise pytest.UsageError(
                f"--mmsim-profile: unknown profile {profile!r} "
                f"(known: {', '.join(PROFILES)})"
            )
        register_profiles()
        settings.load_profile(profile)
    chosen = config.getoption("mmsim_policy")
    if chosen:
        from mmsim.policy import policy_names

        known = policy_names()
        unknown = [name for name in chosen if name not in known]
        if unknown:
            raise pytest.UsageError(
                f"--mmsim-policy: unknown policy {unknown[0]!r} "
                f"(registered: {', '.join(known) or 'none'})"
            )


def pytest_report_header(config: pytest.Config) -> str | None:
    profile = config.getoption("mmsim_profile")
    return f"mmsim: Hypothesis profile {profile!r}" if profile else None


def _selected_policies(config: pytest.Config) -> list[str]:
    chosen: list[str] | None = config.getoption("mmsim_policy")
    if chosen:
        return list(dict.fromkeys(chosen))
    from mmsim.policy import policy_names

    return policy_names()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mmsim_policy" in metafunc.fixturenames:
        names = _selected_policies(metafunc.config)
        metafunc.parametrize("mmsim_policy", names, indirect=True, ids=names)


@pytest.fixture
def mmsim_policy(request: pytest.FixtureRequest) -> str:
    """The name of a registered policy: the test runs once per selected policy
    (``baseline`` when a fixture asks for it in a test that does not)."""
    name: str = getattr(request, "param", "baseline")
    return name


def _cell(request: pytest.FixtureRequest) -> tuple[str, str, str | None]:
    marker = request.node.get_closest_marker("scenario")
    scenario = DEFAULT_SCENARIO
    fs: str | None = None
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], str):
            pytest.fail(
                "@pytest.mark.scenario takes one scenario id, e.g. "
                '@pytest.mark.scenario("dio/002")',
                pytrace=False,
            )
        scenario = marker.args[0]
        fs = marker.kwargs.get("fs")
    policy = "baseline"
    if "mmsim_policy" in request.fixturenames:
        policy = request.getfixturevalue("mmsim_policy")
    return scenario, policy, fs


@pytest.fixture
def mmsim_factory(request: pytest.FixtureRequest) -> Callable[[], Kernel]:
    """Builds fresh machines for the test's scenario and policy, as the
    explorer does (its oracles and the always-on ones installed). A policy
    that does not apply on the filesystem skips the test."""
    from mmsim._api import machine_factory
    from mmsim.policy import load_policy
    from mmsim.scenarios import get_scenario

    scenario, policy, fs = _cell(request)
    chosen = fs or get_scenario(scenario).filesystems[0]
    for p in load_policy(policy):
        if p.filesystems and chosen not in p.filesystems:
            # Parametrized over every policy, a test meets some that do not
            # apply to its filesystem (dax-break-layouts on ext4).
            pytest.skip(f"policy {policy!r} does not apply on {chosen}")
    make: Callable[[], Kernel]
    make, _, _ = machine_factory(scenario, policy, fs=fs)
    return make


@pytest.fixture
def mmsim_machine(mmsim_factory: Callable[[], Kernel]) -> Kernel:
    """A fresh machine (a ``mmsim.machine.Kernel``) for the test's scenario and
    policy, no step taken yet."""
    return mmsim_factory()
