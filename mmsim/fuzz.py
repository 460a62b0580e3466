"""Hypothesis strategies for mmsim, and a state machine per policy.

The exhaustive explorer proves a verdict on a small scenario; Hypothesis
searches where the explorer cannot go (many operations, started at any time)
and shrinks what it finds to a minimal run. Both drive the same machine through
the same engine calls (``m.step(tid)``, :func:`mmsim.explorer.settle`), so a
violation found here is one the explorer would report for the same tasks.

Strategies are functions that return strategies, in Hypothesis's API style:
keyword-only arguments with defaults, ``min_size``/``max_size``, and
:class:`~hypothesis.errors.InvalidArgument` for a bad argument, raised when the
strategy is first used, not when it is made.

* :func:`scenarios` draws built-in scenario ids; :func:`scenario_specs` draws
  valid :class:`~mmsim.scenario_spec.ScenarioSpec`\\ s over :func:`workloads`,
  sequences of kernel operations.
* :func:`schedules` runs a machine with every scheduling choice drawn from
  Hypothesis: a failing interleaving shrinks to a short schedule.
* :func:`policy_machine` returns a :class:`~hypothesis.stateful.RuleBasedStateMachine`
  whose rules start kernel operations and step tasks, and whose invariant is
  mmsim's oracles. A finding (:class:`OracleViolation`) carries its comparable
  scenario: :func:`replay` re-runs it there, :func:`confirm` explores it.
* :func:`fuzzer` prepares a seeded campaign (``mmsim fuzz``).
* :func:`register_profiles` registers the ``dev``, ``ci`` and ``nightly``
  settings profiles (the pytest plugin and the test suite load them from here).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmsim.engine import Machine, StepTimeout, Violation, watchdog
from mmsim.explorer import Bounds, Verdict, explore, settle
from mmsim.machine import Kernel
from mmsim.oracles import ALWAYS_ON, GRAPH_ORACLES, ORACLES, make_oracles
from mmsim.policy import Policy, PolicyError, load_policy
from mmsim.scenario_spec import (
    FILESYSTEMS,
    DioRead,
    Fallocate,
    FileSpec,
    Flusher,
    Fsync,
    GetRefs,
    Kswapd,
    LegacyDriver,
    MachineSpec,
    MappingSpec,
    PunchHole,
    RdmaApp,
    ScenarioSpec,
    Store,
    TaskSpec,
    Truncate,
    build,
    spawn_task,
)
from mmsim.scenarios import SCENARIOS, ScenarioError, get_scenario

__all__ = [
    "PROFILES",
    "Campaign",
    "OracleViolation",
    "Run",
    "confirm",
    "fuzzer",
    "policy_machine",
    "register_profiles",
    "replay",
    "scenario_specs",
    "scenarios",
    "schedules",
    "workloads",
]


# -- settings profiles ------------------------------------------------------------

#: The profiles :func:`register_profiles` registers.
PROFILES = ("dev", "ci", "nightly")


def register_profiles() -> None:
    """Register mmsim's Hypothesis settings profiles; load none of them.

    * ``dev``: 100 examples, Hypothesis's defaults otherwise.
    * ``ci``: 100 examples, derandomized (a CI run is reproducible), no example
      database, no deadline. Sized so that the whole test suite stays well
      under ten minutes on two cores.
    * ``nightly``: 5,000 examples and 100 steps per state-machine run.

    Hypothesis has a built-in ``ci`` profile, loaded automatically when the
    ``CI`` environment variable is set; registering ``ci`` here replaces it, and
    if it is the active profile the change takes effect at once. That is why
    the pytest plugin calls this only when asked (``--mmsim-profile``). Call it
    at module level (a conftest), not inside a test running under ``@settings``.
    """
    # From Hypothesis's "default" profile, not the active one: with CI set the
    # active one is Hypothesis's ci (derandomized), which dev must not inherit.
    default = settings.get_profile("default")
    settings.register_profile("dev", default, max_examples=100)
    settings.register_profile(
        "ci",
        default,
        max_examples=100,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "nightly", default, max_examples=5000, stateful_step_count=100, deadline=None
    )


# -- argument checks ----------------------------------------------------------------


def _check_int(name: str, value: object, *, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be an integer")
    if value < least:
        raise InvalidArgument(f"{name}={value!r} must be at least {least}")
    return value


def _check_sizes(min_size: object, max_size: object) -> None:
    low = _check_int("min_size", min_size, least=0)
    high = _check_int("max_size", max_size, least=0)
    if high < low:
        raise InvalidArgument(f"Cannot have max_size={high} < min_size={low}")


def _check_fs(fs: object) -> str:
    if not isinstance(fs, str) or fs not in FILESYSTEMS:
        raise InvalidArgument(
            f"fs={fs!r} is not a filesystem (known: {', '.join(FILESYSTEMS)})"
        )
    return fs


# -- scenarios and workloads --------------------------------------------------------


def scenarios(*, groups: Sequence[str] | None = None) -> st.SearchStrategy[str]:
    """Draw the id of a built-in scenario (``"dio/001"``).

    Args:
        groups: draw only scenarios in at least one of these groups
            (``["quick"]``, ``["dio", "rdma"]``); every built-in scenario when None.
            A group no scenario belongs to is an error.
    """

    def build_strategy() -> st.SearchStrategy[str]:
        if groups is None:
            return st.sampled_from(sorted(SCENARIOS))
        if isinstance(groups, str) or not all(isinstance(g, str) for g in groups):
            raise InvalidArgument(f"groups={groups!r} must be a list of group names")
        known = sorted({g for s in SCENARIOS.values() for g in s.groups})
        unknown = [g for g in groups if g not in known]
        if unknown or not groups:
            raise InvalidArgument(
                f"groups={list(groups)!r}: no scenario is in group "
                f"{unknown[0] if unknown else '(none given)'!r} "
                f"(groups: {', '.join(known)})"
            )
        wanted = set(groups)
        return st.sampled_from(
            sorted(sid for sid, s in SCENARIOS.items() if wanted & set(s.groups))
        )

    return st.deferred(build_strategy)


#: Task kinds that run for ever (one of each at most: a flusher per disk, a
#: kswapd per node).
_DAEMON_KINDS = ("flusher", "kswapd")


@attrs.frozen
class _Roles:
    """Which file of a set-up each operation works on.

    ``mapped`` is the user's MAP_SHARED file (stores, pins, fsync, truncate and
    hole punch act on it); ``src`` a file with a block to read with O_DIRECT
    into the mapping; ``reuse`` a file with a hole, whose allocation reuses a
    block truncate or a hole punch freed. A role no file can play is None, and
    the operations needing it are not drawn.
    """

    mapped: str | None
    src: str | None
    reuse: tuple[str, int] | None

    @classmethod
    def of(cls, spec: ScenarioSpec) -> _Roles:
        mapped = spec.mapping.file if spec.mapping is not None else None
        src = next(
            (
                f.name
                for f in spec.files
                if f.name != mapped and f.blocks and f.blocks[0] is not None
            ),
            None,
        )
        reuse = next(
            (
                (f.name, f.blocks.index(None))
                for f in spec.files
                if f.name != mapped and None in f.blocks
            ),
            None,
        )
        return cls(mapped, src, reuse)


def _operations(roles: _Roles) -> st.SearchStrategy[TaskSpec]:
    ops: list[st.SearchStrategy[Any]] = []
    if roles.mapped is not None:
        file = roles.mapped
        ops += [
            st.just(Store(kind="store")),
            st.builds(
                LegacyDriver, kind=st.just("legacy-driver"), softirq=st.booleans()
            ),
            st.just(RdmaApp(kind="rdma-app")),
            st.just(GetRefs(kind="get-refs")),
            st.just(Fsync(kind="fsync", file=file)),
            st.just(Truncate(kind="truncate", file=file)),
            st.just(PunchHole(kind="punch-hole", file=file)),
        ]
        if roles.src is not None:
            ops.insert(
                1,
                st.builds(
                    DioRead,
                    kind=st.just("dio-read"),
                    src=st.just(roles.src),
                    aio=st.booleans(),
                ),
            )
    if roles.reuse is not None:
        name, page = roles.reuse
        ops.append(st.just(Fallocate(kind="fallocate", file=name, page=page)))
    ops += [st.just(Flusher(kind="flusher")), st.just(Kswapd(kind="kswapd"))]
    return st.one_of(ops)


class _Distinct:
    """A ``unique_by`` key equal only to itself: any number of such operations."""


def _one_of_each_daemon(op: TaskSpec) -> object:
    return op.kind if op.kind in _DAEMON_KINDS else _Distinct()


def _setup(fs: str) -> ScenarioSpec:
    """The fuzzing set-up: Jan Kara's two files plus a third for block reuse.

    ``file1`` is mapped MAP_SHARED and its page 0 cached (clean, no buffers, as
    ``mpage_readpage`` leaves it); ``file2`` is the O_DIRECT source (on ext4
    when file1 is on fs-dax, as dax/001 has it); ``file3`` is a hole whose
    allocation takes the lowest free block, so one truncate or a hole punch
    just freed. One block is spare, so an allocation need not be a reuse. No
    task runs yet.
    """
    spec = ScenarioSpec(
        id="fuzz/001",
        title="Fuzzing set-up: a mapped file, a DIO source, a file to reuse blocks",
        groups=["fuzz"],
        oracles=[o for o in ORACLES if o not in ALWAYS_ON],
        filesystems=[fs],
        machine=MachineSpec(frames=2, blocks=3),
        files=[
            FileSpec(name="file1", blocks=[0], cached=[0]),
            FileSpec(name="file2", blocks=[1], fs="ext4" if fs == "dax" else None),
            FileSpec(name="file3", blocks=[None]),
        ],
        mapping=MappingSpec(file="file1"),
        # A spec needs a task to validate; the set-up itself starts none.
        tasks=[Flusher(kind="flusher")],
    )
    return spec.model_copy(update={"tasks": []})


_FUZZ_ROLES = _Roles("file1", "file2", ("file3", 0))


def workloads(
    *, min_size: int = 1, max_size: int = 4
) -> st.SearchStrategy[list[TaskSpec]]:
    """Draw a workload: the kernel operations a scenario starts, in order.

    Each operation is a task of a :class:`~mmsim.scenario_spec.ScenarioSpec`
    on the fuzzing set-up (``file1`` mapped, ``file2`` to read from, ``file3``
    to allocate): a CPU store through a write fault (``handle_mm_fault``), an
    O_DIRECT read (``call_read_iter``, sync or AIO), a FOLL_GET driver
    (``rds_rdma_read``: ``get_user_pages_fast``, then completion with
    ``set_page_dirty``), an RDMA registration (``ib_umem_get`` …
    ``ib_umem_release``), 1024 plain references, ``fsync``
    (``vfs_fsync``), ``ftruncate`` (``do_truncate``), a hole punch
    (``->punch_hole``), an allocation in ``file3`` (``vfs_fallocate``), the
    flusher (``wb_workfn``) and kswapd (``kswapd``), the last two at most once.

    Args:
        min_size: fewest operations.
        max_size: most operations.
    """

    def build_strategy() -> st.SearchStrategy[list[TaskSpec]]:
        _check_sizes(min_size, max_size)
        return st.lists(
            _operations(_FUZZ_ROLES),
            min_size=min_size,
            max_size=max_size,
            unique_by=_one_of_each_daemon,
        )

    return st.deferred(build_strategy)


def scenario_specs(
    *, fs: str = "ext4", min_size: int = 1, max_size: int = 4
) -> st.SearchStrategy[ScenarioSpec]:
    """Draw a valid scenario: the fuzzing set-up running a drawn workload.

    The spec is validated as a TOML scenario would be, names ``fs`` as its
    filesystem and every oracle a step or a run's end can judge; build it with
    :func:`mmsim.scenario_spec.build`.

    Args:
        fs: the filesystem under test (``--fs``).
        min_size: fewest operations (tasks).
        max_size: most operations (tasks); at least 1.
    """

    def build_strategy() -> st.SearchStrategy[ScenarioSpec]:
        _check_fs(fs)
        _check_sizes(min_size, max_size)
        if max_size < 1:
            raise InvalidArgument(
                f"max_size={max_size} must be at least 1: a scenario runs a task"
            )
        setup = _setup(fs).model_dump()
        return workloads(min_size=max(min_size, 1), max_size=max_size).map(
            lambda ops: ScenarioSpec.model_validate(
                {**setup, "tasks": [op.model_dump() for op in ops]}
            )
        )

    return st.deferred(build_strategy)


# -- schedules ----------------------------------------------------------------------


class OracleViolation(AssertionError):
    """A run broke an oracle: what broke, and the run that broke it.

    Attributes:
        violation: the violation the oracle recorded.
        steps: the run, one line per operation started or step taken.
        schedule: the task ids stepped, in order, numbered as in the machine
            ``make()`` builds (:func:`schedules`) or as in the comparable
            scenario's machine (:func:`policy_machine`): a counterexample.
        at_end: the violation showed once the run had finished, when ``settle``
            quiesced it (or found that no task could run), not in a step.
        scenario: for a :func:`policy_machine` run, the comparable scenario (its
            set-up running every task the run started, in the order started);
            for a :func:`fuzzer` campaign on a scenario, that scenario; else
            None. :func:`replay` re-runs the schedule there and :func:`confirm`
            explores it.
        policy, fs, oracles: what the machine ran under and was judged by.
    """

    def __init__(
        self,
        violation: Violation,
        steps: Sequence[str],
        *,
        schedule: Sequence[int] = (),
        at_end: bool = False,
        scenario: ScenarioSpec | None = None,
        policy: str | None = None,
        fs: str | None = None,
        oracles: Sequence[str] = (),
    ) -> None:
        self.violation = violation
        self.steps = tuple(steps)
        # A policy machine's run as it made it, ("start", spec, tid) and
        # ("step", tid, why) in its own task ids, for _drop_needless_starts.
        self._actions: tuple[tuple[Any, ...], ...] = ()
        self.schedule = tuple(schedule)
        self.at_end = at_end
        self.scenario = scenario
        self.policy = policy
        self.fs = fs
        self.oracles = tuple(oracles)
        where = f" under {policy} on {fs}" if policy is not None else ""
        when = ", when the finished run was judged" if at_end else ""
        lines = [f"{violation.oracle}: {violation.message} ({violation.task}{when})"]
        lines.append(f"the run{where}:")
        lines += [f"  {s}" for s in self.steps]
        if scenario is not None:
            kinds = ", ".join(t.kind for t in scenario.tasks)
            lines.append(
                f"comparable scenario: the set-up running {kinds}; schedule "
                f"{list(self.schedule)} (mmsim.fuzz.replay re-runs it, "
                "mmsim.fuzz.confirm explores it)"
            )
        super().__init__("\n".join(lines))


def _is_regression(m: Machine, oracle: str) -> bool:
    """A refused request (a regression outcome), not a correctness violation."""
    return any(o.id == oracle and o.regression for o in m.oracles)


def _failures(m: Machine, violations: Sequence[Violation]) -> list[Violation]:
    return [v for v in violations if not _is_regression(m, v.oracle)]


def _running_first(enabled: list[int], last: int | None) -> list[int]:
    # The explorer's child order: staying on the task that just ran is choice 0,
    # so a schedule shrinks towards fewer preemptions as well as fewer steps.
    if last is not None and last in enabled:
        return [last, *(t for t in enabled if t != last)]
    return enabled


@attrs.frozen
class Run:
    """One run of a machine, every scheduling choice drawn from Hypothesis.

    ``status`` is ``"violation"`` (a step broke an oracle: the run stops there,
    as the explorer's counterexample does), ``"stopped"`` (a fatal violation, or
    a deadlock once no task could run), ``"finished"`` (every task done, then
    quiesced and judged by the end-of-run oracles, which may have found a
    violation too) or ``"cut"`` (``max_steps`` reached first).
    """

    schedule: tuple[int, ...]
    #: The name of the task each step ran.
    names: tuple[str, ...]
    violations: tuple[Violation, ...]
    status: str
    #: How many of ``violations`` were recorded by the steps of ``schedule``;
    #: the others came when ``settle`` ended the run.
    in_steps: int
    machine: Machine = attrs.field(repr=False, eq=False)

    @property
    def failures(self) -> tuple[Violation, ...]:
        """The violations that are not regression outcomes (refused requests)."""
        return tuple(_failures(self.machine, self.violations))

    def steps(self) -> list[str]:
        """The schedule, one line per step: ``"3: kswapd0 (task 2)"``."""
        return [
            f"{i}: {name} (task {tid})"
            for i, (tid, name) in enumerate(zip(self.schedule, self.names, strict=True))
        ]

    def check(self) -> None:
        """Raise :class:`OracleViolation` for the run's first failure, if any."""
        for i, v in enumerate(self.violations):
            if not _is_regression(self.machine, v.oracle):
                raise OracleViolation(
                    v,
                    self.steps(),
                    schedule=self.schedule,
                    at_end=i >= self.in_steps,
                )


