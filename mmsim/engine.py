"""The engine: machine state, tasks, blocking waits, oracles and the trace.

A *task* is a generator. Each ``yield`` is a point where another CPU may run; the
code between two yields is one atomic step. A task that yields a :class:`Wait`
sleeps until the wait's condition holds, the way kernel code sleeps in
``wait_event()``; a sleeping task is not *enabled*, so no scheduler can pick it.

The engine is deterministic: nothing here reads a clock or a random source. Every
choice is made by whoever calls :meth:`Machine.step`, so a run is reproduced from
its schedule (the sequence of task ids stepped).

Two things make exhaustive search possible over generator code:

* :meth:`Machine.snapshot` returns a canonical, hashable picture of the whole
  machine: the shared state (``state_snapshot``, supplied by the subclass) and,
  for every task, where it stands: the chain of generator frames (code object and
  instruction offset) with every local variable, canonicalised. Two machines with
  equal snapshots behave the same from then on, so the explorer may merge them.
* The snapshot contains only ints and tuples, whose hashes do not depend on
  ``PYTHONHASHSEED``; fingerprints are therefore equal across processes.

Kernel functions register themselves with :func:`kernel` so that a traced replay
can draw every call by its kernel name (through ``sys.setprofile``, which costs
nothing while not tracing).
"""

from __future__ import annotations

import bisect
import contextlib
import dis
import enum
import functools
import gc
import itertools
import marshal
import sys
import types
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any, ClassVar, TypeVar

import attrs

__all__ = [
    "KERNEL_FUNCTIONS",
    "STEP_TIMEOUT",
    "KernelBug",
    "KernelFunction",
    "Machine",
    "Oracle",
    "Path",
    "StepFailed",
    "StepTimeout",
    "Task",
    "TraceRecord",
    "Violation",
    "Wait",
    "dead_locals",
    "kernel",
    "watchdog",
    "yield_offset",
]

#: A modelled kernel path: a generator that yields ``None`` (a bare ``yield``: a
#: point where another CPU may run) or a :class:`Wait` (a sleep), and returns the
#: kernel function's return value. (Typed ``Any`` so that a bare ``yield`` reads
#: as it does in the e-mails: mypy would otherwise want ``yield None``.)
Path = Generator[Any, None, Any]

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class KernelFunction:
    """Where a modelled function lives in the kernel."""

    name: str
    file: str
    version: str
    module: str


#: Every registered kernel function, by code object.
KERNEL_FUNCTIONS: dict[types.CodeType, KernelFunction] = {}


def kernel(
    file: str, *, version: str = "v4.15", name: str | None = None
) -> Callable[[F], F]:
    """Register a function as the model of a kernel function.

    The function is returned unchanged (no wrapper, so no cost in the inner loop);
    registration lets a traced replay name it in race diagrams and lets
    ``mmsim list --functions`` say where each kernel function lives.

    Args:
        file: the kernel source file, e.g. ``"mm/vmscan.c"``.
        version: the kernel version whose behaviour is modelled.
        name: the kernel's name when it differs from the Python name.
    """

    def register(fn: F) -> F:
        code = fn.__code__
        KERNEL_FUNCTIONS[code] = KernelFunction(
            name=name or fn.__name__, file=file, version=version, module=fn.__module__
        )
        return fn

    return register


class KernelBug(Exception):
    """A modelled ``BUG_ON()`` fired: the kernel oopses and the run ends."""

    def __init__(self, where: str, condition: str) -> None:
        super().__init__(f"kernel BUG at {where}: {condition}")
        self.where = where
        self.condition = condition


class StepFailed(Exception):
    """A step raised something other than a modelled ``BUG_ON()``, or never
    returned: a bug in a policy's hook (or in the model), not in the modelled
    kernel. It is no verdict, so the search stops; the message names the task,
    the policy and hook (or mmsim's function), the exception and where."""


class StepTimeout(StepFailed):
    """A step ran for :data:`STEP_TIMEOUT` seconds without returning."""


#: Seconds a step may run before the watchdog calls it hung. A step of the
#: model takes microseconds; only a hook that never returns (a loop with no
#: ``yield``) comes near this.
STEP_TIMEOUT = 30.0


class _Watch:
    """The step running in this process (for the watchdog), and steps done."""

    __slots__ = ("armed", "done", "task")

    def __init__(self) -> None:
        self.task: Task | None = None
        self.done = 0
        #: The process whose watchdog is on (a forked child inherits this
        #: object, not the timer), or 0.
        self.armed = 0


_WATCH = _Watch()


def _failure(task: Task, what: str, frame: types.FrameType | None) -> str:
    """What failed, for :class:`StepFailed`: the policy's hook whose frame is
    innermost (a policy's ``self`` in it), else the innermost function; then
    ``what`` it did, and the innermost file and line."""
    from mmsim.policy import Policy

    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    culprit = f"{frames[0].f_code.co_name}()" if frames else "a step"
    for f in frames:
        owner = f.f_locals.get("self")
        if isinstance(owner, Policy):
            name = owner.name or type(owner).__name__
            culprit = f"policy {name!r}, hook {f.f_code.co_name}()"
            break
    place = f" at {frames[0].f_code.co_filename}:{frames[0].f_lineno}" if frames else ""
    return f"{task.name}: {culprit} {what}{place}"


