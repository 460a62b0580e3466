"""Policies with bugs of their own, registered for a test by :func:`register`:
mmsim must say which hook failed, in one line, rather than crash or hang."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

from mmsim import policy
from mmsim.policy import Policy


class Raises(Policy):
    """Its hook raises: a bug in the policy, not a kernel oops."""

    name = "raises"

    def try_to_release_page(self, nxt: Any, k: Any, page: Any) -> bool:
        return bool(1 // 0)


class Spins(Policy):
    """Its plain hook never returns (a loop with no ``yield``)."""

    name = "spins"

    def try_to_release_page(self, nxt: Any, k: Any, page: Any) -> bool:
        while page is not None:
            pass
        return False


class GoesRound(Policy):
    """Its sleeping hook never returns either, but yields on every turn: each
    step returns, so the search runs, and finds that no run can finish."""

    name = "goes-round"

    def set_page_dirty_lock(self, nxt: Any, k: Any, page: Any) -> Any:
        while page is not None:
            yield
        return (yield from nxt(k, page))


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the three as ``mmsim.policies`` entry points, for this test."""
    eps = {
        ep.name: ep for ep in importlib.metadata.entry_points(group="mmsim.policies")
    }
    for cls in (Raises, Spins, GoesRound):
        eps[cls.name] = importlib.metadata.EntryPoint(
            cls.name, f"{__name__}:{cls.__name__}", "mmsim.policies"
        )
    monkeypatch.setattr(policy, "_REGISTERED", eps)
