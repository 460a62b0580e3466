"""pin-blocks-mkclean: count writable GUP references; page_mkclean waits for zero.

Proposal: Jan Kara, 3 Jan 2018, idea (b): "make sure page is writeably mapped until
GUP user drops its reference ... track number of writeable GUP page references
separately ... and block page_mkclean() until they are dropped"
(https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/).
Status: rejected. The counter exists since v5.7 (``GUP_PIN_COUNTING_BIAS``), not
write-specific; the blocking was never merged.

Model: the fix counts writable GUP references per page in ``page.extra``
(``get_user_pages_fast`` with FOLL_WRITE up, ``put_user_page`` /
``unpin_user_page`` down); ``clear_page_dirty_for_io`` (whose first act is
``page_mkclean``) sleeps until the count is zero. It sleeps holding the page lock,
as a wait inside ``page_mkclean`` would: whether that deadlocks against DIO
completion's ``set_page_dirty_lock`` is for the search to tell.
``pin-blocks-mkclean-prelock`` is the variant that waits before writeback takes
the page lock instead.

Objections: Jan himself: "Indefinite sleep is really a no-go": long-term users
(InfiniBand, V4L) would stall writeback, fsync, sync and unmount for ever; EOF
tail zeroing and DIF/DIX checksums need ``page_mkclean``; repeated short pins are
a denial of service; "no space in struct page" for the count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.policy import Objection
from mmsim.strategies._gup_count import GupCounting, gup_count

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

KEY = "pin-blocks-mkclean.w"


class PinBlocksMkclean(GupCounting):
    """clear_page_dirty_for_io waits, page locked, for writable GUP refs to go."""

    name = "pin-blocks-mkclean"
    summary = "page_mkclean waits (page locked) until no writable GUP reference"
    status = "rejected (counter merged v5.7, blocking never)"
    link = "https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/"
    kernel_version = "v4.15 + proposal"
    count_key = KEY
    writes_only = True
    objections = (
        Objection(
            who="Jan Kara, Jan 2018",
            said="Indefinite sleep is really a no-go: long-term users stall writeback and fsync for ever",
            scenario="rdma/001",
            oracle="deadlock",
        ),
        Objection(
            who="Jan Kara, Feb 2023",
            said="repeated short pins are a denial of service for fsync",
            scenario="dio/005",
            oracle="deadlock",
        ),
        Objection(
            who="Jan Kara, Feb 2023",
            said="repeated short pins (a database's O_DIRECT into its buffers) stall it",
            workload="db-dio",
            metric="ending",
        ),
    )

    def clear_page_dirty_for_io(
        self, nxt: Any, k: Kernel, page: Page, wbc: WritebackControl
    ) -> Path:
        if gup_count(page, KEY):
            yield k.wait_for_pins(
                lambda: not gup_count(page, KEY),
                "page_mkclean: writable GUP references",
            )
        return (yield from nxt(k, page, wbc))


class PinBlocksMkcleanPrelock(GupCounting):
    """The variant that waits before writeback locks the page."""

    name = "pin-blocks-mkclean-prelock"
    summary = "writeback waits, before lock_page, until no writable GUP reference"
    status = "variant of a rejected proposal"
    link = "https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/"
    kernel_version = "v4.15 + proposal"
    count_key = KEY
    writes_only = True
    objections = (
        Objection(
            who="Jan Kara, Feb 2023",
            said="repeated short pins are a denial of service for writeback",
            scenario="dio/005",
            oracle="starvation",
        ),
        Objection(
            who="Jan Kara, Jan 2018",
            said="Indefinite sleep is really a no-go with long-term users",
            scenario="rdma/001",
            oracle="deadlock",
        ),
    )

    def writeback_before_lock(
        self, nxt: Any, k: Kernel, page: Page, wbc: WritebackControl
    ) -> Path:
        if gup_count(page, KEY):
            yield k.wait_for_pins(
                lambda: not gup_count(page, KEY), "writeback: writable GUP references"
            )
        return (yield from nxt(k, page, wbc))
