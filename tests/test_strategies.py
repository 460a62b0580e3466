"""Known outcomes of the candidate fixes, as the modelled paths produce them.

Nothing here is special-cased in the model: each verdict comes from an exhaustive
search of the scenario under the policy. Where the search contradicts a claim of
the history (a further failure), the test pins the finding and the strategy's
docstring explains it.
"""

from __future__ import annotations

import pytest

from mmsim.gup import FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE
from mmsim.strategies.longterm_write_ban import EFAULT, LongtermWriteBan
from tests.conftest import cached_check


def verdicts(scenario: str, policy: str, fs: str = "") -> dict[str, str]:
    result = cached_check(scenario, policy, fs)
    assert result.stats.complete, f"{scenario} under {policy}: search was cut"
    return {ov.oracle: ov.verdict for ov in result.per_oracle}


def test_baseline_races() -> None:
    assert verdicts("dio/001", "baseline")["nobuffers-writeback"] == "Sometimes"
    assert verdicts("dio/001", "baseline")["kernel-bug"] == "Sometimes"
    assert verdicts("dio/002", "baseline")["dirty-without-mkwrite"] == "Sometimes"


def test_ext4_warn_and_drop_trades_the_crash_for_a_lost_write() -> None:
    v = verdicts("dio/001", "ext4-warn-and-drop")
    assert v["kernel-bug"] == "Never"
    assert v["lost-write"] == "Sometimes"


def test_defer_release() -> None:
    v = verdicts("dio/001", "defer-release")
    assert v["kernel-bug"] == "Never"
    assert v["nobuffers-writeback"] == "Never"
    assert v["lost-write"] == "Never"
    # Reclaim was only the symptom: writeback still cleans the page mid-DIO and
    # completion re-dirties it without ->page_mkwrite.
    assert verdicts("dio/002", "defer-release")["dirty-without-mkwrite"] == "Sometimes"


def test_fault_on_dirty_prevents_both_races() -> None:
    v = verdicts("dio/001", "fault-on-dirty")
    assert v["kernel-bug"] == "Never"
    assert v["nobuffers-writeback"] == "Never"
    assert verdicts("dio/002", "fault-on-dirty")["dirty-without-mkwrite"] == "Never"


def test_pin_blocks_mkclean_fixes_the_races_but_hangs() -> None:
    # Neither race's oracle fires...
    assert verdicts("dio/001", "pin-blocks-mkclean")["nobuffers-writeback"] == "Never"
    assert verdicts("dio/002", "pin-blocks-mkclean")["dirty-without-mkwrite"] == "Never"
    # ...because writeback sleeps in page_mkclean holding the page lock, which DIO
    # completion's set_page_dirty_lock needs before it can drop its reference.
    assert verdicts("dio/002", "pin-blocks-mkclean")["deadlock"] == "Sometimes"
    # With kswapd spinning there is no state where nothing can run, but the wait
    # is just as endless.
    assert verdicts("dio/001", "pin-blocks-mkclean")["unbounded-wait"] == "Sometimes"


def test_pin_blocks_mkclean_waiting_before_the_lock() -> None:
    # No deadlock: the page lock is not held while waiting...
    v2 = verdicts("dio/002", "pin-blocks-mkclean-prelock")
    assert v2["deadlock"] == "Never"
    assert v2["dirty-without-mkwrite"] == "Never"
    # ...but reclaim's pageout() cleans the page through clear_page_dirty_for_io
    # with no such wait, and GUP can take a new reference between the wait and
    # lock_page: the seed crash comes back.
    assert (
        verdicts("dio/001", "pin-blocks-mkclean-prelock")["kernel-bug"] == "Sometimes"
    )


def test_pins_alone_change_nothing_and_reclaim_check_alone_misses_get() -> None:
    assert verdicts("dio/001", "dio-pin")["kernel-bug"] == "Sometimes"
    # FOLL_GET references are invisible to page_maybe_dma_pinned().
    assert verdicts("dio/001", "reclaim-skip-pinned")["kernel-bug"] == "Sometimes"


def test_upstream_6_4_keeps_the_seed_race_without_the_crash() -> None:
    # Direct I/O still takes FOLL_GET references (pinned DIO is v6.5), which
    # the v6.4 reclaim check cannot see; warn-and-drop turns the crash into a
    # lost write.
    v = verdicts("dio/001", "upstream-6.4")
    assert v["kernel-bug"] == "Never"
    assert v["nobuffers-writeback"] == "Sometimes"
    assert v["lost-write"] == "Sometimes"
    assert verdicts("dio/002", "upstream-6.4")["dirty-without-mkwrite"] == "Sometimes"


