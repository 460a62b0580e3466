"""Sampling schedulers for scenarios too large to exhaust: uniform random walk,
PCT, swarm, and a portfolio of them.

Each run builds a fresh machine and lets a scheduler pick, at every step, which
enabled task runs, until a violation, the end of the run, or ``max_steps``. All
randomness comes from one ``random.Random(seed)``, and the seed is returned with
the result, so every run can be reproduced. A sampler can find a violation
(Sometimes) but never prove there is none: its verdict is otherwise Unknown.

* **Uniform random walk**: each step picks an enabled task uniformly.
* **PCT** (probabilistic concurrency testing; Burckhardt, Kothari, Musuvathi and
  Nagarakatte, ASPLOS 2010): tasks get random distinct priorities, the highest
  enabled one runs, and at ``depth - 1`` random steps the running task drops
  below every other. A bug of depth ``d`` (``d`` ordering constraints) among
  ``n`` tasks in runs of ``k`` steps is found by each run with probability at
  least ``1 / (n * k**(d-1))``, a bound :class:`SampleResult` reports.
* **Swarm** (swarm testing; Groce, Zhang, Eide, Chen and Regehr, ISSTA 2012):
  each run draws its own weight per task, some near zero, so that different runs
  explore very different corners (a task starved for a long stretch, say).
* **Portfolio**: the three in turn, run by run (:data:`PORTFOLIO`), as one
  search.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from mmsim.engine import Machine, watchdog
from mmsim.explorer import Counterexample, settle

__all__ = ["PORTFOLIO", "STRATEGIES", "SampleResult", "pct_bound", "sample"]

#: The samplers by name (``mmsim check --strategy NAME``).
STRATEGIES = ("random", "pct", "swarm", "portfolio")

#: The portfolio's members, one run each in turn: each wins where the others
#: are slow (uniform random on short races, PCT where a completion must come
#: late, swarm where a kind of task must be held back for long).
PORTFOLIO = ("random", "pct-2", "swarm")


@attrs.frozen
class SampleResult:
    """What a sampling search did: runs made (up to and including the one that
    found a violation), steps taken, the first violating schedule, and the seed.

    ``bound`` is PCT's guarantee for the runs made: the probability that a bug of
    the given depth would have been missed, at most (None for the others). It
    is proved for tasks that end; ``daemons`` names the runs' tasks that do not
    (the flusher, kswapd), which this PCT ranks by a rule of its own (see
    :class:`_Pct`): a bug that needs a daemon to run out of that turn is
    outside the guarantee.
    """

    strategy: str
    runs: int
    steps: int
    counterexample: Counterexample | None
    seed: int
    depth: int = 0
    bound: float | None = None
    #: The sampler that made each run, for a portfolio (``pct-2``, ``swarm``).
    found_by: str = ""
    #: The daemons among the runs' tasks, by name (outside PCT's guarantee).
    daemons: tuple[str, ...] = ()


class _Scheduler:
    """Picks which enabled task runs next; told after each step what happened."""

    def pick(self, enabled: list[int], m: Machine) -> int:
        raise NotImplementedError

    def after(self, tid: int, m: Machine) -> None:
        """Called once task ``tid`` has taken its step."""


@attrs.define
class _Uniform(_Scheduler):
    rng: random.Random

    def pick(self, enabled: list[int], m: Machine) -> int:
        return self.rng.choice(enabled)


@attrs.define
class _Swarm(_Scheduler):
    """One run's weights: each *kind* of task (``dio``, ``flusher``, ``kswapd``,
    ``irq``, …) weighs 1 to 100, or 0.01 with probability 1/3: a kind nearly
    left out, swarm testing's "feature omission". Omitting completions (``irq``)
    holds I/O in flight while everything else runs, which is where these races
    live; uniform scheduling rarely does that for long."""

    rng: random.Random
    weights: dict[str, float] = attrs.Factory(dict)

    def pick(self, enabled: list[int], m: Machine) -> int:
        kinds = [m.tasks[t].kind for t in enabled]
        for kind in kinds:
            if kind not in self.weights:
                omit = self.rng.random() < 1 / 3
                self.weights[kind] = 0.01 if omit else self.rng.uniform(1, 100)
        weights = [self.weights[k] for k in kinds]
        return self.rng.choices(enabled, weights=weights)[0]


@attrs.define
class _Pct(_Scheduler):
    """PCT's scheduler for one run of at most ``k`` steps and bug depth ``depth``.

    Tasks get random ranks above ``depth`` as they appear (an interrupt or
    kworker spawned mid-run is inserted at a random rank, as PCT inserts new
    threads; by generator, so a reused interrupt slot is a new thread); the
    highest enabled runs; at the ``depth - 1`` change points, drawn uniformly
    from the ``k`` steps, the running task drops to ``depth - i``, below every
    initial rank. A daemon (which PCT's guarantee, made for tasks that end,
    does not cover) drops at its idle point: the first time just below the
    initial ranks, after each pass below every task (see :meth:`after`).
    """

    rng: random.Random
    depth: int
    changes: list[int]
    prio: dict[object, float] = attrs.Factory(dict)
    step: int = 0
    yields: int = 0
    #: The daemons (by generator) that have been at their idle point.
    passed: set[object] = attrs.Factory(set)

    @classmethod
    def new(cls, rng: random.Random, depth: int, k: int) -> _Pct:
        return cls(rng, depth, sorted(rng.sample(range(1, k + 1), min(depth - 1, k))))

    def pick(self, enabled: list[int], m: Machine) -> int:
        prio = self.prio
        for tid in enabled:
            gen = m.tasks[tid].gen
            if gen not in prio:
                prio[gen] = self.depth + 0.5 + self.rng.random() * (len(prio) + 1)
        self.step += 1
        tid = max(enabled, key=lambda t: prio[m.tasks[t].gen])
        if self.changes and self.step == self.changes[0]:
            prio[m.tasks[tid].gen] = self.depth - len(self.changes)
            self.changes.pop(0)
            tid = max(enabled, key=lambda t: prio[m.tasks[t].gen])
        return tid

    def after(self, tid: int, m: Machine) -> None:
        # A daemon at its idle point sleeps there in the kernel. The first
        # time (it starts there) it goes behind every task that has not been
        # demoted, but stays above the change points, so that its first pass
        # can come between a demoted task's steps. Back there after a pass it
        # goes behind every task: kswapd_try_to_sleep, the flusher's wait for
        # work. Above a demoted task it would loop for ever (its idle point is
        # no sleep while the LRU holds a page) and starve that task: PCT
        # assumes tasks that end.
        task = m.tasks[tid]
        if task.wait is None or not task.wait.idle:
            return
        if task.gen in self.passed:
            self.prio[task.gen] = min(self.prio.values()) - 1
            return
        self.passed.add(task.gen)
        if self.prio[task.gen] > self.depth:
            self.yields += 1
            self.prio[task.gen] = self.depth + 0.25 - self.yields * 1e-6


def pct_bound(tasks: int, steps: int, depth: int, runs: int) -> float:
    """PCT's bound on the probability of missing a bug of depth ``depth`` in
    ``runs`` runs of ``tasks`` tasks and at most ``steps`` steps:
    ``(1 - 1 / (tasks * steps**(depth-1)))**runs``."""
    p = 1.0 / (max(tasks, 1) * max(steps, 1) ** (depth - 1))
    return float((1.0 - p) ** runs)


def _run(
    make: Callable[[], Machine],
    sched: _Scheduler,
    max_steps: int,
    counts: Callable[[Machine, str], bool],
) -> tuple[list[int], Machine, Counterexample | None]:
    """One run; returns its schedule, the machine, and the first violation that
    counts (``at_end`` when it showed as the run ended: the final sync, a
    deadlock), or None."""
    m = make()
    schedule: list[int] = []
    while True:
        before = len(m.violations)
        status = settle(m)
        hit = next((v for v in m.violations[before:] if counts(m, v.oracle)), None)
        if hit is not None:
            return schedule, m, Counterexample(tuple(schedule), hit, at_end=True)
        if status != "running" or len(schedule) >= max_steps:
            return schedule, m, None
        tid = sched.pick(m.enabled(), m)
        before = len(m.violations)
        m.step(tid)
        schedule.append(tid)
        sched.after(tid, m)
        hit = next((v for v in m.violations[before:] if counts(m, v.oracle)), None)
        if hit is not None:
            return schedule, m, Counterexample(tuple(schedule), hit)


@watchdog()
def sample(
    make: Callable[[], Machine],
    strategy: str = "random",
    *,
    seed: int,
    max_runs: int = 10_000,
    max_steps: int = 400,
    depth: int = 2,
    oracles: frozenset[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SampleResult:
    """Run ``make()`` under a sampling scheduler until a violation or ``max_runs``.

    Args:
        strategy: ``random``, ``pct``, ``swarm`` or ``portfolio``.
        seed: every random choice comes from ``random.Random(seed)``.
        depth: PCT's bug depth (ordering constraints the bug needs).
        oracles: only these oracles count as a violation found (default: any
            correctness oracle; regression outcomes never count).
        progress: called after every run with the runs made and the steps
            taken so far (a status line; it cannot change the runs).
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})"
        )
    for name, value in (
        ("max_runs", max_runs),
        ("max_steps", max_steps),
        ("depth", depth),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a whole number from 1, not {value!r}")
    rng = random.Random(seed)

    def counts(m: Machine, oracle: str) -> bool:
        if oracles is not None:
            return oracle in oracles
        return not any(o.id == oracle and o.regression for o in m.oracles)

    total = 0
    longest = 1
    tasks = 1
    daemons: set[str] = set()
    for run in range(1, max_runs + 1):
        kind = strategy
        if strategy == "portfolio":
            kind = PORTFOLIO[(run - 1) % len(PORTFOLIO)]
        sched: _Scheduler
        if kind == "random" or (kind.startswith("pct") and run == 1):
            # PCT needs the run length in advance: the longest run so far stands
            # for it, so its first run is uniform, to measure one.
            sched = _Uniform(rng)
        elif kind == "swarm":
            sched = _Swarm(rng)
        else:
            d = depth if kind == "pct" else int(kind.removeprefix("pct-"))
            sched = _Pct.new(rng, d, longest)
        schedule, m, cex = _run(make, sched, max_steps, counts)
        total += len(schedule)
        longest = max(longest, len(schedule))
        tasks = max(tasks, len(m.tasks))
        daemons.update(t.name for t in m.tasks if t.daemon)
        m.discard()
        if progress is not None:
            progress(run, total)
        if cex is not None:
            return SampleResult(strategy, run, total, cex, seed, depth, found_by=kind)
    bound = pct_bound(tasks, longest, depth, max_runs) if strategy == "pct" else None
    return SampleResult(
        strategy,
        max_runs,
        total,
        None,
        seed,
        depth,
        bound,
        daemons=tuple(sorted(daemons)) if strategy == "pct" else (),
    )
