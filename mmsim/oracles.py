"""Oracles: what "wrong" means, each with an id, a meaning and a kernel symptom.

An oracle watches tracepoints (judging the state exactly where the kernel emits
them), or the state after every step, or the machine at the end of a run. Two
outcomes are always judged whatever a scenario asks for, because no kernel
carries on after them: a modelled ``BUG_ON`` (``kernel-bug``) and a task asleep
for ever with nothing left to wake it (``deadlock``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mmsim.engine import Oracle

if TYPE_CHECKING:
    from mmsim.engine import Machine
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page

__all__ = [
    "ALWAYS_ON",
    "GRAPH_ORACLES",
    "ORACLES",
    "DeadlockOracle",
    "DirtiedOutsideMkwrite",
    "KernelBugOracle",
    "LostWrite",
    "NoBuffersAtWriteback",
    "OracleError",
    "make_oracles",
]


class OracleError(ValueError):
    """An unknown oracle id."""


class NoBuffersAtWriteback(Oracle):
    """A dirty page without buffers reaches writeback on a buffer-head filesystem."""

    id: ClassVar[str] = "nobuffers-writeback"
    meaning: ClassVar[str] = "a dirty page without buffers reaches ->writepage(s)"
    symptom: ClassVar[str] = (
        "BUG: kernel BUG at fs/ext4/inode.c (page_buffers in ext4_writepage / "
        "mpage_prepare_extent_to_map) up to v5.17; WARN and the data dropped since v5.18"
    )
    events: ClassVar[tuple[str, ...]] = ("wbc_writepage",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        # ``wbc_writepage`` fires only for a page writeback took because it was
        # dirty (->writepage callers clean it just before the call).
        page: Page = obj
        buffer_heads = page.mapping is None or page.mapping.a_ops.buffer_heads
        if buffer_heads and page.private is None:
            k: Kernel = m  # type: ignore[assignment]
            return f"dirty page {k.page_name(page)} has no buffers at writeback"
        return None


class DirtiedOutsideMkwrite(Oracle):
    """Jan Kara's root cause: a page dirtied without ->page_mkwrite since it was cleaned."""

    id: ClassVar[str] = "dirty-without-mkwrite"
    meaning: ClassVar[str] = (
        "a clean→dirty transition not preceded by ->page_mkwrite or ->write_begin "
        "since the page was last cleaned for writeback (a ->writepage that "
        "declines and redirties the page puts its own dirt back: not one)"
    )
    symptom: ClassVar[str] = (
        "silent: blocks not reserved or allocated, checksums and stable pages "
        "bypassed; the ext4 crash and data loss follow from it"
    )
    events: ClassVar[tuple[str, ...]] = ("writeback_dirty_page",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        page: Page = obj
        k: Kernel = m  # type: ignore[assignment]
        if not page.mkwrite and k.redirtying is not page:
            who = k.current.name if k.current is not None else "?"
            return f"{k.page_name(page)} dirtied by {who} without ->page_mkwrite"
        return None


class LostWrite(Oracle):
    """After the tasks finish and a final sync, the disk lacks the last completed write."""

    id: ClassVar[str] = "lost-write"
    meaning: ClassVar[str] = (
        "after the tasks finish and a final sync, the disk does not hold the last "
        "completed write to a file page"
    )
    symptom: ClassVar[str] = "silent data loss"

    def at_end(self, m: Machine) -> str | None:
        k: Kernel = m  # type: ignore[assignment]
        for (ino, index), version in sorted(k.expected.items()):
            inode = k.inodes[ino]
            blk = inode.blocks.get(index)
            found = k.disk.data[blk] if blk is not None else None
            if found != version:
                return (
                    f"{inode.name}:{index} holds version {found} on disk after sync; "
                    f"the last completed write was version {version}"
                )
        return None


class SleepInAtomic(Oracle):
    """A task sleeps, or may sleep, in interrupt context."""

    id: ClassVar[str] = "sleep-in-atomic"
    meaning: ClassVar[str] = (
        "code running in interrupt context sleeps or calls might_sleep()"
    )
    symptom: ClassVar[str] = (
        "BUG: sleeping function called from invalid context (a splat; a real sleep "
        "in an interrupt handler can deadlock or corrupt the scheduler)"
    )
    events: ClassVar[tuple[str, ...]] = ("sleep_in_atomic",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        who = m.current.name if m.current is not None else "?"
        return f"{who} may sleep in interrupt context"


class PageFreedPinned(Oracle):
    """A page is freed while GUP references to it are outstanding."""

    id: ClassVar[str] = "freed-while-pinned"
    meaning: ClassVar[str] = (
        "a page is freed while a GUP reference or pin is outstanding"
    )
    symptom: ClassVar[str] = (
        "use after free: DMA into a page the allocator has handed to someone else"
    )
    events: ClassVar[tuple[str, ...]] = ("page_freed_pinned",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        page: Page = obj
        return f"page {page.key} freed with outstanding GUP references"


class UnboundedWait(Oracle):
    """From some reachable state no run can finish (judged by the explorer)."""

    id: ClassVar[str] = "unbounded-wait"
    meaning: ClassVar[str] = (
        "a reachable state from which no run can finish: a task waits for ever "
        "while others (daemons) may still run"
    )
    symptom: ClassVar[str] = (
        "hang: writeback, fsync or truncate stalls for ever (hung task warnings)"
    )


class WriteToForeignBlock(Oracle):
    """A page is written into a disk block its file no longer owns."""

    id: ClassVar[str] = "foreign-block-write"
    meaning: ClassVar[str] = (
        "a write I/O stores a page into a disk block that is free or belongs to "
        "another file (freed by truncate or hole punch, perhaps reallocated)"
    )
    symptom: ClassVar[str] = (
        "silent corruption of another file's data (cf. generic/503)"
    )
    events: ClassVar[tuple[str, ...]] = ("block_write",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        k: Kernel = m  # type: ignore[assignment]
        page, blk = obj
        owner = k.disk.owner[blk]
        mine = (page.mapping.host.key, page.index) if page.mapping is not None else None
        if owner == mine:
            return None
        whose = (
            "a free block" if owner is None else f"{k.inodes[owner[0]].name}:{owner[1]}"
        )
        return f"{k.page_name(page)} written into block {blk}, now {whose}"


class PinRefused(Oracle):
    """A regression outcome: GUP refused a request that v4.15 granted."""

    id: ClassVar[str] = "pin-refused"
    meaning: ClassVar[str] = (
        "regression: a get_user_pages/pin request is refused (the user sees "
        "-EFAULT, -EPERM or -EOPNOTSUPP)"
    )
    symptom: ClassVar[str] = (
        "an application that used to work fails (ibv_reg_mr, io_uring)"
    )
    events: ClassVar[tuple[str, ...]] = ("gup_refused",)
    regression: ClassVar[bool] = True

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        who = m.current.name if m.current is not None else "?"
        return f"{who}: GUP refused the request"


class Starvation(Oracle):
    """A wait for pins that an endless run of new pins postpones for ever
    (judged by the explorer on the state graph)."""

    id: ClassVar[str] = "starvation"
    meaning: ClassVar[str] = (
        "a task waiting for pins to go can be kept waiting for ever by others "
        "taking new pins, though each pin is short"
    )
    symptom: ClassVar[str] = (
        "denial of service: fsync or writeback never returns while a process "
        "keeps issuing direct I/O into the page (hung task warnings)"
    )


class UnreservedWriteback(Oracle):
    """A page reaches writeback on a COW filesystem with no space reserved for it."""

    id: ClassVar[str] = "unreserved-writeback"
    meaning: ClassVar[str] = (
        "writeback meets a dirty page whose clean→dirty transition reserved no "
        "space (no ->page_mkwrite), on a filesystem that must allocate to write"
    )
    symptom: ClassVar[str] = (
        "btrfs 'COW fixup' (reservation at writeback, -ENOSPC → data dropped); "
        "-EUCLEAN and WARN since v6.15 (experimental); XFS/ext4 delalloc "
        "accounting errors"
    )
    events: ClassVar[tuple[str, ...]] = ("writeback_unreserved",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        k: Kernel = m  # type: ignore[assignment]
        return f"{k.page_name(obj)} reached writeback with no space reserved"


class UnstableWriteback(Oracle):
    """The page's contents change while a write of it is in flight."""

    id: ClassVar[str] = "unstable-writeback"
    meaning: ClassVar[str] = (
        "a page's contents change while a write I/O of the page (not a bounce "
        "copy) is in flight"
    )
    symptom: ClassVar[str] = (
        "checksum (DIF/DIX, btrfs csum) or RAID parity mismatch: I/O errors or "
        "corruption on stable-writes devices"
    )
    events: ClassVar[tuple[str, ...]] = ("page_store",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        k: Kernel = m  # type: ignore[assignment]
        page: Page = obj
        for bio in k.bios:
            if (
                bio is not None
                and bio.write
                and bio.page is page
                and not bio.done
                and bio.bounce is None
            ):
                who = k.current.name if k.current is not None else "?"
                return f"{who} changed {k.page_name(page)} while it was being written"
        return None


class WritableCleanPte(Oracle):
    """A page is cleaned for writeback while a PTE still maps it writable."""

    id: ClassVar[str] = "writable-clean-pte"
    meaning: ClassVar[str] = (
        "a clean page of a dirty-tracked mapping is mapped writable by a PTE, "
        "so a store can dirty it without a fault"
    )
    symptom: ClassVar[str] = (
        "silent: stores after writeback reach the page unseen by the filesystem; "
        "data lost or written without reservation"
    )
    events: ClassVar[tuple[str, ...]] = ("page_cleaned",)

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        k: Kernel = m  # type: ignore[assignment]
        page: Page = obj
        for vma in k.vmas:
            for pte in vma.ptes:
                if pte.present and pte.writable and pte.page is page:
                    return f"{k.page_name(page)} cleaned while mapped writable"
        return None


class RequestRefused(Oracle):
    """A regression outcome: a fix fails a request the unfixed kernel served."""

    id: ClassVar[str] = "request-refused"
    meaning: ClassVar[str] = (
        "regression: an fsync, truncate or hole punch that the unfixed kernel "
        "completes fails under the fix"
    )
    symptom: ClassVar[str] = (
        "an application sees an error it never saw: fsync -EBUSY/-EIO, truncate "
        "-ETXTBSY"
    )
    events: ClassVar[tuple[str, ...]] = ("request_refused",)
    regression: ClassVar[bool] = True

    def on_event(self, m: Machine, name: str, obj: Any) -> str | None:
        who = m.current.name if m.current is not None else "?"
        return f"{who}: the request was refused"


class KernelBugOracle(Oracle):
    """A modelled BUG_ON fired (the engine reports it; this class documents it)."""

    id: ClassVar[str] = "kernel-bug"
    meaning: ClassVar[str] = "a modelled BUG_ON() fired: the kernel oopses"
    symptom: ClassVar[str] = "BUG / oops"
    fatal: ClassVar[bool] = True


class DeadlockOracle(Oracle):
    """A task sleeps and nothing left can wake it (the engine reports it)."""

    id: ClassVar[str] = "deadlock"
    meaning: ClassVar[str] = "a task sleeps on a condition that no task can make true"
    symptom: ClassVar[str] = "hang (hung task warning)"
    fatal: ClassVar[bool] = True


#: Every oracle, by id.
ORACLES: dict[str, type[Oracle]] = {
    cls.id: cls
    for cls in (
        NoBuffersAtWriteback,
        DirtiedOutsideMkwrite,
        LostWrite,
        SleepInAtomic,
        PageFreedPinned,
        KernelBugOracle,
        DeadlockOracle,
        UnboundedWait,
        WriteToForeignBlock,
        PinRefused,
        Starvation,
        UnreservedWriteback,
        UnstableWriteback,
        WritableCleanPte,
        RequestRefused,
    )
}

#: Judged in every run, whatever the scenario names: no kernel carries on after
#: an oops, a hang, a sleep in atomic context or a use after free.
ALWAYS_ON = (
    "kernel-bug",
    "deadlock",
    "unbounded-wait",
    "sleep-in-atomic",
    "freed-while-pinned",
    "pin-refused",
    "request-refused",
    "starvation",
)


#: Judged by the explorer on the state graph, not by a step: a single timed run
#: cannot judge them.
GRAPH_ORACLES = ("unbounded-wait", "starvation")


def make_oracles(ids: list[str]) -> list[Oracle]:
    """Instantiate oracles by id, with a clear error for an unknown one."""
    out = []
    for oid in ids:
        if oid not in ORACLES:
            raise OracleError(
                f"unknown oracle {oid!r} (known: {', '.join(sorted(ORACLES))})"
            )
        out.append(ORACLES[oid]())
    return out
