"""wait-for-unpin: writeback waits for short-term pins; fsync under a long-term
pin fails.

Proposal: Christoph Hellwig, 13 Feb 2023, replying to Jan Kara's RFC
"Writeback handling of pinned pages" (https://lore.kernel.org/r/Y+oKAB/epmJNyDbQ@infradead.org):
"These pins are defined to be unpinned after I/O completes, so we might as well
just wait for the unpin instead of doing anything complicated ... Should an
fsync on a (partially) long term pinned file simply fail?" Status: proposed
only.

Model, on v6.5's mechanisms but the long-term ban (pinned direct I/O, reclaim
skipping pinned pages, ext4's warn-and-drop, no ``->writepage`` for ext4 and
XFS): at the ``writeback_before_lock`` hook, before the page lock (so DIO completion,
which needs the lock, can unpin), a page that ``page_maybe_dma_pinned`` says is
pinned is waited for while its pins are short-term. A long-term pin (the fix
counts the FOLL_LONGTERM pins it sees) is skipped by background writeback, and
data-integrity writeback fails: the fsync error is a regression outcome
(``request-refused``). The fsync's -EIO does not travel further in the model.

Objections: Jan Kara: waiting works for short pins but "repeated short pins"
give a denial of service, and failing fsync breaks "RDMA into an mmaped file,
keep the registration, fsync". ``page_maybe_dma_pinned`` has false positives:
a page with 1024 ordinary references is waited for as if pinned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.fs import SyncMode
from mmsim.gup import page_maybe_dma_pinned
from mmsim.policy import Objection, Stack
from mmsim.strategies._gup_count import GupCounting, gup_count
from mmsim.strategies.stacks import V6_5_BASE

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

KEY = "wait-for-unpin.longterm"


class WaitForUnpin(GupCounting):
    """Writeback waits for short pins to go; a long-term pin fails fsync."""

    name = "wait-for-unpin-mechanism"
    summary = "writeback waits for short-term pins; fsync under a long-term pin fails"
    status = "proposed (hch, Feb 2023)"
    link = "https://lore.kernel.org/r/Y+oKAB/epmJNyDbQ@infradead.org"
    kernel_version = "v6.5 + proposal"
    count_key = KEY
    longterm_only = True  # short-term pins: page_maybe_dma_pinned sees them

    def writeback_before_lock(
        self, nxt: Any, k: Kernel, page: Page, wbc: WritebackControl
    ) -> Path:
        if gup_count(page, KEY):
            if wbc.sync_mode == SyncMode.WB_SYNC_ALL:
                k.tracepoint(
                    "request_refused",
                    page,
                    f"fsync fails: {k.page_name(page)} is pinned long-term",
                )
            return False
        if page_maybe_dma_pinned(page):
            yield k.wait_for_pins(
                lambda: gup_count(page, KEY) > 0 or not page_maybe_dma_pinned(page),
                "writeback: wait for the unpin",
            )
            if gup_count(page, KEY):
                return False
        return (yield from nxt(k, page, wbc))


WAIT_FOR_UNPIN = Stack(
    (WaitForUnpin(), *V6_5_BASE),
    name="wait-for-unpin",
    summary=WaitForUnpin.summary,
    status=WaitForUnpin.status,
    link=WaitForUnpin.link,
    kernel_version=WaitForUnpin.kernel_version,
    objections=(
        Objection(
            who="Jan Kara, Feb 2023",
            said="repeated short pins give a denial of service",
            scenario="dio/005",
            oracle="starvation",
        ),
        Objection(
            who="Jan Kara, Feb 2023",
            said="failing fsync breaks 'RDMA into an mmaped file, keep the registration, fsync'",
            scenario="rdma/001",
            oracle="request-refused",
        ),
        Objection(
            who="page_maybe_dma_pinned()'s own comment, v5.7",
            said="page_maybe_dma_pinned has false positives: 1024 ordinary references are waited for as a pin",
            scenario="ref/001",
            oracle="deadlock",
        ),
        Objection(
            who="Jan Kara, Feb 2023",
            said="writeback waits on every short pin",
            workload="db-dio",
            metric="pin_wait_us",
        ),
    ),
)
