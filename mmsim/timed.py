"""The timed scheduler: the explorer's machine and tasks, run on a simulated clock.

The same :class:`~mmsim.machine.Kernel`, the same path code and the same
oracles as the explorer; only the choice of the next step differs. Each task has
a ready time; the scheduler runs the enabled task that is ready first (ties
broken by a seeded random choice), advances ``now`` to it, and charges the step
its cost (:mod:`mmsim.cost_model`). The vocabulary is SimPy's (``now``, a
process's next event, ``run(until=)``) but the scheduler is mmsim's own, because
it must choose among tasks ready at the same instant.

Simplifications, each a statement about what the figures mean:

* Every task has a CPU of its own: steps of different tasks overlap in time, but
  a step is atomic, so the state sees them one at a time. CPU contention and
  run-queue delay are not modelled.
* A step costs ``step`` plus the price of each counted action it performed
  (:data:`~mmsim.cost_model.COUNTER_PRICES`: faults, bounce copies, refcount
  atomics, block allocations). Code between preemption points is otherwise free.
* A completion spawned with a device latency (``bio_read``, ``bio_write``,
  ``rdma_write``) runs that long after its submission; devices have unlimited
  queue depth.
* A sleeping task becomes ready ``wakeup`` ns after its condition came true
  (plus ``lock_handoff`` for a sleeping lock). A daemon parked at its idle point
  with a period (the flusher's ``dirty_writeback_interval``) is woken no earlier
  than one period after it parked.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import attrs

from mmsim.cost_model import COUNTER_PRICES, CostModel
from mmsim.engine import Machine, Oracle, Wait, watchdog
from mmsim.machine import Kernel

__all__ = ["TimedRun", "WorkloadHang", "run_timed"]

#: Wait reasons that are sleeping locks: a wake-up from one is a lock hand-off.
_LOCKS = ("lock_page", "down_", "inode_lock", "xfs_ilock", "mutex_lock")


class WorkloadHang(RuntimeError):
    """A timed run took more steps than its budget (a livelock, or a bad workload)."""


@attrs.define(slots=True)
class _Clock:
    """One task's timing: when it may next run, and what it sleeps on."""

    ready: int = 0
    gen: object = None
    wait: Wait | None = None
    slept_at: int = 0
    woken: bool = False


@attrs.define(slots=True)
class TimedRun:
    """What a timed run measured, up to the moment every non-daemon task finished.

    ``vmstat`` holds what the kernel's counters gained during the run (the final
    ``sync`` and the end-of-run oracles run after that moment and are not
    charged).
    """

    #: When the last step ended, ns (the makespan).
    now: int
    steps: int
    vmstat: dict[str, int]
    latencies: dict[str, list[int]]
    #: ns spent asleep (not at an idle point), by task kind.
    blocked_ns: dict[str, int]
    #: ns spent asleep in a wait for pins (a fix's wait), by task kind.
    pin_wait_ns: dict[str, int]
    #: The integral of outstanding GUP references over time, in reference·ns.
    gup_ref_ns: int
    #: Oracle ids of the violations met, in order (fatal ones end the run).
    violations: list[str]
    #: Counted tracepoints (refusals, warnings).
    events: dict[str, int]


@watchdog()
def run_timed(
    k: Kernel,
    cost: CostModel,
    *,
    seed: int,
    idle_periods: Mapping[str, int] | None = None,
    max_steps: int = 2_000_000,
) -> TimedRun:
    """Run ``k``'s tasks to completion on the simulated clock; quiesce and judge.

    ``idle_periods`` maps a task kind to the period of its idle wake-up (the
    flusher's). Refusals and warnings are counted by tracepoint. Raises :class:`WorkloadHang`
    when ``max_steps`` steps do not finish the run.
    """
    rng = random.Random(seed)
    periods = dict(idle_periods or {})
    counted: dict[str, int] = {}
    k.install_oracles([*k.oracles, _EventMeter(counted)])
    clocks: list[_Clock] = []
    blocked: dict[str, int] = {}
    pin_wait: dict[str, int] = {}
    priced = [(c, getattr(cost, f)) for c, f in COUNTER_PRICES.items()]
    vmstat = k.vmstat
    at_start = dict(vmstat)
    now = 0
    end = 0
    last = 0
    gup_ref_ns = 0
    while not k.stopped:
        if k.steps >= max_steps:
            raise WorkloadHang(
                f"the run did not finish in {max_steps:,} steps "
                f"(simulated {now / 1e6:.3f} ms)"
            )
        enabled = []
        for task in k.tasks:
            if task.tid == len(clocks):
                clocks.append(_Clock(ready=now))
            c = clocks[task.tid]
            if task.done:
                continue
            if c.gen is not task.gen:  # a new task, or a reused slot
                c.gen, c.wait, c.woken = task.gen, None, False
                c.ready = now + (cost.latency(task.latency) if task.latency else 0)
            wait = task.wait
            if wait is None:
                enabled.append(task)
                continue
            if c.wait is not wait:
                c.wait, c.slept_at, c.woken = wait, c.ready, False
            if not wait.cond():
                c.woken = False
                continue
            if not c.woken:
                c.woken = True
                at = max(now, c.slept_at)
                period = periods.get(task.kind, 0) if wait.idle else 0
                at = max(at, c.slept_at + period)
                lock = cost.lock_handoff if wait.reason.startswith(_LOCKS) else 0
                c.ready = at + cost.wakeup + lock
            enabled.append(task)
        if not enabled:
            if not k.finished():
                k.check_deadlock()
            break
        if k.finished() and all(t.daemon for t in enabled):
            break
        first = min(clocks[t.tid].ready for t in enabled)
        ready = [t for t in enabled if clocks[t.tid].ready == first]
        task = ready[0] if len(ready) == 1 else rng.choice(ready)
        c = clocks[task.tid]
        now = max(now, c.ready)
        gup_ref_ns += vmstat.get("nr_gup_refs", 0) * (now - last)
        last = now
        if c.wait is not None:
            slept = now - c.slept_at
            if not c.wait.idle:
                blocked[task.kind] = blocked.get(task.kind, 0) + slept
            if c.wait.pins:
                pin_wait[task.kind] = pin_wait.get(task.kind, 0) + slept
            c.wait, c.woken = None, False
        before = [vmstat.get(name, 0) for name, _ in priced]
        k.now = now
        k.step(task.tid)
        charge = cost.step
        for (name, price), old in zip(priced, before, strict=True):
            charge += (vmstat.get(name, 0) - old) * price
        c.ready = now + charge
        end = max(end, c.ready)
    measured = TimedRun(
        now=end,
        steps=k.steps,
        vmstat={c: n - at_start.get(c, 0) for c, n in vmstat.items()},
        latencies={op: list(v) for op, v in k.latencies.items()},
        blocked_ns=blocked,
        pin_wait_ns=pin_wait,
        gup_ref_ns=gup_ref_ns,
        violations=[],
        events=counted,
    )
    if not k.stopped:
        k.run_to_end()
    measured.violations = [v.oracle for v in k.violations]
    return measured


class _EventMeter(Oracle):
    """Counts tracepoints as they fire; never a violation (an instrument)."""

    id = "event-meter"

    events = ("request_refused", "gup_refused", "warn")

    def __init__(self, into: dict[str, int]) -> None:
        self.into = into

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        self.into[name] = self.into.get(name, 0) + 1
        return None
