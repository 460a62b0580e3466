"""fs/direct-io.c (v4.15): the legacy synchronous O_DIRECT read into user memory.

This is the path of Jan Kara's report: ``read(fd2, addr, len)`` on an O_DIRECT
file whose destination ``addr`` is a MAP_SHARED mapping of another file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs

from mmsim.bio import (
    Bio,
    bio_alloc,
    bio_check_pages_dirty,
    bio_put,
    bio_set_pages_dirty,
    submit_bio,
)
from mmsim.engine import kernel
from mmsim.mm_types import PAGE_SIZE

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Inode, Page, Vma

__all__ = [
    "Dio",
    "dio_await_completion",
    "dio_bio_complete",
    "dio_bio_end_aio",
    "dio_bio_end_io",
    "dio_complete",
    "dio_get_page",
    "do_blockdev_direct_IO",
    "do_direct_IO",
    "submit_page_section",
]

EFAULT = 14
EIOCBQUEUED = 529


@attrs.define(slots=True, eq=False)
class Dio:
    """``struct dio`` of a read into user memory (``should_dirty``).

    ``is_async`` for an AIO read (io_submit): completion then runs in interrupt
    context. The fields never change after submission (the state lives in the bio).
    """

    snapshot_tag: ClassVar[int] = 11
    key: int
    vma: Vma
    index: int
    src: Inode
    lblk: int
    is_async: bool = False
    should_dirty: bool = True


@kernel("fs/direct-io.c")
def dio_get_page(k: Kernel, vma: Vma, index: int) -> Path:
    """Models dio_get_page() → dio_refill_pages() → iov_iter_get_pages().

    Takes the user page with ``iov_iter_get_pages`` (a FOLL_GET reference in
    v4.15; a pin once a policy converts direct I/O). The references
    ``submit_page_section`` and ``dio_bio_add_page`` take and drop around it are
    folded into this one, which the bio then holds until ``dio_bio_complete``.
    Returns ``(page, pinned)``.
    """
    return (yield from k.ops.iov_iter_get_pages(k, vma, index, True))


@kernel("fs/direct-io.c")
def dio_bio_end_io(k: Kernel, bio: Bio) -> None:
    """Models dio_bio_end_io(): queue the bio for the waiter and wake it (irq)."""


@kernel("fs/direct-io.c")
def submit_page_section(k: Kernel, dio: Dio, page: Page, pinned: bool) -> Path:
    """Models submit_page_section() → dio_send_cur_page() → dio_bio_submit().

    ``get_more_blocks`` maps the source block (allocated: no I/O to map it); a bio
    reading that block into ``page`` is built (BIO_PAGE_PINNED when the page was
    pinned). For an AIO read ``dio_bio_submit`` first dirties the pages
    (``bio_set_pages_dirty``), then ``submit_bio``.
    """
    end_io = dio_bio_end_aio if dio.is_async else dio_bio_end_io
    bio = bio_alloc(k, page, [dio.src.blocks[dio.lblk]], False, end_io)
    bio.pinned = pinned
    bio.private = dio
    if dio.is_async and dio.should_dirty:
        yield from bio_set_pages_dirty(k, bio)
    submit_bio(k, bio)
    return bio


@kernel("fs/direct-io.c")
def do_direct_IO(k: Kernel, dio: Dio) -> Path:
    """Models do_direct_IO() for one page: get the user page, submit its read.

    ``get_more_blocks`` finding no block behind the offset (a punched hole)
    takes the ``do_holes`` branch: the user page is zeroed by the CPU
    (``zero_user``) and its reference dropped, with no bio and no
    ``set_page_dirty``. Returns the bio, ``HOLE``, or None when the user page
    could not be had.
    """
    page, pinned = yield from dio_get_page(k, dio.vma, dio.index)
    if page is None:
        return None
    if dio.lblk not in dio.src.blocks:
        k.store_data(page, 0, "zero_user")
        if pinned:  # dio_unpin_page(), v6.5
            k.ops.unpin_user_page(k, page)
        else:
            k.ops.put_user_page(k, page)
        return HOLE
    return (yield from submit_page_section(k, dio, page, pinned))


#: What ``do_direct_IO`` returns for a page read from a hole: no bio.
HOLE = "hole"


@kernel("fs/direct-io.c")
def dio_bio_complete(k: Kernel, dio: Dio, bio: Bio) -> Path:
    """Models dio_bio_complete(), v4.15, for a synchronous read.

    For each page of the bio: ``set_page_dirty_lock`` (``should_dirty``, not a
    compound page), then ``put_page``; ``bio_put``. This re-dirties a page that
    writeback may have cleaned, and reclaim stripped, while the read was in
    flight: Jan Kara's race. A pinned bio (v6.5, BIO_PAGE_PINNED) goes through
    ``bio_release_pages`` → ``__bio_release_pages``, which dirties the page the
    same way, already dirty or not, then ``bio_release_page`` →
    ``unpin_user_page``.
    """
    page = bio.page
    if dio.should_dirty:
        yield from k.ops.set_page_dirty_lock(k, page)
        yield
    if bio.pinned:
        k.ops.unpin_user_page(k, page)
    else:
        k.ops.put_user_page(k, page)
    bio_put(k, bio)


@kernel("fs/direct-io.c")
def dio_await_completion(k: Kernel, dio: Dio, bio: Bio) -> Path:
    """Models dio_await_completion() → dio_await_one(): sleep until the bio is done.

    Then ``dio_bio_complete`` runs in the reading task (process context).
    """
    if not bio.done:
        yield k.wait_until(lambda: bio.done, "dio_await_one")
    yield from dio_bio_complete(k, dio, bio)


@kernel("fs/direct-io.c")
def dio_complete(k: Kernel, dio: Dio) -> None:
    """Models dio_complete(): the read returns its byte count to the user.

    From here the user may rely on the data (``Kernel.read_returned``).
    """
    k.read_returned(dio.vma, dio.index, dio.src, dio.lblk)


@kernel("fs/direct-io.c")
def dio_bio_end_aio(k: Kernel, bio: Bio) -> None:
    """Models dio_bio_end_aio() (interrupt context) for the last bio of an AIO read.

    ``dio_bio_complete`` takes the async branch: ``bio_check_pages_dirty``, which
    hands pages writeback cleaned to a workqueue; then ``dio_complete`` reports
    the read to the user (``ki_complete``).
    """
    dio: Dio = bio.private
    bio_check_pages_dirty(k, bio)
    dio_complete(k, dio)


@kernel("fs/direct-io.c")
def do_blockdev_direct_IO(
    k: Kernel, src: Inode, lblk: int, vma: Vma, index: int, is_async: bool = False
) -> Path:
    """Models ``read(fd2, addr, PAGE_SIZE)`` on O_DIRECT: do_blockdev_direct_IO().

    ``ext4_file_read_iter`` → ``ext4_direct_IO`` → ``__blockdev_direct_IO``; the
    source file's page cache range is clean (no ``filemap_write_and_wait_range``
    work). A synchronous read waits and completes here; an AIO read (io_submit)
    returns -EIOCBQUEUED once submitted and completes in interrupt context.
    Returns the bytes read, -EIOCBQUEUED, or -EFAULT when the user page could not
    be pinned. A read at or past the source's end returns 0 before any page is
    taken ("Once we sampled i_size check for reads beyond EOF"); a page read
    from a hole completes at once (``do_direct_IO``).
    """
    if lblk * PAGE_SIZE >= src.size:
        return 0
    dio = Dio(key=0, vma=vma, index=index, src=src, lblk=lblk, is_async=is_async)
    bio = yield from do_direct_IO(k, dio)
    if bio is None:
        return -EFAULT
    if bio == HOLE:
        dio_complete(k, dio)
        return PAGE_SIZE
    if is_async:
        return -EIOCBQUEUED
    yield from dio_await_completion(k, dio, bio)
    dio_complete(k, dio)
    return PAGE_SIZE
