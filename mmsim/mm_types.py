"""The kernel's objects: struct page, PTEs, buffer heads, address spaces, inodes, disk.

Models the structures of include/linux/mm_types.h, include/linux/fs.h and
include/linux/buffer_head.h as they stood in v4.15, reduced to the fields the
paths in this package read or write. Every class is a slotted ``attrs`` class
with a ``snapshot()`` that returns ints and tuples only (see
:meth:`mmsim.engine.Machine.snapshot`).

Simplifications, each deliberate:

* Pages are order-0 (no compound pages, no THP) and the filesystem block size
  equals the page size, so a page has at most one buffer head.
* ``_mapcount`` counts PTE mappings from zero (the kernel stores it biased by -1).
* Page contents are a single data *version* (an int): a write stores a fresh
  version, so a lost or misplaced write shows as a wrong version on disk.
* Page frames come from a fixed pool and the allocator hands out the lowest free
  frame, so a run's page numbers are deterministic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs

if TYPE_CHECKING:
    from mmsim.fs import AddressSpaceOperations

__all__ = [
    "NO_BLOCK",
    "PAGE_SIZE",
    "AddressSpace",
    "BufferHead",
    "Disk",
    "Inode",
    "Page",
    "Pte",
    "Vma",
    "lowest_free_slot",
]

#: The block number ext4 maps a delayed-allocation buffer to (``~0``).
NO_BLOCK = -1

#: The page size (x86-64's); every filesystem here has blocks of this size.
PAGE_SIZE = 4096


def lowest_free_slot(slots: list[Any]) -> int:
    """The lowest free (None) slot of a table of objects in flight (bios, RDMA
    registrations), one appended when none is free. Taking the lowest keeps
    the free slots at the end, which a snapshot leaves out."""
    for i, taken in enumerate(slots):
        if taken is None:
            return i
    slots.append(None)
    return len(slots) - 1


@attrs.define(slots=True, eq=False)
class BufferHead:
    """``struct buffer_head`` (include/linux/buffer_head.h): one block of a page."""

    snapshot_tag: ClassVar[int] = 3
    key: int
    #: BH_Mapped: ``blocknr`` is meaningful (ext4 maps delalloc buffers to NO_BLOCK).
    mapped: bool = False
    dirty: bool = False
    uptodate: bool = False
    #: BH_Delay: a delayed-allocation reservation, block not yet allocated.
    delay: bool = False
    new: bool = False
    blocknr: int = NO_BLOCK
    #: b_count: references that make the buffer busy for try_to_free_buffers().
    count: int = 0

    def snapshot(self) -> tuple[int, ...]:
        flags = self.mapped | self.dirty << 1 | self.uptodate << 2 | self.delay << 3
        return (flags | self.new << 4, self.blocknr, self.count)


@attrs.define(slots=True, eq=False)
class Page:
    """``struct page`` of a page-cache page (include/linux/mm_types.h, v4.15).

    ``refcount`` is ``page->_refcount``: one for the page cache, one per PTE
    mapping, one for attached buffers (PG_private), one per LRU isolation, one per
    ``get_page`` (GUP, bio). ``private`` is ``page->private``: the buffer heads when
    PG_private is set (``PagePrivate(page)`` is ``private is not None``).

    ``mkwrite`` is the model's record for the root-cause oracle: whether
    ``->page_mkwrite`` (or ``->write_begin``) prepared the page since it was last
    cleaned by ``clear_page_dirty_for_io``. It is part of the state because the
    oracle's verdict depends on it.
    """

    snapshot_tag: ClassVar[int] = 1
    key: int
    mapping: AddressSpace | None = None
    index: int = 0
    refcount: int = 0
    mapcount: int = 0
    locked: bool = False
    dirty: bool = False
    writeback: bool = False
    uptodate: bool = False
    lru: bool = False
    reclaim: bool = False
    referenced: bool = False
    private: list[BufferHead] | None = None
    data: int = 0
    mkwrite: bool = False
    #: Exact count of FOLL_PIN pins (the kernel keeps it only for large folios).
    pincount: int = 0
    #: Model ground truth for oracles: outstanding GUP references (GET or PIN).
    gup: int = 0
    #: State a policy keeps per page (e.g. a count of writable GUP references):
    #: part of the snapshot, so the explorer sees it.
    extra: dict[str, int] = attrs.Factory(dict)
    #: fs-dax: the persistent-memory block this ``ZONE_DEVICE`` page *is* (its
    #: contents are the block's); -1 for an ordinary page frame. Never changes.
    pmem_block: int = -1

    def snapshot(self) -> tuple[Any, ...]:
        flags = (
            self.locked
            | self.dirty << 1
            | self.writeback << 2
            | self.uptodate << 3
            | self.lru << 4
            | self.reclaim << 5
            | self.referenced << 6
            | self.mkwrite << 7
        )
        mapping = self.mapping.key if self.mapping is not None else -1
        bufs = (
            tuple(b.snapshot() for b in self.private)
            if self.private is not None
            else ()
        )
        extra = tuple(sorted(self.extra.items())) if self.extra else ()
        return (
            mapping,
            self.index,
            self.refcount,
            self.mapcount,
            flags,
            self.data,
            bufs,
            self.pincount,
            self.gup,
            extra,
        )

    def __repr__(self) -> str:
        return f"<page {self.key} idx={self.index} ref={self.refcount}>"


@attrs.define(slots=True, eq=False)
class Pte:
    """A page-table entry of a shared file mapping (arch pte_t bits)."""

    snapshot_tag: ClassVar[int] = 4
    key: int
    page: Page | None = None
    present: bool = False
    writable: bool = False
    dirty: bool = False
    #: ``pte_devmap`` (fs-dax, v4.15): a pfn mapping that holds no page reference
    #: and no ``_mapcount``; ``vm_normal_page`` returns NULL for it.
    special: bool = False

    def snapshot(self) -> tuple[int, ...]:
        page = self.page.key if self.page is not None else -1
        flags = self.present | self.writable << 1 | self.dirty << 2
        return (page, flags | self.special << 3)


@attrs.define(slots=True, eq=False)
class Vma:
    """A ``MAP_SHARED`` file mapping (``struct vm_area_struct``), one PTE per page."""

    snapshot_tag: ClassVar[int] = 5
    key: int
    mapping: AddressSpace
    ptes: list[Pte] = attrs.Factory(list)

    def snapshot(self) -> tuple[Any, ...]:
        return tuple(p.snapshot() for p in self.ptes)


@attrs.define(slots=True, eq=False)
class AddressSpace:
    """``struct address_space``: a file's page cache (``page_tree``) and its a_ops.

    The radix-tree tags PAGECACHE_TAG_DIRTY and _WRITEBACK are not stored: they
    follow PG_dirty and PG_writeback, as the kernel keeps them (the model has no
    window in which a tag and its flag disagree).
    """

    snapshot_tag: ClassVar[int] = 6
    key: int
    host: Inode
    a_ops: AddressSpaceOperations
    pages: dict[int, Page] = attrs.Factory(dict)

    def snapshot(self) -> tuple[Any, ...]:
        return tuple((i, p.key) for i, p in sorted(self.pages.items()))

    def find_get_page(self, index: int) -> Page | None:
        """The cached page at ``index``, without taking a reference."""
        return self.pages.get(index)


@attrs.define(slots=True, eq=False)
class Inode:
    """``struct inode`` with the file's block map (logical block → disk block).

    ``blocks`` holds allocated blocks only; a missing entry is a hole.
    ``reserved`` counts the file's space reservations (ext4's
    ``i_reserved_data_blocks``); ``delalloc`` names the logical blocks that hold
    one where the filesystem tracks them by range rather than on buffer heads
    (XFS delalloc extents, btrfs ``EXTENT_DELALLOC``).
    """

    snapshot_tag: ClassVar[int] = 7
    key: int
    name: str
    size: int = 0
    blocks: dict[int, int] = attrs.Factory(dict)
    reserved: int = 0
    #: ext4's ``i_mmap_sem`` (later ``invalidate_lock``): readers held, -1 for a
    #: writer. Faults and ``->page_mkwrite`` read it; punch and truncate write it.
    mmap_sem: int = 0
    delalloc: set[int] = attrs.Factory(set)
    #: State a policy keeps per file (e.g. layout leases held): in the snapshot.
    extra: dict[str, int] = attrs.Factory(dict)
    mapping: AddressSpace = attrs.field(default=None)

    def snapshot(self) -> tuple[Any, ...]:
        return (
            self.size,
            tuple(sorted(self.blocks.items())),
            self.reserved,
            self.mmap_sem,
            tuple(sorted(self.delalloc)),
            tuple(sorted(self.extra.items())) if self.extra else (),
        )


@attrs.define(slots=True, eq=False)
class Disk:
    """The block device: each block holds a data version and an owner.

    ``owner[b]`` is ``(inode key, logical block)`` for an allocated block and
    ``None`` for a free one, so a write into a freed or reused block is visible.
    """

    snapshot_tag: ClassVar[int] = 8
    data: list[int]
    owner: list[tuple[int, int] | None]

    def snapshot(self) -> tuple[Any, ...]:
        return (tuple(self.data), tuple(o if o is not None else () for o in self.owner))

    def alloc(self, inode: Inode, lblk: int, *, remap: bool = True) -> int | None:
        """Allocate the lowest free block to ``inode``; ``None`` when the disk is full.

        With ``remap`` the file's block map points at it at once; a COW write
        allocates without remapping and switches at I/O completion.
        """
        for blk, owner in enumerate(self.owner):
            if owner is None:
                self.owner[blk] = (inode.key, lblk)
                if remap:
                    inode.blocks[lblk] = blk
                return blk
        return None

    def free(self) -> int:
        """How many blocks no file owns."""
        return sum(1 for owner in self.owner if owner is None)
