"""``mmsim.check()`` and ``mmsim.replay()``: judge one cell, re-run a counterexample."""

from __future__ import annotations

import shlex
from collections.abc import Callable

from mmsim.diagram import render
from mmsim.engine import Machine
from mmsim.explorer import Bounds, SearchStats, explore, settle
from mmsim.machine import Kernel
from mmsim.oracles import make_oracles
from mmsim.policy import load_policy
from mmsim.results import (
    CheckResult,
    CounterexampleFile,
    SearchStatistics,
    Step,
    ViolationRecord,
)
from mmsim.scenarios import ScenarioError, get_scenario

__all__ = ["ReplayError", "check", "machine_factory", "replay_counterexample"]


class ReplayError(ValueError):
    """A counterexample does not replay to the violation it records."""


def machine_factory(
    scenario: str,
    policy: str = "baseline",
    *,
    fs: str | None = None,
    oracles: list[str] | None = None,
    tracing: bool = False,
) -> tuple[Callable[[], Kernel], str, list[str]]:
    """Resolve names into a machine builder; returns (builder, fs, oracle ids).

    Raises ScenarioError, PolicyError or OracleError with a one-line message.
    """
    sc = get_scenario(scenario)
    policies = load_policy(policy)
    fs = fs or sc.filesystems[0]
    if fs not in sc.filesystems:
        raise ScenarioError(
            f"scenario {scenario} runs on {', '.join(sc.filesystems)}, not {fs!r}"
        )
    ids = list(oracles) if oracles else list(sc.oracles)
    make_oracles(ids)  # validate now, not in the first replay

    def make() -> Kernel:
        k = sc.build(policies)
        k.install_oracles(make_oracles(ids))
        k.tracing = tracing
        return k

    return make, fs, ids


def _command(
    scenario: str,
    policy: str,
    fs: str,
    oracles: list[str],
    default: list[str],
    bounds: Bounds,
) -> str:
    cmd = ["mmsim", "check", scenario, "--policy", policy, "--fs", fs]
    if oracles != default:
        for o in oracles:
            cmd += ["--oracle", o]
    if bounds.max_steps != Bounds().max_steps:
        cmd += ["--max-steps", str(bounds.max_steps)]
    if bounds.preemption_bound is not None:
        cmd += ["--preemption-bound", str(bounds.preemption_bound)]
    return shlex.join(cmd)


def check(
    scenario: str,
    policy: str = "baseline",
    *,
    fs: str | None = None,
    oracles: list[str] | None = None,
    max_steps: int | None = 400,
    preemption_bound: int | None = None,
    max_time: float | None = None,
    max_states: int | None = None,
    stop_on_first: bool = False,
    diagram: bool = True,
    progress: Callable[[SearchStats], None] | None = None,
) -> CheckResult:
    """Explore every interleaving of ``scenario`` under ``policy``.

    Returns the verdict (Never / Sometimes / Always, or Unknown when a bound cut a
    search that found nothing), the statistics, and the shortest counterexample
    found, drawn as a race diagram. Raises ``ScenarioError``, ``PolicyError`` or
    ``OracleError`` for unknown names.
    """
    make, fs, ids = machine_factory(scenario, policy, fs=fs, oracles=oracles)
    bounds = Bounds(
        max_steps=max_steps,
        preemption_bound=preemption_bound,
        max_time=max_time,
        max_states=max_states,
    )
    result = explore(make, bounds, stop_on_first=stop_on_first, progress=progress)
    st = result.stats
    stats = SearchStatistics(
        states=st.states,
        transitions=st.transitions,
        executions=st.executions,
        finished_runs=st.finished_runs,
        violating_states=st.violating_states,
        revisits=st.revisits,
        replays=st.replays,
        replayed_steps=st.replayed_steps,
        max_depth=st.max_depth,
        seconds=st.seconds,
        complete=st.complete,
        cut_by=list(st.cut_by),
    )
    cex = None
    picture = None
    if result.counterexample is not None:
        traced, _, _ = machine_factory(
            scenario, policy, fs=fs, oracles=ids, tracing=True
        )
        m = _run(traced, list(result.counterexample.schedule))
        first = m.violations[0]
        cex = CounterexampleFile(
            scenario=scenario,
            policy=policy,
            fs=fs,
            oracles=ids,
            steps=_steps(traced, list(result.counterexample.schedule)),
            violation=ViolationRecord(
                oracle=first.oracle, message=first.message, task=first.task
            ),
        )
        if diagram:
            picture = render(m)
    sc = get_scenario(scenario)
    return CheckResult(
        scenario=scenario,
        policy=policy,
        fs=fs,
        oracles=ids,
        verdict=result.verdict.value,
        stats=stats,
        by_oracle=result.by_oracle,
        counterexample=cex,
        diagram=picture,
        command=_command(scenario, policy, fs, ids, list(sc.oracles), bounds),
    )


def _steps(make: Callable[[], Machine], schedule: list[int]) -> list[Step]:
    """Name each step by the task that ran it (slot names change as irqs reuse them)."""
    m = make()
    m.tracing = False
    steps = []
    for tid in schedule:
        steps.append(Step(task=tid, name=m.tasks[tid].name))
        m.step(tid)
    return steps


def _run(
    make: Callable[[], Machine],
    schedule: list[int],
    on_step: Callable[[int, Machine], None] | None = None,
) -> Machine:
    m = make()
    for i, tid in enumerate(schedule):
        if m.violations:
            raise ReplayError(
                f"the run already violated {m.violations[0].oracle} before step {i}"
            )
        if tid >= len(m.tasks) or tid not in m.enabled():
            name = m.tasks[tid].name if tid < len(m.tasks) else f"task {tid}"
            raise ReplayError(
                f"step {i}: {name} cannot run there (the schedule does "
                "not fit this scenario and policy)"
            )
        m.step(tid)
        if on_step is not None:
            on_step(i, m)
    settle(m)
    return m


def replay_counterexample(
    cex: CounterexampleFile, on_step: Callable[[int, Machine], None] | None = None
) -> Machine:
    """Re-run a counterexample with tracing; raise ReplayError unless it reproduces.

    ``on_step(i, machine)`` is called after each step (the CLI prints the trace).
    """
    make, _, _ = machine_factory(
        cex.scenario, cex.policy, fs=cex.fs, oracles=cex.oracles, tracing=True
    )
    m = _run(make, cex.schedule, on_step)
    if not m.violations:
        raise ReplayError(
            f"the schedule ran to the end without violating {cex.violation.oracle}"
        )
    got = m.violations[0]
    if got.oracle != cex.violation.oracle:
        raise ReplayError(
            f"expected {cex.violation.oracle}, got {got.oracle}: {got.message}"
        )
    return m
