"""dio-pin: direct I/O pins its buffer pages (FOLL_PIN) instead of FOLL_GET.

Upstream: David Howells, ``iov_iter_extract_pages()`` (7d58fe731028, v6.3) and
"block: Add BIO_PAGE_PINNED", "block: Convert bio_iov_iter_get_pages to use
iov_iter_extract_pages", "block: Use iov_iter_extract_pages() and page pinning in
direct-io.c" (https://lore.kernel.org/r/20230526214142.958751-4-dhowells@redhat.com),
merged for v6.5. Status: merged.

Effect in the model: ``dio_get_page`` pins through ``iov_iter_extract_pages``; the
bio is BIO_PAGE_PINNED, and completion goes through ``bio_release_pages`` →
``__bio_release_pages``: ``set_page_dirty_lock`` (as a FOLL_GET read's
completion does, dirty page or not), then ``unpin_user_page``. Through iomap
(XFS; ext4 from v5.5 and btrfs from v5.10: ``iomap_dio``) the same hook pins the pages
``bio_iov_iter_get_pages`` takes, and the interrupt's
``bio_check_pages_dirty`` unpins them (after the workqueue's re-dirtying, for
a page writeback cleaned). Pins make the DIO visible to
``page_maybe_dma_pinned``, which is what ``reclaim_skip_pinned`` needs. The stated motivation was fork/COW correctness,
not writeback: pinning alone changes no writeback or reclaim decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.iov_iter import iov_iter_extract_pages
from mmsim.policy import Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Vma


class DioPin(Policy):
    """Direct I/O takes its pages with iov_iter_extract_pages (FOLL_PIN)."""

    name = "dio-pin"
    summary = "direct I/O pins with iov_iter_extract_pages (BIO_PAGE_PINNED)"
    status = "merged v6.5 (iov_iter_extract_pages v6.3)"
    link = "https://lore.kernel.org/r/20230526214142.958751-4-dhowells@redhat.com"
    kernel_version = "v6.5"

    def iov_iter_get_pages(
        self, nxt: Any, k: Kernel, vma: Vma, index: int, write: bool
    ) -> Path:
        return (yield from iov_iter_extract_pages(k, vma, index, write))
