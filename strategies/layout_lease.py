"""layout-lease: long-term pinners hold a layout lease; truncate cannot break it.

Proposal: Ira Weiny, "RDMA/FS DAX truncate proposal" (RFC, 5 Jun 2019,
https://lore.kernel.org/r/20190606014544.8339-1-ira.weiny@intel.com) and
"V1,000,002" (RFC v2, 9 Aug 2019,
https://lore.kernel.org/r/20190809225833.6657-1-ira.weiny@intel.com). The user
takes ``fcntl(F_SETLEASE, F_LAYOUT|F_EXCLUSIVE)`` before registering; a
FOLL_LONGTERM GUP on fs-dax without it fails with -EPERM, with it the pin is
granted (where mainline refuses with -EOPNOTSUPP); "Any truncate or hole punch
operation on a pinned DAX page will fail" with -ETXTBSY. v1 broke the lease
(SIGIO, then revocation after ``lease-break-time``) but still failed the
truncate of pinned pages. Status: rejected (never merged).

Model: the application is assumed to hold the lease (the RFC requires it), so
``check_vma_flags`` grants long-term requests on fs-dax; the fix counts the
long-term references it granted per page; the ``break_layouts`` hook fails a
truncate or hole punch with -ETXTBSY while any page of the file is so held (a
*regression* outcome: ``request-refused``). The RFC targeted fs-dax; the model
applies the same lease to page-cache files, where truncate would otherwise
orphan the registered page. Like every count a fix keeps here, a release cannot
tell a long-term reference from a short one; the scenarios that use it have
only long-term users.

Objections: Dave Chinner: "I really, really dislike the idea of zombie layout
leases" (the lease outliving the file descriptor), proposing that the last
close block while pins exist; Jan Kara: it is the lease, not the pin, that
makes truncate fail, and releasing the lease should wait for the unpin;
Matthew Wilcox: it is really a read lease, and I/O by the holder itself can
still free blocks; Dan Williams: "EBUSY is a horrible status code".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.gup import FOLL_LONGTERM
from mmsim.policy import Objection
from mmsim.strategies._gup_count import GupCounting, gup_count

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Vma

KEY = "layout-lease.longterm"
ETXTBSY = 26


class LayoutLease(GupCounting):
    """Long-term pins under a layout lease; truncate of pinned pages fails."""

    name = "layout-lease"
    summary = "long-term pins need a layout lease; truncate/punch of them: -ETXTBSY"
    status = "rejected (RFC 2019; fs-dax only, extended here to page-cache files)"
    link = "https://lore.kernel.org/r/20190809225833.6657-1-ira.weiny@intel.com"
    kernel_version = "v5.3 + RFC"
    count_key = KEY
    longterm_only = True
    objections = (
        Objection(
            who="Dan Williams, 2019",
            said="EBUSY is a horrible status code: truncate fails under a registration",
            scenario="rdma/002",
            oracle="request-refused",
        ),
        Objection(
            who="mmsim (a question the thread did not ask)",
            said="it binds long-term pinners only: a short DIO pin still loses data to truncate",
            scenario="dio/006",
            oracle="lost-write",
        ),
    )

    def check_vma_flags(self, nxt: Any, k: Kernel, vma: Vma, flags: int) -> int:
        if flags & FOLL_LONGTERM and vma.mapping.a_ops.dax:
            return 0  # the layout lease makes the long-term pin safe to grant
        return int(nxt(k, vma, flags))

    def break_layouts(self, nxt: Any, k: Kernel, inode: Inode) -> Path:
        if any(gup_count(p, KEY) for p in inode.mapping.pages.values()):
            return -ETXTBSY
        return (yield from nxt(k, inode))
