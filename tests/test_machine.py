"""The kernel machine: the slots its own tasks and its bios take, and the state."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import attrs
import pytest

from mmsim._api import MachineFactory, machine_factory
from mmsim.bio import bio_alloc, bio_put
from mmsim.engine import Path
from mmsim.explorer import explore
from mmsim.machine import EVENTS, Kernel
from mmsim.policy import builtin_policy_names, load_policy


def _nothing() -> Path:
    return
    yield


def test_kernel_tasks_take_the_first_finished_slot_whatever_its_kind() -> None:
    """A task the kernel starts goes into the first finished slot of one of its
    own, of any kind, so its id does not depend on which kinds came before."""
    k = Kernel()
    irq = k.spawn_irq("irq:read", _nothing())
    k.step(irq.tid)
    assert irq.done
    work = k.queue_work("kworker:bio_dirty_fn", _nothing())
    assert work.tid == irq.tid
    assert (work.kind, work.context, work.done) == ("kworker", "process", False)
    second = k.spawn_irq("irq:write", _nothing())
    assert second.tid == irq.tid + 1  # the first slot is taken


def test_finished_tasks_at_the_end_are_left_out_of_the_state() -> None:
    k = Kernel()
    before = k.snapshot()
    irq = k.spawn_irq("irq:read", _nothing())
    assert k.snapshot() != before
    k.step(irq.tid)
    assert k.snapshot() == before
    k.trailing_finished_are_free = False
    assert k.snapshot() != before


def test_free_bio_slots_at_the_end_are_left_out_of_the_state() -> None:
    k = Kernel()
    before = k.state_snapshot()
    page = k.frames[0]
    first = bio_alloc(k, page, [0], False, lambda k, bio: None)
    second = bio_alloc(k, page, [1], False, lambda k, bio: None)
    bio_put(k, second)
    with_first = k.state_snapshot()
    bio_put(k, first)
    assert k.state_snapshot() == before
    assert k.bios == [None, None]
    assert bio_alloc(k, page, [0], False, lambda k, bio: None).key == 0
    assert with_first != before


@attrs.frozen
class _AllSlotsKept:
    make: MachineFactory

    def __call__(self) -> Kernel:
        k = self.make()
        k.trailing_finished_are_free = False
        return k


def _verdicts(result: Any) -> dict[str, tuple[str, int | None]]:
    return {
        oid: (
            r.verdict.value,
            len(r.counterexample.schedule) if r.counterexample else None,
        )
        for oid, r in result.oracles.items()
    }


@pytest.mark.parametrize(
    ("scenario", "policy"),
    [("dio/001", "baseline"), ("dio/003", "baseline"), ("dio/003", "defer-release")],
)
def test_leaving_finished_slots_out_changes_no_verdict(
    scenario: str, policy: str
) -> None:
    """On the kernel model (completions in interrupt context, dio/003's
    re-dirtying work item): the same verdicts, shortest counterexamples and
    ends of runs as the search that keeps every slot, in fewer states."""
    make, _, _ = machine_factory(scenario, policy)

    def end(m: Any, status: str) -> Any:
        return (status, m.state_snapshot(), tuple(v.oracle for v in m.violations))

    on = explore(make, leaf_key=end)
    off = explore(_AllSlotsKept(make), leaf_key=end)
    assert on.stats.complete
    assert off.stats.complete
    assert _verdicts(on) == _verdicts(off)
    assert on.leaves == off.leaves
    assert on.stats.states < off.stats.states


# -- the events a reachability goal may name -------------------------------------------

_EMITS = re.compile(r"\.(?:tracepoint|count)\(\s*\"([a-z_0-9]+)\"")
_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _emitted(package: str) -> set[str]:
    """The event names a package's sources emit (every call names its event
    with a literal, so reading the sources finds them all)."""
    return {
        name
        for source in (_ROOT / package).rglob("*.py")
        for name in _EMITS.findall(source.read_text())
    }


def test_every_event_the_model_emits_is_listed_and_every_listed_one_emitted() -> None:
    assert _emitted("mmsim") == set(EVENTS)


def test_the_builtin_policies_declare_the_events_they_add() -> None:
    declared = {
        e
        for name in builtin_policy_names()
        for p in load_policy(name)
        for e in p.events
    }
    assert _emitted("strategies") - set(EVENTS) == declared
