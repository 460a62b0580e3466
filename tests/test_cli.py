"""The command line: verdicts, exit codes, JSON and replay, and bad input."""

from __future__ import annotations

import importlib.metadata
import inspect
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmsim import engine
from mmsim.cli import main
from tests import misbehaving
from tests.conftest import needs_sigalrm


def test_check_race_b_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "dio/002", "--policy", "baseline"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("dio/002 under baseline on ext4: Sometimes")
    assert "dirty-without-mkwrite" in out
    assert "reproduce: mmsim check dio/002 --policy baseline --fs ext4" in out


def test_check_never_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "dio/002", "--oracle", "nobuffers-writeback"]) == 0
    assert ": Never" in capsys.readouterr().out


def test_bounded_search_exits_3_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["check", "dio/002", "--oracle", "nobuffers-writeback", "--max-steps", "5"]
        )
        == 3
    )
    out = capsys.readouterr().out
    assert ": Unknown" in out
    assert "cut by max_steps=5" in out


def test_memory_budget_exits_3_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "dio/002", "--oracle", "nobuffers-writeback", "--max-memory", "1"]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert ": Unknown" in out
    assert "cut by max_memory=1MiB" in out


@pytest.mark.parametrize(
    ("argv", "written", "tail"),
    [
        (
            ["check", "dio/001", "--policy", "defer-release", "--jobs", "2"],
            "r.json",
            "",
        ),
        (["compare", "--jobs", "2"], "report", "; nothing was written"),
    ],
)
def test_a_worker_with_another_model_is_one_line_and_exit_2(
    argv: list[str],
    written: str,
    tail: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The pool's workers are forked from this process after the patch: they
    # keep it, and tell their own pid from the searching one's.
    from unittest import mock

    searching = os.getpid()

    def digest() -> str:
        return "0" * 16 if os.getpid() == searching else "1" * 16

    out = tmp_path / written
    flag = "--json" if argv[0] == "check" else "--out"
    with mock.patch("mmsim.explorer._model_digest", digest):
        assert main([*argv, flag, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmsim: error: process ")
    assert f"(source digest {'1' * 16}, this process's {'0' * 16})" in err
    assert tail in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_json_replays_to_the_same_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cex.json"
    argv = ["check", "dio/002", "--oracle", "dirty-without-mkwrite"]
    assert main([*argv, "--json", str(out)]) == 1
    data = json.loads(out.read_text())
    assert data["counterexample"]["violation"]["oracle"] == "dirty-without-mkwrite"
    # The memory it took, as the process measured it: at least the interpreter.
    assert data["stats"]["peak_mib"] > 1
    capsys.readouterr()
    assert main(["replay", str(out)]) == 1
    text = capsys.readouterr().out
    assert "replayed 9 steps: dirty-without-mkwrite" in text
    assert "set_page_dirty_lock" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "dio/999"], "unknown scenario 'dio/999'"),
        (["check", "dio/001", "--policy", "nope"], "unknown policy 'nope'"),
        (["check", "dio/001", "--oracle", "nope"], "unknown oracle 'nope'"),
        (["check", "dio/001", "--fs", "zfs"], "unknown filesystem 'zfs'"),
        (["check", "dio/001", "--fs", "dax"], "runs on ext4, iomap, cow, not 'dax'"),
        (["check", "dio/001", "--max-steps", "x"], "not a whole number"),
        (
            ["check", "dax/001", "--policy", "fault-on-dirty"],
            "policy 'fault-on-dirty' does not apply on dax: fs-dax has no page cache",
        ),
        (["replay", "/nonexistent.json"], "no such file"),
        (["check", "dio/001", "--param", "nope=2"], "has no parameter 'nope'"),
        (["check", "dio/001", "--param", "readers=99"], "must be from 1 to 8"),
        (["check", "dio/004", "--param", "readers=2"], "takes no parameters"),
        (["check", "dio/001", "--param", "readers"], "expected KEY=N"),
        (["check", "dio/001", "--resume", "/nonexistent"], "no such checkpoint"),
        (["check", "dio/001", "--max-time", "0"], "--max-time: must be above 0"),
        (["check", "dio/001", "--max-memory", "-5"], "--max-memory: must be above 0"),
        (["check", "dio/001", "--jobs", "100000"], "--jobs: at most"),
        (["compare", "--jobs", "100000"], "--jobs: at most"),
        # A count of one or more says so, whichever side of it the value falls.
        (["check", "dio/001", "--jobs", "-1"], "--jobs: must be at least 1, not -1"),
        (["check", "dio/001", "--runs", "0"], "--runs: must be at least 1, not 0"),
        # Before the search, not when it is saved at its end.
        (
            ["check", "dio/001", "--checkpoint", "/nonexistent/dir/search.ckpt"],
            "/nonexistent/dir/search.ckpt: cannot write a checkpoint there",
        ),
        (
            ["check", "dio/001", "--strategy", "pct", "--jobs", "2"],
            "--jobs applies to the exhaustive search only",
        ),
        # An option the chosen search does not take is refused, not ignored.
        (["check", "dio/001", "--runs", "10"], "--runs applies to a sampler only"),
        (["check", "dio/001", "--seed", "1"], "--seed applies to a sampler only"),
        (
            ["check", "dio/001", "--strategy", "swarm", "--pct-depth", "3"],
            "--pct-depth applies to --strategy pct only",
        ),
        (
            ["check", "dio/001", "--strategy", "random", "--max-time", "5"],
            "--max-time applies to the exhaustive search only",
        ),
        (
            ["check", "dio/001", "--strategy", "pct", "--coverage"],
            "--coverage applies to the exhaustive search only",
        ),
        # The search's default, given to a sampler, is refused all the same.
        (
            ["check", "dio/001", "--strategy", "random", "--table-steps"],
            "--table-steps applies to the exhaustive search only",
        ),
        (
            ["check", "dio/001", "--strategy", "swarm", "--no-table-steps"],
            "--no-table-steps applies to the exhaustive search only",
        ),
        # An output that cannot be written, before the work rather than after.
        (
            ["check", "dio/001", "--json", "/etc/passwd/x.json"],
            "--json /etc/passwd/x.json: /etc/passwd is not a directory",
        ),
        (
            ["check", "dio/001", "--strategy", "random", "--json", "/etc"],
            "--json /etc: it is a directory",
        ),
        (
            ["cost", "db-dio", "--json", "/etc/passwd/x.json"],
            "--json /etc/passwd/x.json: /etc/passwd is not a directory",
        ),
        (["compare", "--out", "/etc/passwd"], "--out /etc/passwd: it is not a"),
        (
            ["check", "dio/001", "--strategy", "pct", "--dask", "tcp://h:8786"],
            "--dask applies to the exhaustive search only",
        ),
        (
            ["check", "dio/001", "--dask", "tcp://h:8786", "--jobs", "2"],
            "--dask and --jobs: give one",
        ),
        (
            ["compare", "--out", "/tmp/r", "--jobs", "2", "--dask", "tcp://h:8786"],
            "--dask and --jobs: give one",
        ),
        (
            ["check", "dio/001", "--dask", "nonsense:::"],
            "--dask nonsense:::: no Dask scheduler answered (invalid address",
        ),
        # A misspelt goal would read as never reached, the verdict as vacuous.
        (["check", "dio/001", "--goal", "pgscan_kswpd"], "unknown goal 'pgscan_kswpd'"),
        (
            ["check", "dio/001", "--goal", "release_deferred"],
            "of policy 'baseline' has that name",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ("{}", "field scenario: Field required"),
        (
            '{"scenario": "dio/002", "policy": "baseline", "fs": "ext4", "oracles": [],'
            ' "steps": [{"task": "x", "name": "a"}], "violation": {"oracle": "o",'
            ' "message": "m", "task": "t"}}',
            "field steps.0.task",
        ),
    ],
)
def test_malformed_counterexample(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["replay", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert message in err


def test_schedule_that_does_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cex.json"
    main(["check", "dio/002", "--json", str(out)])
    data = json.loads(out.read_text())
    data["counterexample"]["steps"][0]["task"] = 1  # the flusher cannot start the race
    data["counterexample"]["steps"] = data["counterexample"]["steps"][:3]
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["replay", str(out)]) == 2
    assert "mmsim: error:" in capsys.readouterr().err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in (
        "dio/001",
        "dio/002",
        "baseline",
        "nobuffers-writeback",
        "lost-write",
        "dirty-without-mkwrite",
        "kernel-bug",
        "deadlock",
    ):
        assert word in out


def test_list_events_names_what_a_goal_may_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list", "--events"]) == 0
    out = capsys.readouterr().out
    assert "pgscan_kswapd         the kernel model" in out
    assert "release_deferred      policy defer-release" in out
    # ... and the goal a policy declares is one for that policy.
    argv = ["check", "dio/001", "--policy", "defer-release", "--no-diagram"]
    assert main([*argv, "--goal", "release_deferred"]) == 0
    assert "goal release_deferred: reached" in capsys.readouterr().out


class NotAPolicy:
    """What a broken plug-in's entry point may name."""


@pytest.mark.parametrize("flags", [[], ["--events"]])
def test_list_shows_the_rest_and_names_a_policy_that_does_not_load(
    flags: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmsim import policy

    broken = importlib.metadata.EntryPoint(
        "broken", f"{__name__}:NotAPolicy", "mmsim.policies"
    )
    registered = {
        ep.name: ep for ep in importlib.metadata.entry_points(group="mmsim.policies")
    }
    monkeypatch.setattr(policy, "_REGISTERED", {**registered, "broken": broken})
    monkeypatch.setattr(policy, "policy_names", lambda: sorted([*registered, "broken"]))
    assert main(["list", *flags]) == 2
    out, err = capsys.readouterr()
    assert "defer-release" in out  # the others are listed all the same
    assert err == (
        "mmsim: error: entry point 'broken' names tests.test_cli:NotAPolicy "
        "(a type), which is neither a Policy subclass nor a Stack\n"
    )


def test_list_takes_one_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--functions", "--events"]) == 2
    assert capsys.readouterr().err == (
        "mmsim: error: list takes --functions or --events, not both\n"
    )


def test_a_parameter_given_twice_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["check", "dio/001", "--param", "readers=2", "--param", "readers=3"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "mmsim: error: --param readers given twice (2 and 3)\n"
    )


def test_console_script_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmsim", "check", "dio/002", "--no-diagram"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Sometimes" in proc.stdout


def test_list_functions_says_where_each_kernel_function_lives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list", "--functions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    found = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert found["shrink_page_list"][:2] == ["mm/vmscan.c", "v4.15"]
    assert found["unpin_user_pages_dirty_lock"][:2] == ["mm/gup.c", "v5.6"]
    assert found["ext4_punch_hole"][-1] == "mmsim.ext4.inode"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["check", "dio/002", "--fs", "iomap", "--no-diagram"], 1),
        (["check", "cow/001", "--fs", "cow", "--no-diagram"], 1),
        (["check", "dax/001", "--policy", "dax-break-layouts", "--no-diagram"], 0),
        (["check", "dax/001", "--fs", "dax", "--no-diagram"], 1),
    ],
)
def test_every_filesystem_from_the_command_line(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    fs = argv[argv.index("--fs") + 1] if "--fs" in argv else "dax"
    assert f"on {fs}: " in capsys.readouterr().out


def test_cost_prints_the_metrics_and_writes_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "cost.json"
    args = ["cost", "rdma-fsync", "--policy", "upstream-6.5", "--seeds", "2"]
    status = main([*args, "--scale", "0.1", "--json", str(out_file)])
    out = capsys.readouterr().out
    # The ban refuses every registration: a regression, not a violation.
    assert status == 0
    assert out.startswith("rdma-fsync under upstream-6.5 on ext4, seeds 1..2")
    assert "refused_efault" in out
    data = json.loads(out_file.read_text())
    assert data["metrics"]["refused_efault"]["mean"] == 64
    assert data["violations"] == {}
    assert data["regressions"] == {"pin-refused": 2}
    assert "requests refused (regressions): pin-refused (2 of 2)" in out


def test_cost_exits_1_when_the_workload_meets_a_violation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(["cost", "db-dio", "--policy", "pin-blocks-mkclean", "--seeds", "1"]) == 1
    )
    assert "deadlock (1 of 1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["cost", "nope"], "unknown workload 'nope'"),
        (["cost", "mixed", "--scale", "0"], "must be in (0, 100]"),
        (["cost", "mixed", "--seeds", "0"], "must be at least 1"),
        (["cost", "mixed", "--cost-model", "/nonexistent.toml"], "no such file"),
    ],
)
def test_cost_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    if "--scale" in args or "--seeds" in args:  # refused by the argument parser
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
    else:
        assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1


