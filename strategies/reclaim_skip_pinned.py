"""reclaim-skip-pinned: shrink_page_list keeps a page that may be DMA-pinned.

Upstream: Jan Kara, "mm: do not reclaim private data from pinned page",
28 Apr 2023, d824ec2a1546, merged v6.4, Cc stable
(https://lore.kernel.org/r/20230428124140.30166-1-jack@suse.cz). After
``try_to_unmap`` succeeds, ``if (folio_maybe_dma_pinned(folio)) goto
activate_locked;``: the folio is unmapped, so it cannot be newly pinned.
Status: merged (v6.4).

It needs holders to pin (FOLL_PIN): FOLL_GET users (older drivers calling
``get_user_pages`` then ``set_page_dirty``) are invisible to it, and a page with
1024 ordinary references looks pinned (a false positive: reclaim just skips it).

Objections: Jan called it the "non-controversial part" that "deals with 99% of the
observed issues"; it does not stop writeback from cleaning the page mid-DIO and
completion re-dirtying it without ``->page_mkwrite`` (race B), and truncate still
invalidates the page.

Finding (mmsim, dio/001 with ``dio-pin``, on a filesystem that still has a
``->writepage``: ``stacks.PINNED_DIO_WITH_WRITEPAGE``): the check's premise,
"the folio is unmapped now so it cannot be newly pinned anymore", does not
hold on the ``pageout()`` → PAGE_SUCCESS path. ``->writepage`` unlocks the page; when the
write completes quickly ("a synchronous write - probably a ramdisk") kswapd
re-takes it with ``trylock`` and goes straight to ``filemap_release_folio`` with
no second check. In between, the page can be faulted in again (it is still in
the page cache), pinned by direct I/O and written back by the flusher; kswapd
then strips the buffers of a pinned page, and DIO completion re-dirties it
without buffers. The shortest such run is 22 steps (15 for the unfixed race);
it needs kswapd to be preempted between ``pageout()`` and its writeback test.
``tests/test_strategies.py`` pins it. No release combines the two on ext4 or
XFS: pinned direct I/O came in v6.5, after both stopped providing
``->writepage`` (``no_writepage``), so pageout() never writes their pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.gup import page_maybe_dma_pinned
from mmsim.policy import Objection, Policy

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page


class ReclaimSkipPinned(Policy):
    """v6.4: reclaim activates a page that page_maybe_dma_pinned() reports."""

    name = "reclaim-skip-pinned"
    summary = "shrink_page_list keeps folio_maybe_dma_pinned pages (d824ec2a1546)"
    status = "merged v6.4"
    link = "https://lore.kernel.org/r/20230428124140.30166-1-jack@suse.cz"
    kernel_version = "v6.4"
    objections = (
        Objection(
            who="Jan Kara, Apr 2023",
            said="writeback still cleans the page mid-DIO and completion re-dirties it without ->page_mkwrite",
            scenario="dio/002",
            oracle="dirty-without-mkwrite",
        ),
        Objection(
            who="Jan Kara, Apr 2023",
            said="truncate still invalidates the page under the pin",
            scenario="dio/004",
            oracle="lost-write",
        ),
    )

    def reclaim_keep_pinned(self, nxt: Any, k: Kernel, page: Page) -> bool:
        return page_maybe_dma_pinned(page) or bool(nxt(k, page))
