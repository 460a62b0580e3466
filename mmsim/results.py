"""Results and files at the edges, as pydantic models (the inner loop never validates).

* :class:`CheckResult`: what ``mmsim.check()`` returns and ``mmsim check --json``
  writes: verdict, statistics, and the shortest counterexample with its diagram.
* :class:`CounterexampleFile`: the replayable part, read back by ``mmsim replay``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CheckResult",
    "CostResult",
    "CounterexampleFile",
    "Coverage",
    "FileError",
    "OracleVerdict",
    "SampleReport",
    "SearchStatistics",
    "Spread",
    "Step",
    "ViolationRecord",
    "load_counterexample",
    "load_model",
]


class FileError(ValueError):
    """A file mmsim reads is missing or malformed; the message names file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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
    #: Wall time of the search; None in a report (it would not be reproducible).
    seconds: float | None
    complete: bool
    cut_by: list[str]
    #: Whether states that differ only by a permutation of identical tasks
    #: were merged (symmetry reduction).
    symmetry: bool = True
    #: Whether states that differ only in locals no task reads again were
    #: merged (dead variable reduction).
    dead_variables: bool = True
    #: Whether children were composed from tabled steps rather than replayed
    #: (the same states; fewer replays).
    table_steps: bool = False
    #: Upper bound on the probability that two distinct states shared a 64-bit
    #: fingerprint and were merged (n^2 / 2^65).
    collision_bound: float = 0.0
    #: Peak resident memory of the search, MiB (this process and its workers,
    #: the verdicts computed from its state graph included; 0 where the
    #: platform gives no figure); None in a report, as ``seconds``.
    peak_mib: float | None = None


class Coverage(_Model):
    """What the search reached: so that a "Never" is not vacuous.

    ``unreached`` lists the steps (yields) of the kernel functions the search
    entered that no run took, as ``function (kernel file) at source:line``
    (mmsim's file and line of the yield), the way SPIN reports
    unreached statements. ``goals`` says, for each reachability goal of the
    scenario (an event: a tracepoint or a vmstat counter), whether some run met
    it; a verdict with an unmet goal is flagged.
    """

    unreached: list[str] = Field(default_factory=list)
    goals: dict[str, bool] = Field(default_factory=dict)

    @property
    def unmet(self) -> list[str]:
        """The goals no run reached."""
        return [g for g, met in self.goals.items() if not met]


class CounterexampleFile(_Model):
    """A replayable counterexample: ``mmsim replay FILE`` re-runs it step by step."""

    format: Literal["mmsim-counterexample/1"] = "mmsim-counterexample/1"
    scenario: str
    #: The scenario's parameters (``--param``), when it takes any.
    params: dict[str, int] = Field(default_factory=dict)
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


class _Cell(_Model):
    """A (scenario, policy, filesystem) cell, judged by some oracles."""

    scenario: str
    params: dict[str, int] = Field(default_factory=dict)
    policy: str
    fs: str
    oracles: list[str]


class CheckResult(_Cell):
    """The verdict on one (scenario, policy, filesystem) cell."""

    verdict: Literal["Never", "Sometimes", "Always", "Unknown"]
    stats: SearchStatistics
    per_oracle: list[OracleVerdict]
    counterexample: CounterexampleFile | None = None
    diagram: str | None = None
    coverage: Coverage = Field(default_factory=Coverage)
    command: str

    @property
    def violated(self) -> bool:
        """Whether a violation was found."""
        return self.counterexample is not None


class SampleReport(_Cell):
    """What a sampler did on one cell: ``mmsim check --strategy S --json``.

    A sampler can find a violation (Sometimes), never prove there is none
    (Unknown). ``command`` makes the same runs again; the counterexample, when
    one was found, replays with ``mmsim replay`` (which takes this whole file).
    """

    strategy: Literal["random", "pct", "swarm", "portfolio"]
    seed: int
    max_runs: int
    #: A run's most steps.
    max_steps: int
    #: PCT's bug depth (``pct`` only; the portfolio's PCT runs at depth 2).
    pct_depth: int | None = None
    verdict: Literal["Sometimes", "Unknown"]
    #: Runs made, up to and including the one that found the violation.
    runs: int
    #: Steps over all the runs made.
    steps: int
    #: For a portfolio, the sampler whose run found it (``pct-2``).
    found_by: str | None = None
    #: PCT's guarantee when nothing was found: the probability that a bug of
    #: ``pct_depth`` would have been missed, at most. Proved for tasks that
    #: end: a bug that needs a daemon (the flusher, kswapd) to run out of the
    #: turn this PCT gives it is outside it (:class:`mmsim.sampling.SampleResult`).
    pct_bound: float | None = None
    counterexample: CounterexampleFile | None = None
    command: str


class Spread(_Model):
    """One metric over several seeds: the mean and the range."""

    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        # Rounded so that the JSON (and every report rendered from it) is stable.
        return cls(
            mean=round(sum(values) / len(values), 3),
            min=round(min(values), 3),
            max=round(max(values), 3),
        )


class CostResult(_Model):
    """What ``mmsim.cost()`` returns and ``mmsim cost --json`` writes."""

    workload: str
    policy: str
    fs: str
    scale: float
    seeds: list[int]
    #: Metric name (see :data:`mmsim.vmstat.METRICS`) to its spread over seeds.
    metrics: dict[str, Spread]
    #: Correctness oracle id to the number of seeds in which it fired.
    violations: dict[str, int]
    #: Regression oracle id (a request refused) to the number of seeds it fired in.
    regressions: dict[str, int]
    #: Per seed, how the run ended: ``finished``, or the fatal oracle (``deadlock``).
    endings: list[str]
    command: str


M = TypeVar("M", bound=BaseModel)


def load_model(
    path: str | Path,
    model: type[M],
    parse: Callable[[str], Any],
    fmt: str,
    error: type[ValueError] = FileError,
    unwrap: Callable[[Any], Any] = lambda raw: raw,
) -> M:
    """Read ``path``, parse it (``fmt`` names the format) and validate it as ``model``.

    Every failure is one ``error`` naming the file, the field and the problem.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    try:
        parsed = parse(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise error(f"{path}: not {fmt}: {exc}") from None
    try:
        raw = unwrap(parsed)
    except ValueError as exc:  # well-formed, but not what is wanted
        raise error(f"{path}: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if where:
            raise error(f"{path}: field {where}: {msg}") from None
        raise error(f"{path}: {msg}") from None


def _unwrap_result(raw: Any) -> Any:
    """A whole CheckResult or SampleReport may be replayed: take its
    counterexample."""
    if isinstance(raw, dict) and "counterexample" in raw and "verdict" in raw:
        if raw["counterexample"] is None:
            raise ValueError(
                "the result holds no counterexample "
                f"(verdict {raw.get('verdict', 'Never')})"
            )
        return raw["counterexample"]
    return raw


def load_counterexample(path: str | Path) -> CounterexampleFile:
    """Read a counterexample file, with an error naming the file, field and problem."""
    return load_model(
        path, CounterexampleFile, json.loads, "JSON", unwrap=_unwrap_result
    )
