"""longterm-write-ban: no writable long-term pins of dirty-tracked file mappings.

Upstream: Lorenzo Stoakes, "mm/gup: disallow FOLL_LONGTERM GUP-nonfast writing to
file-backed mappings" (8ac268436e6d) and "...GUP-fast..." (a6e79df92e4a), v8
posted 2 May 2023, merged v6.5
(https://lore.kernel.org/r/f7533317ee29a1a4aa54afe0002367a4cd288a1d.1683067198.git.lstoakes@gmail.com).
``check_vma_flags`` returns -EFAULT for FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE on a
VMA that ``vma_needs_dirty_tracking`` (a shared, writable, file-backed mapping
whose filesystem tracks dirtying: ext4, xfs, btrfs; not shmem or hugetlb).
Status: merged.

The commit calls writable GUP into dirty-tracked file mappings "fundamentally
broken" and fixes only "the most egregious case". Short-term pins (DIO) are
still allowed and still re-dirty without ``->page_mkwrite``. The cost is a
regression: RDMA, io_uring fixed buffers and KVM SEV registrations on
MAP_SHARED files now fail with -EFAULT (``selftests/mm/gup_longterm``).

The check needs FOLL_PIN and FOLL_LONGTERM together, and in v6.5 every
long-term user pins (``is_valid_gup_args``: FOLL_LONGTERM implies FOLL_PIN).
On v4.15's FOLL_GET long-term references it would never fire, so the
registered ``longterm-write-ban`` is the ban with long-term users pinning
(``foll-pin``): :data:`LONGTERM_WRITE_BAN`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsim.gup import FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE
from mmsim.policy import Policy, Stack
from mmsim.strategies.foll_pin import FollPin

if TYPE_CHECKING:
    from mmsim.machine import Kernel
    from mmsim.mm_types import Vma

EFAULT = 14


class LongtermWriteBan(Policy):
    """v6.5: check_vma_flags refuses writable long-term pins of file mappings."""

    name = "longterm-write-ban-mechanism"
    summary = "writable FOLL_LONGTERM pins of dirty-tracked file mappings get -EFAULT"
    status = "merged v6.5"
    link = "https://lore.kernel.org/r/f7533317ee29a1a4aa54afe0002367a4cd288a1d.1683067198.git.lstoakes@gmail.com"
    kernel_version = "v6.5"

    def check_vma_flags(self, nxt: Any, k: Kernel, vma: Vma, flags: int) -> int:
        banned = FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE
        # Every modelled mapping is a shared, writable mapping of a file whose
        # filesystem tracks dirtying (vma_needs_dirty_tracking).
        if flags & banned == banned:
            return -EFAULT
        return int(nxt(k, vma, flags))


LONGTERM_WRITE_BAN = Stack(
    (LongtermWriteBan(), FollPin()),
    name="longterm-write-ban",
    summary=LongtermWriteBan.summary,
    status=LongtermWriteBan.status,
    link=LongtermWriteBan.link,
    kernel_version=LongtermWriteBan.kernel_version,
)
