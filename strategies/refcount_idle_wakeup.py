"""refcount-idle-wakeup: wait for a page's refcount to fall to its idle value.

Proposal: Dan Williams, 3 Jan 2018, in reply to Jan Kara: "maybe DAX and
non-DAX can share the page count == 1 event notification"; the DAX pgmap hook
at ``put_page()`` "should move over to a new address_space_operation", and DIO
"would need a special case put_page that checks for count == 1"
(https://lore.kernel.org/linux-mm/CAPcyv4grBxGs0cnFVyRx29t0xhG5EBTy_nP=qhsVh5=8nusNsw@mail.gmail.com/).
Status: proposed only; the DAX half exists (``dax_layout_busy_page``, v4.18).

Model: a page-cache page is idle when it holds no references beyond those its
state explains: the page cache's, one per PTE mapping, one for buffers, and
the waiter's own (writeback's pagevec reference, reclaim's isolation
reference). Writeback waits for idle before it locks the page; truncate and
hole punch wait for every page of the file to be idle (at ``break_layouts``);
reclaim keeps a page that is not idle (kswapd does not sleep on one page: a
keep is its wait). Every ``put_page`` checks whether the page fell to idle (the
"new address_space_operation" that wakes the waiters; ``page_idle_wakeups``
counts the checks that fired).

Objections: Jan Kara, 4 Jan 2018: "page references are of no use here": the
races need no truncate, only writeback, and a plain refcount cannot tell a GUP
reference from a transient one (page-cache lookups, GUP-fast's speculative get,
LRU isolation), so waits are spurious or endless; "indefinite sleep is really a
no-go" with long-term users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.policy import Objection, Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Page


def page_busy(page: Page, own: int) -> bool:
    """Whether ``page`` holds references beyond its idle value and ``own``."""
    idle = int(page.mapping is not None) + page.mapcount + int(page.private is not None)
    return page.refcount - own > idle


class RefcountIdleWakeup(Policy):
    """Writeback, truncate and reclaim wait for an idle page refcount."""

    name = "refcount-idle-wakeup"
    summary = "writeback/truncate/reclaim wait for an idle refcount; puts wake them"
    status = "proposed (Dan Williams, Jan 2018); DAX half merged v4.18"
    link = "https://lore.kernel.org/linux-mm/CAPcyv4grBxGs0cnFVyRx29t0xhG5EBTy_nP=qhsVh5=8nusNsw@mail.gmail.com/"
    kernel_version = "v4.15 + proposal"
    events = ("page_idle_wakeups",)
    filesystems = ("ext4", "iomap", "cow")
    filesystems_why = (
        "on fs-dax the idle wait is dax-break-layouts, which exists; this is its "
        "page-cache twin"
    )
    objections = (
        Objection(
            who="Jan Kara, 4 Jan 2018",
            said="a plain refcount cannot tell GUP from transient references, so waits are spurious or endless",
            scenario="dio/001",
            oracle="deadlock",
        ),
        Objection(
            who="Jan Kara, 4 Jan 2018",
            said="page references are of no use here: the races need only writeback",
            scenario="dio/002",
            oracle="dirty-without-mkwrite",
        ),
        Objection(
            who="Jan Kara, Jan 2018",
            said="indefinite sleep is a no-go with long-term users",
            scenario="rdma/001",
            oracle="deadlock",
        ),
    )

    def writeback_before_lock(
        self, nxt: Any, k: Kernel, page: Page, wbc: WritebackControl
    ) -> Path:
        if page_busy(page, 1):
            yield k.wait_for_pins(
                lambda: not page_busy(page, 1), "writeback: wait for an idle page"
            )
        return (yield from nxt(k, page, wbc))

    def break_layouts(self, nxt: Any, k: Kernel, inode: Inode) -> Path:
        mapping = inode.mapping
        if any(page_busy(p, 0) for p in mapping.pages.values()):
            yield k.wait_for_pins(
                lambda: not any(page_busy(p, 0) for p in mapping.pages.values()),
                "truncate: wait for idle pages",
            )
        return (yield from nxt(k, inode))

    def reclaim_keep_pinned(self, nxt: Any, k: Kernel, page: Page) -> bool:
        return page_busy(page, 1) or bool(nxt(k, page))

    def put_page(self, nxt: Any, k: Kernel, page: Page) -> None:
        nxt(k, page)
        if page.refcount and page.mapping is not None and not page_busy(page, 0):
            k.count("page_idle_wakeups")