def schedules(
    make: Callable[[], Machine], *, max_steps: int = 400
) -> st.SearchStrategy[Run]:
    """Draw a run of ``make()``: at every step, which enabled task runs.

    The machine is driven exactly as the explorer drives it: ``settle`` before
    the first step and after each one (a run whose tasks are all done is
    quiesced there and judged by the end-of-run oracles; one where no task can
    run is a deadlock), ``m.step(tid)`` for each choice. Choice 0 is the task
    that just ran, when it still can, then the others by id, so a failing run
    shrinks to a short schedule with few preemptions. The run stops at the
    first step that records a violation other than a refused request.

    Args:
        make: builds a fresh machine (``mmsim._api.machine_factory`` returns one).
        max_steps: longest schedule drawn.
    """

    def build_strategy() -> st.SearchStrategy[Run]:
        if not callable(make):
            raise InvalidArgument(
                f"make={make!r} must be a callable returning a machine"
            )
        _check_int("max_steps", max_steps, least=1)
        return _runs(make, max_steps)

    return st.deferred(build_strategy)


class _Hung(BaseException):
    """A step that never returned, during a campaign (:func:`fuzzer`): carried
    past Hypothesis, which catches only ``Exception``, to end the campaign at
    once. Shrinking it would wait :data:`~mmsim.engine.STEP_TIMEOUT` on every
    attempt (about 8 minutes in all, measured), to report the same hook."""

    def __init__(self, timeout: StepTimeout) -> None:
        super().__init__(str(timeout))
        self.timeout = timeout


