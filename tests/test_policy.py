"""The hook API: dispatch of overridden hooks only, validation, entry points."""

from __future__ import annotations

from typing import Any

import pytest

from mmsim import filemap, page_writeback
from mmsim.machine import Kernel
from mmsim.policy import Policy, PolicyError, Stack, load_policy, policy_names


def test_baseline_is_found_through_the_entry_point() -> None:
    assert "baseline" in policy_names()
    (policy,) = load_policy("baseline")
    assert policy.name == "baseline"
    assert policy.overridden_hooks() == []


def test_only_overridden_hooks_are_dispatched() -> None:
    class Refuse(Policy):
        name = "refuse"

        def try_to_release_page(self, nxt: Any, k: Kernel, page: Any) -> bool:
            return False

    k = Kernel((Refuse(),))
    # Not overridden: the baseline function itself, with no wrapper.
    assert k.ops.set_page_dirty_lock is page_writeback.set_page_dirty_lock
    assert k.ops.try_to_release_page is not filemap.try_to_release_page
    assert k.ops.try_to_release_page(k, object()) is False


def test_stacks_wrap_in_order() -> None:
    calls: list[str] = []

    class Outer(Policy):
        def put_page(self, nxt: Any, k: Kernel, page: Any) -> None:
            calls.append("outer")
            nxt(k, page)

    class Inner(Policy):
        def put_page(self, nxt: Any, k: Kernel, page: Any) -> None:
            calls.append("inner")

    k = Kernel(Stack((Outer(), Inner())).policies)
    k.ops.put_page(k, object())
    assert calls == ["outer", "inner"]


def test_hook_kind_must_match() -> None:
    class Wrong(Policy):
        name = "wrong"

        def set_page_dirty_lock(self, nxt: Any, k: Kernel, page: Any) -> bool:
            return True  # not a generator, but the kernel function may sleep

    with pytest.raises(PolicyError, match="'set_page_dirty_lock' must be a generator"):
        Kernel((Wrong(),))


def test_unknown_method_is_refused() -> None:
    class Typo(Policy):
        name = "typo"

        def set_page_dirty_locked(self) -> None:
            pass

    with pytest.raises(
        PolicyError, match="'set_page_dirty_locked', which is not a hook"
    ):
        Kernel((Typo(),))


def test_unknown_policy() -> None:
    with pytest.raises(PolicyError, match="unknown policy 'nope'"):
        load_policy("nope")
