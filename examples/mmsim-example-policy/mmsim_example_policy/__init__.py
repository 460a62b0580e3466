"""An example mmsim policy in its own package: keep buffers while GUP holds a page.

Proposal: an illustration, not a kernel patch. ``try_to_release_page`` refuses to
strip a page's buffers while someone (``get_user_pages``, a bio) holds a reference
beyond the page cache, the page's PTE mappings, its buffers and the reclaim
isolation reference, so reclaim can no longer leave a GUP-pinned page without
buffers for a later ``set_page_dirty_lock`` to dirty.
Status: example only; see docs/plugins.md in the mmsim repository.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mmsim.policy import Policy

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

__all__ = ["KeepBuffersWhileReferenced"]


class KeepBuffersWhileReferenced(Policy):
    """Refuse to release a page's buffers while it holds unexplained references."""

    name = "example-keep-buffers"
    summary = "try_to_release_page refuses a page with extra (GUP) references"
    status = "example only"
    link = "https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/"
    kernel_version = "v4.15"

    def try_to_release_page(
        self, nxt: Callable[[Kernel, Page], bool], k: Kernel, page: Page
    ) -> bool:
        # Expected references: the page cache, one per PTE mapping, the buffers
        # (PG_private) and the caller's LRU isolation. Anything more is a pin.
        expected = 1 + page.mapcount + (page.private is not None) + 1
        if page.refcount > expected:
            return False
        return nxt(k, page)
