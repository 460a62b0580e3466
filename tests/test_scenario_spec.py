"""Scenario files: TOML scenarios run like built-ins; malformed ones are named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mmsim
from mmsim.cli import main
from mmsim.scenarios import ScenarioError

EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "race-b.toml"
)

GOOD = EXAMPLE.read_text()


def test_toml_scenario_matches_the_builtin() -> None:
    from_file = mmsim.check(str(EXAMPLE), diagram=False)
    builtin = mmsim.check("dio/002", diagram=False)
    assert from_file.verdict == builtin.verdict == "Sometimes"
    assert from_file.stats.states == builtin.stats.states
    assert from_file.counterexample is not None
    assert from_file.counterexample.violation.oracle == "dirty-without-mkwrite"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('title = "DIO', 'titel = "DIO'),
            "field title: Field required",
        ),
        (lambda t: t.replace('kind = "flusher"', 'kind = "flushr"'), "field tasks.1: "),
        (lambda t: t.replace("frames = 2", 'frames = "two"'), "field machine.frames: "),
        (
            lambda t: t.replace(
                'oracles = ["dirty-without-mkwrite"]', 'oracles = ["nope"]'
            ),
            "oracles.0: unknown oracle 'nope'",
        ),
        (
            lambda t: t.replace('src = "file2"', 'src = "file9"'),
            "tasks.0.src: no file named 'file9'",
        ),
        (lambda t: t.replace("blocks = [1]", "blocks = [0]"), "block 0 is used twice"),
        (
            lambda t: t + '\n[[tasks]]\nkind = "kswapd"\nspeed = 3\n',
            "field tasks.2.kswapd.speed",
        ),
        (lambda t: t.replace("[machine]", "[machine"), "not TOML"),
        (
            lambda t: t.replace("cached = [0]", "cached = [1]"),
            "files.file1.cached: page 1 is not in the file (4096 bytes)",
        ),
        (
            lambda t: t.replace("cached = [0]", "cached = [-1]"),
            "files.file1.cached: page -1 is not in the file",
        ),
        (
            lambda t: t.replace("cached = [0]", "cached = [0, 0]"),
            "files.file1.cached: a page is named twice",
        ),
        (
            lambda t: t.replace('file = "file1"', 'file = "file1"\npages = 100000000'),
            "field mapping.pages: Input should be less than or equal to 256",
        ),
    ],
)
def test_malformed_scenario_file(
    tmp_path: Path, edit: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(GOOD))  # type: ignore[operator]
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert str(bad) in err
    assert message in err
    assert "Traceback" not in err


def test_missing_scenario_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "nowhere/scenario.toml"]) == 2
    assert "nowhere/scenario.toml: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"readers": "2"}, "parameter readers must be a whole number, not '2'"),
        ({"readers": True}, "parameter readers must be a whole number, not True"),
        ({"readers": 0}, "parameter readers must be from 1 to 8, not 0"),
        ({"nope": 2}, "has no parameter 'nope'"),
    ],
)
def test_bad_parameters_from_python_are_named(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        mmsim.check("dio/001", params=params)  # type: ignore[arg-type]
