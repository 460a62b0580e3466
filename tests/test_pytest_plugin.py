"""The pytest plugin, in pytest sessions of its own (``pytester``).

In-process runs share this session's modules, so the runs that load a
Hypothesis profile (a process-wide setting) happen in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmsim.policy import policy_names

pytest_plugins = ["pytester"]


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    heavy = [
        "pydantic",
        "hypothesis",
        "attrs",
        "mmsim.machine",
        "mmsim.engine",
        "mmsim.fuzz",
        "mmsim._api",
    ]
    code = (
        "import sys, mmsim.pytest_plugin\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_plugin_is_registered_through_the_entry_point(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--trace-config")
    result.stdout.fnmatch_lines(["*mmsim*mmsim/pytest_plugin.py*"])


def test_mmsim_policy_runs_once_per_registered_policy(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from mmsim.policy import policy_names

        def test_policy(mmsim_policy):
            assert mmsim_policy in policy_names()
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=len(policy_names()))
    result.stdout.fnmatch_lines(["*test_policy?baseline? PASSED*"])


def test_mmsim_policy_option_selects_policies(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_policy(mmsim_policy, mmsim_machine):
            assert mmsim_policy in ("defer-release", "fault-on-dirty")
            names = {type(p).__name__ for p in mmsim_machine.policies}
            assert names == {"DeferRelease"} or names == {"FaultOnDirty"}
        """
    )
    result = pytester.runpytest(
        "-v", "--mmsim-policy", "defer-release", "--mmsim-policy", "fault-on-dirty"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*test_policy?defer-release? PASSED*", "*test_policy?fault-on-dirty? PASSED*"]
    )


def test_unknown_policy_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--mmsim-policy", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mmsim-policy: unknown policy 'nope'*"])


def test_mmsim_machine_builds_the_marked_scenario(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_default_is_the_seed_race(mmsim_machine):
            assert [t.name for t in mmsim_machine.tasks] == [
                "read(O_DIRECT)", "flush-8:0", "kswapd0"
            ]
            assert [type(p).__name__ for p in mmsim_machine.policies] == ["Baseline"]
            assert mmsim_machine.steps == 0

        @pytest.mark.scenario("dio/002")
        def test_marked(mmsim_machine):
            assert [t.name for t in mmsim_machine.tasks] == [
                "read(O_DIRECT)", "flush-8:0"
            ]
            ids = {o.id for o in mmsim_machine.oracles}
            assert {"dirty-without-mkwrite", "kernel-bug", "deadlock"} <= ids

        @pytest.mark.scenario("dio/002", fs="iomap")
        def test_marked_fs(mmsim_machine):
            assert mmsim_machine.inodes[0].mapping.a_ops.name == "iomap"

        @pytest.mark.scenario("dio/002")
        def test_factory(mmsim_factory):
            assert mmsim_factory() is not mmsim_factory()
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=4)


def test_a_policy_that_does_not_apply_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_machine(mmsim_machine, mmsim_policy):
            assert mmsim_machine.tasks
        """
    )
    result = pytester.runpytest(
        "-rs", "--mmsim-policy", "dax-break-layouts", "--mmsim-policy", "baseline"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*'dax-break-layouts' does not apply on ext4*"])


def test_scenario_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.scenario(id, fs=None)*"])


def test_fixtures_feed_hypothesis_schedules(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from hypothesis import HealthCheck, given, settings
        from mmsim import fuzz

        @pytest.mark.scenario("dio/002")
        def test_race_b_is_found(mmsim_factory, mmsim_policy):
            @settings(max_examples=500, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(fuzz.schedules(mmsim_factory))
            def run(r):
                r.check()

            with pytest.raises(fuzz.OracleViolation):
                run()
        """
    )
    result = pytester.runpytest("--mmsim-policy", "baseline")
    result.assert_outcomes(passed=1)


_PROFILE_PROBE = """
    import pytest
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    def test_probe():
        print("max_examples", settings().max_examples)
        print("derandomize", settings().derandomize)
        try:
            settings.get_profile("nightly")
        except InvalidArgument:
            print("nightly unregistered")
"""


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("nightly", ["*max_examples 5000", "derandomize False"]),
        ("ci", ["*max_examples 100", "derandomize True"]),
        ("dev", ["*max_examples 100", "derandomize False"]),
    ],
)
def test_mmsim_profile_registers_and_loads_it(
    pytester: pytest.Pytester, profile: str, expected: list[str]
) -> None:
    pytester.makepyfile(_PROFILE_PROBE)
    result = pytester.runpytest_subprocess("-s", "--mmsim-profile", profile)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(expected)
    result.stdout.no_fnmatch_line("*nightly unregistered")
    result.stdout.fnmatch_lines([f"mmsim: Hypothesis profile '{profile}'"])


def test_without_the_option_hypothesis_settings_are_left_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(_PROFILE_PROBE)
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    # mmsim's profiles were never registered (nor its ``ci`` over Hypothesis's).
    result.stdout.fnmatch_lines(["*nightly unregistered"])


def test_unknown_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--mmsim-profile", "weekly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown profile 'weekly' (known: dev, ci, nightly)*"]
    )


def test_policy_machine_in_a_users_test_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import settings
        from mmsim import fuzz

        # defer-release keeps the buffers: however the seed race interleaves,
        # the kernel never oopses.
        DeferRelease = fuzz.policy_machine(
            "defer-release", scenario="dio/001", oracles=["kernel-bug"],
            max_operations=0,
        )
        DeferRelease.TestCase.settings = settings(max_examples=30, deadline=None)
        TestDeferRelease = DeferRelease.TestCase
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*TestDeferRelease::runTest PASSED*"])