def _raised(task: Task, exc: Exception) -> StepFailed:
    what = f"raised {type(exc).__name__}: {exc}"
    return StepFailed(_failure(task, what, _innermost(exc.__traceback__)))


def _innermost(tb: types.TracebackType | None) -> types.FrameType | None:
    frame = None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    return frame


@contextlib.contextmanager
def watchdog(seconds: float | None = None) -> Iterator[None]:
    """Fail a step that runs ``seconds`` (:data:`STEP_TIMEOUT`) without
    returning with :class:`StepTimeout`, rather than hang for ever.

    A SIGALRM interval timer checks, every ``seconds``, whether the step it saw
    running last time is still running. It does nothing where signals cannot
    be used (not the main thread, as in a Dask worker's threads, or no
    ``setitimer``), when a watchdog is already on, or when SIGALRM is someone
    else's (a handler installed, or an alarm pending: pytest-timeout's, say),
    which it leaves alone.
    """
    import os
    import signal
    import threading

    if (
        _WATCH.armed == os.getpid()
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    # A process forked while a watchdog was on (a search's worker) inherits
    # its handler, but not its timer: that handler is no one's.
    handler = signal.getsignal(signal.SIGALRM)
    ours = getattr(handler, "mmsim_watchdog", False)
    if (handler not in (signal.SIG_DFL, None) and not ours) or signal.getitimer(
        signal.ITIMER_REAL
    )[0] > 0:
        yield
        return
    interval = STEP_TIMEOUT if seconds is None else seconds
    seen: list[Any] = [None, -1]

    def tick(signum: int, frame: types.FrameType | None) -> None:
        task = _WATCH.task
        if task is not None and seen[0] is task and seen[1] == _WATCH.done:
            what = f"did not return within {interval:g}s"
            raise StepTimeout(_failure(task, what, frame))
        seen[:] = [task, _WATCH.done]

    tick.mmsim_watchdog = True  # type: ignore[attr-defined]
    old_handler = signal.signal(signal.SIGALRM, tick)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    _WATCH.armed = os.getpid()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        _WATCH.armed = 0


@attrs.define(slots=True, eq=False)
class Wait:
    """A sleep: the task is not enabled until ``cond()`` is true.

    ``reason`` names what the kernel waits on (``"lock_page"``,
    ``"wait_on_page_writeback"``), for traces and for deadlock reports.
    """

    cond: Callable[[], bool]
    reason: str
    #: A daemon's idle point (the top of its loop): a quiescing machine parks the
    #: daemon here, and only here, so no lock is left held.
    idle: bool = False
    #: A wait for GUP references or pins to go (a fix's wait): the explorer judges
    #: whether repeated pins can starve it (the ``starvation`` oracle).
    pins: bool = False


@attrs.frozen
class Violation:
    """An oracle found the machine in a state the kernel promises never to reach.

    ``fatal`` violations (an oops, a hang) end the run; the others are recorded
    and the run goes on, so that what follows them (a lost write after a
    warning, say) is judged too.
    """

    oracle: str
    message: str
    task: str
    fatal: bool = False


@attrs.frozen
class TraceRecord:
    """One line of a traced run.

    ``kind`` is ``"call"`` (a kernel function entered), ``"ret"`` (its return value,
    for plain functions), ``"event"`` (a tracepoint or note), ``"bug"``, ``"warn"``,
    ``"wait"`` (the task went to sleep) or ``"violation"``.
    """

    step: int
    task: int
    depth: int
    kind: str
    text: str


@attrs.define(slots=True, eq=False)
class Task:
    """One CPU's thread of control: a process, a kernel thread or an interrupt."""

    tid: int
    name: str
    kind: str
    gen: Path
    daemon: bool = False
    #: ``"process"`` or ``"irq"``: sleeping is only legal in process context.
    context: str = "process"
    wait: Wait | None = None
    done: bool = False
    #: The cached position; only a step of this task moves it (the engine clears it).
    pos: tuple[Any, ...] | None = None
    #: Leave out of the position the locals no later instruction can read
    #: (dead variable reduction, see :func:`dead_locals`).
    dead_variables: bool = True
    #: A device's service time before the first step (``"bio_write"``): the cost
    #: model's figure that the timed scheduler waits; the explorer ignores it.
    latency: str = ""

    def position(self) -> tuple[Any, ...]:
        """Where this task stands: its generator frames and their locals, canonical.

        Cached between the task's own steps: locals change only when the task runs
        (a local that aliases a shared object is canonicalised to the object's key,
        and the object's contents are in the machine's own snapshot).
        """
        if self.pos is None:
            self.pos = self._position()
        return self.pos

    def _position(self) -> tuple[Any, ...]:
        if self.done:
            return _FINISHED
        out: list[Any] = []
        gen: Any = self.gen
        dead_variables = self.dead_variables
        while isinstance(gen, types.GeneratorType):
            frame = gen.gi_frame
            if frame is None:
                break
            code = gen.gi_code
            key = (code, frame.f_lasti, dead_variables)
            plan = _PLANS.get(key)
            if plan is None:
                plan = _PLANS[key] = _frame_plan(*key)
            out.extend(plan[0])
            f_locals = frame.f_locals
            for name in plan[1]:
                if name is None:
                    out.append((-9,))
                    continue
                value = f_locals.get(name, _UNBOUND)
                out.append(canonical(value) if value is not _UNBOUND else (-8,))
            gen = gen.gi_yieldfrom
        return tuple(out)


def _frame_plan(
    code: types.CodeType, f_lasti: int, dead_variables: bool
) -> tuple[tuple[int, int], tuple[str | None, ...]]:
    """How a frame of ``code`` suspended at ``f_lasti`` enters a position: its
    code's id and which of its yields it stands at, then each local by name
    (None: dead, left out).

    The locals go by the code's own list of names, not in ``f_locals``' order:
    that dict is kept on the frame, and a local unbound when it was last read
    comes back at its end, so its order depends on the history of the run, and
    equal states would look different. A dead local cannot change what the task
    does from here on: two states that differ only there have the same futures.

    A position must not depend on how this process compiled the model, for
    processes compare positions: pytest rewrites the asserts of the packages
    its plugins come from (mmsim's among them), which moves the yields'
    offsets and adds locals (``@py_assert1``, names no source can write),
    while a worker that imports mmsim afresh (a Dask worker, a pool started
    by spawn or forkserver) runs the plain bytecode. So a yield goes by its
    number, not its offset, and the rewriter's locals are left out.
    """
    lasti = yield_offset(code, f_lasti)
    _check_no_hidden_state(code, lasti)
    dead = dead_locals(code, lasti) if dead_variables else frozenset()
    names = code.co_varnames + code.co_cellvars + code.co_freevars
    return (_code_id(code), _yield_number(code, lasti)), tuple(
        None if name in dead else name for name in names if not name.startswith("@")
    )


def _yield_number(code: types.CodeType, offset: int) -> int:
    """Which of ``code``'s yields stands at ``offset`` (0 for the first), or
    -1 for a generator not started yet."""
    numbers = _YIELD_NUMBERS.get(code)
    if numbers is None:
        numbers = _YIELD_NUMBERS[code] = {
            ins.offset: n
            for n, ins in enumerate(
                ins for ins in _instructions(code) if ins.opname == "YIELD_VALUE"
            )
        }
    return numbers.get(offset, -1)


#: _yield_number's answers: each yield's number, by code object and offset.
_YIELD_NUMBERS: dict[types.CodeType, dict[int, int]] = {}


#: _frame_plan's answers, by code object, f_lasti and dead_variables.
_PLANS: dict[
    tuple[types.CodeType, int, bool], tuple[tuple[int, int], tuple[str | None, ...]]
] = {}


#: A local that holds no value yet (or no longer).
_UNBOUND = object()

#: The position of a task that has run to completion.
_FINISHED = (-1,)


class Oracle:
    """A named predicate over the machine that a correct kernel never violates.

    Subclasses set the class attributes and override any of the optional hooks;
    only overridden hooks are dispatched (as trio's ``Instrument``), so an oracle
    costs nothing at the points it does not watch.

    * ``on_event(m, name, obj)``: called at a tracepoint listed in ``events``,
      synchronously, so it sees the state exactly where the kernel emits it.
    * ``after_step(m)``: called after every step.
    * ``at_end(m)``: called once, when the run has finished and quiesced.

    Each returns ``None`` or a message describing the violation.
    """

    id: ClassVar[str] = ""
    meaning: ClassVar[str] = ""
    symptom: ClassVar[str] = ""
    events: ClassVar[tuple[str, ...]] = ()
    #: Whether the kernel cannot carry on after this (the run ends here).
    fatal: ClassVar[bool] = False
    #: A regression outcome (a request a fix refuses), reported beside the
    #: correctness oracles rather than as a correctness violation.
    regression: ClassVar[bool] = False

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        return None

    def after_step(self, m: Machine) -> str | None:
        return None

    def at_end(self, m: Machine) -> str | None:
        return None

    def overrides(self, hook: str) -> bool:
        """Whether this oracle overrides the optional hook ``hook``."""
        return getattr(type(self), hook) is not getattr(Oracle, hook)


#: Entries kept by the caches that let a search build machines fast.
_CACHE_SIZE = 256

#: Dispatch tables by oracle set (the key holds the oracles, so no id is reused).
_DISPATCH: dict[
    tuple[Oracle, ...],
    tuple[dict[str, list[Oracle]], list[Oracle], list[Oracle]],
] = {}


def _code_id(code: types.CodeType) -> int:
    cid = _CODE_IDS.get(code)
    if cid is None:
        key = f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_qualname}:{code.co_firstlineno}"
        cid = _CODE_IDS[code] = zlib.crc32(key.encode())
    return cid