#: Whether a campaign runs (in this process): only then does a hang end it.
#: Elsewhere (a user's own ``@given`` test of :func:`schedules`) a hang is an
#: ordinary failure of the test.
_CAMPAIGN = [False]


@contextlib.contextmanager
def _hang_ends_campaign() -> Iterator[None]:
    try:
        yield
    except StepTimeout as exc:
        if _CAMPAIGN[0]:
            raise _Hung(exc) from None
        raise


@st.composite
def _runs(draw: st.DrawFn, make: Callable[[], Machine], max_steps: int) -> Run:
    with _hang_ends_campaign():
        return _run(draw, make, max_steps)


def _run(draw: st.DrawFn, make: Callable[[], Machine], max_steps: int) -> Run:
    m = make()
    schedule: list[int] = []
    names: list[str] = []
    last: int | None = None
    status = settle(m)
    in_steps = 0
    while status == "running":
        if len(schedule) >= max_steps:
            status = "cut"
            break
        order = _running_first(m.enabled(), last)
        tid = order[draw(st.integers(0, len(order) - 1), label="task")]
        names.append(m.tasks[tid].name)
        schedule.append(tid)
        before = len(m.violations)
        m.step(tid)
        in_steps = len(m.violations)
        if _failures(m, m.violations[before:]):
            status = "violation"
            break
        last = None if m.tasks[tid].done else tid
        status = settle(m)
    return Run(tuple(schedule), tuple(names), tuple(m.violations), status, in_steps, m)


