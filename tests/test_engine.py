"""The engine: fingerprints, hidden-state refusal, determinism across processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mmsim.engine import Machine, Path, canonical


class _Loop(Machine):
    def __init__(self) -> None:
        super().__init__()
        self.spawn("t", "t", self._run())

    def _run(self) -> Path:
        for _ in range(3):
            yield

    def state_snapshot(self) -> tuple[int, ...]:
        return ()


def test_for_loop_across_yield_is_refused() -> None:
    m = _Loop()
    m.step(0)
    with pytest.raises(TypeError, match="yields with state on its value stack"):
        m.snapshot()


def test_canonical_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="fingerprint cannot represent"):
        canonical(object())
    assert canonical((1, None, "a")) == canonical((1, None, "a"))
    assert canonical(None) != canonical(-1)


_FINGERPRINT = (
    "from mmsim._api import machine_factory\n"
    "m = machine_factory('dio/001')[0]()\n"
    "for t in (0, 0, 0, 1):\n"
    "    m.step(t)\n"
    "print(hash(m.snapshot()))\n"
)


def test_fingerprint_is_the_same_in_every_process() -> None:
    out = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out.add(proc.stdout)
    assert len(out) == 1
