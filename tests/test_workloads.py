from functools import cache

import pytest

import mmsim._api as api
from mmsim.policy import PolicyError
from mmsim.results import CostResult
from mmsim.vmstat import METRICS, percentile
from mmsim.workloads import WORKLOADS, WorkloadError

SCALE = 0.25


@cache
def measured(workload: str, policy: str) -> CostResult:
    return api.cost(workload, policy, seeds=1, scale=SCALE)


def mean(workload: str, policy: str, metric: str) -> float:
    return measured(workload, policy).metrics[metric].mean


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_every_workload_runs_and_reports_every_metric(workload: str) -> None:
    result = measured(workload, "upstream-6.4")
    assert result.endings == ["finished"]
    totals = [name for name in result.metrics if "." not in name]
    assert totals == list(METRICS)
    assert result.metrics["sim_ms"].mean > 0
    assert result.command.startswith(f"mmsim cost {workload} --policy upstream-6.4")


def test_pins_are_counted_only_where_pins_are_taken() -> None:
    reads = measured("db-dio", "upstream-6.5").metrics["nr_foll_pin_acquired"].mean
    assert reads == 2 * round(1000 * SCALE)  # every O_DIRECT read pins its page
    assert mean("db-dio", "baseline", "nr_foll_pin_acquired") == 0


def test_bounce_copies_only_under_writeback_skip_bounce() -> None:
    assert mean("db-dio", "baseline", "nr_bounce") == 0
    bounced = mean("db-dio", "writeback-skip-bounce", "nr_bounce")
    assert bounced > 0
    assert mean("db-dio", "writeback-skip-bounce", "bounce_bytes") == bounced * 4096


def test_waiting_for_unpin_costs_pin_wait_time() -> None:
    assert mean("db-dio", "baseline", "pin_wait_us") == 0
    assert mean("db-dio", "wait-for-unpin", "pin_wait_us") > 0


def test_blocking_mkclean_on_pins_deadlocks_the_database() -> None:
    result = measured("db-dio", "pin-blocks-mkclean")
    assert result.endings == ["deadlock"]
    assert result.violations["deadlock"] == 1


def test_the_longterm_write_ban_refuses_every_registration() -> None:
    assert mean("rdma-fsync", "upstream-6.5", "refused_efault") == 64
    assert mean("rdma-fsync", "upstream-6.4", "refused_efault") == 0


def test_several_seeds_give_a_spread() -> None:
    result = api.cost("mixed", "baseline", seeds=3, seed=5, scale=0.1)
    assert result.seeds == [5, 6, 7]
    for spread in result.metrics.values():
        assert spread.min <= spread.mean <= spread.max
    assert "--seeds 3 --seed 5 --scale 0.1" in result.command


def test_bad_requests_are_one_line_errors() -> None:
    with pytest.raises(WorkloadError, match="unknown workload 'db'"):
        api.cost("db")
    with pytest.raises(WorkloadError, match="runs on ext4, iomap, not 'dax'"):
        api.cost("db-dio", fs="dax")
    with pytest.raises(PolicyError, match="does not apply on ext4"):
        api.cost("db-dio", "dax-break-layouts")


def test_percentile_is_nearest_rank() -> None:
    samples = list(range(1, 101))
    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100
    assert percentile([7], 99) == 7
