"""fs/ext4: writeback of a page that truncate has put past EOF."""

from __future__ import annotations

import pytest

from mmsim.ext4.inode import ext4_writepages
from mmsim.fs import SyncMode, WritebackControl
from mmsim.machine import Kernel
from mmsim.policy import load_policy
from mmsim.scenario_spec import FileSpec, MappingSpec, ScenarioSpec, Store, build
from tests.conftest import finish


def _delalloc_page() -> Kernel:
    """A store over a hole has left the page dirty with a delayed buffer."""
    spec = ScenarioSpec(
        id="test/201",
        title="a store over a hole",
        oracles=["kernel-bug"],
        files=[FileSpec(name="f", blocks=[])],
        mapping=MappingSpec(file="f"),
        tasks=[Store(kind="store")],
    )
    k = build(spec, load_policy("baseline"))
    while not k.finished():
        k.step(k.enabled()[0])
    (bh,) = k.inodes[0].mapping.pages[0].private
    assert bh.delay
    assert bh.dirty
    return k


@pytest.mark.parametrize("truncated", [False, True])
def test_writeback_allocates_and_writes_nothing_past_eof(truncated: bool) -> None:
    """In the window where truncate has shrunk ``i_size`` but not yet removed
    the page, ext4 writeback maps no block for it (``mpage_process_page_bufs``
    stops at EOF) and writes none (``ext4_bio_write_page``'s ``len`` is 0)."""
    k = _delalloc_page()
    inode = k.inodes[0]
    page = inode.mapping.pages[0]
    if truncated:
        inode.size = 0  # truncate_setsize(), before truncate_pagecache()
    wbc = WritebackControl(sync_mode=SyncMode.WB_SYNC_ALL)
    finish(ext4_writepages(k, inode.key, wbc))
    assert not page.dirty
    (bh,) = page.private
    assert not bh.dirty
    if truncated:
        assert inode.blocks == {}
        assert k.vmstat.get("nr_block_alloc", 0) == 0
        assert not any(k.bios)
        assert not page.writeback
    else:
        assert list(inode.blocks) == [0]
        assert any(k.bios)  # the write, submitted
