"""foll-pin: long-term GUP users pin (FOLL_PIN), and pins are countable.

Upstream: John Hubbard, "mm/gup: introduce pin_user_pages*() and FOLL_PIN"
(eddb1c228f79, v5.6) and "mm/gup: track FOLL_PIN pages" (3faa52c03f44, v5.7:
``GUP_PIN_COUNTING_BIAS`` = 1024, ``page_maybe_dma_pinned``), with RDMA's
``ib_umem_get`` converted to ``pin_user_pages(FOLL_LONGTERM)`` and
``unpin_user_pages_dirty_lock`` at release
(https://lore.kernel.org/r/20200107224558.2362728-1-jhubbard@nvidia.com).
Status: merged.

The mechanism alone makes pins visible; it decides nothing. The
``pin_user_pages.rst`` document says what writeback should do with a pinned page
is "a TODO item". Small pages give false positives: 1024 ordinary references
look like a pin. Drivers left on FOLL_GET stay invisible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.gup import FOLL_LONGTERM, pin_user_pages
from mmsim.policy import Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Vma


class FollPin(Policy):
    """Long-term GUP users take FOLL_PIN|FOLL_LONGTERM pins."""

    name = "foll-pin"
    summary = (
        "long-term GUP users pin (FOLL_PIN, bias 1024); unpin_user_pages_dirty_lock"
    )
    status = "merged v5.6/v5.7"
    link = "https://lore.kernel.org/r/20200107224558.2362728-1-jhubbard@nvidia.com"
    kernel_version = "v5.7"

    def get_user_pages_longterm(
        self, nxt: Any, k: Kernel, vma: Vma, index: int, flags: int
    ) -> Path:
        page = yield from pin_user_pages(k, vma, index, flags | FOLL_LONGTERM)
        return page, page is not None