_CODE_IDS: dict[types.CodeType, int] = {}


def _instructions(code: types.CodeType) -> list[dis.Instruction]:
    """The decoded bytecode of ``code``, once per process: the bytecode analyses
    below and the explorer's coverage all read it, and decoding is what a cold
    ``mmsim check`` spent most of its one-time work on."""
    instrs = _INSTRUCTIONS.get(code)
    if instrs is None:
        instrs = _INSTRUCTIONS[code] = list(dis.get_instructions(code))
    return instrs


_INSTRUCTIONS: dict[types.CodeType, list[dis.Instruction]] = {}

_JUMPS_ALWAYS = {"JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"}
_ENDS = {"RETURN_VALUE", "RAISE_VARARGS", "RERAISE"}
_HIDDEN_OK: dict[types.CodeType, frozenset[int]] = {}


def _yield_points_without_hidden_state(code: types.CodeType) -> frozenset[int]:
    """Offsets of the yields at which ``code`` keeps nothing on its value stack.

    A generator suspended at a yield keeps, besides its locals, whatever is on the
    frame's value stack: a ``for`` loop's iterator, a half-evaluated expression.
    Python cannot read that stack, so the fingerprint would miss it and merge
    states that differ. A stack-depth analysis of the bytecode finds the yields
    where the stack holds only the value being yielded (and, in ``yield from``,
    the sub-generator, which the fingerprint follows through ``gi_yieldfrom``).
    """
    instrs = _instructions(code)
    index = {ins.offset: i for i, ins in enumerate(instrs)}
    depth: dict[int, int] = {}
    work = [(0, 0)]
    while work:
        i, d = work.pop()
        while i < len(instrs):
            ins = instrs[i]
            if ins.offset in depth:
                break
            depth[ins.offset] = d
            arg = ins.arg if ins.opcode >= dis.HAVE_ARGUMENT else None
            if ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs:
                work.append(
                    (
                        index[ins.argval],
                        d + dis.stack_effect(ins.opcode, arg, jump=True),
                    )
                )
                if ins.opname in _JUMPS_ALWAYS:
                    break
                d += dis.stack_effect(ins.opcode, arg, jump=False)
            elif ins.opname in _ENDS:
                break
            elif ins.opname == "RETURN_GENERATOR":
                d += 1  # resumed, the frame starts with the sent value, popped next
            else:
                d += dis.stack_effect(ins.opcode, arg)
            i += 1
    base = depth.get(instrs[0].offset, 0)
    # A generator not yet started stands before its first RESUME, holding nothing.
    ok = {
        ins.offset
        for ins in instrs[
            : next((i for i, ins in enumerate(instrs) if ins.opname == "RESUME"), 0)
        ]
    }
    for i, ins in enumerate(instrs):
        if ins.opname != "YIELD_VALUE" or ins.offset not in depth:
            continue
        allowed = 2 if i and instrs[i - 1].opname == "SEND" else 1
        if depth[ins.offset] - base <= allowed:
            ok.add(ins.offset)
    return frozenset(ok)


