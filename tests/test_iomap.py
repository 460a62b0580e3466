"""fs/iomap: writeback of a page that truncate has put past EOF, and direct reads."""

from __future__ import annotations

import pytest

from mmsim.engine import Task
from mmsim.fs import SyncMode, WritebackControl
from mmsim.machine import Kernel
from mmsim.oracles import make_oracles
from mmsim.policy import load_policy
from mmsim.scenario_spec import (
    DioRead,
    FileSpec,
    Flusher,
    MappingSpec,
    ScenarioSpec,
    Store,
    build,
)
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


def _race_b(policy: str, fs: str) -> Kernel:
    """Race B: file1's page cached clean and mapped; a read of file2 into it,
    and the flusher."""
    spec = ScenarioSpec(
        id="test/203",
        title="race B",
        oracles=["dirty-without-mkwrite"],
        files=[
            FileSpec(name="file1", blocks=[0], cached=[0]),
            FileSpec(name="file2", blocks=[1]),
        ],
        mapping=MappingSpec(file="file1"),
        tasks=[DioRead(kind="dio-read", src="file2"), Flusher(kind="flusher")],
    )
    k = build(spec, load_policy(policy), fs=fs)
    assert isinstance(k, Kernel)
    k.install_oracles(make_oracles(["dirty-without-mkwrite"]))
    return k


def _task(k: Kernel, name: str) -> Task:
    (task,) = (t for t in k.tasks if t.name == name and not t.done)
    return task


def _submit(k: Kernel) -> Task:
    """Step the reader until its read is in flight; returns the reader."""
    reader = _task(k, "read(O_DIRECT)")
    while not any(b is not None and not b.write for b in k.bios):
        k.step(reader.tid)
    return reader


@pytest.mark.parametrize(
    ("policy", "fs", "iomap"),
    [
        ("baseline", "ext4", False),
        ("iomap-dio", "ext4", True),
        ("iomap-dio", "cow", True),
        ("upstream-6.5", "ext4", True),
        ("baseline", "iomap", True),
        ("baseline", "cow", False),
    ],
)
def test_a_read_still_dirty_at_completion_is_released_by_the_interrupt(
    policy: str, fs: str, iomap: bool
) -> None:
    """Through iomap the interrupt releases a page that is still dirty
    (``bio_check_pages_dirty``), with no workqueue; fs/direct-io.c's reader
    dirties and releases it itself once woken (``dio_bio_complete``). Either
    way the page ends dirty, the read's data due."""
    k = _race_b(policy, fs)
    reader = _submit(k)
    page = k.inodes[0].mapping.pages[0]
    assert page.dirty  # GUP's write fault dirtied it (``bio_set_pages_dirty``: no-op)
    assert any(k.dios) is iomap
    refs = page.refcount
    k.step(_task(k, "irq:read").tid)
    assert (page.refcount < refs) is iomap
    assert any(k.bios) is not iomap
    assert not any(t.kind == "kworker" for t in k.tasks)
    while not reader.done:
        k.step(reader.tid)
    assert page.dirty
    assert not any(k.bios)
    assert not any(k.dios)
    assert k.expected[(k.inodes[0].key, 0)] == k.disk.data[1]
    assert not k.violations


@pytest.mark.parametrize(
    ("policy", "fs"),
    [("iomap-dio", "ext4"), ("iomap-dio", "cow"), ("baseline", "iomap")],
)
def test_a_page_cleaned_mid_read_is_redirtied_after_the_read_returns(
    policy: str, fs: str
) -> None:
    """Writeback cleans the page while the read is in flight. The interrupt
    wakes the reader, whose read returns with the page clean, and hands the
    page to the ``bio_dirty_work`` workqueue, which re-dirties it without
    ``->page_mkwrite``: race B, by iomap's own route."""
    k = _race_b(policy, fs)
    reader = _submit(k)
    page = k.inodes[0].mapping.pages[0]
    flusher = _task(k, "flush-8:0")
    while not page.writeback:
        k.step(flusher.tid)
    k.step(_task(k, "irq:write").tid)
    assert not page.dirty
    k.step(_task(k, "irq:read").tid)
    worker = _task(k, "kworker:bio_dirty_fn")
    assert any(k.bios)  # the workqueue holds the bio, and the page
    while not reader.done:
        k.step(reader.tid)
    assert not page.dirty
    assert not any(k.dios)
    while not worker.done:
        k.step(worker.tid)
    assert page.dirty
    assert not any(k.bios)
    assert [v.oracle for v in k.violations] == ["dirty-without-mkwrite"]
