"""Each oracle on hand-built states."""

from __future__ import annotations

from pathlib import Path

import mmsim
from mmsim.ext4 import Ext4
from mmsim.filemap import add_to_page_cache_lru
from mmsim.machine import Kernel
from mmsim.mm_types import BufferHead, Page
from mmsim.oracles import (
    DirtiedOutsideMkwrite,
    LostWrite,
    NoBuffersAtWriteback,
    make_oracles,
)


def _machine() -> tuple[Kernel, Page]:
    k = Kernel()
    inode = k.add_inode("f", Ext4(), 4096)
    inode.blocks[0] = 0
    k.disk.owner[0] = (inode.key, 0)
    page = k.alloc_page()
    assert page is not None
    add_to_page_cache_lru(k, page, inode.mapping, 0)
    page.locked = False
    page.uptodate = True
    return k, page


def test_nobuffers_fires_on_a_page_without_buffers() -> None:
    k, page = _machine()
    k.install_oracles([NoBuffersAtWriteback()])
    page.dirty = True
    k.tracepoint("wbc_writepage", page)
    assert [v.oracle for v in k.violations] == ["nobuffers-writeback"]
    assert "file1" not in k.violations[0].message
    assert "f:0" in k.violations[0].message


def test_nobuffers_quiet_with_buffers() -> None:
    k, page = _machine()
    k.install_oracles([NoBuffersAtWriteback()])
    page.dirty = True
    page.private = [BufferHead(key=0, mapped=True, dirty=True, blocknr=0)]
    k.tracepoint("wbc_writepage", page)
    assert k.violations == []


def test_nobuffers_ignores_other_tracepoints() -> None:
    k, page = _machine()
    k.install_oracles([NoBuffersAtWriteback()])
    k.tracepoint("writeback_dirty_page", page)
    assert k.violations == []


def test_root_cause_needs_mkwrite_in_this_epoch() -> None:
    k, page = _machine()
    k.install_oracles([DirtiedOutsideMkwrite()])
    page.mkwrite = True
    k.tracepoint("writeback_dirty_page", page)
    assert k.violations == []
    page.mkwrite = False  # clear_page_dirty_for_io ended the epoch
    k.tracepoint("writeback_dirty_page", page)
    assert [v.oracle for v in k.violations] == ["dirty-without-mkwrite"]


def test_lost_write_compares_disk_with_last_completed_write() -> None:
    k, _ = _machine()
    k.install_oracles([LostWrite()])
    k.expected[(0, 0)] = 5
    k.disk.data[0] = 5
    k.run_to_end()
    assert k.violations == []
    k2, _ = _machine()
    k2.install_oracles([LostWrite()])
    k2.expected[(0, 0)] = 5
    k2.disk.data[0] = 4
    k2.run_to_end()
    assert [v.oracle for v in k2.violations] == ["lost-write"]
    assert "version 4" in k2.violations[0].message


def test_lost_write_after_final_sync_writes_dirty_page() -> None:
    # A dirty page with buffers holding the expected version: the final sync
    # writes it, so nothing is lost.
    k, page = _machine()
    k.install_oracles(make_oracles(["lost-write"]))
    page.private = [
        BufferHead(key=0, mapped=True, dirty=True, uptodate=True, blocknr=0)
    ]
    page.refcount += 1
    page.dirty = True
    page.data = 9
    k.expected[(0, 0)] = 9
    k.run_to_end()
    assert k.violations == []
    assert k.disk.data[0] == 9


def test_unknown_oracle_is_a_clear_error() -> None:
    import pytest

    from mmsim.oracles import OracleError

    with pytest.raises(OracleError, match="unknown oracle 'nope'"):
        make_oracles(["nope"])


_DELALLOC_PAGED_OUT = """
id = "test/101"
title = "a store over a hole, then kswapd pages the page out"
oracles = ["dirty-without-mkwrite"]
filesystems = ["ext4"]

[machine]
frames = 2
blocks = 4

[[files]]
name = "file1"
blocks = []

[mapping]
file = "file1"

[[tasks]]
kind = "store"

[[tasks]]
kind = "kswapd"
"""


def test_root_cause_ignores_a_writepage_that_redirties_its_own_page(
    tmp_path: Path,
) -> None:
    """``ext4_writepage`` cannot allocate a delalloc page from reclaim: it puts
    back the dirt ``clear_page_dirty_for_io`` took (``redirty_page_for_writepage``),
    reservation intact. No dirtying behind ``->page_mkwrite``'s back, though the
    page goes clean → dirty with its mkwrite epoch ended."""
    scenario = tmp_path / "delalloc.toml"
    scenario.write_text(_DELALLOC_PAGED_OUT)
    result = mmsim.check(str(scenario), goals=["nr_redirtied"])
    assert result.coverage.goals == {"nr_redirtied": True}  # the redirty ran
    verdicts = {v.oracle: v.verdict for v in result.per_oracle}
    assert verdicts["dirty-without-mkwrite"] == "Never"
