"""fs/direct-io.c, and iomap's and fs-dax's direct reads: a read past the
source's end, and a read from a hole."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsim._api import machine_factory
from mmsim.machine import Kernel

RACE_B = Path(__file__).resolve().parent.parent / "examples/scenarios/race-b.toml"


def _machine(tmp_path: Path, task: str, policy: str, fs: str) -> Kernel:
    """Race B with ``task`` (a truncate or a hole punch of the read's source,
    file2) run to its end before the read starts."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(
        f'filesystems = ["{fs}"]\n'
        + RACE_B.read_text()
        + f'\n[[tasks]]\nkind = "{task}"\nfile = "file2"\n'
    )
    make, _, _ = machine_factory(str(scenario), policy, fs=fs)
    k = make()
    assert isinstance(k, Kernel)
    (other,) = (t for t in k.tasks if t.kind in ("truncate", "punch"))
    while not other.done:
        k.step(other.tid)
    return k


def _read(k: Kernel) -> None:
    reader = next(t for t in k.tasks if t.kind == "dio")
    while not reader.done:
        if reader.wait is not None and not reader.wait.cond():
            # The read's completion (an interrupt) wakes it.
            k.step(next(t.tid for t in k.tasks if t.kind == "irq" and not t.done))
            continue
        k.step(reader.tid)


@pytest.mark.parametrize(
    ("policy", "fs"),
    [
        ("baseline", "ext4"),
        ("iomap-dio", "ext4"),
        ("baseline", "iomap"),
        ("baseline", "cow"),
        ("iomap-dio", "cow"),
    ],
)
@pytest.mark.parametrize("task", ["truncate", "punch-hole"])
def test_a_read_of_a_source_without_its_block_starts_no_io(
    tmp_path: Path, task: str, policy: str, fs: str
) -> None:
    """Past the end (truncated): "Once we sampled i_size check for reads
    beyond EOF", nothing happens. In a hole (punched): the CPU zeroes the user
    page, without a bio: fs/direct-io.c's ``do_holes`` on the page GUP took,
    iomap's ``iomap_dio_hole_actor`` through the mapping (``copy_to_user``)."""
    k = _machine(tmp_path, task, policy, fs)
    file1 = k.inodes[0]
    page = file1.mapping.pages[0]
    data, refs, expected = page.data, page.refcount, dict(k.expected)
    _read(k)
    assert not k.violations
    assert all(b is None for b in k.bios)  # no bio was ever left in flight
    assert all(d is None for d in k.dios)
    assert file1.mapping.pages[0] is page
    if task == "truncate":
        # Not even the user page was faulted in: no buffers, no reference.
        assert (page.data, page.refcount, k.expected) == (data, refs, expected)
        assert page.private is None
    else:
        # The write fault of the user page dirtied it (as GUP's FOLL_WRITE
        # fault does); the zeroes are the CPU's, and the read's due data.
        assert page.data == 0
        assert k.expected[(file1.key, 0)] == 0


def test_a_read_from_an_fs_dax_file_is_a_cpu_copy(tmp_path: Path) -> None:
    """On fs-dax the source has no page cache and no bio reads it:
    ``dax_iomap_rw`` copies the persistent-memory block into the user page
    (``copy_to_user``, which write-faults the mapping first)."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text('filesystems = ["dax"]\n' + RACE_B.read_text())
    make, _, _ = machine_factory(str(scenario), "baseline", fs="dax")
    k = make()
    assert isinstance(k, Kernel)
    file1, file2 = k.inodes
    _read(k)
    assert not any(t.kind == "irq" for t in k.tasks)
    assert all(b is None for b in k.bios)
    assert k.vmas[0].ptes[0].dirty
    data = k.disk.data[file2.blocks[0]]
    assert k.expected[(file1.key, 0)] == data
    assert k.disk.data[file1.blocks[0]] == data  # the store is the pmem block
    assert not k.violations
