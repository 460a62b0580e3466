"""fault-on-dirty: set_page_dirty_lock runs a ->page_mkwrite-like step first.

Proposal: Jan Kara, 3 Jan 2018, idea (a): "We could 'simulate' a writeable page
fault in set_page_dirty_lock(). It is a bit ugly since we don't have a virtual
address of the fault, don't hold mmap_sem, etc., possibly expensive, but it would
make filesystems happy"
(https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/).
Status: idea only; never posted as a patch.

Model: after ``lock_page``, the filesystem's ``->page_mkwrite`` preparation runs
(``prepare_write``: on ext4 ``__block_write_begin`` with
``ext4_da_get_block_prep`` and ``block_commit_write``; on XFS the iomap
reservation; on btrfs ``btrfs_delalloc_reserve_space``), then
``set_page_dirty``. It may sleep (block
allocation, journal start: ``might_sleep``), which is illegal where completion
runs in interrupt context, and it may fail with ENOSPC after the I/O has already
reported success to the user: the data is then dropped.

Objections: Jan himself: no VMA or address, no mmap_sem, expensive; data written
by the GUP user is still lost "if someone e.g. punched hole under the buffer".
``->page_mkwrite`` takes ``sb_start_pagefault``, the invalidate lock and journal
credits: lock inversion is likely when called with other locks held; and
``ext4_set_page_dirty`` "may be called in softirq context", where buffers cannot
be reconstructed (Jan Kara, Jan 2024).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.filemap import lock_page, unlock_page
from mmsim.page_writeback import set_page_dirty
from mmsim.policy import Objection, Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page


class FaultOnDirty(Policy):
    """set_page_dirty_lock prepares the page as ->page_mkwrite would."""

    name = "fault-on-dirty"
    summary = "set_page_dirty_lock simulates a write fault (->page_mkwrite) first"
    status = "idea only (Jan Kara, Jan 2018)"
    link = "https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/"
    kernel_version = "v4.15 + proposal"
    filesystems = ("ext4", "iomap", "cow")
    filesystems_why = "fs-dax has no page cache and no dirty pages to prepare"
    objections = (
        Objection(
            who="Jan Kara, Jan 2018",
            said="data written by the GUP user is still lost if someone punched a hole under the buffer",
            scenario="dio/004",
            oracle="lost-write",
        ),
        Objection(
            who="Jan Kara, Jan 2024",
            said="set_page_dirty may be called in softirq context, where buffers cannot be reconstructed",
            scenario="dio/003",
            oracle="sleep-in-atomic",
        ),
        Objection(
            who="Gavin Guo, Apr 2018",
            said="other dirtying paths exist: drivers call set_page_dirty directly, past set_page_dirty_lock",
            scenario="drv/002",
            oracle="kernel-bug",
        ),
        Objection(
            who="Jan Kara, Jan 2018",
            said="it is expensive: a ->page_mkwrite at every completion",
            workload="db-dio",
            metric="sim_ms",
        ),
        Objection(
            who="the 2018 thread (unattributed in our notes)",
            said="the reservation can fail with ENOSPC after the I/O reported success",
            scenario="enospc/001",
            oracle="lost-write",
            fs="cow",
        ),
    )

    def set_page_dirty_lock(self, nxt: Any, k: Kernel, page: Page) -> Path:
        yield from lock_page(k, page)
        mapping = page.mapping
        if mapping is not None:
            k.might_sleep("fault-on-dirty: ->page_mkwrite")
            yield  # block allocation and the journal may sleep
            err = mapping.a_ops.prepare_write(k, page)
            if err:
                # The I/O already told the user it succeeded; the data is dropped.
                k.warn(
                    "fault-on-dirty",
                    f"->page_mkwrite failed ({err}) after the I/O completed",
                )
                unlock_page(k, page)
                return False
        ret = set_page_dirty(k, page)
        unlock_page(k, page)
        return ret