def yield_offset(code: types.CodeType, lasti: int) -> int:
    """The offset of the yield a suspended frame of ``code`` stands at.

    CPython 3.11 and 3.12 leave ``f_lasti`` on the ``YIELD_VALUE``; 3.13 moves it
    to the ``RESUME`` right after. Positions, coverage and the bytecode analyses
    speak of the yield, so that every version sees the same offsets.
    """
    table = _RESUMES.get(code)
    if table is None:
        instrs = _instructions(code)
        table = _RESUMES[code] = {
            after.offset: ins.offset
            for ins, after in itertools.pairwise(instrs)
            if ins.opname == "YIELD_VALUE" and after.opname == "RESUME"
        }
    return table.get(lasti, lasti)


#: yield_offset's answers: the offset of each RESUME that follows a yield.
_RESUMES: dict[types.CodeType, dict[int, int]] = {}


def dead_locals(code: types.CodeType, lasti: int) -> frozenset[str]:
    """The locals of ``code`` that no instruction can read once the frame resumes
    from offset ``lasti``: the explorer leaves them out of the state (SPIN's dead
    variable reduction, here over CPython bytecode).

    A backward liveness analysis over the code's control-flow graph: an edge to
    the next instruction from every instruction but a return, a raise or an
    unconditional jump, an edge to every jump target, and an edge from every
    instruction a ``try`` covers to its handler (a ``finally`` may read a local
    when ``close()`` throws into the frame).
    A plain local is only reached by the ``*_FAST`` instructions: ``STORE_FAST``
    kills it, and any other (``LOAD_FAST``, ``DELETE_FAST``, the
    superinstructions of later CPythons) reads it. Cell variables are never dead:
    a closure (a ``Wait`` condition) may read them at any time; nor is the first
    argument of code that calls ``super()``, which reads it from the frame.
    Unknown offsets have nothing dead.
    """
    table = _DEAD.get(code)
    if table is None:
        table = _DEAD[code] = _dead_locals_table(code)
    return table.get(lasti, frozenset())


#: dead_locals' answers by code object and offset.
_DEAD: dict[types.CodeType, dict[int, frozenset[str]]] = {}
#: Instructions after which control never falls through (CPython 3.11 to 3.13).
_LEAVES = frozenset(_ENDS | {"RETURN_CONST"} | _JUMPS_ALWAYS)