# -- the policy state machine ---------------------------------------------------------

#: How a step that teardown took is marked (in the log and the actions).
_TEARDOWN = " (teardown)"

#: The task a FOLL_GET driver's completion runs in (``rds_rdma_read``).
_COMPLETION = "softirq:rds_rdma_complete"


class _PolicyMachine(RuleBasedStateMachine):
    """The rules and checks every :func:`policy_machine` class shares.

    Every run is a run of the *comparable scenario*: the set-up running, from
    the start, every task the run started, in order. A task started later is
    one not scheduled until then; tasks that kernel paths start themselves
    (interrupts, workqueues) are made in the same order in both, so a task's
    id in that scenario's machine is known (``_static_ids``). One more rule
    keeps it so: no task is stepped while every non-daemon task is done, for
    there the explorer would have ended the run (a later operation is started
    first, and the daemons stepped after it).
    """

    policy: ClassVar[str]
    policies: ClassVar[tuple[Policy, ...]]
    fs: ClassVar[str]
    setup: ClassVar[ScenarioSpec]
    roles: ClassVar[_Roles]
    judged: ClassVar[tuple[str, ...]]
    max_operations: ClassVar[int]
    max_teardown_steps: ClassVar[int]

    def __init__(self) -> None:
        super().__init__()
        k = build(self.setup, self.policies, self.fs)
        k.install_oracles(make_oracles(list(self.judged)))
        # Operations start tasks at the end of the list at any time.
        k.trailing_finished_are_free = False
        self.k = k
        self.inodes = {inode.name: inode for inode in k.inodes}
        #: Every task started, as the scenario's tasks (the comparable scenario).
        self.started: list[TaskSpec] = list(self.setup.tasks)
        #: Task id of each started task (the set-up's own come first, in order).
        self.started_ids: list[int] = list(range(len(k.tasks)))
        self.schedule: list[int] = []
        #: What the run did, in order (see :func:`_drop_needless_starts`).
        self.actions: list[tuple[Any, ...]] = []
        self.log: list[str] = [
            f"set-up {self.setup.id} on {self.fs}: "
            + (", ".join(t.name for t in k.tasks) or "no task")
        ]
        self.operations = 0
        self.last: int | None = None
        #: A check has failed (or the model raised): teardown must not go on.
        self.failed = False

    # -- helpers --------------------------------------------------------------------

    def _room(self) -> bool:
        return self.operations < self.max_operations and not self.k.stopped

    def _has(self, kind: str) -> bool:
        return any(t.kind == kind for t in self.started)

    def _start(self, spec: TaskSpec) -> None:
        """Start the task ``spec`` names, as the scenario's ``build`` would."""
        vma = self.k.vmas[0] if self.k.vmas else None
        task = spawn_task(self.k, spec, self.inodes, vma)
        self.started.append(spec)
        self.started_ids.append(task.tid)
        self.actions.append(("start", spec, task.tid))
        self.operations += 1
        self.log.append(f"start {task.name} (task {task.tid})")

    def _static_ids(self) -> dict[int, int]:
        """Each task's id in the comparable scenario's machine: the started
        tasks in the order started, then those kernel paths made, in order."""
        ids = {tid: i for i, tid in enumerate(self.started_ids)}
        # The kernel starts its tasks (completions, work items, the final sync)
        # in the first finished slot of one of its own, or a new one: the same
        # slots, in the same order, in both machines.
        made = [t.tid for t in self.k.tasks if t.tid not in ids]
        for rank, tid in enumerate(made):
            ids[tid] = len(self.started_ids) + rank
        return ids

    def _fail(self, violation: Violation, *, at_end: bool = False) -> None:
        self.failed = True
        ids = self._static_ids()
        update: dict[str, Any] = {"tasks": list(self.started)}
        if self.operations and self.setup.id != "fuzz/001":
            # No longer the named scenario: its set-up running more tasks.
            update["id"] = "fuzz/001"
            update["title"] = f"{self.setup.id} with fuzzed operations"
        spec = self.setup.model_copy(update=update)
        found = OracleViolation(
            violation,
            self.log,
            schedule=[ids[tid] for tid in self.schedule],
            at_end=at_end,
            scenario=spec,
            policy=self.policy,
            fs=self.fs,
            oracles=self.judged,
        )
        found._actions = tuple(self.actions)
        raise found

    def _step(self, tid: int, why: str = "") -> None:
        task = self.k.tasks[tid]
        self.log.append(f"step {task.name} (task {tid}){why}")
        self.schedule.append(tid)
        self.actions.append(("step", tid, why))
        # Should the model itself raise, teardown must not run on past it: its
        # own error would hide this one.
        self.failed = True
        with _hang_ends_campaign():
            self.k.step(tid)
        self.failed = False
        self.last = None if task.done else tid

    def _steppable(self) -> list[int]:
        k = self.k
        return [] if k.finished() else k.enabled()

    # -- operations: each starts a task running a modelled kernel path ----------------

    @precondition(lambda self: self._room() and self.roles.mapped is not None)
    @rule()
    def store(self) -> None:
        """A CPU store into the mapped page: ``user_store`` (``handle_mm_fault``
        with FAULT_FLAG_WRITE until the PTE is writable, then the store)."""
        self._start(Store(kind="store"))

    @precondition(lambda self: self._room() and self.roles.src is not None)
    @rule(aio=st.booleans())
    def dio_read(self, aio: bool) -> None:
        """An O_DIRECT read into the mapped page: ``call_read_iter``, through the
        source filesystem's direct-I/O path (an AIO read, ``io_submit``,
        completes in interrupt context)."""
        assert self.roles.src is not None
        self._start(DioRead(kind="dio-read", src=self.roles.src, aio=aio))

    @precondition(lambda self: self._room() and self.roles.mapped is not None)
    @rule(softirq=st.booleans())
    def gup_pin(self, softirq: bool) -> None:
        """A driver pins the mapped page and DMAs into it: ``rds_rdma_read``
        (``get_user_pages_fast``, a FOLL_GET reference); with ``softirq`` its
        completion, the unpin, is a task of its own (see :meth:`unpin`)."""
        self._start(LegacyDriver(kind="legacy-driver", softirq=softirq))

    def _completions(self) -> list[int]:
        if self.k.finished():
            return []
        enabled = self.k.enabled()
        return [t for t in enabled if self.k.tasks[t].name == _COMPLETION]

    @precondition(lambda self: bool(self._completions()))
    @rule()
    def unpin(self) -> None:
        """A pinned page's completion runs to its end: ``rds_rdma_complete``
        (the NIC's write, ``set_page_dirty``, ``put_page``) in softirq context."""
        tid = self._completions()[0]
        task = self.k.tasks[tid]
        while not task.done and tid in self.k.enabled() and not self.k.finished():
            self._step(tid, " (unpin)")

    @precondition(lambda self: self._room() and self.roles.mapped is not None)
    @rule()
    def rdma_register(self) -> None:
        """A long-term RDMA registration of the mapped page: ``rdma_app``
        (``ib_umem_get``, a peer's write, ``vfs_fsync``, ``ib_umem_release``)."""
        self._start(RdmaApp(kind="rdma-app"))

    @precondition(lambda self: self._room() and self.roles.mapped is not None)
    @rule()
    def take_refs(self) -> None:
        """1024 plain references to the cached page (``hold_page_refs``), which
        ``page_maybe_dma_pinned`` cannot tell from a pin."""
        self._start(GetRefs(kind="get-refs"))

    @precondition(lambda self: self._room() and self.roles.mapped is not None)
    @rule()
    def fsync(self) -> None:
        """A WB_SYNC_ALL writeback pass over the mapped file: ``vfs_fsync``."""
        assert self.roles.mapped is not None
        self._start(Fsync(kind="fsync", file=self.roles.mapped))

    @precondition(lambda self: self._room() and self.roles.mapped is not None)
    @rule()
    def truncate(self) -> None:
        """``ftruncate(file, 0)`` of the mapped file: ``do_truncate``."""
        assert self.roles.mapped is not None
        self._start(Truncate(kind="truncate", file=self.roles.mapped))

    @precondition(lambda self: self._room() and self.roles.mapped is not None)
    @rule()
    def punch_hole(self) -> None:
        """``fallocate(PUNCH_HOLE)`` of the mapped page's block: the filesystem's
        ``->punch_hole`` (``ext4_punch_hole`` on ext4)."""
        assert self.roles.mapped is not None
        self._start(PunchHole(kind="punch-hole", file=self.roles.mapped))

    @precondition(lambda self: self._room() and self.roles.reuse is not None)
    @rule()
    def fallocate(self) -> None:
        """Another file allocates a block, the lowest free one: ``vfs_fallocate``."""
        assert self.roles.reuse is not None
        name, page = self.roles.reuse
        self._start(Fallocate(kind="fallocate", file=name, page=page))

    @precondition(lambda self: self._room() and not self._has("flusher"))
    @rule()
    def start_flusher(self) -> None:
        """The writeback flusher, ``wb_workfn``: a daemon whose passes
        (``do_writepages``, WB_SYNC_NONE) then run whenever they are stepped."""
        self._start(Flusher(kind="flusher"))

    @precondition(lambda self: self._room() and not self._has("kswapd"))
    @rule()
    def start_kswapd(self) -> None:
        """kswapd under memory pressure, ``kswapd``: a daemon whose reclaim
        passes (``shrink_page_list`` on every LRU page) then run when stepped."""
        self._start(Kswapd(kind="kswapd"))

    # -- scheduling --------------------------------------------------------------------

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """Run one enabled task, chosen by Hypothesis, up to its next preemption
        point (``Machine.step``); choice 0 is the task that ran last. Nothing
        runs while no task can, or while every non-daemon task is done."""
        enabled = self._steppable()
        if not enabled:
            return  # an operation started later may run; teardown ends the run
        order = _running_first(enabled, self.last)
        self._step(order[data.draw(st.integers(0, len(order) - 1), label="task")])

    # -- the checks ------------------------------------------------------------------

    @invariant()
    def oracles_hold(self) -> None:
        """mmsim's oracles: no step has recorded a violation (an oops, a hang, a
        wrong state), a refused request aside. One invariant checks them all:
        Hypothesis's cost is per invariant and per step."""
        for v in _failures(self.k, self.k.violations):
            self._fail(v)

    def teardown(self) -> None:
        """Finish the run as the explorer would judge it, then check every oracle.

        The remaining tasks run on, lowest id first and daemons only when no
        other task can run, until every non-daemon task is done; ``settle`` then
        quiesces the machine (the final ``sync``) and applies the end-of-run
        oracles, or, when nothing can run first, records the deadlock. This
        schedule is a run of the comparable scenario too. A run still going
        after ``max_teardown_steps`` (daemons cycling while a task waits) is not
        judged.
        """
        k = self.k
        if self.failed or k.stopped:
            return
        for _ in range(self.max_teardown_steps):
            before = len(k.violations)
            with _hang_ends_campaign():  # the final sync runs tasks too
                status = settle(k)
            if status != "running":
                for v in _failures(k, k.violations[before:]):
                    self._fail(v, at_end=True)
                return
            enabled = k.enabled()
            workers = [t for t in enabled if not k.tasks[t].daemon]
            self._step((workers or enabled)[0], _TEARDOWN)
            for v in _failures(k, k.violations[before:]):
                self._fail(v)
        self.log.append(
            f"not judged: still running after {self.max_teardown_steps} steps"
        )


