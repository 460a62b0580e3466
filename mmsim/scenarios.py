"""Scenarios: tasks, an initial state and the oracles that judge them.

Ids follow xfstests (``dio/001``); groups (``quick``, …) select sets of them.
A scenario's ``build`` makes a fresh :class:`~mmsim.machine.Kernel` for a policy;
the explorer calls it again for every replay, so it must be deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from mmsim.direct_io import do_blockdev_direct_IO
from mmsim.ext4 import Ext4
from mmsim.filemap import add_to_page_cache_lru
from mmsim.fs_writeback import wb_workfn
from mmsim.machine import Kernel
from mmsim.policy import Policy
from mmsim.vmscan import kswapd

__all__ = ["SCENARIOS", "Scenario", "ScenarioError", "get_scenario"]

PAGE_SIZE = 4096


class ScenarioError(ValueError):
    """An unknown or malformed scenario."""


@attrs.frozen
class Scenario:
    """A named, reproducible situation to explore."""

    id: str
    title: str
    description: str
    groups: tuple[str, ...]
    oracles: tuple[str, ...]
    build: Callable[[tuple[Policy, ...]], Kernel]
    #: Filesystem personalities the scenario can run on.
    filesystems: tuple[str, ...] = ("ext4",)


def _seed_race(policies: tuple[Policy, ...], *, reclaim: bool) -> Kernel:
    """Jan Kara's set-up: file1 mapped MAP_SHARED, O_DIRECT read from file2 into it.

    file1's page 0 is cached, uptodate, clean, on the LRU and not yet mapped (the
    first touch is the DIO's GUP, which faults it in); it has no buffers, as
    ``mpage_readpage`` leaves it. Both files' blocks are allocated. The flusher
    always runs; kswapd runs when ``reclaim`` is set, under dirty pressure
    (PGDAT_DIRTY), so it may write a dirty page itself.
    """
    k = Kernel(policies, nr_frames=2, nr_blocks=4, pgdat_dirty=True)
    fs = Ext4()
    file1 = k.add_inode("file1", fs, PAGE_SIZE)
    file2 = k.add_inode("file2", fs, PAGE_SIZE)
    for inode, blk, version in ((file1, 0, 1), (file2, 1, 2)):
        k.disk.owner[blk] = (inode.key, 0)
        k.disk.data[blk] = version
        inode.blocks[0] = blk
    page = k.alloc_page()
    assert page is not None
    add_to_page_cache_lru(k, page, file1.mapping, 0)
    k.ops.put_page(k, page)  # the allocation reference; the cache keeps its own
    page.locked = False
    page.uptodate = True
    page.data = 1
    k.next_version = 3
    vma = k.add_vma(file1.mapping, 1)
    k.spawn("read(O_DIRECT)", "dio", do_blockdev_direct_IO(k, file2, 0, vma, 0))
    k.spawn("flush-8:0", "flusher", wb_workfn(k), daemon=True)
    if reclaim:
        k.spawn("kswapd0", "kswapd", kswapd(k), daemon=True)
    return k


SCENARIOS: dict[str, Scenario] = {
    s.id: s
    for s in (
        Scenario(
            id="dio/001",
            title="DIO read into a MAP_SHARED page, with writeback and reclaim (race A)",
            description=(
                "Jan Kara, 3 Jan 2018: read(fd2, addr) with O_DIRECT where addr maps "
                "file1 MAP_SHARED. The flusher cleans the page mid-read, kswapd strips "
                "its buffers and fails to free it, and DIO completion re-dirties a "
                "page with no buffers."
            ),
            groups=("quick", "dio", "seed"),
            oracles=("nobuffers-writeback", "lost-write"),
            build=lambda p: _seed_race(p, reclaim=True),
        ),
        Scenario(
            id="dio/002",
            title="DIO read into a MAP_SHARED page, with writeback only (race B)",
            description=(
                "Jan Kara, 4 Jan 2018: no reclaim needed. Writeback's "
                "clear_page_dirty_for_io write-protects the page mid-read; DIO "
                "completion re-dirties it without ->page_mkwrite."
            ),
            groups=("quick", "dio", "seed"),
            oracles=("dirty-without-mkwrite",),
            build=lambda p: _seed_race(p, reclaim=False),
        ),
    )
}


def get_scenario(scenario_id: str) -> Scenario:
    """Look a built-in scenario up by id, with a clear error for an unknown one."""
    try:
        return SCENARIOS[scenario_id]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ScenarioError(
            f"unknown scenario {scenario_id!r} (known: {known})"
        ) from None
