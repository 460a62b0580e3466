"""Results and files at the edges, as pydantic models (the inner loop never validates).

* :class:`CheckResult`: what ``mmsim.check()`` returns and ``mmsim check --json``
  writes: verdict, statistics, and the shortest counterexample with its diagram.
* :class:`CounterexampleFile`: the replayable part, read back by ``mmsim replay``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CheckResult",
    "CounterexampleFile",
    "FileError",
    "OracleVerdict",
    "SearchStatistics",
    "Step",
    "ViolationRecord",
    "load_counterexample",
]


class FileError(ValueError):
    """A file mmsim reads is missing or malformed; the message names file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ViolationRecord(_Model):
    """An oracle that fired, with its message and the task that was running."""

    oracle: str
    message: str
    task: str


class Step(_Model):
    """One step of a schedule: which task ran (by slot id, and its name then)."""

    task: int = Field(ge=0)
    name: str


class SearchStatistics(_Model):
    """The explorer's honest statistics (``seconds`` is wall time, not compared)."""

    states: int
    transitions: int
    executions: int
    finished_runs: int
    revisits: int
    replays: int
    replayed_steps: int
    max_depth: int
    seconds: float
    complete: bool
    cut_by: list[str]


class CounterexampleFile(_Model):
    """A replayable counterexample: ``mmsim replay FILE`` re-runs it step by step."""

    format: Literal["mmsim-counterexample/1"] = "mmsim-counterexample/1"
    scenario: str
    policy: str
    fs: str
    oracles: list[str]
    steps: list[Step]
    violation: ViolationRecord
    #: The violation shows once the run has finished and quiesced (final sync).
    at_end: bool = False

    @property
    def schedule(self) -> list[int]:
        """The task ids, in order."""
        return [s.task for s in self.steps]


class OracleVerdict(_Model):
    """One oracle's verdict on a cell."""

    oracle: str
    verdict: Literal["Never", "Sometimes", "Always", "Unknown"]
    #: Violating steps and run ends the search met (each counted once).
    occurrences: int
    #: Length of the shortest counterexample, if any.
    steps: int | None = None
    message: str | None = None
    #: A regression outcome (a request the fix refuses), not a correctness oracle.
    regression: bool = False


class CheckResult(_Model):
    """The verdict on one (scenario, policy, filesystem) cell."""

    scenario: str
    policy: str
    fs: str
    oracles: list[str]
    verdict: Literal["Never", "Sometimes", "Always", "Unknown"]
    stats: SearchStatistics
    per_oracle: list[OracleVerdict]
    counterexample: CounterexampleFile | None = None
    diagram: str | None = None
    command: str

    @property
    def violated(self) -> bool:
        """Whether a violation was found."""
        return self.counterexample is not None


def load_counterexample(path: str | Path) -> CounterexampleFile:
    """Read a counterexample file, with an error naming the file, field and problem."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise FileError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(raw, dict) and "counterexample" in raw and "verdict" in raw:
        raw = raw["counterexample"]  # a whole CheckResult: take its counterexample
        if raw is None:
            raise FileError(
                f"{path}: the result holds no counterexample (verdict Never)"
            )
    try:
        return CounterexampleFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise FileError(f"{path}: field {where}: {err['msg']}") from None
