"""The engine: fingerprints, hidden-state refusal, determinism across processes."""

from __future__ import annotations

import dis
import gc
import os
import subprocess
import sys
import weakref
from typing import Any

import pytest

from mmsim._api import machine_factory
from mmsim.engine import (
    Machine,
    Path,
    StepFailed,
    StepTimeout,
    Wait,
    canonical,
    dead_locals,
    watchdog,
    yield_offset,
)
from tests.conftest import needs_sigalrm


class _Loop(Machine):
    def __init__(self) -> None:
        super().__init__()
        self.spawn("t", "t", self._run())

    def _run(self) -> Path:
        for _ in range(3):
            yield

    def state_snapshot(self) -> tuple[int, ...]:
        return ()


def test_for_loop_across_yield_is_refused() -> None:
    m = _Loop()
    m.step(0)
    with pytest.raises(TypeError, match="yields with state on its value stack"):
        m.snapshot()


def test_canonical_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="fingerprint cannot represent"):
        canonical(object())
    assert canonical((1, None, "a")) == canonical((1, None, "a"))
    assert canonical(None) != canonical(-1)


_FINGERPRINT = (
    "from mmsim._api import machine_factory\n"
    "m = machine_factory('dio/001')[0]()\n"
    "for t in (0, 0, 0, 1):\n"
    "    m.step(t)\n"
    "print(hash(m.snapshot()))\n"
)


def test_fingerprint_is_the_same_in_every_process() -> None:
    out = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out.add(proc.stdout)
    assert len(out) == 1


def _offsets(gen: Any) -> list[frozenset[str]]:
    """The dead locals at each yield the generator stops at, in order."""
    out = []
    while True:
        try:
            next(gen)
        except StopIteration:
            return out
        out.append(dead_locals(gen.gi_code, gen.gi_frame.f_lasti))


def test_dead_locals_follow_reads_kills_loops_and_finally() -> None:
    box = [0]

    def straight() -> Path:
        a = box[0]
        yield  # a is read below
        box[0] = a
        yield  # a is never read again
        a = 5
        yield  # nor after this store

    def loop() -> Path:
        a = box[0]
        i = 0
        while i < 2:
            yield  # a is read on the next pass: live at both stops
            i += 1
            box[0] = a

    def guarded() -> Path:
        a = box[0]
        try:
            yield  # read only by the finally: live
        finally:
            box[0] = a

    def captured() -> Path:
        a = box[0]
        yield Wait(lambda: a == 0, "cond")  # a cell: a closure may read it
        yield

    assert _offsets(straight()) == [frozenset(), {"a"}, {"a"}]
    assert _offsets(loop()) == [frozenset(), frozenset()]
    assert _offsets(guarded()) == [frozenset()]
    g = captured()
    next(g)
    assert dead_locals(g.gi_code, g.gi_frame.f_lasti) == frozenset()
    g.close()


def test_a_suspended_frame_stands_at_its_yield_on_every_python() -> None:
    # CPython 3.13 reports the RESUME after the yield as the frame's f_lasti.
    def g() -> Path:
        yield

    gen = g()
    next(gen)
    assert gen.gi_frame is not None
    at = yield_offset(gen.gi_code, gen.gi_frame.f_lasti)
    names = {ins.offset: ins.opname for ins in dis.get_instructions(gen.gi_code)}
    assert names[at] == "YIELD_VALUE"


def test_dead_locals_after_a_return_are_not_kept_alive_by_the_code_behind_it() -> None:
    # From 3.12 CPython puts each ``yield from``'s throw handler after the final
    # return, jumping back into the function: falling through the return would
    # make ``a`` and ``sub`` look read again after the second delegation.
    box = [0]

    def sub() -> Path:
        yield

    def two() -> Path:
        a = box[0]
        yield from sub()
        box[0] = a
        yield from sub()
        return 1

    assert _offsets(two()) == [frozenset(), {"a"}]


def test_dead_locals_are_left_out_of_the_position() -> None:
    class Two(Machine):
        def __init__(self, first: int) -> None:
            super().__init__()
            self.spawn("t", "t", self._run(first))

        def _run(self, first: int) -> Path:
            a = first
            yield
            del a
            yield

        def state_snapshot(self) -> tuple[int, ...]:
            return ()

    one, two = Two(1), Two(2)
    one.step(0)
    two.step(0)
    assert one.snapshot() != two.snapshot()  # a is read (by del) after this yield
    one.step(0)
    two.step(0)
    assert one.snapshot() == two.snapshot()  # ``first`` and ``a`` are dead now
    three = Two(3)
    three.dead_variables = three.tasks[0].dead_variables = False
    three.step(0)
    three.step(0)
    assert three.snapshot() != one.snapshot()


_MODEL = """\
def path(k):
    x = k + 1
    assert x > 0, x
    yield
    y = x * 2
    assert y > x, (x, y)
    yield
    return y
"""