def test_upstream_6_5_closes_race_a_on_ext4_not_race_b() -> None:
    # Pinned DIO, the reclaim check, and no ->writepage for reclaim to call.
    assert verdicts("dio/001", "upstream-6.5") == dict.fromkeys(
        verdicts("dio/001", "upstream-6.5"), "Never"
    )
    assert verdicts("dio/002", "upstream-6.5")["dirty-without-mkwrite"] == "Sometimes"


@pytest.mark.usefixtures("counterfactuals")
def test_the_reclaim_check_misses_the_pageout_window_where_reclaim_writes() -> None:
    # Finding: the v6.4 check sits before pageout(); on its PAGE_SUCCESS path the
    # page is unlocked, can be faulted in and pinned again, and is then relocked
    # and stripped without a second check (see strategies/reclaim_skip_pinned.py).
    # Only where the filesystem still has a ->writepage: ext4 before v6.2.
    result = cached_check("dio/001", "pinned-dio-with-writepage")
    v = {ov.oracle: ov.verdict for ov in result.per_oracle}
    assert v["kernel-bug"] == "Never"
    assert v["nobuffers-writeback"] == "Sometimes"
    assert v["lost-write"] == "Sometimes"
    assert result.diagram is not None
    text = " ".join(result.diagram.split())
    # kswapd writes the page, the DIO pins it, and kswapd strips it anyway.
    order = [
        "pageout()",
        "try_grab_page()",
        "try_to_release_page() = True",
        "__remove_mapping() = False",
        # The read's completion dirties it, pinned (v6.5's __bio_release_pages).
        "set_page_dirty_lock()",
    ]
    pos = 0
    for item in order:
        found = text.find(item, pos)
        assert found >= 0, f"{item} missing or out of order"
        pos = found + len(item)


def test_fault_on_dirty_on_the_irq_paths() -> None:
    # AIO completion runs in interrupt context, but bio_check_pages_dirty defers
    # the re-dirtying to a workqueue: the fix's ->page_mkwrite step runs in
    # process context there, and the race is closed.
    v = verdicts("dio/003", "fault-on-dirty")
    assert v["sleep-in-atomic"] == "Never"
    assert v["kernel-bug"] == "Never"
    assert v["dirty-without-mkwrite"] == "Never"
    # A driver that calls plain set_page_dirty from its completion is not
    # covered by a fix placed in set_page_dirty_lock.
    assert verdicts("drv/002", "fault-on-dirty")["kernel-bug"] == "Sometimes"


def test_foll_get_drivers_escape_the_pin_based_fixes() -> None:
    assert verdicts("drv/001", "baseline")["kernel-bug"] == "Sometimes"
    v = verdicts("drv/001", "upstream-6.4")
    assert v["kernel-bug"] == "Never"
    assert v["lost-write"] == "Sometimes"
    # A fix that counts GUP references itself sees FOLL_GET too.
    assert verdicts("drv/001", "defer-release")["nobuffers-writeback"] == "Never"


def test_long_term_pins() -> None:
    # Every fsync under a live registration cleans the page; deregistration then
    # re-dirties it without ->page_mkwrite, whatever the kernel version.
    assert verdicts("rdma/001", "baseline")["dirty-without-mkwrite"] == "Always"
    assert verdicts("rdma/001", "upstream-6.4")["dirty-without-mkwrite"] == "Always"
    # Blocking page_mkclean on a long-term pin: fsync (and writeback) never return.
    assert verdicts("rdma/001", "pin-blocks-mkclean")["deadlock"] == "Always"


def test_longterm_write_ban_refuses_the_registration() -> None:
    result = cached_check("rdma/001", "upstream-6.5")
    per = {ov.oracle: ov for ov in result.per_oracle}
    assert per["pin-refused"].verdict == "Always"
    assert per["pin-refused"].regression
    # A refusal is a regression reported beside the correctness verdict.
    assert result.verdict == "Never"
    # The registered ban is v6.5's, where every long-term user pins ...
    assert verdicts("rdma/001", "longterm-write-ban")["pin-refused"] == "Always"
    # ... for it applies to pins only: a FOLL_GET registration is not refused.
    ban = LongtermWriteBan()

    def allowed(k: object, vma: object, flags: int) -> int:
        return 0

    get, pin = FOLL_LONGTERM | FOLL_WRITE, FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE
    assert ban.check_vma_flags(allowed, None, None, get) == 0  # type: ignore[arg-type]
    assert ban.check_vma_flags(allowed, None, None, pin) == -EFAULT  # type: ignore[arg-type]


def test_hole_punched_mid_dio() -> None:
    # Truncate removes the page whatever GUP holds; completion dirties an orphan
    # no writeback will see. No fix of the thread saves the data ...
    for policy in ("baseline", "fault-on-dirty", "defer-release", "upstream-6.4"):
        assert verdicts("dio/004", policy)["lost-write"] == "Sometimes", policy
    # ... and ext4 unmaps the buffers before freeing the block: nothing is ever
    # written into the block file3 reuses.
    for policy in ("baseline", "fault-on-dirty", "upstream-6.4"):
        assert verdicts("dio/004", policy)["foreign-block-write"] == "Never", policy