def test_parameters_grow_the_search(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "dio/002", "--param", "readers=2", "--no-diagram"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.startswith("dio/002[readers=2] under baseline on ext4: Sometimes")
    assert "reproduce: mmsim check dio/002 --param readers=2 --policy baseline" in out
    one = int(_states(main, ["check", "dio/002", "--no-diagram"], capsys))
    two = int(_states(main, argv, capsys))
    plain = int(_states(main, [*argv, "--no-symmetry"], capsys))
    assert one < two < plain
    # Dead locals left in, the same search tells more states apart; the
    # reproduce line keeps the flag.
    live = int(_states(main, [*argv, "--no-dead-variables"], capsys))
    assert two < live
    main([*argv, "--no-dead-variables"])
    assert "--no-dead-variables" in capsys.readouterr().out


def _states(run: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main(argv)
    line = next(
        ln for ln in capsys.readouterr().out.splitlines() if "distinct states" in ln
    )
    return line.split("search: ")[1].split(" distinct")[0].replace(",", "")


def test_first_stops_at_a_shortest_violation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "dio/001", "--first", "--no-diagram"]) == 1
    out = capsys.readouterr().out
    assert "cut by stopped at the first violation" in out
    assert "shortest counterexample: 15 steps" in out
    assert "--first" in out.split("reproduce: ")[1]