def _rerun(
    machine: type[RuleBasedStateMachine], actions: Sequence[tuple[Any, ...]]
) -> OracleViolation | None:
    """Run ``actions`` on a fresh ``machine`` as Hypothesis runs rules: the
    invariant after each, then teardown. None when an action no longer fits
    (no room to start, a task that cannot run) or nothing fails."""
    state = machine()
    assert isinstance(state, _PolicyMachine)
    try:
        state.oracles_hold()
        for action in actions:
            if action[0] == "start":
                if not state._room():
                    return None
                state._start(action[1])
            else:
                if action[1] not in state._steppable():
                    return None
                state._step(action[1], action[2])
            state.oracles_hold()
        state.teardown()
    except OracleViolation as found:
        return found
    return None


def _drop_needless_starts(
    machine: type[RuleBasedStateMachine], found: OracleViolation
) -> OracleViolation:
    """The finding without the operations it needs not start: each started task
    whose start and steps can all go while the run still fails the same way.

    Hypothesis's shrinker cannot always delete them itself: once a run has
    started its ``max_operations``, the start rules' preconditions fail, and
    each later rule choice has a shorter encoding among the fewer valid rules.
    So a shrunk run tends to fill its operations with the first rule in
    Hypothesis's order (``fallocate``), whose deletion would change every
    later choice. Here a task goes with its steps, the tasks made after it
    move down one id, and teardown finishes the run afresh; the re-run decides
    (a task whose steps others needed, or that kept the run from ending, stays).
    """
    best = found
    while True:
        actions = [a for a in best._actions if a[0] == "start" or a[2] != _TEARDOWN]
        for i, action in enumerate(actions):
            if action[0] != "start":
                continue
            gone = action[2]
            trial = [
                (a[0], a[1] - (a[1] > gone), a[2])
                if a[0] == "step"
                else (a[0], a[1], a[2] - (a[2] > gone))
                for j, a in enumerate(actions)
                if j != i and not (a[0] == "step" and a[1] == gone)
            ]
            again = _rerun(machine, trial)
            if (
                again is not None
                and again.violation == best.violation
                and again.at_end == best.at_end
            ):
                best = again
                break
        else:
            return best


