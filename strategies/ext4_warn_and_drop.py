"""ext4-warn-and-drop: ext4 writeback warns about a page without buffers and drops it.

Upstream: Theodore Ts'o, "ext4: don't BUG if someone dirty pages without asking
ext4 first", cc5095747edf, merged v5.18 (Mar 2022), backported to stable 4.19+
(https://lore.kernel.org/r/YiDS9wVfq4mM2jGK@mit.edu). In
``mpage_prepare_extent_to_map`` and ``ext4_writepage``, a page without buffers
gets ``ext4_warning_inode(... "page %lu does not have buffers attached")``, a bare
``ClearPageDirty`` (the dirty accounting is not corrected), ``unlock_page`` and
is skipped. Status: merged; still present.

It trades the oops for silent data loss: whatever was written into the page is
never written back. Ted's commit calls it a workaround "until the problem can be
properly fixed".

Objections: Dave Chinner (https://lore.kernel.org/r/20220224014842.GM59715@dread.disaster.area):
a warning is not enough, it still indicates silent data corruption. John
Hubbard: "whack-a-mole, one filesystem at a time", and the ratelimited warning
may hide a flood.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.policy import Objection, Policy

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import BufferHead, Page


class Ext4WarnAndDrop(Policy):
    """v5.18: warn, ClearPageDirty and skip instead of BUG."""

    name = "ext4-warn-and-drop"
    summary = "ext4 warns about a page without buffers, clears dirty, skips it"
    status = "merged v5.18 (cc5095747edf), stable 4.19+"
    link = "https://lore.kernel.org/r/YiDS9wVfq4mM2jGK@mit.edu"
    kernel_version = "v5.18"
    objections = (
        Objection(
            who="Dave Chinner, Feb 2022",
            said="a warning is not enough: it still indicates silent data corruption",
            scenario="dio/001",
            oracle="lost-write",
        ),
    )

    def ext4_page_buffers(
        self, nxt: Any, k: Kernel, page: Page, where: str
    ) -> list[BufferHead] | None:
        if page.private is not None:
            return nxt(k, page, where)  # type: ignore[no-any-return]
        k.warn(
            f"fs/ext4/inode.c:{where}",
            f"page {page.index} does not have buffers attached",
        )
        page.dirty = False  # ClearPageDirty: the data is dropped
        return None
