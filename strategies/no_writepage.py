"""no-writepage: reclaim cannot write ext4 or XFS pages; ->writepage is gone.

Upstream: Christoph Hellwig, "iomap: remove iomap_writepage" (478af190cb6c,
v6.0), with which XFS's ``->writepage`` went, and Jan Kara, "ext4: stop
providing .writepage hook" (dae999602eeb, in the ext4 pull for v6.2,
https://lore.kernel.org/r/20221207112722.22220-12-jack@suse.cz). Ted Ts'o's
pull: "the VM doesn't need or want writepage() for writeback, since it is fine
with ->writepages() so long as ->migrate_folio() is implemented". Status:
merged; still so.

Not a fix for the race, and proposed as none: it takes away a path of it.
``pageout()`` finds no ``->writepage`` and activates the page
(PAGE_ACTIVATE), so kswapd never writes an ext4 or XFS page itself, and the
window between its own write and its ``trylock_page`` (the pageout window the
v6.4 reclaim check misses, see ``reclaim_skip_pinned``) is closed on those
filesystems. The model's copy-on-write filesystem (btrfs)
keeps its ``->writepage``. Every stack of v6.2 and later includes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.policy import Policy

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import AddressSpace

#: The filesystems (``--fs`` names) that no longer have a ``->writepage``.
WITHOUT_WRITEPAGE = ("ext4", "iomap")


class NoWritepage(Policy):
    """XFS (v6.0) and ext4 (v6.2) provide no ->writepage: reclaim cannot write."""

    name = "no-writepage"
    summary = "ext4 and XFS have no ->writepage: pageout() activates their pages"
    status = "merged (XFS v6.0, ext4 v6.2)"
    link = "https://lore.kernel.org/r/20221207112722.22220-12-jack@suse.cz"
    kernel_version = "v6.2"

    def has_writepage(self, nxt: Any, k: Kernel, mapping: AddressSpace) -> bool:
        if mapping.a_ops.name in WITHOUT_WRITEPAGE:
            return False
        return bool(nxt(k, mapping))
