"""block/bio.c and the device (v4.15): bios in flight and their completion.

A submitted bio completes in interrupt context at a time of the scheduler's
choosing: :func:`submit_bio` starts an ``irq`` task for it, whose first step is
the device doing the transfer and whose second runs ``bio_endio``. Until then
other CPUs run, as on real hardware.

Bios live in numbered slots on the machine (``k.bios``); a slot is reused once
its bio is put, so the state stays finite while daemons loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mmsim.engine import _code_id, kernel
from mmsim.mm_types import lowest_free_slot

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

__all__ = [
    "Bio",
    "bio_check_pages_dirty",
    "bio_dirty_fn",
    "bio_endio",
    "bio_put",
    "bio_release_pages",
    "bio_set_pages_dirty",
    "blk_queue_bounce",
    "submit_bio",
]

#: ``bio->bi_end_io``: runs in interrupt context when the device is done.
EndIo = Callable[["Kernel", "Bio"], None]


@attrs.define(slots=True, eq=False)
class Bio:
    """``struct bio`` for one page: a read into it or a write out of it.

    ``blocks`` are the disk blocks written (a write) or the one block read (a
    read). ``done`` is set by ``bio_endio``.
    """

    snapshot_tag: ClassVar[int] = 10
    key: int
    page: Page
    blocks: list[int]
    write: bool
    end_io: EndIo
    done: bool = False
    #: BIO_PAGE_PINNED (v6.5): the page is pinned (FOLL_PIN), not referenced.
    pinned: bool = False
    #: ``bi_private``: the submitter's context (a direct-I/O ``struct dio``).
    private: Any = None
    #: A bounced write: the copy of the page taken at submission, which the
    #: device writes instead of the page (``__blk_queue_bounce``); None if not.
    bounce: int | None = None

    def snapshot(self) -> tuple[Any, ...]:
        return (
            self.page.key,
            tuple(self.blocks),
            self.write,
            self.done,
            self.pinned,
            self.private.key if self.private is not None else -1,
            _code_id(self.end_io.__code__),
            -1 if self.bounce is None else self.bounce,
        )


def bio_alloc(
    k: Kernel, page: Page, blocks: list[int], write: bool, end_io: EndIo
) -> Bio:
    """``bio_alloc()`` plus ``bio_add_page()``: a bio in the lowest free slot."""
    slot = lowest_free_slot(k.bios)
    bio = Bio(key=slot, page=page, blocks=blocks, write=write, end_io=end_io)
    k.bios[slot] = bio
    return bio


@kernel("block/bio.c")
def bio_put(k: Kernel, bio: Bio) -> None:
    """Models bio_put(): free the bio (its slot becomes reusable)."""
    k.bios[bio.key] = None


@kernel("block/blk-core.c")
def submit_bio(k: Kernel, bio: Bio) -> None:
    """Models submit_bio(): hand the bio to the device; it completes asynchronously.

    ``generic_make_request`` → ``blk_queue_bounce`` first (a hook: v4.15 bounces
    highmem pages only, which the model does not have).
    """
    k.ops.blk_queue_bounce(k, bio)
    k.spawn_irq(
        f"irq:{'write' if bio.write else 'read'}",
        _device(k, bio),
        latency="bio_write" if bio.write else "bio_read",
    )


def _device(k: Kernel, bio: Bio) -> Path:
    """The device: the transfer takes time, then the completion interrupt fires.

    One step, enabled from the submission on: the explorer may run it at any
    point after ``submit_bio``, and the timed scheduler runs it once the
    device's latency has passed (the task's ``latency``). A step before the
    completion that did nothing would only double the states while the bio is
    in flight.
    """
    bio_endio(k, bio)
    return
    yield  # a generator: a task of its own (interrupt context)


@kernel("block/bio.c")
def bio_endio(k: Kernel, bio: Bio) -> None:
    """Models the transfer and bio_endio(): the data moves, then ``bi_end_io`` runs.

    A read stores the block's data version in the page (the DMA); a write stores
    the page's version (or its bounce copy) in each block. The device reads or
    writes page memory whatever the page's flags and PTEs say: DMA does not look
    at them.
    """
    page = bio.page
    if bio.write:
        data = bio.bounce if bio.bounce is not None else k.page_data(page)
        for blk in bio.blocks:
            k.tracepoint("block_write", (page, blk), f"block {blk}")
            k.disk.data[blk] = data
    else:
        k.store_data(page, k.disk.data[bio.blocks[0]], "DMA")
    direction = "write" if bio.write else "read"
    k.tracepoint("block_rq_complete", page, f"{direction} {k.page_name(page)}")
    bio.done = True
    bio.end_io(k, bio)


@kernel("block/bounce.c")
def blk_queue_bounce(k: Kernel, bio: Bio) -> None:
    """Models blk_queue_bounce(), v4.15: copy highmem pages for devices that need it.

    The model has no highmem, so v4.15 bounces nothing. This is a hook: Jan
    Kara's 2023 RFC (4/5) bounces writes of pinned pages here.
    """


@kernel("block/bio.c")
def bio_set_pages_dirty(k: Kernel, bio: Bio) -> Path:
    """Models bio_set_pages_dirty(), v4.15: ``set_page_dirty_lock`` each page.

    Called before an AIO direct read is submitted, and again by ``bio_dirty_fn``
    for pages writeback cleaned while the read was in flight.
    """
    yield from k.ops.set_page_dirty_lock(k, bio.page)


@kernel("block/bio.c")
def bio_release_pages(k: Kernel, bio: Bio) -> None:
    """Models bio_release_pages(): drop each page (``put_page``, or unpin if pinned)."""
    if bio.pinned:
        k.ops.unpin_user_page(k, bio.page)
    else:
        k.ops.put_user_page(k, bio.page)


@kernel("block/bio.c")
def bio_dirty_fn(k: Kernel, bio: Bio) -> Path:
    """Models bio_dirty_fn() (the bio_dirty_work workqueue, process context).

    Re-dirties the pages ``bio_check_pages_dirty`` found clean: the kernel's own
    "re-dirty after writeback cleaned it mid-I/O" step, with no ``->page_mkwrite``.
    """
    yield from bio_set_pages_dirty(k, bio)
    bio_release_pages(k, bio)
    bio_put(k, bio)


@kernel("block/bio.c")
def bio_check_pages_dirty(k: Kernel, bio: Bio) -> None:
    """Models bio_check_pages_dirty(), v4.15, at AIO read completion (interrupt).

    A page still dirty is released at once. A clean one "must have been written
    out during the direct-IO read": the bio goes on ``bio_dirty_list`` and
    ``schedule_work(&bio_dirty_work)`` re-dirties it in process context, because
    ``set_page_dirty_lock`` may sleep.
    """
    if bio.page.dirty:
        bio_release_pages(k, bio)
        bio_put(k, bio)
        return
    k.queue_work("kworker:bio_dirty_fn", bio_dirty_fn(k, bio))
