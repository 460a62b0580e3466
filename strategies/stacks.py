"""What upstream ran, as stacks of mechanisms named by the kernel version.

- ``upstream-5.18``: long-term GUP users (RDMA) pin with FOLL_PIN (v5.6/v5.7),
  and ext4 warns and drops instead of BUG (cc5095747edf). Direct I/O still
  takes FOLL_GET references.
- ``upstream-6.4``: reclaim skips pinned pages (d824ec2a1546), direct I/O pins
  (``iov_iter_extract_pages``; the block-layer conversion landed for v6.5, the
  reclaim check in v6.4 and was sent to stable: the stack is the first kernel
  where both hold), and ext4's warn-and-drop. The crash is gone (warn-and-drop),
  but the search still reaches a pinned page stripped of its buffers through
  reclaim's ``pageout()`` window (see ``reclaim_skip_pinned``), and the write is
  then silently lost.
- ``upstream-6.5``: ``upstream-6.4`` plus the ban on writable long-term pins of
  dirty-tracked file mappings (8ac268436e6d, a6e79df92e4a).
"""

from __future__ import annotations

from mmsim.policy import Objection, Stack
from mmsim.strategies.dio_pin import DioPin
from mmsim.strategies.ext4_warn_and_drop import Ext4WarnAndDrop
from mmsim.strategies.foll_pin import FollPin
from mmsim.strategies.longterm_write_ban import LongtermWriteBan
from mmsim.strategies.reclaim_skip_pinned import ReclaimSkipPinned

UPSTREAM_5_18 = Stack(
    (FollPin(), Ext4WarnAndDrop()),
    name="upstream-5.18",
    summary="long-term users pin (FOLL_PIN) + ext4 warn-and-drop",
    status="merged",
    link="https://lore.kernel.org/r/YiDS9wVfq4mM2jGK@mit.edu",
    kernel_version="v5.18",
    objections=(
        Objection(
            who="Dave Chinner, Feb 2022",
            said="warn-and-drop still loses the data of a FOLL_GET user",
            scenario="drv/001",
            oracle="lost-write",
        ),
    ),
)

UPSTREAM_6_4 = Stack(
    (FollPin(), DioPin(), ReclaimSkipPinned(), Ext4WarnAndDrop()),
    name="upstream-6.4",
    summary="pinned DIO + reclaim skips pinned pages + ext4 warn-and-drop",
    status="merged",
    link="https://lore.kernel.org/r/20230428124140.30166-1-jack@suse.cz",
    kernel_version="v6.4",
    objections=(
        Objection(
            who="Jan Kara, Apr 2023",
            said="writeback still cleans the page mid-DIO and completion re-dirties it (race B)",
            scenario="dio/002",
            oracle="dirty-without-mkwrite",
        ),
        Objection(
            who="FOLL_PIN's documented limit (v5.6)",
            said="FOLL_GET users stay invisible: drivers not converted still lose writes",
            scenario="drv/001",
            oracle="lost-write",
        ),
    ),
)

UPSTREAM_6_5 = Stack(
    (LongtermWriteBan(), FollPin(), DioPin(), ReclaimSkipPinned(), Ext4WarnAndDrop()),
    name="upstream-6.5",
    summary="upstream-6.4 + writable long-term pins of file mappings refused",
    status="merged",
    link="https://lore.kernel.org/r/f7533317ee29a1a4aa54afe0002367a4cd288a1d.1683067198.git.lstoakes@gmail.com",
    kernel_version="v6.5",
    objections=(
        Objection(
            who="the v6.5 ban's stated cost (no named objector in our notes)",
            said="it breaks RDMA, io_uring and KVM uses on MAP_SHARED files",
            scenario="rdma/001",
            oracle="pin-refused",
        ),
        Objection(
            who="the v6.5 ban's stated cost (no named objector in our notes)",
            said="it breaks RDMA, io_uring and KVM uses on MAP_SHARED files",
            workload="rdma-fsync",
            metric="refused_efault",
        ),
    ),
)
