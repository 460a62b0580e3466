"""writeback-skip-bounce: background writeback skips pinned pages; data-integrity
writeback bounces them.

Proposal: Jan Kara, RFC "Writeback handling of pinned pages", 9 Feb 2023
(https://lore.kernel.org/r/20230209121046.25360-1-jack@suse.cz), 5 patches: 1/5
"mm: Do not reclaim private data from pinned page" (merged as d824ec2a1546,
``reclaim-skip-pinned``); 3/5 ``clear_page_dirty_for_io(wbc, page)``: for
WB_SYNC_NONE a ``folio_maybe_dma_pinned`` folio, already write-protected by
``folio_mkclean``, stays dirty and is skipped; ``WARN_ON_ONCE(!wbc && pinned)``
for callers that pass NULL (``pageout``, ext4's ``mpage_submit_page``); 4/5 and
5/5 bounce a pinned page's write through a copy (``BIO_NEED_PIN_BOUNCE``, set by
iomap on stable-writes devices). Status: rejected (only 1/5 merged).

Model, as the stack the RFC assumed (pinned direct I/O, which landed in v6.5;
reclaim skipping pinned pages; no ``->writepage`` for ext4 or XFS, as from
v6.2; and without ext4's warn-and-drop, which the RFC's 2/5, "ext4: Drop
workaround for mm reclaiming fs private page data", deletes):
``clear_page_dirty_for_io`` does the RFC's skip after ``page_mkclean`` for
callers passing a WB_SYNC_NONE ``wbc`` (``write_cache_pages``: the iomap and
btrfs writeback here), and WARNs for callers passing none; ``blk_queue_bounce``
copies every write of a pinned page at submission (``nr_bounce``). The RFC
flagged bounces in iomap only, on stable-writes devices; the model bounces on
every filesystem, as if every device wanted stable pages.

Objections: Christoph Hellwig: the bounce code "really needs to go away", and
for short-term pins one should just wait for the unpin; Dave Chinner: delalloc
and COW filesystems need every dirtying to pass a clean→dirty transition to
reserve space, so a pinned page cannot simply be kept dirty (Jan's fallback of
not clearing the dirty bit even for WB_SYNC_ALL); the unpin still re-dirties
without ``->page_mkwrite``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.fs import SyncMode
from mmsim.gup import page_maybe_dma_pinned
from mmsim.page_writeback import set_page_dirty
from mmsim.policy import Objection, Policy, Stack
from mmsim.strategies.dio_pin import DioPin
from mmsim.strategies.foll_pin import FollPin
from mmsim.strategies.iomap_dio import IomapDio
from mmsim.strategies.no_writepage import NoWritepage
from mmsim.strategies.reclaim_skip_pinned import ReclaimSkipPinned

if TYPE_CHECKING:
    from mmsim.bio import Bio
    from mmsim.engine import Path
    from mmsim.fs import WritebackControl
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page


class WritebackSkipBounce(Policy):
    """The RFC's patches 3-5: skip pinned pages in background writeback, bounce."""

    name = "writeback-skip-bounce-mechanism"
    summary = "WB_SYNC_NONE skips pinned pages (kept dirty); their writes bounce"
    status = "rejected (RFC Feb 2023; 1/5 merged)"
    link = "https://lore.kernel.org/r/20230209121046.25360-1-jack@suse.cz"
    kernel_version = "v6.2 + RFC"
    events = ("nr_bounce", "nr_pinned_skipped")

    def clear_page_dirty_for_io(
        self, nxt: Any, k: Kernel, page: Page, wbc: WritebackControl | None
    ) -> Path:
        if (
            wbc is None
            or wbc.sync_mode != SyncMode.WB_SYNC_NONE
            or page.mapping is None
        ):
            if wbc is None and page_maybe_dma_pinned(page):
                k.warn(
                    "mm/page-writeback.c:folio_clear_dirty_for_io",
                    "!wbc && folio_maybe_dma_pinned(folio)",
                )
            return (yield from nxt(k, page, wbc))
        if k.ops.page_mkclean(k, page):  # folio_mkclean, then folio_mark_dirty
            set_page_dirty(k, page)
        yield
        if page_maybe_dma_pinned(page):
            k.count("nr_pinned_skipped")
            return False  # stays PG_dirty, write-protected: skipped
        # The rest of clear_page_dirty_for_io: the PTEs are already clean.
        return (yield from nxt(k, page, wbc))

    def blk_queue_bounce(self, nxt: Any, k: Kernel, bio: Bio) -> None:
        nxt(k, bio)
        if bio.write and page_maybe_dma_pinned(bio.page):
            bio.bounce = k.page_data(bio.page)
            k.count("nr_bounce")


WRITEBACK_SKIP_BOUNCE = Stack(
    (
        WritebackSkipBounce(),
        FollPin(),
        DioPin(),
        ReclaimSkipPinned(),
        NoWritepage(),
        IomapDio(),
    ),
    name="writeback-skip-bounce",
    summary=WritebackSkipBounce.summary,
    status=WritebackSkipBounce.status,
    link=WritebackSkipBounce.link,
    kernel_version=WritebackSkipBounce.kernel_version,
    objections=(
        Objection(
            who="Christoph Hellwig, Feb 2023",
            said="the bounce code really needs to go away: it copies pages",
            workload="db-dio",
            metric="bounce_bytes",
        ),
        Objection(
            who="Dave Chinner, Feb 2023",
            said="delalloc and COW filesystems need every dirtying to reserve space at a clean-to-dirty transition",
            scenario="cow/001",
            oracle="unreserved-writeback",
            fs="cow",
        ),
    ),
)
