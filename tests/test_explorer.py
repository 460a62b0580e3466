"""The explorer against brute force, and its bounds and verdicts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mmsim.engine import Machine, Oracle, Path, Wait
from mmsim.explorer import Bounds, Verdict, explore
from tests.programs import ToyMachine, brute_force, outcome, programs


def _explored(
    make: Any, bounds: Bounds | None = None
) -> tuple[set[Any], set[str], Any]:
    seen: set[Any] = set()
    result = explore(make, bounds, on_leaf=lambda m, _: seen.add(outcome(m)))
    fired = {o for o, r in result.oracles.items() if r.verdict != Verdict.NEVER}
    return seen, fired, result


@settings(max_examples=150, deadline=None)
@given(programs(), st.integers(1, 3))
def test_reachable_outcomes_equal_brute_force(prog: Any, bad: int) -> None:
    program, nvars, nlocks = prog

    def make() -> ToyMachine:
        return ToyMachine(program, nvars, nlocks, bad=bad)

    expected, expected_fired = brute_force(make)
    got, fired, result = _explored(make)
    assert got == expected
    assert fired == expected_fired
    assert result.stats.complete
    assert (result.verdict != Verdict.NEVER) == bool(expected_fired)


def test_verdict_words() -> None:
    never = explore(lambda: ToyMachine([[("set", 0, 1)], [("set", 1, 1)]], 2, 0, bad=7))
    assert never.verdict == Verdict.NEVER
    assert never.counterexample is None
    always = explore(
        lambda: ToyMachine([[("set", 0, 7)], [("set", 1, 1)]], 2, 0, bad=7)
    )
    assert always.verdict == Verdict.ALWAYS
    # var0 becomes 1 only if T1 runs before T0 copies var1 into var0.
    prog = [[("load", 1), ("store", 0)], [("set", 1, 1)]]
    sometimes = explore(lambda: ToyMachine(prog, 2, 0, bad=1))
    assert sometimes.verdict == Verdict.SOMETIMES


def test_shortest_counterexample_is_shortest() -> None:
    # T0 reaches the bad value only at its third step; T1 at its first.
    prog = [
        [("set", 1, 1), ("set", 1, 2), ("set", 0, 9)],
        [("add", 1, 1), ("set", 0, 9)],
    ]
    result = explore(lambda: ToyMachine(prog, 2, 0, bad=9))
    assert result.counterexample is not None
    assert result.counterexample.schedule == (1, 1)
    assert result.oracles["var0-bad"].counterexample == result.counterexample


def test_step_bound_makes_the_search_incomplete() -> None:
    prog = [[("add", 0, 1)] * 4, [("add", 1, 1)] * 4]
    result = explore(lambda: ToyMachine(prog, 2, 0, bad=99), Bounds(max_steps=3))
    assert not result.stats.complete
    assert result.stats.cut_by == ["max_steps=3"]
    assert result.verdict == Verdict.UNKNOWN


def test_preemption_bound() -> None:
    prog = [[("load", 0), ("store", 1)], [("set", 0, 1), ("set", 0, 0)]]

    def make() -> ToyMachine:
        m = ToyMachine(prog, 2, 0)
        m.install_oracles([_Var1Is1()])
        return m

    # var1 == 1 needs T0 to load between T1's two sets: T1, T0 (a preemption of
    # T1), then anything. One preemption suffices; zero does not.
    assert explore(make, Bounds(preemption_bound=0)).verdict == Verdict.UNKNOWN
    assert explore(make, Bounds(preemption_bound=1)).verdict == Verdict.SOMETIMES


class _Var1Is1(Oracle):
    id = "var1"

    def after_step(self, m: Any) -> str | None:
        return "var1 is 1" if m.vars[1] == 1 else None


def test_deadlock_is_found() -> None:
    prog = [[("await", 0, 1)], [("set", 1, 1)]]
    result = explore(lambda: ToyMachine(prog, 2, 0))
    assert result.verdict == Verdict.ALWAYS
    assert result.oracles["deadlock"].verdict == Verdict.ALWAYS
    assert result.oracles["deadlock"].occurrences == 1


def test_a_non_fatal_violation_does_not_end_the_run() -> None:
    # var0 is bad (1) only transiently; T1 then sets var1, which a second oracle
    # watches. Both must be found on the same run.
    prog = [[("set", 0, 1), ("set", 0, 0), ("set", 1, 5)]]

    class Var1Is5(Oracle):
        id = "var1-5"

        def after_step(self, m: Any) -> str | None:
            return "var1 is 5" if m.vars[1] == 5 else None

    def make() -> ToyMachine:
        m = ToyMachine(prog, 2, 0, bad=1)
        m.install_oracles([*m.oracles, Var1Is5()])
        return m

    result = explore(make)
    assert result.oracles["var0-bad"].verdict == Verdict.ALWAYS
    assert result.oracles["var1-5"].verdict == Verdict.ALWAYS
    cex = result.oracles["var1-5"].counterexample
    assert cex is not None
    assert cex.schedule == (0, 0, 0)


class _PinLoop(Machine):
    """A daemon that pins and unpins for ever, and a task waiting for no pins.

    ``fair`` makes the pinner wait for the waiter to be done before pinning
    again, so the waiter cannot be starved.
    """

    def __init__(self, fair: bool) -> None:
        super().__init__()
        self.pins = 0
        self.done = False
        self.spawn("pinner", "dio", self._pinner(fair), daemon=True)
        self.spawn("fsync", "fsync", self._waiter())
        from mmsim.oracles import make_oracles

        self.install_oracles(make_oracles(["starvation"]))

    def state_snapshot(self) -> tuple[int, ...]:
        return (self.pins, self.done)

    def _pinner(self, fair: bool) -> Path:
        while True:
            yield Wait(lambda: True, "between requests", idle=True)
            if fair and not self.done:
                continue
            self.pins += 1
            yield
            self.pins -= 1

    def _waiter(self) -> Path:
        yield
        yield Wait(lambda: self.pins == 0, "wait for unpin", pins=True)
        self.done = True


def test_starvation_needs_the_condition_to_come_and_go() -> None:
    unfair = explore(lambda: _PinLoop(fair=False))
    assert unfair.oracles["starvation"].verdict == Verdict.SOMETIMES
    cex = unfair.oracles["starvation"].counterexample
    assert cex is not None
    assert cex.violation.task == "fsync"
    assert explore(lambda: _PinLoop(fair=True)).oracles["starvation"].verdict == (
        Verdict.NEVER
    )
