"""mm/memory.c: two write faults on one PTE, and what each leaves mapped; every
path keeps a page's _mapcount to the PTEs that map it."""

from __future__ import annotations

import random

import pytest

from mmsim._api import machine_factory
from mmsim.engine import Machine, Oracle
from mmsim.explorer import Bounds, explore, settle
from mmsim.filemap import VM_FAULT_NOPAGE
from mmsim.machine import Kernel
from mmsim.memory import handle_mm_fault
from mmsim.policy import load_policy
from mmsim.report import cells
from mmsim.scenario_spec import (
    FileSpec,
    Flusher,
    Kswapd,
    MappingSpec,
    ScenarioSpec,
    Store,
    build,
)


class _MapcountIsPtes(Oracle):
    """Every page's ``_mapcount`` is the number of PTEs that map it."""

    id = "test-mapcount-is-ptes"

    def after_step(self, m: Machine) -> str | None:
        assert isinstance(m, Kernel)
        for page in m.frames:
            ptes = sum(
                1 for v in m.vmas for p in v.ptes if p.present and p.page is page
            )
            if page.mapcount != ptes:
                return f"page {page.key}: _mapcount {page.mapcount}, {ptes} PTEs"
        return None


def _two_stores(*, daemons: bool) -> Kernel:
    tasks: list[Store | Flusher | Kswapd] = [Store(kind="store"), Store(kind="store")]
    if daemons:
        tasks += [Flusher(kind="flusher"), Kswapd(kind="kswapd")]
    spec = ScenarioSpec(
        id="test/001",
        title="two threads store into one mapped page",
        oracles=["kernel-bug"],
        files=[FileSpec(name="f", blocks=[0], cached=[0])],
        mapping=MappingSpec(file="f"),
        tasks=list(tasks),
    )
    k = build(spec, load_policy("baseline"))
    k.install_oracles([_MapcountIsPtes()])
    return k


def test_the_fault_that_loses_the_race_maps_nothing() -> None:
    """alloc_set_pte() re-checks the PTE under the page-table lock: the second
    of two faults that both found no PTE returns VM_FAULT_NOPAGE and drops its
    page reference and lock, so the page stays mapped once."""
    k = _two_stores(daemons=False)
    page = k.frames[0]
    vma = k.vmas[0]
    first = handle_mm_fault(k, vma, 0, True)
    second = handle_mm_fault(k, vma, 0, True)
    next(first)  # ->fault found the page; both stop before ->page_mkwrite
    next(second)
    with pytest.raises(StopIteration) as won:
        next(first)
    with pytest.raises(StopIteration) as lost:
        next(second)
    assert won.value.value == 0
    assert lost.value.value == VM_FAULT_NOPAGE
    assert page.mapcount == 1
    # The page cache's reference, the buffers' (->page_mkwrite attached them)
    # and the PTE's: the losing fault's own reference was put.
    assert page.private is not None
    assert page.refcount == 3
    assert not page.locked


@pytest.mark.parametrize("daemons", [False, True])
def test_no_interleaving_maps_a_page_more_often_than_its_ptes(daemons: bool) -> None:
    """Before the re-check, two racing faults each added a mapping: _mapcount
    grew without bound as kswapd unmapped one and the stores faulted again, so
    the state space of two DIO readers had no end."""
    result = explore(lambda: _two_stores(daemons=daemons), Bounds(max_steps=200))
    assert result.stats.complete
    assert result.oracles[_MapcountIsPtes.id].verdict == "Never"


def test_every_cell_keeps_mapcount_to_its_ptes() -> None:
    """Random runs of every cell of the report (scenario, policy, filesystem),
    and of two DIO readers faulting the same page, checked after each step: no
    path maps or unmaps a page without its PTE."""
    check = _MapcountIsPtes()
    runs = [(cell, {}, 3) for cell in cells()]
    runs.append((("dio/001", "baseline", "ext4"), {"readers": 2}, 30))
    for (scenario, policy, fs), params, seeds in runs:
        make, _, _ = machine_factory(scenario, policy, fs=fs, params=params)
        for seed in range(seeds):
            rng = random.Random(seed)
            m = make()
            for _ in range(400):
                enabled = m.enabled()
                if not enabled:
                    break
                m.step(rng.choice(enabled))
                where = f"{scenario} {params} {policy} {fs} seed {seed}"
                assert check.after_step(m) is None, where
                if settle(m) != "running":
                    break


def test_a_read_fault_is_refused_rather_than_run_as_a_write_fault() -> None:
    """``do_read_fault`` is not modelled: a read fault on a missing PTE must not
    go to ``do_shared_fault``, which would call ``->page_mkwrite`` and dirty
    the page as no read does."""
    make, _, _ = machine_factory("dio/001", "baseline")
    k = make()
    assert isinstance(k, Kernel)
    vma = k.vmas[0]
    assert not vma.ptes[0].present
    with pytest.raises(NotImplementedError, match="do_read_fault"):
        next(handle_mm_fault(k, vma, 0, False))
    assert not k.inodes[0].mapping.pages[0].dirty
