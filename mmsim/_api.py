"""``mmsim.check()`` and ``mmsim.replay()``: judge one cell, re-run a counterexample."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mmsim.engine import _CACHE_SIZE, Machine, Violation
from mmsim.explorer import Bounds, SearchStats, explore, settle
from mmsim.machine import EVENTS, Kernel
from mmsim.oracles import ALWAYS_ON, GRAPH_ORACLES, ORACLES, make_oracles
from mmsim.policy import Policy, PolicyError, load_policy
from mmsim.results import (
    CheckResult,
    CostResult,
    CounterexampleFile,
    Coverage,
    OracleVerdict,
    SearchStatistics,
    Spread,
    Step,
    ViolationRecord,
)
from mmsim.scenario_spec import FILESYSTEMS, ScenarioSpec, build
from mmsim.scenarios import ScenarioError, get_scenario, replayable_name

if TYPE_CHECKING:
    from mmsim.cost_model import CostModel

__all__ = [
    "MachineFactory",
    "ReplayError",
    "check",
    "cost",
    "machine_factory",
    "replay_counterexample",
    "traced_counterexample",
    "violation_of",
]


class ReplayError(ValueError):
    """A counterexample does not replay to the violation it records."""


@attrs.frozen
class MachineFactory:
    """Builds fresh machines for one cell: a scenario (with its parameters) under
    a policy on a filesystem, judged by a set of oracles.

    Picklable (names, not objects), so a search can send it to worker processes
    or a cluster; each process resolves the names once and then builds machines
    from the validated spec without validating again (the inner loop).
    """

    scenario: str
    policy: str
    fs: str
    #: Every oracle in force: the scenario's (or the chosen) and the always-on.
    oracles: tuple[str, ...]
    params: tuple[tuple[str, int], ...] = ()
    tracing: bool = False

    def __call__(self) -> Kernel:
        parts = _RESOLVED.get(self)
        if parts is None:
            if len(_RESOLVED) >= _CACHE_SIZE:
                _RESOLVED.clear()
            sc = get_scenario(self.scenario, dict(self.params))
            parts = _RESOLVED[self] = (
                sc,
                load_policy(self.policy),
                make_oracles(list(self.oracles)),
            )
        sc, policies, oracles = parts
        k = build(sc, policies, self.fs)
        k.install_oracles(oracles)
        k.tracing = self.tracing
        return k


_RESOLVED: dict[MachineFactory, tuple[ScenarioSpec, tuple[Policy, ...], list[Any]]] = {}


def machine_factory(
    scenario: str,
    policy: str = "baseline",
    *,
    fs: str | None = None,
    oracles: list[str] | None = None,
    tracing: bool = False,
    params: dict[str, int] | None = None,
) -> tuple[MachineFactory, str, list[str]]:
    """Resolve names into a machine builder; returns (builder, fs, oracle ids).

    Raises ScenarioError, PolicyError or OracleError with a one-line message.
    """
    sc = get_scenario(scenario, params)
    policies = load_policy(policy)
    chosen = fs or sc.filesystems[0]
    if chosen not in FILESYSTEMS:
        raise ScenarioError(
            f"unknown filesystem {chosen!r} (known: {', '.join(FILESYSTEMS)})"
        )
    if chosen not in sc.filesystems:
        raise ScenarioError(
            f"scenario {scenario} runs on {', '.join(sc.filesystems)}, not {chosen!r}"
        )
    _check_applies(policy, policies, chosen)
    ids = list(oracles) if oracles else list(sc.oracles)
    make_oracles(ids)  # validate now, not in the first replay
    judged = ids + [o for o in ALWAYS_ON if o not in ids]
    make = MachineFactory(
        scenario,
        policy,
        chosen,
        tuple(judged),
        tuple(sorted((params or {}).items())),
        tracing,
    )
    return make, chosen, ids


def _check_goals(goals: list[str], policy: str) -> None:
    """A goal names an event the model or the policy emits: a misspelt one
    would read as never reached, and flag a sound verdict as vacuous."""
    known = set(EVENTS).union(*(p.events for p in load_policy(policy)))
    for goal in goals:
        if goal not in known:
            raise ScenarioError(
                f"unknown goal {goal!r}: no tracepoint or /proc/vmstat counter of "
                f"the kernel model or of policy {policy!r} has that name (they "
                "are listed by mmsim list --events)"
            )


def _check_applies(name: str, policies: tuple[Policy, ...], fs: str) -> None:
    for p in policies:
        if p.filesystems and fs not in p.filesystems:
            raise PolicyError(
                f"policy {name!r} does not apply on {fs}: "
                f"{p.filesystems_why or 'its mechanism is ' + ', '.join(p.filesystems)}"
            )


def cost(
    workload: str,
    policy: str = "baseline",
    *,
    fs: str | None = None,
    seeds: int = 3,
    seed: int = 1,
    scale: float = 1.0,
    cost_model: CostModel | str | Path | None = None,
) -> CostResult:
    """Run ``workload`` under ``policy`` on the timed clock, once per seed.

    Seeds are ``seed``, ``seed + 1``, …; every metric is reported as its mean and
    range over them. The workload's oracles are every oracle judged by a step or
    at the end (not those the explorer judges on its state graph), and a fatal
    one ends that seed's run early: its metrics are up to that point. Raises
    ``WorkloadError``, ``PolicyError`` or ``CostModelError`` (``cost_model``
    may be a TOML file's path) with a one-line message.
    """
    from mmsim.cost_model import CostModel, load_cost_model
    from mmsim.timed import run_timed
    from mmsim.vmstat import metrics
    from mmsim.workloads import WorkloadError, get_workload

    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    if not 0 < scale <= 100:
        raise ValueError("scale must be in (0, 100]")
    w = get_workload(workload)
    chosen = fs or w.filesystems[0]
    if chosen not in w.filesystems:
        raise WorkloadError(
            f"workload {workload} runs on {', '.join(w.filesystems)}, not {chosen!r}"
        )
    policies = load_policy(policy)
    _check_applies(policy, policies, chosen)
    if isinstance(cost_model, str | Path):
        model = load_cost_model(cost_model)
    else:
        model = cost_model or CostModel()
    ids = [o for o in ORACLES if o not in GRAPH_ORACLES]
    per_seed: list[dict[str, float]] = []
    fired: dict[str, int] = {}
    refused: dict[str, int] = {}
    endings: list[str] = []
    seed_list = [seed + i for i in range(seeds)]
    for s in seed_list:
        k = w.make(policies, chosen, s, scale)
        k.install_oracles(make_oracles(ids))
        run = run_timed(k, model, seed=s, idle_periods=dict(w.idle_periods))
        per_seed.append(metrics(run))
        for oracle in sorted(set(run.violations)):
            into = refused if ORACLES[oracle].regression else fired
            into[oracle] = into.get(oracle, 0) + 1
        fatal = [v.oracle for v in k.violations if v.fatal]
        endings.append(fatal[0] if fatal else "finished")
    names = list(dict.fromkeys(name for m in per_seed for name in m))
    cmd = ["mmsim", "cost", workload, "--policy", policy, "--fs", chosen]
    cmd += ["--seeds", str(seeds), "--seed", str(seed)]
    if scale != 1.0:
        cmd += ["--scale", str(scale)]
    if isinstance(cost_model, str | Path):
        cmd += ["--cost-model", str(cost_model)]
    elif cost_model is not None and cost_model != CostModel():
        cmd += ["--cost-model", "FILE"]  # an in-memory model: the caller has it
    return CostResult(
        workload=workload,
        policy=policy,
        fs=chosen,
        scale=scale,
        seeds=seed_list,
        metrics={n: Spread.of([m.get(n, 0.0) for m in per_seed]) for n in names},
        violations=fired,
        regressions=refused,
        endings=endings,
        command=shlex.join(cmd),
    )


def _command(
    scenario: str,
    params: dict[str, int],
    policy: str,
    fs: str,
    oracles: list[str],
    default: list[str],
    bounds: Bounds,
    symmetry: bool,
    dead_variables: bool,
    stop_on_first: bool,
    table_steps: bool = True,
) -> str:
    cmd = ["mmsim", "check", scenario]
    for key, value in sorted(params.items()):
        cmd += ["--param", f"{key}={value}"]
    cmd += ["--policy", policy, "--fs", fs]
    if oracles != default:
        for o in oracles:
            cmd += ["--oracle", o]
    if bounds.max_steps != Bounds().max_steps:
        cmd += ["--max-steps", str(bounds.max_steps)]
    if bounds.preemption_bound is not None:
        cmd += ["--preemption-bound", str(bounds.preemption_bound)]
    if not symmetry:
        cmd += ["--no-symmetry"]
    if not dead_variables:
        cmd += ["--no-dead-variables"]
    if not table_steps:
        cmd += ["--no-table-steps"]
    if stop_on_first:
        cmd += ["--first"]
    return shlex.join(cmd)


def check(
    scenario: str,
    policy: str = "baseline",
    *,
    fs: str | None = None,
    oracles: list[str] | None = None,
    params: dict[str, int] | None = None,
    goals: list[str] | None = None,
    max_steps: int | None = 400,
    preemption_bound: int | None = None,
    max_time: float | None = None,
    max_states: int | None = None,
    max_memory: float | None = None,
    stop_on_first: bool = False,
    symmetry: bool = True,
    dead_variables: bool = True,
    executor: Executor | None = None,
    checkpoint: Path | None = None,
    resume: Path | None = None,
    diagram: bool = True,
    progress: Callable[[SearchStats], None] | None = None,
    table_steps: bool = True,
) -> CheckResult:
    """Explore every interleaving of ``scenario`` under ``policy``.

    Returns the verdict (Never / Sometimes / Always, or Unknown when a bound cut a
    search that found nothing), the statistics, the shortest counterexample
    found, drawn as a race diagram, and the coverage (steps never reached,
    reachability goals met). ``params`` sizes a scenario that takes parameters
    (``{"readers": 2}``); ``goals`` adds reachability goals to the scenario's.
    ``executor`` expands the search's states on a process pool or a cluster
    (same result). With ``checkpoint``, an interrupted or budget-cut search
    saves itself there; ``resume`` continues one. ``table_steps`` (the
    default) learns each task's steps as a table instead of replaying a state
    for each of its children (:func:`~mmsim.explorer.explore`: the same states
    and verdicts, fewer replays, more memory); False replays, as ``explore``
    does unless asked. Raises ``ScenarioError``,
    ``PolicyError``, ``OracleError`` or ``CheckpointError`` with a one-line
    message.
    """
    make, fs, ids = machine_factory(
        scenario, policy, fs=fs, oracles=oracles, params=params
    )
    sc = get_scenario(scenario, params)
    wanted = list(dict.fromkeys([*sc.goals, *(goals or [])]))
    _check_goals(wanted, policy)
    bounds = Bounds(
        max_steps=max_steps,
        preemption_bound=preemption_bound,
        max_time=max_time,
        max_states=max_states,
        max_memory=max_memory,
    )
    result = explore(
        make,
        bounds,
        stop_on_first=stop_on_first,
        symmetry=symmetry,
        dead_variables=dead_variables,
        executor=executor,
        progress=progress,
        checkpoint=checkpoint,
        resume=resume,
        table_steps=table_steps,
    )
    st = result.stats
    stats = SearchStatistics(
        states=st.states,
        transitions=st.transitions,
        executions=st.executions,
        finished_runs=st.finished_runs,
        revisits=st.revisits,
        replays=st.replays,
        replayed_steps=st.replayed_steps,
        max_depth=st.max_depth,
        seconds=st.seconds,
        complete=st.complete,
        cut_by=list(st.cut_by),
        symmetry=symmetry,
        dead_variables=dead_variables,
        table_steps=table_steps,
        collision_bound=st.collision_bound,
        peak_mib=round(st.peak_mib, 1),
    )
    per_oracle = [
        OracleVerdict(
            oracle=r.oracle,
            verdict=r.verdict.value,
            occurrences=r.occurrences,
            steps=len(r.counterexample.schedule) if r.counterexample else None,
            message=r.counterexample.violation.message if r.counterexample else None,
            regression=r.regression,
        )
        for r in result.oracles.values()
    ]
    cex = None
    picture = None
    if result.counterexample is not None:
        shown = result.counterexample
        traced = attrs.evolve(make, tracing=True)
        m = _run(traced, list(shown.schedule), at_end=shown.at_end)
        v = shown.violation
        if not any(x.oracle == v.oracle for x in m.violations):
            # Judged on the state graph (unbounded-wait), not by a step: say who
            # waits, and close the diagram with it.
            asleep = [
                f"{t.name} ({t.wait.reason})"
                for t in m.tasks
                if not t.done and t.wait is not None and not t.wait.idle
            ]
            if asleep:
                message = f"{v.message}; asleep: {', '.join(asleep)}"
            else:
                # Nobody sleeps, yet no run ends: the tasks go round for ever.
                going = [t.name for t in m.tasks if not t.done and not t.daemon]
                verb = "never finishes" if len(going) == 1 else "never finish"
                message = (
                    "from here no run can finish: no task is asleep, but "
                    f"{', '.join(going)} {verb} (a livelock)"
                )
            v = Violation(v.oracle, message, v.task)
            m.record(None, "violation", f"{v.oracle}: {v.message}")
        cex = CounterexampleFile(
            scenario=replayable_name(scenario),
            params=dict(params or {}),
            policy=policy,
            fs=fs,
            oracles=ids,
            steps=_steps(traced, list(shown.schedule)),
            violation=ViolationRecord(oracle=v.oracle, message=v.message, task=v.task),
            at_end=shown.at_end,
        )
        if diagram:
            from mmsim.diagram import render

            picture = render(m)
    coverage = Coverage(
        unreached=[str(u) for u in result.unreached],
        goals={g: g in result.events for g in wanted},
    )
    return CheckResult(
        scenario=scenario,
        params=dict(params or {}),
        policy=policy,
        fs=fs,
        oracles=ids,
        verdict=result.verdict.value,
        stats=stats,
        per_oracle=per_oracle,
        counterexample=cex,
        diagram=picture,
        coverage=coverage,
        command=_command(
            scenario,
            dict(params or {}),
            policy,
            fs,
            ids,
            list(sc.oracles),
            bounds,
            symmetry,
            dead_variables,
            stop_on_first,
            table_steps,
        ),
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
    *,
    at_end: bool = False,
) -> Machine:
    """Replay ``schedule`` checking that every step fits; quiesce if ``at_end``."""
    m = make()
    for i, tid in enumerate(schedule):
        if m.stopped:
            raise ReplayError(
                f"the run already ended ({m.violations[-1].oracle}) before step {i}"
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
    if at_end:
        settle(m)
    return m


def _traced_factory(cex: CounterexampleFile) -> MachineFactory:
    """Machines of the cell a counterexample file was found in, traced."""
    make, _, _ = machine_factory(
        cex.scenario,
        cex.policy,
        fs=cex.fs,
        oracles=cex.oracles,
        tracing=True,
        params=cex.params,
    )
    return make


def replay_counterexample(
    cex: CounterexampleFile, on_step: Callable[[int, Machine], None] | None = None
) -> Machine:
    """Re-run a counterexample with tracing; raise ReplayError unless it reproduces.

    The recorded oracle must fire in the last step (or, for an ``at_end``
    counterexample, when the finished run quiesces). ``on_step(i, machine)`` is
    called after each step (the CLI prints the trace).
    """
    make = _traced_factory(cex)
    m = _run(make, cex.schedule, on_step, at_end=cex.at_end)
    want = cex.violation.oracle
    if not any(v.oracle == want for v in m.violations):
        seen = ", ".join(sorted({v.oracle for v in m.violations})) or "nothing"
        raise ReplayError(f"the schedule does not violate {want} (it violates: {seen})")
    return m


def traced_counterexample(cex: CounterexampleFile) -> Machine:
    """Replay ``cex`` with tracing on, for a picture of it (diagram, Perfetto).

    A violation judged on the state graph (``unbounded-wait``) fires in no step:
    the recorded one closes the trace instead.
    """
    make = _traced_factory(cex)
    m = _run(make, cex.schedule, at_end=cex.at_end)
    v = cex.violation
    if not any(x.oracle == v.oracle for x in m.violations):
        m.record(None, "violation", f"{v.oracle}: {v.message}")
    return m


def violation_of(m: Machine, oracle: str) -> Violation:
    """The first violation of ``oracle`` a replayed machine recorded."""
    return next(v for v in m.violations if v.oracle == oracle)
