"""The cost model: what each modelled kernel action charges, in simulated ns.

The timed scheduler (:mod:`mmsim.timed`) charges every step of a task the
``step`` figure, plus the price of each counted action the step performed (a
page fault, a bounce copy, a refcount atomic, a block allocation), and delays a
completion by its device's latency. The figures below are defaults of the right
order of magnitude for a current x86-64 server with an NVMe SSD, each with where
it comes from; they are meant to be replaced (``mmsim cost --cost-model
FILE.toml`` or :func:`load_cost_model`) by figures measured on the machine a
reader cares about. Ratios between policies, not absolute times, are what the
report compares, and they are far less sensitive to these figures than the
absolute times are.

A TOML file sets any subset of the fields at top level::

    page_fault = 1500
    bio_write = 80000
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mmsim.results import FileError, load_model

__all__ = ["COUNTER_PRICES", "CostModel", "CostModelError", "load_cost_model"]


class CostModelError(FileError):
    """A cost-model file is missing or malformed."""


class CostModel(BaseModel):
    """Simulated nanoseconds charged per action. Every field has a documented default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: One preemption point's worth of kernel code between two yields (a few
    #: dozen to a hundred instructions at ~3 GHz). mmsim's own estimate.
    step: int = Field(default=50, ge=0, le=10**12)
    #: A minor fault on a file page, ``handle_mm_fault`` to return: of the order
    #: of 1 µs (lmbench's ``lat_pagefault`` measures this path; a few hundred ns
    #: to a few µs on x86-64 depending on the CPU and mitigations).
    page_fault: int = Field(default=1_000, ge=0, le=10**12)
    #: Copying 4 KiB in memory (a bounce buffer): ~1 µs, from "read 1 MB
    #: sequentially from memory: 250 µs" in Jeff Dean's latency numbers.
    copy_4k: int = Field(default=1_000, ge=0, le=10**12)
    #: One block allocation in the filesystem's allocator with its bitmap cached
    #: (``ext4_mb_new_blocks``, ``xfs_bmapi_write``). An estimate: no published
    #: per-call figure; replace it with a measured one.
    block_alloc: int = Field(default=2_000, ge=0, le=10**12)
    #: Device time of a 4 KiB read bio, submission to completion interrupt: ~10 µs,
    #: typical of a datacenter NVMe SSD's QD1 random-read latency.
    bio_read: int = Field(default=10_000, ge=0, le=10**12)
    #: Device time of a 4 KiB write bio: ~20 µs on the same SSD class.
    bio_write: int = Field(default=20_000, ge=0, le=10**12)
    #: An RDMA WRITE from the peer landing in the registered page: ~2 µs
    #: (perftest's ``ib_write_lat`` on InfiniBand / RoCE reports 1-3 µs).
    rdma_write: int = Field(default=2_000, ge=0, le=10**12)
    #: A sleeping lock passing to a waiter (the cache line moving to another
    #: CPU; on top of the wake-up): ~100 ns.
    lock_handoff: int = Field(default=100, ge=0, le=10**12)
    #: An atomic on ``page->_refcount`` (``page_ref_inc``/``page_ref_dec``, a
    #: ``lock xadd``): ~10 ns uncontended.
    refcount_atomic: int = Field(default=10, ge=0, le=10**12)
    #: ``try_to_wake_up`` until the woken task runs: ~2 µs (``perf bench sched
    #: pipe`` and lmbench's ``lat_ctx`` measure 1-5 µs per switch).
    wakeup: int = Field(default=2_000, ge=0, le=10**12)

    def latency(self, name: str) -> int:
        """A device latency by the name a task was spawned with (``bio_read``, …)."""
        value = getattr(self, name, None)
        if not isinstance(value, int) or name == "step":
            raise ValueError(f"no device latency named {name!r} in the cost model")
        return value


#: Which cost-model figure each counted action (a vmstat counter) is charged.
COUNTER_PRICES: dict[str, str] = {
    "pgfault": "page_fault",
    "nr_bounce": "copy_4k",
    "nr_block_alloc": "block_alloc",
    "page_ref_mod": "refcount_atomic",
}


def _parse(text: str) -> Any:
    return tomllib.loads(text)


def load_cost_model(path: str | Path) -> CostModel:
    """Read a TOML cost-model file; a malformed one is one error naming file and field."""
    return load_model(path, CostModel, _parse, "TOML", error=CostModelError)