def _setup_and_oracles(
    policy: str,
    policies: tuple[Policy, ...],
    fs: str,
    scenario: str | None,
    oracles: Sequence[str] | None,
) -> tuple[ScenarioSpec, tuple[str, ...]]:
    """Check the names as ``mmsim check`` does; the set-up and the oracles judged."""
    if fs not in FILESYSTEMS:
        raise ScenarioError(
            f"unknown filesystem {fs!r} (known: {', '.join(FILESYSTEMS)})"
        )
    for p in policies:
        if p.filesystems and fs not in p.filesystems:
            raise PolicyError(
                f"policy {policy!r} does not apply on {fs}: "
                f"{p.filesystems_why or 'its mechanism is ' + ', '.join(p.filesystems)}"
            )
    if scenario is None:
        setup = _setup(fs)
        default = [o for o in ORACLES if o not in GRAPH_ORACLES]
    else:
        setup = get_scenario(scenario)
        if fs not in setup.filesystems:
            raise ScenarioError(
                f"scenario {scenario} runs on {', '.join(setup.filesystems)}, "
                f"not {fs!r}"
            )
        if setup.mapping is None:
            raise ScenarioError(f"scenario {scenario} maps no file: nothing to fuzz")
        default = list(setup.oracles)
    ids = list(oracles) if oracles else default
    judged = tuple(dict.fromkeys([*ids, *ALWAYS_ON]))
    make_oracles(list(judged))  # an unknown id fails here, not in the first run
    return setup, judged