def _dead_locals_table(code: types.CodeType) -> dict[int, frozenset[str]]:
    instrs = _instructions(code)
    index = {ins.offset: i for i, ins in enumerate(instrs)}
    plain = frozenset(code.co_varnames) - frozenset(code.co_cellvars)
    if "super" in code.co_names and code.co_argcount:
        plain -= {code.co_varnames[0]}
    n = len(instrs)
    # Control falls through to the next instruction unless this one surely
    # leaves (a return, a raise, an unconditional jump); an instruction not
    # known to leave keeps the edge, which only keeps more alive.
    succ: list[set[int]] = [
        {i + 1} if i + 1 < n and ins.opname not in _LEAVES else set()
        for i, ins in enumerate(instrs)
    ]
    reads: list[frozenset[str]] = []
    kills: list[frozenset[str]] = []
    for i, ins in enumerate(instrs):
        if (ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs) and isinstance(
            ins.argval, int
        ):
            succ[i].add(index[ins.argval])
        args = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
        named = frozenset(
            a
            for a in args
            if isinstance(a, str) and a in plain and "FAST" in ins.opname
        )
        store = ins.opname == "STORE_FAST"
        kills.append(named if store else frozenset())
        reads.append(frozenset() if store else named)
    # The exception table (CPython 3.11+; typeshed does not list the attribute).
    entries: list[Any] = dis.Bytecode(code).exception_entries  # type: ignore[attr-defined]
    offsets = [ins.offset for ins in instrs]
    for entry in entries:
        handler = index[entry.target]
        covered = range(
            bisect.bisect_left(offsets, entry.start),
            bisect.bisect_left(offsets, entry.end),
        )
        for i in covered:
            succ[i].add(handler)
    # A worklist, last instruction first: only an instruction whose successor's
    # liveness grew is visited again (a cold ``mmsim check`` analyses every
    # function it meets, and sweeping the whole code until nothing changed cost
    # several passes each).
    pred: list[list[int]] = [[] for _ in range(n)]
    for i, targets in enumerate(succ):
        for j in targets:
            pred[j].append(i)
    live: list[frozenset[str]] = [frozenset()] * n
    work = list(range(n))
    queued = [True] * n
    while work:
        i = work.pop()
        queued[i] = False
        after: frozenset[str] = frozenset().union(*(live[j] for j in succ[i]))
        now = reads[i] | (after - kills[i])
        if now != live[i]:
            live[i] = now
            for j in pred[i]:
                if not queued[j]:
                    queued[j] = True
                    work.append(j)
    return {ins.offset: plain - live[i] for i, ins in enumerate(instrs)}


def _check_no_hidden_state(code: types.CodeType, lasti: int) -> None:
    ok = _HIDDEN_OK.get(code)
    if ok is None:
        ok = _HIDDEN_OK[code] = _yield_points_without_hidden_state(code)
    if lasti not in ok:
        line = next(
            (ln for start, end, ln in code.co_lines() if start <= lasti < end),
            code.co_firstlineno,
        )
        raise TypeError(
            f"{code.co_qualname} ({code.co_filename}:{line}) yields with state on its "
            "value stack (a for-loop iterator or a half-evaluated expression), which "
            "the state fingerprint cannot see; loop with an index kept in a local"
        )


def _order_key(position: tuple[Any, ...]) -> bytes:
    """A total order on positions (they mix ints and tuples, which do not compare)."""
    return marshal.dumps(position, 2)


def canonical(value: Any) -> Any:
    """Map a local variable to ints and tuples (see :func:`_canonical`)."""
    kind = type(value)
    if kind is int or kind is bool:
        return value
    tag = _TAGS.get(kind)
    if tag is not None:
        return (tag, value.key) if tag else (0,)
    return _canonical(value)


#: snapshot_tag by class, for the hot path of :func:`canonical`.
_TAGS: dict[type, int] = {}


def _canonical(value: Any) -> Any:
    """Map a local variable to ints and tuples whose hash is stable across processes.

    Model objects (anything with an integer ``key`` and a ``snapshot_tag``) become
    their tag and key; machine-wide singletons (the machine, policies, filesystem
    personalities) are constants. A value of any other type is refused, so that a
    path can never carry state the fingerprint would miss.
    """
    if isinstance(value, int):  # bool, IntEnum: plain ints (marshal takes no enum)
        return int(value)
    if value is None:
        return ()
    tag = getattr(value, "snapshot_tag", None)
    if tag is not None:
        key = getattr(value, "key", None)
        if (
            tag
            and isinstance(key, int)
            and isinstance(type(value).__dict__.get("key"), types.MemberDescriptorType)
        ):
            _TAGS[type(value)] = tag  # a slotted model class: key is a plain attribute
        elif not tag:
            _TAGS[type(value)] = 0
        return (tag, key) if tag and isinstance(key, int) else (tag,)
    if isinstance(value, tuple | list):
        return (-2, *(canonical(v) for v in value))
    if isinstance(value, str):
        return (-3, zlib.crc32(value.encode()))
    if isinstance(value, enum.Enum):
        return (-4, canonical(value.value))
    if isinstance(value, functools.partial):
        return (
            (-5, _code_id(value.func.__code__))
            if hasattr(value.func, "__code__")
            else (-5,)
        )
    if isinstance(value, types.FunctionType | types.MethodType):
        fn = value.__func__ if isinstance(value, types.MethodType) else value
        return (-5, _code_id(fn.__code__))
    if isinstance(value, Wait):
        return (-6,)
    if isinstance(value, float):
        return (-7, value)
    raise TypeError(
        f"a path keeps a local of type {type(value).__name__!r}, which the state "
        "fingerprint cannot represent; give the class a snapshot_tag and an int key"
    )


