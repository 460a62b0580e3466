"""mm/filemap.c: the page fault on a file mapping."""

from __future__ import annotations

import pytest

from mmsim._api import machine_factory
from mmsim.engine import Wait
from mmsim.filemap import (
    VM_FAULT_LOCKED,
    VM_FAULT_SIGBUS,
    __filemap_fdatawait_range,
    filemap_fault,
)
from mmsim.machine import Kernel
from tests.conftest import finish


@pytest.mark.parametrize("truncated", [False, True])
def test_a_fault_rechecks_the_file_size_under_the_page_lock(truncated: bool) -> None:
    """A truncate that shrank ``i_size`` while the fault slept on the page lock,
    but has not yet taken the page out of the cache: SIGBUS, page released."""
    make, _, _ = machine_factory("dio/001", "baseline")
    k = make()
    assert isinstance(k, Kernel)
    mapping = k.inodes[0].mapping
    page = mapping.pages[0]
    page.locked = True  # someone else holds it: the fault sleeps
    refs = page.refcount
    fault = filemap_fault(k, mapping, 0)
    assert isinstance(next(fault), Wait)
    if truncated:
        mapping.host.size = 0  # truncate_setsize(), before truncate_pagecache()
    page.locked = False
    ret = finish(fault)
    if truncated:
        assert ret == (VM_FAULT_SIGBUS, None)
        assert not page.locked
        assert page.refcount == refs
    else:
        assert ret == (VM_FAULT_LOCKED, page)
        assert page.locked
        assert page.refcount == refs + 1


def test_fsync_waits_holding_a_reference_on_each_page_it_looked_up() -> None:
    """``__filemap_fdatawait_range`` looks up the pages under writeback once,
    with a reference each (reclaim cannot free them meanwhile), and waits for
    each in turn."""
    make, _, _ = machine_factory("dio/001", "baseline")
    k = make()
    assert isinstance(k, Kernel)
    mapping = k.inodes[0].mapping
    page = mapping.pages[0]
    page.writeback = True
    refs = page.refcount
    wait = __filemap_fdatawait_range(k, mapping)
    assert isinstance(next(wait), Wait)
    assert page.refcount == refs + 1  # pagevec_lookup_range_tag's reference
    page.writeback = False
    finish(wait)
    assert page.refcount == refs  # pagevec_release