def policy_machine(
    policy: str,
    *,
    fs: str = "ext4",
    scenario: str | None = None,
    oracles: Sequence[str] | None = None,
    max_operations: int = 4,
    max_teardown_steps: int = 1000,
) -> type[RuleBasedStateMachine]:
    """A Hypothesis state machine over a fresh kernel running ``policy``.

    Each run builds the set-up (with :func:`mmsim.scenario_spec.build`, as
    scenarios are built): by default ``file1`` mapped MAP_SHARED with its page
    cached, ``file2`` to read from with O_DIRECT and ``file3`` to allocate
    (reusing a freed block), no task running; or ``scenario``'s files and
    tasks. Rules start kernel operations, each as a task: a store through a
    write fault (``user_store``), an O_DIRECT read (``call_read_iter``),
    a GUP pin (``rds_rdma_read``: ``get_user_pages_fast``) whose completion
    the ``unpin`` rule runs (``rds_rdma_complete``), an RDMA registration
    (``ib_umem_get`` … ``ib_umem_release``), 1024 references, ``vfs_fsync``,
    ``do_truncate``, a hole punch (``->punch_hole``), an allocation
    (``vfs_fallocate``), the flusher (``wb_workfn``) and kswapd (``kswapd``);
    the ``step`` rule runs an enabled task, chosen by Hypothesis. mmsim's
    oracles are the invariant: a violation a step records (other than a refused
    request) fails it with the oracle's id and message, as an
    :class:`OracleViolation`; ``teardown`` finishes the run and applies the
    end-of-run oracles.

    Every run of the machine is a run of its *comparable scenario* (the set-up
    running the tasks started, in order, from the start), which the exception
    carries with the schedule in that scenario's task ids: :func:`replay` and
    :func:`confirm` take it from there.

    Use it as ``TestDeferRelease = policy_machine("defer-release").TestCase``
    in a test module, or with
    :func:`hypothesis.stateful.run_state_machine_as_test`.

    Args:
        policy: a registered policy (``mmsim list``).
        fs: the filesystem under test.
        scenario: a built-in scenario id or TOML file whose set-up and tasks
            the machine starts from (it must map a file).
        oracles: the oracles to judge by (always with ``kernel-bug``,
            ``deadlock`` and the other always-on oracles); by default every
            oracle a step or a run's end can judge, or the scenario's.
        max_operations: most operations a run starts.
        max_teardown_steps: most steps teardown takes to finish the run.

    Raises:
        PolicyError, ScenarioError, OracleError: an unknown name, or a policy
            that does not apply on ``fs``, with a one-line message.
        InvalidArgument: a bad number.
    """
    _check_int("max_operations", max_operations, least=0)
    _check_int("max_teardown_steps", max_teardown_steps, least=1)
    policies = load_policy(policy)
    setup, judged = _setup_and_oracles(policy, policies, fs, scenario, oracles)
    namespace: dict[str, Any] = {
        "policy": policy,
        "policies": policies,
        "fs": fs,
        "setup": setup,
        "roles": _Roles.of(setup),
        "judged": judged,
        "max_operations": max_operations,
        "max_teardown_steps": max_teardown_steps,
        "__doc__": f"Fuzz {policy} on {fs}: kernel operations and interleavings.",
        "__module__": __name__,
    }
    words = re.split(r"[^a-zA-Z0-9]+", policy)
    name = "".join(w.capitalize() for w in words) + "Machine"
    return type(name, (_PolicyMachine,), namespace)


def _comparable(finding: OracleViolation) -> Callable[[], Kernel]:
    if finding.scenario is None or finding.policy is None or finding.fs is None:
        raise ValueError(
            "the finding carries no scenario (it did not come from policy_machine)"
        )
    spec, fs = finding.scenario, finding.fs
    policies = load_policy(finding.policy)
    oracles = make_oracles(list(finding.oracles))

    def make() -> Kernel:
        k = build(spec, policies, fs)
        k.install_oracles(oracles)
        return k

    return make


def replay(finding: OracleViolation) -> Machine:
    """Re-run a :func:`policy_machine` finding in its comparable scenario.

    Builds the scenario's machine, steps the finding's schedule (settling it at
    the end when the violation came then) and returns the machine. Raises
    ``ReplayError`` unless every step fits and the same oracle fires: a run of
    the comparable scenario, which the explorer searches, breaks it.
    """
    from mmsim._api import ReplayError

    m = _comparable(finding)()
    for i, tid in enumerate(finding.schedule):
        if m.stopped:
            raise ReplayError(f"the run already ended before step {i}")
        if tid >= len(m.tasks) or tid not in m.enabled():
            raise ReplayError(f"step {i}: task {tid} cannot run there")
        m.step(tid)
    if finding.at_end:
        settle(m)
    want = finding.violation.oracle
    if not any(v.oracle == want for v in m.violations):
        seen = ", ".join(sorted({v.oracle for v in m.violations})) or "nothing"
        raise ReplayError(f"the schedule does not violate {want} (it violates: {seen})")
    return m


