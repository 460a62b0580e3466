"""dax-break-layouts: truncate and hole punch wait until no one holds a DAX page.

Upstream: Dan Williams, "mm, fs, dax: handle layout changes to pinned dax
mappings" (5fac7408d828, v4.18: ``dax_layout_busy_page``), and Ross Zwisler,
"ext4: handle layout changes to pinned DAX mappings" (430657b6be89, v4.19:
``ext4_break_layouts``), with xfstests generic/503
(https://lore.kernel.org/r/20180710191031.17919-1-ross.zwisler@linux.intel.com).
Status: merged (v4.19); reworked by Alistair Popple in 2025 (idle becomes
refcount 0).

Model: at the ``break_layouts`` hook, holding ``i_mmap_sem`` exclusively:
``dax_layout_busy_page`` unmaps the file and finds a page above its idle
refcount (1); ``___wait_var_event(&page->_refcount, refcount == 1)`` sleeps,
with ``i_mmap_sem`` dropped (``ext4_wait_dax_page``) and retaken; then look
again. Only then do the truncate and the freeing of the blocks go on. Long-term
pins on fs-dax stay refused (-EOPNOTSUPP, v4.15's ``get_user_pages_longterm``),
which is what bounds the wait. The wake-up is modelled as a condition, so the
lost wake-up of 2022 (``unpin_user_page`` skipping ``wake_up_var``, fixed by
Muchun Song) cannot show here.

Objections: the wait is unbounded with long-term pins, hence the ban (RDMA on
fs-dax needs ODP or device-dax); a plain refcount cannot tell a GUP reference
from a transient one; the "idle at 1" convention needed special PTEs and was
replaced in 2025; Popple found ``dax_layout_busy_page`` skipped unmapped files
(``mapping_mapped``) although DMA may still target them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.dax import dax_layout_busy_page
from mmsim.policy import Objection, Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode


class DaxBreakLayouts(Policy):
    """ext4_break_layouts: wait for every DAX page of the file to be idle."""

    name = "dax-break-layouts"
    summary = "truncate/punch wait for an idle refcount on busy DAX pages (v4.19)"
    status = "merged v4.19"
    link = (
        "https://lore.kernel.org/r/20180710191031.17919-1-ross.zwisler@linux.intel.com"
    )
    kernel_version = "v4.19"
    filesystems = ("dax",)
    filesystems_why = (
        "dax_layout_busy_page looks at fs-dax pages; a page cache has none"
    )
    objections = (
        Objection(
            who="the fs-dax ban's stated cost (no named objector in our notes)",
            said="the wait is unbounded with long-term pins, hence the ban: RDMA on fs-dax is refused",
            scenario="dax/002",
            oracle="pin-refused",
            fs="dax",
        ),
    )

    def break_layouts(self, nxt: Any, k: Kernel, inode: Inode) -> Path:
        err = yield from nxt(k, inode)
        if err:
            return err
        while True:
            page = dax_layout_busy_page(k, inode.mapping)
            if page is None:
                return 0
            inode.mmap_sem = 0  # ext4_wait_dax_page: up_write(i_mmap_sem)
            yield k.wait_for_pins(
                lambda page=page: page.refcount == 1,
                "ext4_break_layouts: DAX page busy",
            )
            if inode.mmap_sem != 0:
                yield k.wait_until(
                    lambda: inode.mmap_sem == 0, "down_write(i_mmap_sem)"
                )
            inode.mmap_sem = -1
