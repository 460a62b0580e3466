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

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

__all__ = ["Bio", "bio_endio", "bio_put", "submit_bio"]

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

    def snapshot(self) -> tuple[Any, ...]:
        return (
            self.page.key,
            tuple(self.blocks),
            self.write,
            self.done,
            self.pinned,
            _code_id(self.end_io.__code__),
        )


def bio_alloc(
    k: Kernel, page: Page, blocks: list[int], write: bool, end_io: EndIo
) -> Bio:
    """``bio_alloc()`` plus ``bio_add_page()``: a bio in the lowest free slot."""
    free = [i for i, b in enumerate(k.bios) if b is None]
    if free:
        slot = free[0]
    else:
        slot = len(k.bios)
        k.bios.append(None)
    bio = Bio(key=slot, page=page, blocks=blocks, write=write, end_io=end_io)
    k.bios[slot] = bio
    return bio


@kernel("block/bio.c")
def bio_put(k: Kernel, bio: Bio) -> None:
    """Models bio_put(): free the bio (its slot becomes reusable)."""
    k.bios[bio.key] = None


@kernel("block/blk-core.c")
def submit_bio(k: Kernel, bio: Bio) -> None:
    """Models submit_bio(): hand the bio to the device; it completes asynchronously."""
    k.spawn_irq(f"irq:{'write' if bio.write else 'read'}", _device(k, bio))


def _device(k: Kernel, bio: Bio) -> Path:
    """The device: the transfer takes time, then the completion interrupt fires."""
    yield
    bio_endio(k, bio)


@kernel("block/bio.c")
def bio_endio(k: Kernel, bio: Bio) -> None:
    """Models the transfer and bio_endio(): the data moves, then ``bi_end_io`` runs.

    A read stores the block's data version in the page (the DMA); a write stores
    the page's version in each block. The device reads or writes page memory
    whatever the page's flags and PTEs say: DMA does not look at them.
    """
    page = bio.page
    if bio.write:
        for blk in bio.blocks:
            k.disk.data[blk] = page.data
    else:
        page.data = k.disk.data[bio.blocks[0]]
    direction = "write" if bio.write else "read"
    k.tracepoint("block_rq_complete", page, f"{direction} {k.page_name(page)}")
    bio.done = True
    bio.end_io(k, bio)
