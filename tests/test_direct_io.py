"""fs/direct-io.c: a read past the source's end, and a read from a hole."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsim._api import machine_factory
from mmsim.machine import Kernel

RACE_B = Path(__file__).resolve().parent.parent / "examples/scenarios/race-b.toml"


def _machine(tmp_path: Path, task: str) -> Kernel:
    """Race B with ``task`` (a truncate or a hole punch of the read's source,
    file2) run to its end before the read starts."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(
        RACE_B.read_text() + f'\n[[tasks]]\nkind = "{task}"\nfile = "file2"\n'
    )
    make, _, _ = machine_factory(str(scenario), "baseline")
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


@pytest.mark.parametrize("task", ["truncate", "punch-hole"])
def test_a_read_of_a_source_without_its_block_starts_no_io(
    tmp_path: Path, task: str
) -> None:
    """Past the end (truncated): "Once we sampled i_size check for reads
    beyond EOF", nothing happens. In a hole (punched): ``do_holes`` zeroes the
    user page with the CPU, without a bio."""
    k = _machine(tmp_path, task)
    file1 = k.inodes[0]
    page = file1.mapping.pages[0]
    data, refs, expected = page.data, page.refcount, dict(k.expected)
    _read(k)
    assert not k.violations
    assert all(b is None for b in k.bios)  # no bio was ever left in flight
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