def confirm(finding: OracleViolation, *, bounds: Bounds | None = None) -> Verdict:
    """Explore the comparable scenario of a :func:`policy_machine` finding.

    Returns the explorer's verdict on the finding's oracle for that scenario,
    under the same policy, filesystem and oracles: Sometimes or Always for a
    real finding (Unknown when ``bounds`` cut a search that did not meet it).
    Raises ValueError for a finding that carries no scenario.
    """
    result = explore(_comparable(finding), bounds)
    got = result.oracles.get(finding.violation.oracle)
    if got is not None:
        return got.verdict
    return Verdict.NEVER if result.stats.complete else Verdict.UNKNOWN


# -- one fuzzing campaign (``mmsim fuzz``) ---------------------------------------------


@attrs.frozen
class Campaign:
    """A fuzzing campaign :func:`fuzzer` prepared: what it fuzzes, on which
    filesystem, from which seed. Call it to run it: it returns the shrunk
    :class:`OracleViolation`, or None when no example broke an oracle."""

    policy: str
    fs: str
    scenario: str | None
    seed: int
    run: Callable[[], OracleViolation | None] = attrs.field(repr=False)

    @watchdog()
    def __call__(self) -> OracleViolation | None:
        """Run the campaign. A step that never returns raises
        :class:`~mmsim.engine.StepTimeout` at once, unshrunk."""
        _CAMPAIGN[0] = True
        try:
            return self.run()
        except _Hung as hung:
            raise hung.timeout from None
        finally:
            _CAMPAIGN[0] = False


def fuzzer(
    policy: str,
    *,
    seed: int,
    scenario: str | None = None,
    fs: str | None = None,
    oracles: Sequence[str] | None = None,
    max_examples: int | None = None,
    profile: str | None = None,
    progress: Callable[[int, bool], None] | None = None,
) -> Campaign:
    """Prepare a fuzzing campaign against ``policy``; call the result to run it.

    Without ``scenario`` the campaign runs :func:`policy_machine` (operations
    and interleavings); with one, it draws :func:`schedules` of that scenario's
    machine (the explorer's, from ``mmsim._api.machine_factory``). All names are
    checked here, with the project's errors. The run returns the shrunk
    :class:`OracleViolation` (whose ``scenario`` and ``schedule`` :func:`replay`
    and :func:`confirm` take), or None when no example broke an oracle. A
    state machine's finding is Hypothesis's shrunk one less every operation
    whose task (start and steps) can go while the run fails the same way.

    Every random choice flows from ``seed`` (:func:`hypothesis.seed`; no
    example database), so the same seed, budget and profile give the same run.

    Args:
        policy: a registered policy.
        seed: the seed of every choice.
        scenario: a scenario id or TOML file; None for the policy's state machine.
        fs: the filesystem; by default the scenario's first, or the policy's
            first when it applies to some only, or ext4.
        oracles: judge by these (and the always-on ones) instead.
        max_examples: the budget; by default the profile's.
        profile: one of :data:`PROFILES` (registered here) to take the other
            settings from; by default Hypothesis's active profile.
        progress: called as each example starts, with the examples run so
            far and whether one has failed yet (Hypothesis is then shrinking
            it); a status line, which cannot change the examples.
    """
    from hypothesis import Verbosity, given
    from hypothesis import seed as use_seed
    from hypothesis.stateful import run_state_machine_as_test

    if profile is not None:
        if profile not in PROFILES:
            raise InvalidArgument(
                f"unknown profile {profile!r} (known: {', '.join(PROFILES)})"
            )
        register_profiles()
        base = settings.get_profile(profile)
    else:
        base = settings()
    if max_examples is not None:
        _check_int("max_examples", max_examples, least=1)
    chosen = settings(
        base,
        max_examples=max_examples or base.max_examples,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        # One finding, shrunk: several distinct ones would come as an
        # ExceptionGroup, which a campaign does not return.
        report_multiple_bugs=False,
    )
    policies = load_policy(policy)
    examples = 0
    failed = False

    def started() -> None:
        nonlocal examples
        examples += 1
        if progress is not None:
            progress(examples, failed)

    if scenario is None:
        restricted = next((p.filesystems for p in policies if p.filesystems), ())
        machine_fs = fs or (restricted[0] if restricted else "ext4")
        machine = policy_machine(policy, fs=machine_fs, oracles=oracles)

        class Watched(machine):  # type: ignore[valid-type,misc]
            """The machine, counting its examples for ``progress``."""

            def __init__(self) -> None:
                started()
                super().__init__()

            def _fail(self, violation: Violation, *, at_end: bool = False) -> None:
                nonlocal failed
                failed = True
                super()._fail(violation, at_end=at_end)

        Watched.__name__ = Watched.__qualname__ = machine.__name__

        # Typed here: some Hypothesis releases leave this function unannotated.
        run_as_test: Callable[..., None] = run_state_machine_as_test

        def run_machine() -> OracleViolation | None:
            try:
                run_as_test(use_seed(seed)(Watched), settings=chosen)
            except OracleViolation as found:
                return _drop_needless_starts(machine, found)
            return None

        return Campaign(policy, machine_fs, None, seed, run_machine)

    from mmsim._api import machine_factory

    make, chosen_fs, ids = machine_factory(
        scenario, policy, fs=fs, oracles=list(oracles) if oracles else None
    )
    spec = get_scenario(scenario)
    judged = tuple(dict.fromkeys([*ids, *ALWAYS_ON]))

    @use_seed(seed)
    @chosen
    @given(schedules(make))
    def run_schedules(run: Run) -> None:
        nonlocal failed
        started()
        try:
            run.check()
        except OracleViolation:
            failed = True
            raise

    def run_scenario() -> OracleViolation | None:
        try:
            run_schedules()
        except OracleViolation as found:
            return OracleViolation(
                found.violation,
                found.steps,
                schedule=found.schedule,
                at_end=found.at_end,
                scenario=spec,
                policy=policy,
                fs=chosen_fs,
                oracles=judged,
            )
        return None

    return Campaign(policy, chosen_fs, scenario, seed, run_scenario)
