"""The scoreboard of the explorer's performance goals (issue 5), from this run.

Each benchmark of ``bench_search.py`` that measures a goal records it through
the ``goal`` fixture: what the goal asks, the bar, this run's figure and
whether it holds. Nothing is asserted (a timing assertion would be a flaky
test); the table printed at the end of the session puts every goal on one
screen. A smoke run (``--benchmark-disable``) measures small configurations
only, which say nothing of the goals, and records none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tabulate import tabulate

#: The goals recorded in this session: (goal, bar, this run, met).
_GOALS: list[tuple[str, str, str, str]] = []

Record = Callable[[str, str, str, bool], None]


@pytest.fixture
def goal(benchmark: Any) -> Record:
    """``goal(what, bar, figure, holds)`` records one goal for the scoreboard,
    unless the benchmarks are disabled (a smoke run's sizes are not the goals')."""

    def record(what: str, bar: str, figure: str, holds: bool) -> None:
        if not benchmark.disabled:
            _GOALS.append((what, bar, figure, "yes" if holds else "NO"))

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _GOALS:
        return
    terminalreporter.write_sep("=", "performance goals (issue 5), this run")
    table = tabulate(_GOALS, headers=["goal", "bar", "this run", "met"])
    for line in table.splitlines():
        terminalreporter.write_line(line)
