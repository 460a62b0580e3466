"""defer-release: reclaim must not strip buffers from a page GUP still holds.

Proposal: Dan Williams, 3 Jan 2018, in reply to Jan Kara: "Do we need to block
page_mkclean, or could we defer buffer reclaiming to the last put of the page?"
(https://lore.kernel.org/linux-mm/CAPcyv4grBxGs0cnFVyRx29t0xhG5EBTy_nP=qhsVh5=8nusNsw@mail.gmail.com/).
Status: proposed only as such; its idea was merged in v6.4 as "mm: do not reclaim
private data from pinned page" (d824ec2a1546), for FOLL_PIN holders only (see
``reclaim_skip_pinned``).

Model: ``try_to_release_page`` refuses while the fix's own count of GUP references
(kept via ``put_user_page`` / ``unpin_user_page``) is non-zero; reclaim activates
the page and tries again later, so the buffers go once the last GUP reference is
put.

Objections: Jan Kara (4 Jan 2018): reclaim is only the symptom; "the real bug is a
write into a page that is neither writably mapped nor prepared by ->write_begin".
Writeback still cleans and write-protects the page mid-DIO and completion
re-dirties it without ``->page_mkwrite`` (race B), and on a COW or delalloc
filesystem that dirtying has no space reserved. Page private data is protected
by the page lock, not by refcounts. Truncate and hole punch still take the page
out of the file (``block_invalidatepage`` discards its buffers' state even
where this fix keeps them attached), so the GUP user's write is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.policy import Objection
from mmsim.strategies._gup_count import GupCounting, gup_count

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

KEY = "defer-release.gup"


class DeferRelease(GupCounting):
    """try_to_release_page refuses while GUP references remain."""

    name = "defer-release"
    summary = "try_to_release_page refuses while GUP holds the page"
    status = "proposed (2018); merged in v6.4 for pins only"
    link = "https://lore.kernel.org/linux-mm/CAPcyv4grBxGs0cnFVyRx29t0xhG5EBTy_nP=qhsVh5=8nusNsw@mail.gmail.com/"
    kernel_version = "v4.15 + proposal"
    count_key = KEY
    events = ("release_deferred",)
    objections = (
        Objection(
            who="Jan Kara, 4 Jan 2018",
            said="reclaim is only the symptom: the page is still dirtied without ->page_mkwrite",
            scenario="dio/002",
            oracle="dirty-without-mkwrite",
        ),
        Objection(
            who="Jan Kara, 4 Jan 2018",
            said="truncate and hole punch still strip the buffers: the data is lost",
            scenario="dio/004",
            oracle="lost-write",
        ),
        Objection(
            who="Jan Kara, 4 Jan 2018",
            said="on a COW filesystem that dirtying has no space reserved",
            scenario="cow/001",
            oracle="unreserved-writeback",
            fs="cow",
        ),
    )

    def try_to_release_page(self, nxt: Any, k: Kernel, page: Page) -> bool:
        if gup_count(page, KEY):
            k.count("release_deferred")  # a reachability goal: the fix acted
            return False
        return bool(nxt(k, page))