def test_a_position_does_not_see_pytest_rewriting_the_asserts() -> None:
    """pytest rewrites the asserts of mmsim (the package of one of its
    plugins) in the process that runs the tests, not in a worker that imports
    mmsim afresh: both must see one position where the model stands alike."""
    import ast

    from _pytest.assertion.rewrite import rewrite_asserts

    plain: dict[str, Any] = {}
    exec(compile(_MODEL, "model.py", "exec"), plain)
    tree = ast.parse(_MODEL)
    rewrite_asserts(tree, _MODEL.encode(), "model.py")
    rewritten: dict[str, Any] = {}
    exec(compile(tree, "model.py", "exec"), rewritten)
    # The premise: the rewritten bytecode has other offsets and more locals.
    assert plain["path"].__code__.co_code != rewritten["path"].__code__.co_code
    assert any(n.startswith("@") for n in rewritten["path"].__code__.co_varnames)

    class One(Machine):
        def __init__(self, path: Any) -> None:
            super().__init__()
            self.spawn("t", "t", path(1))

        def state_snapshot(self) -> tuple[int, ...]:
            return ()

    a, b = One(plain["path"]), One(rewritten["path"])
    for _ in range(3):
        assert a.snapshot() == b.snapshot()
        a.step(0)
        b.step(0)
    assert a.snapshot() == b.snapshot()
    assert a.tasks[0].done


def test_a_discarded_kernel_leaves_no_cycle_for_the_collector() -> None:
    """A search discards thousands of machines a second: each must be freed by
    reference counting, not left for the cyclic garbage collector."""
    make, _, _ = machine_factory("dio/001", "defer-release")

    def run() -> tuple[Any, list[weakref.ref[Any]]]:
        m = make()
        for _ in range(8):  # into the DIO, writeback and reclaim paths
            m.step(m.enabled()[0])
        refs = [weakref.ref(m), *(weakref.ref(t.gen) for t in m.tasks)]
        return m, refs + [weakref.ref(i) for i in m.inodes]

    gc.disable()
    try:
        m, refs = run()
        m.discard()
        del m
        assert all(r() is None for r in refs)
        m, refs = run()
        del m
        assert refs[0]() is not None  # without discard(), a cycle keeps it
    finally:
        gc.enable()


class _Fails(Machine):
    """One task: a step, then a step that raises (or spins, with ``spin``)."""

    def __init__(self, spin: bool = False) -> None:
        super().__init__()
        self.spawn("t", "t", self._run(spin))

    def _run(self, spin: bool) -> Path:
        yield
        while spin:
            pass
        raise KeyError("gone")

    def state_snapshot(self) -> tuple[int, ...]:
        return ()


def test_a_step_that_raises_fails_naming_the_task_and_function() -> None:
    m = _Fails()
    m.step(0)
    with pytest.raises(StepFailed, match=r"^t: _run\(\) raised KeyError: 'gone' at "):
        m.step(0)


@needs_sigalrm
def test_a_step_that_never_returns_is_stopped_by_the_watchdog() -> None:
    m = _Fails(spin=True)
    m.step(0)
    late = r"^t: _run\(\) did not return within 0.1s"
    with pytest.raises(StepTimeout, match=late), watchdog(0.1):
        m.step(0)


@needs_sigalrm
def test_the_watchdog_is_off_again_after_its_work() -> None:
    import signal

    with watchdog(5.0):
        assert signal.getitimer(signal.ITIMER_REAL)[1] == 5.0
        with watchdog(1.0):  # one is on: the inner one does nothing
            assert signal.getitimer(signal.ITIMER_REAL)[1] == 5.0
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_watchdog_leaves_a_sigalrm_in_use_alone() -> None:
    import signal

    def mine(signum: int, frame: Any) -> None:
        pass

    old = signal.signal(signal.SIGALRM, mine)
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        with watchdog(5.0):
            assert signal.getsignal(signal.SIGALRM) is mine
            assert signal.getitimer(signal.ITIMER_REAL)[1] == 0.0  # not ours
        assert signal.getsignal(signal.SIGALRM) is mine
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _spin_under_a_watchdog() -> None:
    m = _Fails(spin=True)
    m.step(0)
    with watchdog(0.1):
        m.step(0)


@needs_sigalrm
def test_the_watchdog_runs_in_a_process_forked_while_one_is_on() -> None:
    # A search's workers are forked from the searching process, whose
    # watchdog handler they inherit without its timer: theirs must still run.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    try:
        with watchdog(5.0):
            spinning = pool.submit(_spin_under_a_watchdog)  # forks the worker
        failed = spinning.exception(timeout=60)
    finally:
        # Should its watchdog not fire, the worker spins: end it, not the tests.
        for worker in list(pool._processes.values()):
            worker.terminate()
        pool.shutdown()
    assert isinstance(failed, StepTimeout)
    assert "did not return within 0.1s" in str(failed)


def test_the_watchdog_does_nothing_off_the_main_thread() -> None:
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            with watchdog(0.1):
                pass
        except BaseException as exc:  # signal.signal would raise ValueError
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errors == []
