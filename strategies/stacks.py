"""What upstream ran, as stacks of mechanisms named by the kernel version.

Every stack here reads O_DIRECT on ext4 (v5.5) and btrfs (v5.10) through
iomap (``iomap_dio``): the user page is dirtied before the read is
submitted, and re-dirtied after it only if writeback cleaned it meanwhile.

- ``upstream-5.18``: long-term GUP users (RDMA) pin with FOLL_PIN (v5.6/v5.7),
  and ext4 warns and drops instead of BUG (cc5095747edf). Direct I/O still
  takes FOLL_GET references.
- ``upstream-6.4``: reclaim skips pinned pages (d824ec2a1546), ext4's
  warn-and-drop, and no ``->writepage`` for ext4 (v6.2) or XFS (v6.0), so
  reclaim never writes their pages itself (``no_writepage``). Direct I/O still
  takes FOLL_GET references (pinned direct I/O is v6.5), which the reclaim
  check cannot see: the seed race stays, without the crash (warn-and-drop),
  the write silently lost.
- ``upstream-6.5``: ``upstream-6.4`` plus pinned direct I/O
  (``iov_iter_extract_pages``, BIO_PAGE_PINNED) and the ban on writable
  long-term pins of dirty-tracked file mappings (8ac268436e6d, a6e79df92e4a).
  The pageout window of ``reclaim_skip_pinned`` would reopen the race, but
  only on a filesystem that still has a ``->writepage``.
"""

from __future__ import annotations

from mmsim.policy import Objection, Stack
from mmsim.strategies.dio_pin import DioPin
from mmsim.strategies.ext4_warn_and_drop import Ext4WarnAndDrop
from mmsim.strategies.foll_pin import FollPin
from mmsim.strategies.iomap_dio import IomapDio
from mmsim.strategies.longterm_write_ban import LongtermWriteBan
from mmsim.strategies.no_writepage import NoWritepage
from mmsim.strategies.reclaim_skip_pinned import ReclaimSkipPinned

UPSTREAM_5_18 = Stack(
    (FollPin(), Ext4WarnAndDrop(), IomapDio()),
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
    (FollPin(), ReclaimSkipPinned(), Ext4WarnAndDrop(), NoWritepage(), IomapDio()),
    name="upstream-6.4",
    summary="reclaim skips pinned pages + ext4 warn-and-drop + no ->writepage",
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

#: What v6.5 runs against the race but its ban on writable long-term pins:
#: the base of ``upstream-6.5`` and of the proposals made against v6.x
#: (``wait_for_unpin``), so that a mechanism is added to all of them at once.
V6_5_BASE = (
    FollPin(),
    DioPin(),
    ReclaimSkipPinned(),
    Ext4WarnAndDrop(),
    NoWritepage(),
    IomapDio(),
)

UPSTREAM_6_5 = Stack(
    (LongtermWriteBan(), *V6_5_BASE),
    name="upstream-6.5",
    summary="upstream-6.4 + pinned DIO + writable long-term pins refused",
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

#: Not registered, and no kernel release: v6.5's pin-based mechanisms on a
#: filesystem that still lets reclaim write its pages (a ``->writepage``, as
#: ext4 had before v6.2). It is how ``reclaim_skip_pinned``'s finding, the
#: pageout window, shows on the model's ext4; the tests and the preemption
#: benchmark register it for themselves.
PINNED_DIO_WITH_WRITEPAGE = Stack(
    tuple(p for p in V6_5_BASE if not isinstance(p, NoWritepage)),
    name="pinned-dio-with-writepage",
    summary="v6.5's pins and reclaim check, with reclaim's ->writepage kept",
    status="counterfactual",
    link="https://lore.kernel.org/r/20230428124140.30166-1-jack@suse.cz",
    kernel_version="v6.5 with ext4's ->writepage",
)
