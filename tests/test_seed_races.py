"""The two races of the 2018 thread, found by the explorer from the path code."""

from __future__ import annotations

import re

import pytest

import mmsim
from mmsim._api import machine_factory, replay_counterexample


@pytest.fixture(scope="module")
def race_a() -> mmsim.CheckResult:
    return mmsim.check("dio/001", policy="baseline")


def test_race_a_is_found(race_a: mmsim.CheckResult) -> None:
    assert race_a.verdict == "Sometimes"
    assert race_a.stats.complete
    assert race_a.counterexample is not None
    assert race_a.counterexample.violation.oracle == "nobuffers-writeback"


def test_race_a_diagram_shows_the_seed_sequence(race_a: mmsim.CheckResult) -> None:
    assert race_a.diagram is not None
    # Each diagram line carries one task's text, so folding the white space reads
    # the run in order and undoes the wrapping of long lines.
    text = " ".join(race_a.diagram.split())
    wanted = [
        r"block_page_mkwrite\(\)",
        r"create_empty_buffers\(\)",
        r"clear_page_dirty_for_io\(\)",
        r"try_to_release_page\(\) = True",
        r"drop_buffers\(\) = True",
        r"__remove_mapping\(\) = False",
        r"set_page_dirty_lock\(\)",
        r"WARNING at fs/ext4/inode.c:ext4_set_page_dirty: !page_has_buffers",
        r">>> nobuffers-writeback",
        r"kernel BUG at fs/ext4/inode.c:mpage_prepare_extent_to_map",
    ]
    pos = 0
    for pattern in wanted:
        match = re.compile(pattern).search(text, pos)
        assert match is not None, f"{pattern!r} missing or out of order"
        pos = match.end()


def test_race_a_counterexample_replays(race_a: mmsim.CheckResult) -> None:
    assert race_a.counterexample is not None
    m = replay_counterexample(race_a.counterexample)
    assert m.violations[0].oracle == "nobuffers-writeback"


def test_race_b_needs_no_reclaim() -> None:
    result = mmsim.check(
        "dio/002", policy="baseline", oracles=["dirty-without-mkwrite"]
    )
    assert result.verdict == "Sometimes"
    assert result.counterexample is not None
    assert result.counterexample.violation.oracle == "dirty-without-mkwrite"
    make, _, _ = machine_factory("dio/002")
    assert "kswapd" not in {t.kind for t in make().tasks}
    assert result.diagram is not None
    assert "shrink_page_list" not in result.diagram


def test_oracle_option_replaces_the_scenarios_oracles() -> None:
    # Race B judged by the crash oracle: without reclaim nothing strips buffers.
    result = mmsim.check("dio/002", oracles=["nobuffers-writeback"])
    assert result.verdict == "Never"
    assert result.stats.complete


def test_search_is_deterministic() -> None:
    a = mmsim.check("dio/002")
    b = mmsim.check("dio/002")
    assert a.model_dump(exclude={"stats": {"seconds", "peak_mib"}}) == b.model_dump(
        exclude={"stats": {"seconds", "peak_mib"}}
    )


def test_preemption_bound_is_stated_incomplete() -> None:
    result = mmsim.check("dio/002", preemption_bound=0)
    assert not result.stats.complete
    assert result.verdict in ("Unknown", "Sometimes")
    assert "preemption_bound=0" in result.stats.cut_by
