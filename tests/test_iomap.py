"""fs/iomap: writeback of a page that truncate has put past EOF."""

from __future__ import annotations

from mmsim.fs import SyncMode, WritebackControl
from mmsim.machine import Kernel
from mmsim.policy import load_policy
from mmsim.scenario_spec import FileSpec, MappingSpec, ScenarioSpec, Store, build
from tests.conftest import finish


def test_a_page_past_eof_is_redirtied_not_written() -> None:
    """``iomap_do_writepage`` keeps a page wholly past EOF dirty ("so that
    reclaim stops reclaiming it") and writes nothing: truncate removes it."""
    spec = ScenarioSpec(
        id="test/202",
        title="a store, then truncate's window",
        oracles=["kernel-bug"],
        files=[FileSpec(name="f", blocks=[0])],
        mapping=MappingSpec(file="f"),
        tasks=[Store(kind="store")],
    )
    k = build(spec, load_policy("baseline"), fs="iomap")
    assert isinstance(k, Kernel)
    while not k.finished():
        k.step(k.enabled()[0])
    inode = k.inodes[0]
    page = inode.mapping.pages[0]
    assert page.dirty
    inode.size = 0  # truncate_setsize(), before truncate_pagecache()
    wbc = WritebackControl(sync_mode=SyncMode.WB_SYNC_ALL)
    finish(inode.mapping.a_ops.writepages(k, inode.key, wbc))
    assert page.dirty
    assert not page.writeback
    assert not page.locked
    assert not any(k.bios)
    assert k.vmstat.get("nr_redirtied") == 1
