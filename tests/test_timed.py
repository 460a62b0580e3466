import pytest

from mmsim.cost_model import COUNTER_PRICES, CostModel
from mmsim.machine import Kernel
from mmsim.oracles import make_oracles
from mmsim.scenario_spec import (
    DioRead,
    FileSpec,
    MappingSpec,
    ScenarioSpec,
    Store,
    build,
)
from mmsim.timed import WorkloadHang, run_timed
from mmsim.workloads import get_workload


def _machine(task: DioRead | Store) -> Kernel:
    spec = ScenarioSpec(
        id="t/001",
        title="one task",
        description="",
        oracles=["lost-write"],
        files=[
            FileSpec(name="file1", blocks=[0], cached=[0]),
            FileSpec(name="file2", blocks=[1]),
        ],
        mapping=MappingSpec(file="file1"),
        tasks=[task],
    )
    k = build(spec, ())
    k.install_oracles(make_oracles(["lost-write", "kernel-bug"]))
    return k


def test_one_task_is_charged_exactly_its_steps_and_actions() -> None:
    cost = CostModel(step=7, page_fault=1000, refcount_atomic=3)
    run = run_timed(_machine(Store(kind="store")), cost, seed=1)
    assert run.vmstat["pgfault"] >= 1
    expected = run.steps * cost.step
    for counter, figure in COUNTER_PRICES.items():
        expected += run.vmstat.get(counter, 0) * getattr(cost, figure)
    assert run.now == expected
    assert run.violations == []


def test_a_synchronous_read_waits_for_the_device_and_the_wakeup() -> None:
    def makespan(cost: CostModel) -> int:
        return run_timed(
            _machine(DioRead(kind="dio-read", src="file2")), cost, seed=1
        ).now

    base = makespan(CostModel())
    assert makespan(CostModel(bio_read=10_000 + 5_000)) - base == 5_000
    # One sleep (dio_await_one) ends with one wake-up.
    assert makespan(CostModel(wakeup=2_000 + 300)) - base == 300
    assert base >= CostModel().bio_read


def test_the_same_seed_gives_the_same_run() -> None:
    w = get_workload("mixed")

    def once(seed: int) -> object:
        k = w.make((), "ext4", seed, 0.1)
        k.install_oracles(make_oracles(["lost-write", "nobuffers-writeback"]))
        return run_timed(k, CostModel(), seed=seed, idle_periods=dict(w.idle_periods))

    assert once(3) == once(3)


def test_a_run_over_its_step_budget_is_an_error() -> None:
    k = get_workload("mixed").make((), "ext4", 1, 0.1)
    with pytest.raises(WorkloadHang, match="did not finish in 50 steps"):
        run_timed(k, CostModel(), seed=1, max_steps=50)
