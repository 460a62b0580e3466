"""The example plug-in package (examples/mmsim-example-policy), found by entry point.

Skipped unless the package is installed (``.ci/run`` installs it):
``python3 -m pip install ./examples/mmsim-example-policy``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import mmsim
from mmsim.policy import load_policy, policy_names

example = pytest.importorskip(
    "mmsim_example_policy",
    reason=(
        "the example policy package is not installed; run "
        "`python3 -m pip install ./examples/mmsim-example-policy`"
    ),
)


def test_entry_point_loads_the_example_class() -> None:
    assert "example-keep-buffers" in policy_names()
    (policy,) = load_policy("example-keep-buffers")
    assert isinstance(policy, example.KeepBuffersWhileReferenced)
    assert policy.name == "example-keep-buffers"
    assert policy.overridden_hooks() == ["try_to_release_page"]


@pytest.mark.parametrize(
    ("refcount", "released"),
    [
        # cache + 1 PTE + buffers + isolation = 4: nothing unexplained, ask nxt.
        (4, True),
        # one more (a GUP pin): refuse without calling nxt.
        (5, False),
    ],
)
def test_hook_refuses_only_with_extra_references(refcount: int, released: bool) -> None:
    calls: list[Any] = []

    def nxt(k: Any, page: Any) -> bool:
        calls.append(page)
        return True

    page = SimpleNamespace(refcount=refcount, mapcount=1, private=[object()])
    policy = example.KeepBuffersWhileReferenced()
    assert policy.try_to_release_page(nxt, None, page) is released
    assert calls == ([page] if released else [])


def test_dio_001_is_fixed_by_the_example() -> None:
    result = mmsim.check("dio/001", policy="example-keep-buffers")
    # Under baseline, dio/001's shortest counterexample is "nobuffers-writeback":
    # kswapd strips the buffers of a page the DIO read holds through GUP, and DIO
    # completion re-dirties it. With the example policy try_to_release_page sees
    # the GUP reference and keeps the buffers, so that race is gone; and since the
    # page keeps its buffers, writeback after the re-dirty writes the DIO data out,
    # so "lost-write" does not fire either. The exhaustive search is complete and
    # finds no violation at all: verdict Never, no counterexample. (Race B,
    # dio/002's dirty-without-mkwrite, is not this policy's business.)
    assert result.verdict == "Never"
    assert result.counterexample is None
    assert {ov.oracle: ov.verdict for ov in result.per_oracle}[
        "nobuffers-writeback"
    ] == "Never"
    assert all(ov.occurrences == 0 for ov in result.per_oracle)