class Machine:
    """Shared state plus tasks. Subclasses supply the state and its snapshot.

    The kernel model (:class:`mmsim.mm_types.Kernel`) and the small test programs
    used to check the explorer against brute force are both machines.
    """

    #: Oracles in force; built by subclasses.
    oracles: list[Oracle]
    #: The machine is a constant in every frame that holds it.
    snapshot_tag: ClassVar[int] = 0

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self.oracles = []
        self.violations: list[Violation] = []
        self.steps = 0
        self.tracing = False
        self.trace: list[TraceRecord] = []
        self.current: Task | None = None
        self._event_oracles: dict[str, list[Oracle]] = {}
        self._step_oracles: list[Oracle] = []
        self._end_oracles: list[Oracle] = []
        self._profiler: _Profiler | None = None
        #: Groups of interchangeable tasks (same code, same arguments, and no
        #: shared state that names them): the explorer merges states that differ
        #: only by a permutation within a group (symmetry reduction).
        self.symmetry: tuple[tuple[int, ...], ...] = ()
        #: Whether task positions leave out dead locals (see :func:`dead_locals`).
        self.dead_variables = True
        #: Whether every task started mid-run takes the first finished slot it
        #: may reuse, else a new one at the end (as the kernel model starts
        #: completions). Then finished tasks at the end of :attr:`tasks` are
        #: free slots: a state with them behaves as the state without them and
        #: gives every later task the same id, so snapshots leave them out. A
        #: machine that appends must leave it False: there the number of
        #: finished tasks decides the ids of the tasks started later.
        self.trailing_finished_are_free = False
        #: Re-executing a schedule the search already judged: no oracle, no
        #: tracepoint, no trace (oracles only read the state, so it is the same).
        self.replaying = False
        #: Names of the tracepoints and counters met, when the explorer asks
        #: (reachability goals); None when nobody asks.
        self.events_seen: set[str] | None = None
        #: Where the tasks' generator frames stopped after each step (code
        #: object, instruction offset), when the explorer asks (coverage).
        self.steps_seen: set[tuple[types.CodeType, int]] | None = None

    # -- set-up -------------------------------------------------------------------

    def spawn(
        self,
        name: str,
        kind: str,
        gen: Path,
        *,
        daemon: bool = False,
        context: str = "process",
        latency: str = "",
    ) -> Task:
        """Add a task; tasks are numbered in the order they are spawned."""
        task = Task(
            len(self.tasks),
            name,
            kind,
            gen,
            daemon=daemon,
            context=context,
            latency=latency,
            dead_variables=self.dead_variables,
        )
        self.tasks.append(task)
        return task

    def install_oracles(self, oracles: list[Oracle]) -> None:
        """Set the oracles that judge this machine, dispatching only overridden hooks.

        Oracles keep no state (they only read the machine), so one set serves
        every machine a search builds, and its dispatch tables are built once.
        """
        key = tuple(oracles)
        tables = _DISPATCH.get(key)
        if tables is None:
            if len(_DISPATCH) >= _CACHE_SIZE:
                _DISPATCH.clear()  # a search reuses one set: keep memory bounded
            events: dict[str, list[Oracle]] = {}
            for oracle in key:
                if oracle.overrides("on_event"):
                    for name in oracle.events:
                        events.setdefault(name, []).append(oracle)
            tables = _DISPATCH[key] = (
                events,
                [o for o in key if o.overrides("after_step")],
                [o for o in key if o.overrides("at_end")],
            )
        self.oracles = list(oracles)
        self._event_oracles, self._step_oracles, self._end_oracles = tables

    # -- what subclasses provide -----------------------------------------------------

    def state_snapshot(self) -> tuple[Any, ...]:
        """The shared state, as ints and tuples. Subclasses must override."""
        raise NotImplementedError

    def quiesce(self) -> Iterator[Task]:
        """Yield tasks to run to completion once every non-daemon task has finished.

        The kernel model uses this for the final ``sync``; the default is nothing.
        """
        return iter(())

    # -- running --------------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        """The canonical state: shared state and where every task stands."""
        positions = [t.position() for t in self.tasks]
        return (self.state_snapshot(), self._trimmed(positions))

    def _trimmed(self, positions: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        if self.trailing_finished_are_free:
            while positions and positions[-1] == _FINISHED:
                positions.pop()
        return tuple(positions)

    def canonical_snapshot(self) -> tuple[tuple[Any, ...], tuple[int, ...] | None]:
        """The snapshot up to symmetry, and the permutation that makes it.

        Within each group of :attr:`symmetry` the tasks' positions are sorted,
        so states that differ only by which of two identical tasks stands where
        have one snapshot. Returns ``(snapshot, slot)`` where ``slot[tid]`` is
        the place task ``tid`` takes in the canonical snapshot (None when that is
        the identity). Sound because a group's tasks run the same code from the
        same arguments and no shared state names a task: swapping two of them
        is an automorphism of the state graph. Finished tasks at the end of
        the list are left out when :attr:`trailing_finished_are_free`.
        """
        positions = [t.position() for t in self.tasks]
        slot: list[int] | None = None
        for group in self.symmetry:
            order = sorted(group, key=lambda t: (_order_key(positions[t]), t))
            if order == list(group):
                continue
            if slot is None:
                slot = list(range(len(self.tasks)))
            moved = [positions[t] for t in order]
            for place, tid in zip(group, order, strict=True):
                slot[tid] = place
            for place, pos in zip(group, moved, strict=True):
                positions[place] = pos
        snap = (self.state_snapshot(), self._trimmed(positions))
        return snap, (tuple(slot) if slot is not None else None)

    @property
    def stopped(self) -> bool:
        """Whether a fatal violation (an oops, a hang) has ended the run."""
        return any(v.fatal for v in self.violations)

    def enabled(self) -> list[int]:
        """Ids of the tasks that may take the next step."""
        if self.stopped:
            return []
        return [
            t.tid
            for t in self.tasks
            if not t.done and (t.wait is None or t.wait.cond())
        ]

    def pin_waiters(self) -> tuple[tuple[int, bool], ...]:
        """Tasks asleep in a wait for pins, each with whether it may run now."""
        return tuple(
            (t.tid, t.wait.cond())
            for t in self.tasks
            if not t.done and t.wait is not None and t.wait.pins
        )

    def discard(self) -> None:
        """Let go of a machine no one will step again (the search's replays).

        Each task's suspended generator holds the machine in its frame's locals
        while the machine holds the task: a cycle, which only the cyclic
        garbage collector frees, and a search makes thousands of machines a
        second. Dropping the tasks frees the generators, and with them nearly
        all of the machine, by reference counting, so that fewer objects live
        on into the collector's older generations, which it walks whole.
        """
        self.tasks.clear()

    def finished(self) -> bool:
        """Whether every non-daemon task has run to completion."""
        return all(t.done for t in self.tasks if not t.daemon)

    def step(self, tid: int) -> None:
        """Run task ``tid`` up to its next preemption point (one atomic step)."""
        task = self.tasks[tid]
        if self.replaying:
            # A prefix the search already judged: only the state must move on.
            # (It ran before, so it returns: the watchdog need not look.)
            self.current = task
            task.wait = None
            task.pos = None
            try:
                task.wait = next(task.gen)
            except StopIteration:
                task.done = True
            except KernelBug as bug:
                # A replay that ends on an oops (a tabled search replays a
                # child to read its waits) stands where the first run stood.
                task.done = True
                self.violations.append(
                    Violation("kernel-bug", str(bug), task.name, fatal=True)
                )
            self.steps += 1
            self.current = None
            return
        assert not task.done, f"task {task.name} already finished"
        assert task.wait is None or task.wait.cond(), f"task {task.name} is asleep"
        self.current = task
        _WATCH.task = task
        task.wait = None
        task.pos = None
        # The garbage collector may finalise another machine's suspended
        # generator mid-step; under the profiler its GeneratorExit would show up
        # as calls in this task's trace, differently from run to run.
        collect = self.tracing and gc.isenabled()
        if collect:
            gc.disable()
        if self.tracing:
            self._begin_trace(task)
        try:
            task.wait = next(task.gen)
        except StopIteration:
            task.done = True
        except KernelBug as bug:
            task.done = True
            self.record(task, "bug", str(bug))
            self.violations.append(
                Violation("kernel-bug", str(bug), task.name, fatal=True)
            )
        except StepFailed:
            raise
        except Exception as exc:
            raise _raised(task, exc) from exc
        finally:
            _WATCH.task = None
            _WATCH.done += 1
            if self._profiler is not None:
                self._profiler.stop()
            if collect:
                gc.enable()
        self.steps += 1
        if self.steps_seen is not None:
            gen: Any = task.gen
            while isinstance(gen, types.GeneratorType) and gen.gi_frame is not None:
                code = gen.gi_code
                self.steps_seen.add((code, yield_offset(code, gen.gi_frame.f_lasti)))
                gen = gen.gi_yieldfrom
        if task.wait is not None and task.context != "process":
            # Only process context may sleep: "BUG: sleeping function called from
            # invalid context" (___might_sleep, kernel/sched/core.c).
            self.tracepoint(
                "sleep_in_atomic", task, f"{task.name} sleeps in {task.wait.reason}"
            )
        if task.wait is not None and self.tracing:
            what = "idle" if task.wait.idle else "sleeps"
            self.record(task, "wait", f"{what}: {task.wait.reason}")
        for oracle in self._step_oracles:
            message = oracle.after_step(self)
            if message is not None:
                self.violate(oracle, message)
        self.current = None

    def run_to_end(self) -> None:
        """Quiesce a finished machine and apply the end-of-run oracles.

        The tasks from :meth:`quiesce` are started, and every task runs until the
        non-daemon ones are done and each daemon is parked at its idle point: the
        other tasks first (a daemon mid-pass finishes its pass, an I/O in flight
        completes), lowest id first, and the quiescing tasks only when nothing
        else can run, as a final ``sync`` runs once the daemons have stopped.
        A task still asleep when nothing can run waits for ever: a deadlock (the
        parked daemons will not help it). Oracles are checked after every step.
        """
        last = {t.tid for t in self.quiesce()}
        while not self.stopped:
            runnable = [
                t.tid
                for t in self.tasks
                if not t.done
                and (t.wait is None or t.wait.cond())
                and not (t.daemon and t.wait is not None and t.wait.idle)
            ]
            if not runnable:
                if not self.finished():
                    asleep = [t for t in self.tasks if not t.done and not t.daemon]
                    self.violate_deadlock(asleep[0])
                break
            first = [tid for tid in runnable if tid not in last]
            self.step(min(first or runnable, key=self._quiesce_order))
        if self.stopped:
            return
        for oracle in self._end_oracles:
            message = oracle.at_end(self)
            if message is not None:
                self.violate(oracle, message)

    def _quiesce_order(self, tid: int) -> tuple[int, bytes]:
        """Lowest id first, except that within a symmetry group the order follows
        the tasks' positions, so that two states symmetric to each other quiesce
        alike (the merge of symmetric states stays sound for end-of-run oracles)."""
        for group in self.symmetry:
            if tid in group:
                return (group[0], marshal.dumps(self.tasks[tid].position(), 2))
        return (tid, b"")

    # -- what paths call --------------------------------------------------------------

    def tracepoint(self, name: str, obj: Any, text: str = "") -> None:
        """A kernel tracepoint: oracles watching ``name`` judge the state right here."""
        if self.replaying:
            return
        if self.events_seen is not None:
            self.events_seen.add(name)
        if self.tracing:
            self.record(self.current, "event", f"{name}: {text}" if text else name)
        for oracle in self._event_oracles.get(name, ()):
            message = oracle.on_event(self, name, obj)
            if message is not None:
                self.violate(oracle, message)

    def warn(self, where: str, condition: str) -> None:
        """A modelled ``WARN_ON()``: logged, the run goes on."""
        self.tracepoint("warn", where, f"WARNING at {where}: {condition}")

    def violate(self, oracle: Oracle, message: str) -> None:
        """Record a violation; a fatal one ends the run."""
        task = self.current.name if self.current is not None else "-"
        self.violations.append(Violation(oracle.id, message, task, fatal=oracle.fatal))
        if self.tracing:
            self.record(self.current, "violation", f"{oracle.id}: {message}")

    def check_deadlock(self) -> bool:
        """Record a deadlock if unfinished tasks remain and none can run."""
        if self.stopped or self.finished():
            return False
        if any(not t.done and (t.wait is None or t.wait.cond()) for t in self.tasks):
            return False
        asleep = [t for t in self.tasks if not t.done and not t.daemon]
        self.violate_deadlock(asleep[0])
        return True

    def violate_deadlock(self, task: Task) -> None:
        """Record that ``task`` sleeps on a condition nothing can make true."""
        reason = task.wait.reason if task.wait is not None else "?"
        self.violations.append(
            Violation(
                "deadlock",
                f"{task.name} sleeps for ever in {reason}",
                task.name,
                fatal=True,
            )
        )

    # -- tracing ----------------------------------------------------------------------

    def record(self, task: Task | None, kind: str, text: str) -> None:
        """Append a trace line for ``task`` (only while tracing)."""
        if not self.tracing:
            return
        prof = self._profiler
        depth = (
            prof.depth
            if prof is not None and task is not None and prof.task is task
            else 0
        )
        self.trace.append(
            TraceRecord(self.steps, task.tid if task else -1, depth, kind, text)
        )

    def _begin_trace(self, task: Task) -> None:
        if self._profiler is None or self._profiler.task is not task:
            self._profiler = _Profiler(self, task)
        self._profiler.start()


class _Profiler:
    """Records the kernel functions a task calls during one step (tracing only).

    ``stack`` holds the task's active kernel frames: its suspended generator
    chain at the start of a step, plus plain calls in progress. A resumed
    generator frame is recognised by identity and not drawn again; a generator's
    return event is a real return only when it stops at ``RETURN_VALUE`` (a yield
    also raises one).
    """

    def __init__(self, machine: Machine, task: Task) -> None:
        self.machine = machine
        self.task = task
        self.stack: list[types.FrameType] = []

    @property
    def depth(self) -> int:
        return len(self.stack)

    def start(self) -> None:
        chain = []
        gen: Any = self.task.gen
        while isinstance(gen, types.GeneratorType) and gen.gi_frame is not None:
            if gen.gi_code in KERNEL_FUNCTIONS:
                chain.append(gen.gi_frame)
            gen = gen.gi_yieldfrom
        self.stack = chain
        sys.setprofile(self._hook)

    def stop(self) -> None:
        sys.setprofile(None)

    def _hook(self, frame: types.FrameType, event: str, arg: Any) -> None:
        info = KERNEL_FUNCTIONS.get(frame.f_code)
        if info is None:
            return
        if event == "call":
            if any(f is frame for f in self.stack):
                return  # a generator resumed, not a new call
            self.machine.record(self.task, "call", info.name)
            self.stack.append(frame)
        elif event == "return":
            if frame.f_code.co_flags & _CO_GENERATOR:
                code = frame.f_code.co_code
                if code[frame.f_lasti] not in _RETURNS:
                    return  # a yield: the frame stays suspended on the stack
            while self.stack and self.stack[-1] is not frame:
                self.stack.pop()
            if self.stack:
                self.stack.pop()
            if (
                isinstance(arg, bool | int)
                and not frame.f_code.co_flags & _CO_GENERATOR
            ):
                self.machine.record(self.task, "ret", repr(arg))


_CO_GENERATOR = 0x20
#: The opcodes a frame returns by (``RETURN_CONST`` since CPython 3.12).
_RETURNS = frozenset(
    dis.opmap[name] for name in ("RETURN_VALUE", "RETURN_CONST") if name in dis.opmap
)
