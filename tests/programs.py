"""Small concurrent programs for checking the explorer against brute force.

A program is data: tasks, each a list of operations over shared variables and
locks. :class:`ToyMachine` runs one as generator tasks on the real engine, with a
preemption point after every operation, so the explorer is exercised exactly as
on the kernel model. :func:`brute_force` enumerates every interleaving with no
reduction at all.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import strategies as st

from mmsim.engine import KernelBug, Machine, Oracle, Path, Wait
from mmsim.explorer import Counterexample, settle

# Operations: ("set", var, value), ("add", var, n) read-modify-write in one step,
# ("load", var) into the task's register, ("store", var) from the register,
# ("lock", l), ("unlock", l), ("await", var, value) sleep until var == value,
# ("spawn", var, value) start a helper task that sets var to value plus its own
# task id (interpreted tasks only), in the first finished helper's slot or else
# a new one, as the kernel model starts its completions. The ids show in the
# state: a search that merged two states giving later helpers different ids
# could miss an outcome that brute force finds. ("join", t) sleeps until task
# ``t`` has finished (interpreted tasks only): a model's wait may read another
# task's end, which the explorer must handle. ("bug", var, value) oopses
# (a KernelBug: the run stops) if var holds value.
Op = tuple[Any, ...]
Program = list[list[Op]]


class ToyMachine(Machine):
    """Shared variables and locks; tasks interpret their operation lists.

    A task's register is a local of its generator (not shared state), so tasks
    with the same operations are interchangeable: they form a symmetry group.
    """

    def __init__(
        self,
        program: Program,
        nvars: int,
        nlocks: int,
        bad: int | None = None,
        compiled: bool = False,
        free_slots: bool = True,
    ):
        super().__init__()
        self.trailing_finished_are_free = free_slots
        self.vars = [0] * nvars
        self.locks = [False] * nlocks
        for i, ops in enumerate(program):
            gen = _compiled(ops)(self) if compiled else self._run(ops)
            self.spawn(f"T{i}", "toy", gen)
        groups: dict[str, list[int]] = {}
        for i, ops in enumerate(program):
            groups.setdefault(repr(ops), []).append(i)
        self.symmetry = tuple(tuple(g) for g in groups.values() if len(g) > 1)
        if any(op[0] == "join" for ops in program for op in ops):
            self.symmetry = ()  # a join names a task: tasks are not interchangeable
        if bad is not None:
            self.install_oracles([_VarIsNot(bad)])

    def _run(self, ops: list[Op]) -> Path:
        reg = 0
        pc = 0
        while pc < len(ops):
            op = ops[pc]
            pc += 1
            kind = op[0]
            if kind == "set":
                self.vars[op[1]] = op[2]
            elif kind == "add":
                self.vars[op[1]] += op[2]
            elif kind == "load":
                reg = self.vars[op[1]]
            elif kind == "store":
                self.vars[op[1]] = reg
            elif kind == "lock":
                lk = op[1]
                if self.locks[lk]:
                    yield Wait(lambda lk=lk: not self.locks[lk], "lock")
                self.locks[lk] = True
            elif kind == "unlock":
                self.locks[op[1]] = False
            elif kind == "await":
                var, value = op[1], op[2]
                if self.vars[var] != value:
                    yield Wait(
                        lambda var=var, value=value: self.vars[var] == value, "await"
                    )
            elif kind == "bug":
                if self.vars[op[1]] == op[2]:
                    raise KernelBug("toy", f"var{op[1]} == {op[2]}")
            elif kind == "join":
                peer = op[1]
                if not self.tasks[peer].done:
                    yield Wait(lambda peer=peer: self.tasks[peer].done, "join")
            elif kind == "spawn":
                self._start_helper(self._run([("own", op[1], op[2])]))
            elif kind == "own":
                assert self.current is not None
                self.vars[op[1]] = op[2] + self.current.tid
            yield

    def _start_helper(self, gen: Path) -> None:
        for task in self.tasks:
            if task.done and task.kind == "helper":
                task.gen, task.done, task.wait, task.pos = gen, False, None, None
                return
        self.spawn(f"H{len(self.tasks)}", "helper", gen)

    def state_snapshot(self) -> tuple[Any, ...]:
        return (tuple(self.vars), tuple(self.locks))


@attrs.frozen
class ToyFactory:
    """Builds a :class:`ToyMachine`; picklable, for searches on a process pool."""

    program: Program
    nvars: int
    nlocks: int
    bad: int | None = None
    #: Run each task as Python compiled from its operations (see :func:`_compiled`).
    compiled: bool = False
    #: Leave finished tasks at the end of the list out of snapshots.
    free_slots: bool = True

    def __call__(self) -> ToyMachine:
        return ToyMachine(
            self.program,
            self.nvars,
            self.nlocks,
            self.bad,
            self.compiled,
            self.free_slots,
        )


def _compiled(ops: list[Op]) -> Any:
    """A generator function running ``ops`` as straight Python, not interpreted.

    The interpreter keeps its register live everywhere (its loop may store it
    again), so the dead variable reduction finds nothing there. Compiled, a
    register is dead between its last use and its next load, and the code has
    the shapes the analysis must follow: branches (lock, await), a ``while``
    loop (``twice``: the next operation runs two times) and ``try``/``finally``
    (``finally``: the rest of the task in a ``try`` whose ``finally`` stores the
    register into a variable).
    """
    source = _SOURCES.get(repr(ops))
    if source is None:
        body: list[str] = ["reg = 0", "tmp = 0"]
        ends: list[list[str]] = []
        pad = ""
        loop = False
        for op in ops:
            kind = op[0]
            lines: list[str] = []
            if kind == "set":
                lines = [f"self.vars[{op[1]}] = {op[2]}"]
            elif kind == "add":
                lines = [f"self.vars[{op[1]}] += {op[2]}"]
            elif kind == "load":
                lines = [f"reg = self.vars[{op[1]}]"]
            elif kind == "store":
                lines = [f"self.vars[{op[1]}] = reg"]
            elif kind == "swap":  # through a second local, dead right after
                lines = [f"tmp = self.vars[{op[1]}]", "yield", "reg = tmp"]
            elif kind == "lock":
                lines = [
                    f"if self.locks[{op[1]}]:",
                    f"    yield Wait(lambda: not self.locks[{op[1]}], 'lock')",
                    f"self.locks[{op[1]}] = True",
                ]
            elif kind == "unlock":
                lines = [f"self.locks[{op[1]}] = False"]
            elif kind == "await":
                cond = f"self.vars[{op[1]}] == {op[2]}"
                lines = [
                    f"if not ({cond}):",
                    f"    yield Wait(lambda: {cond}, 'await')",
                ]
            elif kind == "twice":
                body += [pad + "i = 0", pad + "while i < 2:"]
                pad += "    "
                body.append(pad + "i += 1")
                loop = True
                continue
            elif kind == "finally":
                body.append(pad + "try:")
                ends.append([pad + "finally:", pad + f"    self.vars[{op[1]}] = reg"])
                pad += "    "
                continue
            body += [pad + line for line in [*lines, "yield"]]
            if loop:
                pad, loop = pad[:-4], False
        if not any("yield" in line for line in body):
            body.append(pad + "yield")  # a generator, even when all is structure
        if body[-1].strip() == "try:":
            body.append(pad + "pass")
        for end in reversed(ends):
            body += end
        source = "def run(self):\n" + "".join(f"    {line}\n" for line in body)
        _SOURCES[repr(ops)] = source
    fn = _FUNCTIONS.get(source)
    if fn is None:
        space: dict[str, Any] = {"Wait": Wait}
        name = f"<toy-{zlib.crc32(source.encode())}>"  # its own code id
        exec(compile(source, name, "exec"), space)
        fn = _FUNCTIONS[source] = space["run"]
    return fn


_SOURCES: dict[str, str] = {}
_FUNCTIONS: dict[str, Any] = {}


class _VarIsNot(Oracle):
    id = "var0-bad"
    meaning = "variable 0 never takes the bad value"

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def after_step(self, m: Machine) -> str | None:
        assert isinstance(m, ToyMachine)
        return "var0 is bad" if m.vars[0] == self.bad else None


def replayed(make: Callable[[], Machine], counterexample: Counterexample) -> Machine:
    """A machine run along ``counterexample``, each step enabled when taken
    (and settled at the end when the violation showed there)."""
    m = make()
    for tid in counterexample.schedule:
        assert tid in m.enabled()
        m.step(tid)
    if counterexample.at_end:
        settle(m)
    return m


def outcome(m: ToyMachine) -> tuple[Any, ...]:
    """How a run ended: the final state, and the fatal violation (deadlock) if any."""
    return (m.state_snapshot(), tuple(v.oracle for v in m.violations if v.fatal))


def brute_force(
    make: Any, preemption_bound: int | None = None
) -> tuple[set[tuple[Any, ...]], set[str]]:
    """Every interleaving, by full re-execution and no merging.

    With ``preemption_bound``, only the runs with at most that many preemptions
    (switching away from a task that could go on). Returns the set of run
    outcomes and the set of oracles violated on any run.
    """
    outcomes: set[tuple[Any, ...]] = set()
    fired: set[str] = set()

    def visit(m: Machine, schedule: list[int], preemptions: int) -> None:
        fired.update(v.oracle for v in m.violations)
        if m.stopped:
            outcomes.add(outcome(m))
            return
        enabled = m.enabled()
        if not enabled:
            m.check_deadlock()
            fired.update(v.oracle for v in m.violations)
            outcomes.add(outcome(m))
            return
        last = schedule[-1] if schedule else None
        taken = [
            (tid, p)
            for tid in enabled
            if (p := preemptions + (last in enabled and tid != last)) <= bound
        ]
        # Generators cannot be copied: every child but the last runs on a
        # machine rebuilt from scratch along the schedule; the last goes on
        # with this one. Nothing is shared between runs but the factory.
        for i, (tid, p) in enumerate(taken):
            child = m if i == len(taken) - 1 else _rerun(make, schedule)
            child.step(tid)
            visit(child, [*schedule, tid], p)

    bound = math.inf if preemption_bound is None else preemption_bound
    visit(make(), [], 0)
    return outcomes, fired


def _rerun(make: Callable[[], Machine], schedule: list[int]) -> Machine:
    m = make()
    for tid in schedule:
        m.step(tid)
    return m


@st.composite
def programs(
    draw: st.DrawFn,
    *,
    max_tasks: int = 3,
    max_ops: int = 4,
    max_total: int = 9,
    shapes: bool = False,
    spawns: bool = False,
    joins: bool = False,
    bugs: bool = False,
) -> tuple[Program, int, int]:
    """Programs of 2..max_tasks tasks over 2 variables and 1 lock.

    Locks are taken and released in pairs inside a task, so that most programs
    terminate; awaits may deadlock, which both searches must agree on. At most
    ``max_total`` operations in all keep brute force (every interleaving, no
    merging) fast. With ``shapes``, also the operations only compiled tasks run
    (:func:`_compiled`): ``swap``, ``twice`` before an operation, and one
    ``finally`` per task. With ``spawns``, also ``spawn`` (a helper task,
    counted as three operations). With ``joins``, also ``join`` of another of
    the tasks. With ``bugs``, also ``bug`` (an oops when a variable holds a
    value).
    """
    nvars, nlocks = 2, 1
    ntasks = draw(st.integers(2, max_tasks))
    program: Program = []
    while len(program) < ntasks:
        budget = max_total - sum(_cost(o) for o in program)
        ops: list[Op] = []
        for _ in range(draw(st.integers(1, max_ops))):
            if budget - _cost(ops) < 3:
                break
            kinds = ["set", "add", "load", "store", "locked", "await"]
            if shapes:
                kinds += ["swap", "twice", "finally"]
            if spawns:
                kinds += ["spawn"]
            if joins:
                kinds += ["join"]
            if bugs:
                kinds += ["bug"]
            kind = draw(st.sampled_from(kinds))
            var = draw(st.integers(0, nvars - 1))
            if kind == "join":
                peers = [t for t in range(ntasks) if t != len(program)]
                ops.append(("join", draw(st.sampled_from(peers))))
                continue
            if kind == "bug":
                ops.append(("bug", var, draw(st.integers(0, 2))))
                continue
            if kind == "spawn":
                ops += [("spawn", var, draw(st.integers(0, 2)))]
                continue
            if kind == "twice":
                ops += [("twice",), ("add", var, 1)]
                continue
            if kind == "finally":
                if ("finally", 0) not in ops and ("finally", 1) not in ops:
                    ops.append(("finally", var))
                continue
            if kind == "swap":
                ops.append(("swap", var))
                continue
            if kind == "set":
                ops.append(("set", var, draw(st.integers(0, 2))))
            elif kind == "add":
                ops.append(("add", var, 1))
            elif kind == "load":
                ops.append(("load", var))
            elif kind == "store":
                ops.append(("store", var))
            elif kind == "locked":
                ops += [("lock", 0), ("add", var, 1), ("unlock", 0)]
            else:
                ops.append(("await", var, draw(st.integers(0, 2))))
        if not ops:
            ops.append(("set", 1, 0))
        program.append(ops)
        # Identical tasks (several readers, several flushers) exercise the
        # symmetry reduction; they count against the same budgets.
        room = max_total - sum(_cost(o) for o in program)
        if len(program) < ntasks and _cost(ops) <= room and draw(st.booleans()):
            program.append(list(ops))
    return program, nvars, nlocks


def _cost(ops: list[Op]) -> int:
    """Operations, counting a spawned helper's operation and its last step."""
    return len(ops) + 2 * sum(1 for op in ops if op[0] == "spawn")