def test_truncate_mid_dio() -> None:
    # ftruncate instead of a hole punch: the same orphan, on both filesystems
    # with a page cache. Layout leases bind long-term pinners only, so they do
    # not help a short DIO either.
    for fs in ("ext4", "iomap"):
        for policy in ("baseline", "upstream-6.4", "layout-lease"):
            v = verdicts("dio/006", policy, fs)
            assert v["lost-write"] == "Sometimes", (policy, fs)
            assert v["foreign-block-write"] == "Never", (policy, fs)


def test_iomap_has_no_crash_but_the_same_root_cause() -> None:
    # XFS/iomap needs no per-page state at writeback: no crash, no loss ...
    v = verdicts("dio/001", "baseline", "iomap")
    assert v["kernel-bug"] == "Never"
    assert v["lost-write"] == "Never"
    # ... but the page is still dirtied behind ->page_mkwrite's back, and a
    # punched range is skipped silently at writeback.
    assert (
        verdicts("dio/002", "baseline", "iomap")["dirty-without-mkwrite"] == "Sometimes"
    )
    assert verdicts("dio/004", "baseline", "iomap")["lost-write"] == "Sometimes"


def test_cow_writeback_without_reservation() -> None:
    assert verdicts("cow/001", "baseline")["unreserved-writeback"] == "Sometimes"
    # Keeping the buffers does nothing for space: the re-dirtying reserved none.
    assert verdicts("cow/001", "defer-release")["unreserved-writeback"] == "Sometimes"
    # A ->page_mkwrite-like step at completion reserves it.
    assert verdicts("cow/001", "fault-on-dirty")["unreserved-writeback"] == "Never"
    # Skipping pinned pages only in background writeback: an fsync mid-I/O still
    # cleans the pinned page (bounced), and the unpin re-dirties it unreserved.
    v = verdicts("cow/001", "writeback-skip-bounce")
    assert v["unreserved-writeback"] == "Sometimes"


def test_fault_on_dirty_loses_the_write_on_a_full_filesystem() -> None:
    # The read returned success; the ->page_mkwrite step at completion then
    # finds no space, and the data is dropped.
    v = verdicts("enospc/001", "fault-on-dirty")
    assert v["lost-write"] == "Sometimes"
    assert v["unreserved-writeback"] == "Never"
    assert verdicts("enospc/001", "baseline")["lost-write"] == "Sometimes"


def test_dax_break_layouts_never_writes_a_reused_block() -> None:
    assert verdicts("dax/001", "baseline")["foreign-block-write"] == "Sometimes"
    v = verdicts("dax/001", "dax-break-layouts")
    assert v["foreign-block-write"] == "Never"
    assert v["unbounded-wait"] == "Never"


def test_dax_long_term_pins() -> None:
    # v4.15 already refuses FOLL_LONGTERM on fs-dax: a regression, always.
    assert verdicts("dax/002", "baseline")["pin-refused"] == "Always"
    # Layout leases grant the pin and refuse the truncate instead.
    v = verdicts("dax/002", "layout-lease")
    assert v["pin-refused"] == "Never"
    assert v["request-refused"] == "Sometimes"
    assert v["foreign-block-write"] == "Never"


def test_long_term_pin_against_truncate() -> None:
    # The orphaned registration takes the peer's write; the file never sees it.
    assert verdicts("rdma/002", "baseline")["lost-write"] == "Sometimes"
    v = verdicts("rdma/002", "layout-lease")
    assert v["lost-write"] == "Never"
    assert v["request-refused"] == "Sometimes"
    # Failing fsync under a long-term pin is a regression outcome.
    assert verdicts("rdma/002", "wait-for-unpin")["request-refused"] == "Sometimes"


def test_repeated_short_pins_starve_fsync() -> None:
    # Waiting with the page locked deadlocks against DIO completion ...
    assert verdicts("dio/005", "pin-blocks-mkclean")["deadlock"] == "Sometimes"
    # ... and every fix that waits without the lock can be starved.
    for policy in (
        "pin-blocks-mkclean-prelock",
        "wait-for-unpin",
        "refcount-idle-wakeup",
    ):
        assert verdicts("dio/005", policy)["starvation"] == "Sometimes", policy
    assert verdicts("dio/005", "baseline")["starvation"] == "Never"


def test_false_positive_pins() -> None:
    # 1024 ordinary references look pinned: reclaim merely skips the page ...
    assert verdicts("ref/001", "upstream-6.4")["lost-write"] == "Never"
    # ... but a fix that waits for "pins" to go waits for ever.
    assert verdicts("ref/001", "wait-for-unpin")["deadlock"] == "Sometimes"
