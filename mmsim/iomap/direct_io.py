"""fs/iomap/direct-io.c (v5.14): direct I/O reads into user memory through iomap.

XFS has read this way since v4.10, ext4 since v5.5 (b1b4705d54ab, "ext4:
introduce direct I/O read using iomap infrastructure"). Against the legacy
fs/direct-io.c (:mod:`mmsim.direct_io`) the user page is dirtied at another
time. ``IOMAP_DIO_DIRTY`` (any read into user memory) makes
``iomap_dio_bio_actor`` call ``bio_set_pages_dirty`` *before* the bio is
submitted. At completion, ``iomap_dio_bio_end_io`` (interrupt context)
releases a page that is still dirty at once. ``bio_check_pages_dirty`` hands a
page that writeback cleaned meanwhile to the ``bio_dirty_work`` workqueue,
which re-dirties it with ``set_page_dirty_lock`` after the read has already
returned to the user. A read from a hole sends no bio: ``iomap_dio_hole_actor``
zeroes the user buffer by a CPU copy (``iov_iter_zero``), which write-faults
the mapping like any store.

The code is v5.14's (``iomap_apply`` and actors). v5.15 renamed the actors
(``iomap_dio_iter``, ``iomap_dio_bio_iter``) without changing these steps, and
v6.5 pins the pages (``bio_iov_iter_get_pages`` → ``iov_iter_extract_pages``,
BIO_PAGE_PINNED; the ``iov_iter_get_pages`` hook here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs

from mmsim.bio import bio_alloc, bio_check_pages_dirty, bio_set_pages_dirty, submit_bio
from mmsim.direct_io import EFAULT, EIOCBQUEUED
from mmsim.engine import kernel
from mmsim.mm_types import PAGE_SIZE, lowest_free_slot
from mmsim.usercopy import copy_to_user

if TYPE_CHECKING:
    from mmsim.bio import Bio
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Vma

__all__ = [
    "IomapDio",
    "iomap_dio_bio_actor",
    "iomap_dio_bio_end_io",
    "iomap_dio_complete",
    "iomap_dio_hole_actor",
    "iomap_dio_rw",
]


@attrs.define(slots=True, eq=False)
class IomapDio:
    """``struct iomap_dio`` of a one-page read into user memory.

    ``key`` is its slot in ``Kernel.dios``: the bio's completion and the
    sleeping reader share it until ``iomap_dio_complete`` frees it, so it is
    part of the state. ``waiter`` stands for ``dio->submit.waiter``: set while
    a synchronous reader may sleep, cleared by the completion that wakes it.
    ``IOMAP_DIO_DIRTY`` is always set (a read into user memory).
    """

    snapshot_tag: ClassVar[int] = 13
    key: int
    vma: Vma
    index: int
    src: Inode
    lblk: int
    is_async: bool
    waiter: bool = True

    def snapshot(self) -> tuple[int, ...]:
        return (
            self.vma.key,
            self.index,
            self.src.key,
            self.lblk,
            self.is_async,
            self.waiter,
        )


@kernel("fs/iomap/direct-io.c", version="v5.14")
def iomap_dio_complete(k: Kernel, dio: IomapDio) -> int:
    """Models iomap_dio_complete(): the read returns its byte count; the dio is freed.

    From here the user may rely on the data (``Kernel.read_returned``).
    """
    k.read_returned(dio.vma, dio.index, dio.src, dio.lblk)
    k.dios[dio.key] = None
    return PAGE_SIZE


@kernel("fs/iomap/direct-io.c", version="v5.14")
def iomap_dio_bio_end_io(k: Kernel, bio: Bio) -> None:
    """Models iomap_dio_bio_end_io() (interrupt context), for the dio's last bio.

    The dio's reference drops to zero: a synchronous reader is woken
    (``dio->submit.waiter = NULL``), an AIO read completes here
    (``iomap_dio_complete_work`` → ``ki_complete``). Then, with
    ``IOMAP_DIO_DIRTY``, ``bio_check_pages_dirty``: a page still dirty is
    released, a clean one goes to the workqueue to be re-dirtied.
    """
    dio: IomapDio = bio.private
    if dio.is_async:
        iomap_dio_complete(k, dio)
    else:
        dio.waiter = False
    bio_check_pages_dirty(k, bio)


@kernel("fs/iomap/direct-io.c", version="v5.14")
def iomap_dio_bio_actor(k: Kernel, dio: IomapDio) -> Path:
    """Models iomap_dio_bio_actor() for a mapped block: one bio for the page.

    ``bio_iov_iter_get_pages`` takes the user page (``iov_iter_get_pages``,
    FOLL_GET; a pin once a policy converts direct I/O); with
    ``IOMAP_DIO_DIRTY``, ``bio_set_pages_dirty`` dirties it before
    ``iomap_dio_submit_bio``. Returns the bio, or None when the user page
    could not be had.
    """
    page, pinned = yield from k.ops.iov_iter_get_pages(k, dio.vma, dio.index, True)
    if page is None:
        return None
    bio = bio_alloc(k, page, [dio.src.blocks[dio.lblk]], False, iomap_dio_bio_end_io)
    bio.pinned = pinned
    bio.private = dio
    yield from bio_set_pages_dirty(k, bio)
    submit_bio(k, bio)
    return bio


@kernel("fs/iomap/direct-io.c", version="v5.14")
def iomap_dio_hole_actor(k: Kernel, dio: IomapDio) -> Path:
    """Models iomap_dio_hole_actor(): ``iov_iter_zero`` into the user buffer.

    No bio and no GUP: the zeroes are stored by the CPU through the task's
    page tables (``copy_to_user``), which faults the mapped page writable
    (``->page_mkwrite``) first. Returns 0, or -EFAULT when the fault failed.
    """
    return (yield from copy_to_user(k, dio.vma, dio.index, 0, "iov_iter_zero"))


@kernel("fs/iomap/direct-io.c", version="v5.14")
def iomap_dio_rw(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool = False
) -> Path:
    """Models iomap_dio_rw() → __iomap_dio_rw() for a one-page read into ``vma``.

    A read at or past the source's end returns 0 before anything is taken.
    ``iomap_apply`` maps the source block through the filesystem's
    ``->iomap_begin``. A hole goes to ``iomap_dio_hole_actor``, a mapped block
    to ``iomap_dio_bio_actor``. Then the submission reference is dropped. A
    synchronous read sleeps until the completion clears ``submit.waiter``, then
    ``iomap_dio_complete``. An AIO read returns -EIOCBQUEUED. A read with no bio
    (a hole) completes at once either way.

    Left out: ``filemap_write_and_wait_range`` on the source (its page cache
    is clean in every scenario), ``inode_dio_begin``/``inode_dio_end`` (only
    truncate and hole punch of the source wait for them, and no built-in
    scenario or fuzzing rule has those) and the plug.
    """
    if lblk * PAGE_SIZE >= src.size:
        return 0
    slot = lowest_free_slot(k.dios)
    dio = k.dios[slot] = IomapDio(
        key=slot, vma=vma, index=index, src=src, lblk=lblk, is_async=is_async
    )
    if lblk not in src.blocks:
        ret = yield from iomap_dio_hole_actor(k, dio)
        if ret:
            k.dios[slot] = None
            return -EFAULT
        return iomap_dio_complete(k, dio)
    bio = yield from iomap_dio_bio_actor(k, dio)
    if bio is None:
        k.dios[slot] = None
        return -EFAULT
    if is_async:
        return -EIOCBQUEUED
    if dio.waiter:
        yield k.wait_until(lambda: not dio.waiter, "__iomap_dio_rw")
    return iomap_dio_complete(k, dio)
