"""fs/buffer.c: try_to_free_buffers and the page's dirty bit."""

from __future__ import annotations

import pytest

from mmsim._api import machine_factory
from mmsim.buffer import create_empty_buffers, try_to_free_buffers
from mmsim.machine import Kernel


@pytest.mark.parametrize("orphan", [False, True])
def test_freeing_clean_buffers_of_a_dirty_page_cancels_the_dirt_but_an_orphans(
    orphan: bool,
) -> None:
    """Clean buffers under a dirty page: ``cancel_dirty_page``, which uncounts
    the dirty page (``account_page_cleaned``), unless the page has no mapping
    (an orphan: v4.15 only drops its buffers)."""
    make, _, _ = machine_factory("dio/001", "baseline")
    k = make()
    assert isinstance(k, Kernel)
    page = k.inodes[0].mapping.pages[0]
    create_empty_buffers(k, page)  # clean, as the page is
    page.dirty = True
    if orphan:
        page.mapping = None
    dirty = k.vmstat.get("nr_dirty", 0)
    assert try_to_free_buffers(k, page)
    assert page.private is None
    assert page.dirty is orphan
    assert k.vmstat.get("nr_dirty", 0) == dirty - (not orphan)