def test_coverage_and_goals(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "dio/002", "--oracle", "nobuffers-writeback", "--coverage"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "goal nr_written: reached" in out
    assert "steps never reached: " in out
    # A goal no run meets flags the verdict: Never is then not a proof (exit 3).
    assert main([*argv, "--goal", "pgsteal_kswapd"]) == 3
    out = capsys.readouterr().out
    assert "goal pgsteal_kswapd: NEVER REACHED" in out
    assert "may be vacuous" in out


@pytest.mark.parametrize("strategy", ["random", "pct", "swarm", "portfolio"])
def test_samplers_print_their_seed_and_reproduce(
    strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", "dio/002", "--oracle", "dirty-without-mkwrite"]
    argv += ["--strategy", strategy, "--seed", "7", "--no-diagram"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert f"{strategy} sampling, seed 7" in out
    assert "Sometimes: run " in out
    assert "dirty-without-mkwrite" in out
    again = main(argv)
    assert again == 1
    assert capsys.readouterr().out == out  # the same seed, the same runs


def test_a_samplers_reproduce_command_makes_the_same_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # With its --oracle and --max-steps: without them (as it once was printed),
    # seed 5 finds another oracle's violation, in another run.
    argv = ["check", "dio/002", "--oracle", "dirty-without-mkwrite"]
    argv += ["--max-steps", "300", "--strategy", "random", "--seed", "5"]
    assert main([*argv, "--no-diagram"]) == 1
    out = capsys.readouterr().out
    reproduce = out.rsplit("reproduce: ", 1)[1].split()
    assert reproduce[:2] == ["mmsim", "check"]
    assert main([*reproduce[1:], "--no-diagram"]) == 1
    assert capsys.readouterr().out == out


def test_a_samplers_json_replays_to_its_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "found.json"
    argv = ["check", "dio/002", "--oracle", "dirty-without-mkwrite", "--strategy"]
    argv += ["portfolio", "--seed", "5", "--no-diagram", "--json", str(out)]
    assert main(argv) == 1
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["verdict"] == "Sometimes"
    assert data["strategy"] == "portfolio"
    assert data["seed"] == 5
    assert f"run {data['runs']} (by {data['found_by']})" in printed
    assert data["command"] in printed
    cex = data["counterexample"]
    assert cex["violation"]["oracle"] == "dirty-without-mkwrite"
    assert main(["replay", str(out), "--quiet"]) == 1
    steps = len(cex["steps"])
    assert f"replayed {steps} steps: dirty-without-mkwrite" in capsys.readouterr().out


def test_a_samplers_json_when_nothing_was_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none.json"
    argv = ["check", "dio/002", "--oracle", "nobuffers-writeback", "--strategy"]
    argv += ["pct", "--seed", "1", "--runs", "20", "--json", str(out)]
    assert main(argv) == 3
    data = json.loads(out.read_text())
    assert (data["verdict"], data["runs"], data["counterexample"]) == (
        "Unknown",
        20,
        None,
    )
    assert data["pct_depth"] == 2
    assert f"at most {data['pct_bound']:.3g}" in capsys.readouterr().out
    assert main(["replay", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"mmsim: error: {out}: the result holds no counterexample (verdict Unknown)\n"
    )


def test_a_json_that_cannot_be_written_is_one_line_and_the_old_one_stays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "result.json"
    out.write_text("the old result\n")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mmsim._files.os.replace", full)
    assert main(["check", "dio/002", "--no-diagram", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"mmsim: error: {out}: cannot write it (No space left on device)\n"
    assert out.read_bytes() == b"the old result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_json_goes_through_a_symlink_and_leaves_other_files_alone(
    tmp_path: Path,
) -> None:
    """The link's target takes the result (the link stays); a file named as
    the old temporary file was (``FILE.tmp``) is not the output's to touch."""
    target = tmp_path / "target.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    bystander = tmp_path / "link.json.tmp"
    bystander.write_text("mine\n")
    assert main(["check", "dio/002", "--no-diagram", "--json", str(link)]) == 1
    assert link.is_symlink()
    assert json.loads(target.read_text())["verdict"] == "Sometimes"
    assert bystander.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.json",
        "link.json.tmp",
        "target.json",
    ]


def test_an_output_that_is_an_input_is_refused_before_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "race-b.toml"
    scenario.write_bytes(
        (Path(__file__).parent.parent / "examples/scenarios/race-b.toml").read_bytes()
    )
    ckpt = tmp_path / "search.ckpt"
    for argv, message in (
        (
            [str(scenario), "--json", str(scenario)],
            f"--json {scenario}: it is the file of the scenario too",
        ),
        (
            [str(scenario), "--checkpoint", str(scenario)],
            f"--checkpoint {scenario}: it is the file of the scenario too",
        ),
        (
            ["dio/001", "--checkpoint", str(ckpt), "--json", str(ckpt)],
            f"--json {ckpt}: it is the file of --checkpoint too",
        ),
        (
            ["dio/001", "--checkpoint", str(tmp_path)],
            f"{tmp_path}: cannot write a checkpoint there (Is a directory)",
        ),
    ):
        assert main(["check", *argv]) == 2
        assert capsys.readouterr().err == f"mmsim: error: {message}\n"
    assert scenario.read_bytes().startswith(b"# Jan Kara's race B")
    assert not ckpt.exists()


def test_a_report_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmsim import report

    def full(out: Path, **kwargs: object) -> list[Path]:
        raise OSError(28, "No space left on device", str(out / "index.html"))

    monkeypatch.setattr(report, "compare", full)
    assert main(["compare", "--out", str(tmp_path), "--jobs", "1"]) == 2
    assert capsys.readouterr().err == (
        f"mmsim: error: {tmp_path / 'index.html'}: No space left on device; "
        f"nothing was written (the report under {tmp_path} is unchanged)\n"
    )


def test_an_interrupted_sampler_says_how_far_it_got(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmsim import sampling

    real = sampling._run
    runs = 0

    def interrupt_the_sixth(*args: Any) -> Any:
        nonlocal runs
        runs += 1
        if runs == 6:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(sampling, "_run", interrupt_the_sixth)
    argv = ["check", "dio/001", "--policy", "defer-release", "--strategy", "swarm"]
    assert main([*argv, "--seed", "4"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("mmsim: interrupted after 5 runs (")
    assert err.endswith(
        " steps) of swarm sampling from seed 4, no violation found in them; "
        "nothing was written\n"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("argv", "start", "verdict"),
    [
        (["check", "dio/002", "--no-diagram"], "exploring…", "dio/002 under"),
        (
            ["check", "dio/002", "--strategy", "pct", "--seed", "1"],
            "sampling…",
            "dio/002 under",
        ),
        (
            ["fuzz", "--policy", "baseline", "--scenario", "dio/002", "--seed", "1"],
            "fuzzing…",
            "seed: 1\nviolation under",
        ),
    ],
)
def test_a_terminal_without_rich_gets_a_plain_status_line_then_wiped(
    argv: list[str],
    start: str,
    verdict: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # as if not installed
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(argv) == 1
    err = term.getvalue()
    assert err.startswith(f"\r{start}\x1b[K")
    assert err.endswith("\r\x1b[K")  # nothing left on the line for the verdict
    assert capsys.readouterr().out.startswith(verdict)


def test_the_plain_status_line_is_rewritten_at_most_ten_times_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmsim import cli

    now = [100.0]
    monkeypatch.setattr("time.monotonic", lambda: now[0])
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    line = cli._PlainStatus()
    for i in range(5):
        line(f"step {i}")
        now[0] += 0.04
    line.wipe()
    assert term.getvalue() == ("\rstep 0\x1b[K\rstep 3\x1b[K\r\x1b[K")


def test_the_search_status_line_says_time_and_memory_against_the_budgets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmsim import cli
    from mmsim.explorer import SearchStats

    now = [100.0]
    monkeypatch.setattr("time.monotonic", lambda: now[0])
    monkeypatch.setitem(sys.modules, "rich", None)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with cli._progress() as update:
        assert update is not None
        now[0] += 1.0
        stats = SearchStats(states=1200, transitions=4800, max_depth=17)
        stats.seconds, stats.peak_mib = 2.0, 40.4
        update(stats)
    assert term.getvalue() == (
        "\rexploring…\x1b[K"
        "\rstates 1,200  transitions 4,800  depth 17  2,400/s  2 s  peak 40 MiB"
        "\x1b[K\r\x1b[K"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "dio/001"],
        ["check", "dio/001", "--strategy", "random", "--seed", "1"],
        ["fuzz", "--scenario", "dio/001", "--seed", "1"],
    ],
)
def test_a_policy_whose_hook_raises_is_named_in_one_line(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    misbehaving.register(monkeypatch)
    assert main([*argv, "--policy", "raises"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "mmsim: error: kswapd0: policy 'raises', hook try_to_release_page() "
        "raised ZeroDivisionError: integer division or modulo by zero at "
    )
    hook = misbehaving.Raises.try_to_release_page
    line = inspect.getsourcelines(hook)[1] + 1  # its body's one line
    assert err.endswith(f"tests/misbehaving.py:{line}\n")
    assert err.count("\n") == 1


@needs_sigalrm
def test_a_policy_whose_hook_never_returns_is_stopped_and_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    misbehaving.register(monkeypatch)
    monkeypatch.setattr(engine, "STEP_TIMEOUT", 0.2)
    assert main(["check", "dio/001", "--policy", "spins"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "mmsim: error: kswapd0: policy 'spins', hook try_to_release_page() "
        "did not return within 0.2s at "
    )
    assert err.count("\n") == 1


@needs_sigalrm
@pytest.mark.parametrize("scenario", [[], ["--scenario", "dio/001"]])
def test_a_hook_that_never_returns_ends_a_fuzzing_campaign_at_once(
    scenario: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not shrunk: each attempt would wait for the watchdog again (minutes).
    misbehaving.register(monkeypatch)
    monkeypatch.setattr(engine, "STEP_TIMEOUT", 0.2)
    hangs = []
    failure = engine._failure

    def counted(task: engine.Task, what: str, frame: Any) -> str:
        hangs.append(what)
        return failure(task, what, frame)

    monkeypatch.setattr(engine, "_failure", counted)
    argv = ["fuzz", "--policy", "spins", *scenario, "--seed", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmsim: error: ")
    assert (
        "policy 'spins', hook try_to_release_page() did not return within 0.2s at "
    ) in err
    assert err.count("\n") == 1
    assert len(hangs) == 1


def _stuck(started: Path) -> None:
    started.touch()
    time.sleep(120)  # a step that does not return, until a watchdog fires


def test_the_pool_is_shut_down_without_waiting_for_a_stuck_batch(
    tmp_path: Path,
) -> None:
    """After a budget cut, a batch still running is not waited for (a hung hook
    held the result back a minute): its worker is terminated."""
    from concurrent.futures import ProcessPoolExecutor

    from mmsim.cli import _stop_workers

    pool = ProcessPoolExecutor(1)
    started = tmp_path / "started"
    pool.submit(_stuck, started)
    (worker,) = pool._processes.values()
    while not started.exists():
        time.sleep(0.01)
    _stop_workers(pool)
    assert worker.exitcode == -signal.SIGTERM


def test_a_hook_that_goes_round_for_ever_is_a_livelock(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each step returns, so no watchdog fires: the search itself finds that
    # no run can finish from the start, and says that nobody sleeps.
    misbehaving.register(monkeypatch)
    argv = ["check", "dio/001", "--policy", "goes-round", "--no-diagram"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert (
        "unbounded-wait: from here no run can finish: no task is asleep, but "
        "read(O_DIRECT) never finishes (a livelock)"
    ) in out


def test_a_sampler_never_says_never(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "check", "dio/002", "--oracle", "nobuffers-writeback", "--strategy", "pct",
        "--seed", "1", "--runs", "20",
    ]  # fmt: skip
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert "no violation in 20 runs" in out
    assert "PCT bound" in out
    # The flusher never ends: the bound says what it does not cover.
    assert "a daemon here, flush-8:0, goes behind the other tasks" in out


def test_interrupt_saves_a_checkpoint_that_resumes(tmp_path: Path) -> None:
    """Ctrl-C during a long search: exit 130, the search saved; --resume goes on
    from there (a budget then cuts it again, saved again, further along)."""
    ckpt = tmp_path / "search.ckpt"
    # A fix that holds, on a size that takes minutes: no violation ends it early.
    cmd = [sys.executable, "-m", "mmsim", "check", "dio/001", "--param", "readers=2"]
    cmd += ["--policy", "defer-release", "--checkpoint", str(ckpt)]
    # A shell running CI in the background hands its children SIGINT ignored,
    # and Python then installs no KeyboardInterrupt: give the child the default.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        time.sleep(4)  # well into a search that takes minutes: then Ctrl-C
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert b"the search was saved to" in err
    assert err.count(b"\n") == 1
    assert ckpt.exists()
    first = _checkpoint_states(ckpt)
    resumed = subprocess.run(
        [
            *cmd[:-2],
            "--resume",
            str(ckpt),
            "--checkpoint",
            str(ckpt),
            "--max-time",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 3, resumed.stderr
    assert "cut by max_time=2s" in resumed.stdout
    assert f"checkpoint: {ckpt}" in resumed.stdout
    assert _checkpoint_states(ckpt) > first


def _checkpoint_states(path: Path) -> int:
    from mmsim.explorer import _Search

    return _Search.load(path).stats.states


def test_a_reader_gone_away_ends_the_command_quietly() -> None:
    # The pipe has no reader from the start, so the first write fails.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mmsim", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "dio/001"],
        ["check", "dio/001", "--strategy", "pct", "--seed", "1"],
        ["cost", "db-dio", "--seeds", "1"],
    ],
)
def test_a_reader_gone_away_does_not_take_the_json_result_with_it(
    argv: list[str], tmp_path: Path
) -> None:
    """The result file is written before any output: ``mmsim check ... --json
    F | head`` keeps a long search's result, whatever head let through.
    (Unbuffered, each line is a write, as when the output outgrows the buffer:
    the first one fails.)"""
    out = tmp_path / "result.json"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mmsim", *argv, "--json", str(out)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141
    assert json.loads(out.read_text())["policy"] == "baseline"


def test_the_program_freezes_what_its_imports_built(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run as the program (no argv), the command line moves the objects alive
    after its imports out of the collector's way, and leaves it running."""
    import gc

    monkeypatch.setattr(sys, "argv", ["mmsim", "list"])
    gc.unfreeze()
    try:
        assert main() == 0
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert "dio/001" in capsys.readouterr().out


def test_a_call_with_arguments_leaves_the_collector_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Called from a program of one's own (argv given), nothing is frozen."""
    import gc

    gc.unfreeze()
    assert main(["list"]) == 0
    assert gc.get_freeze_count() == 0
    assert "dio/001" in capsys.readouterr().out


def test_an_unanswered_dask_scheduler_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    from mmsim import cli

    monkeypatch.setattr(cli, "_DASK_TIMEOUT_S", 0.5)
    address = "tcp://127.0.0.1:1"  # a port no scheduler listens on
    assert main(["compare", "--out", str(tmp_path / "r"), "--dask", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmsim: error: --dask {address}: no Dask scheduler answered")
    assert err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_check_on_a_dask_cluster_says_what_it_says_in_one_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    distributed = pytest.importorskip("distributed")
    argv = ["check", "dio/002", "--param", "readers=2", "--no-diagram"]
    assert main(argv) == 1
    alone = capsys.readouterr().out
    with distributed.LocalCluster(
        n_workers=2, processes=True, dashboard_address=None
    ) as cluster:
        before = cluster.scheduler.transition_counter
        assert main([*argv, "--dask", cluster.scheduler_address]) == 1
        # The cluster did the work: its scheduler moved the batches' tasks.
        assert cluster.scheduler.transition_counter > before
    on_dask = capsys.readouterr().out

    assert "replays (tabled steps)" in alone
    assert _costless(on_dask) == _costless(alone)


def _costless(out: str) -> str:
    """``check``'s output without the search's time and replays: costs. How
    many states a process replayed to learn its steps depends on which
    process expanded which states, and how a search expands them."""
    return re.sub(r", [0-9.]+s(, [0-9,]+ replays \(tabled steps\))?\n", "\n", out)


def test_check_tables_steps_unless_told_to_replay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``mmsim check`` tables steps by default; ``--no-table-steps`` replays
    every state, and finds the same (its line leaves out the replays, and the
    command it prints to search again keeps the flag)."""
    argv = ["check", "dio/002", "--no-diagram"]
    assert main(argv) == 1
    tabled = capsys.readouterr().out
    assert main([*argv, "--no-table-steps"]) == 1
    replayed = capsys.readouterr().out
    assert "replays (tabled steps)" in tabled
    assert "replays" not in replayed
    assert replayed.endswith(" --no-table-steps\n")
    replayed = replayed.replace(" --no-table-steps\n", "\n")
    assert _costless(tabled) == _costless(replayed)


def test_a_replaying_checkpoint_tells_how_to_resume_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A search saved replaying every state resumes only replaying: resumed
    tabled (the default), the one-line refusal names the flag that resumes it."""
    ckpt = str(tmp_path / "search.ckpt")
    argv = ["check", "dio/002", "--no-diagram", "--no-table-steps"]
    main([*argv, "--max-time", "0.001", "--checkpoint", ckpt])
    capsys.readouterr()
    assert main(["check", "dio/002", "--no-diagram", "--resume", ckpt]) == 2
    assert capsys.readouterr().err == (
        f"mmsim: error: {ckpt}: the checkpoint is of another search (table_steps "
        "False, not True: resume with table_steps=False, --no-table-steps)\n"
    )
    assert main([*argv, "--resume", ckpt]) == 1  # dio/002 races: Sometimes
    assert "complete" in capsys.readouterr().out


def test_dask_not_installed_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    assert main(["check", "dio/001", "--dask", "tcp://127.0.0.1:8786"]) == 2
    assert capsys.readouterr().err == (
        "mmsim: error: --dask needs Dask's distributed scheduler: "
        "pip install 'mmsim[dask]'\n"
    )


@pytest.mark.parametrize(
    ("workers", "ours", "our_model", "message"),
    [
        (0, None, None, "the scheduler has no workers"),
        (1, "9.9.9", None, "has mmsim {installed}, not mmsim 9.9.9"),
        (
            1,
            None,
            "0123456789abcdef",
            "runs another build of the model (source digest {digest}, "
            "this process's 0123456789abcdef)",
        ),
    ],
)
def test_a_dask_cluster_that_cannot_do_the_search_is_refused_before_it(
    workers: int,
    ours: str | None,
    our_model: str | None,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No workers: the search would wait for ever. A worker with another mmsim,
    or the same version of another source, would merge another model's states
    into this search's graph."""
    distributed = pytest.importorskip("distributed")
    from mmsim import cli
    from mmsim.explorer import _model_digest

    if ours is not None:
        monkeypatch.setattr(cli, "_version", lambda: ours)
    if our_model is not None:
        # Only this process's side: the (threaded) worker reads the real source.
        monkeypatch.setattr(cli, "_model", lambda: our_model)
    with distributed.LocalCluster(
        n_workers=workers, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        assert main(["check", "dio/001", "--dask", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmsim: error: --dask {address}: ")
    installed = importlib.metadata.version("mmsim")
    expected = message.format(installed=installed, digest=_model_digest())
    assert err.endswith(expected + "\n")
    assert err.count("\n") == 1


#: Holds :func:`_stuck_digest` until the test is done with it.
_RELEASE = threading.Event()


def _stuck_digest() -> str:
    """A worker's model digest that does not come (a worker thread of this
    process runs it: pickled by name, so the event is this module's)."""
    _RELEASE.wait(30)
    return "0123456789abcdef"


def _broken_digest() -> str:
    raise OSError("source unreadable\nsecond line")


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        (_broken_digest, "could not say which model it runs (source unreadable)"),
        # Dask's checks take no timeout: this one would hang the command.
        (_stuck_digest, "did not say which model it runs within 0.5 s"),
    ],
)
def test_a_dask_worker_that_cannot_say_its_model_is_refused_in_one_line(
    digest: Callable[[], str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    distributed = pytest.importorskip("distributed")
    from mmsim import cli, explorer

    _RELEASE.clear()
    monkeypatch.setattr(cli, "_DASK_TIMEOUT_S", 0.5)
    monkeypatch.setattr(cli, "_model", lambda: "0123456789abcdef")
    monkeypatch.setattr(explorer, "_model_digest", digest)  # what workers run
    with distributed.LocalCluster(
        n_workers=1, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        try:
            assert main(["check", "dio/001", "--dask", address]) == 2
        finally:
            _RELEASE.set()  # lets the cluster close
    assert capsys.readouterr().err == (
        f"mmsim: error: --dask {address}: a worker {message}\n"
    )


def test_a_result_of_a_scenario_file_replays_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The counterexample names the scenario file by its absolute path."""
    work = tmp_path / "work"
    work.mkdir()
    race_b = Path(__file__).resolve().parent.parent / "examples/scenarios/race-b.toml"
    (work / "race-b.toml").write_bytes(race_b.read_bytes())
    monkeypatch.chdir(work)
    argv = ["check", "race-b.toml", "--no-diagram", "--json", "r.json"]
    assert main(argv) == 1
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["replay", "work/r.json"]) == 1
    assert "replayed 9 steps: dirty-without-mkwrite" in capsys.readouterr().out
