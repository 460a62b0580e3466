"""The Chrome Trace Event Format export (mmsim.perfetto) of a traced run."""

from __future__ import annotations

import json
from typing import Any

import pytest

import mmsim
from mmsim._api import _run, machine_factory
from mmsim.diagram import trace_lines
from mmsim.engine import Machine, Path, TraceRecord
from mmsim.perfetto import chrome_trace, dumps
from mmsim.results import CounterexampleFile

SCENARIO, POLICY = "dio/001", "baseline"


# -- helpers -------------------------------------------------------------------------


def _slices(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair every thread's B/E events, asserting LIFO order and monotone time.

    Returns one dict per slice: tid, name, cat, start, end, args, depth (its
    nesting level on its thread), in the order the slices begin.
    """
    stacks: dict[int, list[dict[str, Any]]] = {}
    last_ts: dict[int, float] = {}
    out: list[dict[str, Any]] = []
    for ev in events:
        if ev["ph"] not in ("B", "E"):
            continue
        tid = ev["tid"]
        assert ev["ts"] >= last_ts.get(tid, 0), f"time goes back on tid {tid}: {ev}"
        last_ts[tid] = ev["ts"]
        stack = stacks.setdefault(tid, [])
        if ev["ph"] == "B":
            s = {
                "tid": tid,
                "name": ev["name"],
                "cat": ev["cat"],
                "start": ev["ts"],
                "end": None,
                "args": ev.get("args", {}),
                "depth": len(stack),
            }
            stack.append(s)
            out.append(s)
        else:
            assert stack, f"E without B on tid {tid}: {ev}"
            top = stack.pop()
            assert top["name"] == ev["name"], f"E closes {ev['name']}, not {top}"
            top["end"] = ev["ts"]
    assert all(not s for s in stacks.values()), "B without E at the end"
    return out


def _nested_or_disjoint(slices: list[dict[str, Any]]) -> None:
    """Per thread, any two slices are nested or disjoint (as X events must be)."""
    by_tid: dict[int, list[tuple[float, float]]] = {}
    for s in slices:
        by_tid.setdefault(s["tid"], []).append((s["start"], s["end"]))
    for spans in by_tid.values():
        for a0, a1 in spans:
            assert a0 <= a1
            for b0, b1 in spans:
                overlap = a0 < b1 and b0 < a1
                nested = (a0 <= b0 and b1 <= a1) or (b0 <= a0 and a1 <= b1)
                assert nested or not overlap, ((a0, a1), (b0, b1))


def _thread_names(events: list[dict[str, Any]]) -> dict[int, str]:
    return {
        e["tid"]: e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "thread_name"
    }


# -- a real counterexample -----------------------------------------------------------


@pytest.fixture(scope="module")
def cex() -> CounterexampleFile:
    result = mmsim.check(SCENARIO, POLICY, diagram=False)
    assert result.counterexample is not None
    return result.counterexample


def _replay(cex: CounterexampleFile) -> Machine:
    make, _, _ = machine_factory(SCENARIO, POLICY, tracing=True)
    return _run(make, [s.task for s in cex.steps], at_end=cex.at_end)


@pytest.fixture(scope="module")
def run(cex: CounterexampleFile) -> Machine:
    m = _replay(cex)
    assert m.trace, "the replay recorded nothing"
    return m


@pytest.fixture(scope="module")
def trace(run: Machine) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(dumps(chrome_trace(run, title="dio/001 baseline")))
    return out


def test_top_level_shape(trace: dict[str, Any]) -> None:
    assert set(trace) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert trace["displayTimeUnit"] == "ns"
    assert trace["otherData"]["title"] == "dio/001 baseline"
    events = trace["traceEvents"]
    assert all(e["pid"] == 1 for e in events)
    assert {e["ph"] for e in events} <= {"M", "B", "E", "i"}
    process = [e for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    assert [e["args"]["name"] for e in process] == ["dio/001 baseline"]


def test_threads_are_the_machines_tasks(run: Machine, trace: dict[str, Any]) -> None:
    events = trace["traceEvents"]
    names = _thread_names(events)
    want = {
        t.tid + 1: t.name + (" [irq]" if t.context == "irq" else "") for t in run.tasks
    }
    assert any(t.context == "irq" for t in run.tasks)
    assert {tid: n for tid, n in names.items() if tid != 0} == want
    sort = {
        e["tid"]: e["args"]["sort_index"]
        for e in events
        if e["ph"] == "M" and e["name"] == "thread_sort_index"
    }
    assert all(sort[tid] == tid for tid in want)
    # Every event sits on a named thread.
    assert {e["tid"] for e in events if e["ph"] != "M"} <= set(names)


def test_slices_pair_up_and_nest(trace: dict[str, Any]) -> None:
    slices = _slices(trace["traceEvents"])
    assert slices
    _nested_or_disjoint(slices)
    assert all(s["start"] <= s["end"] for s in slices)


def test_kernel_functions_appear_as_slices(run: Machine, trace: dict[str, Any]) -> None:
    slices = _slices(trace["traceEvents"])
    kernel = [s for s in slices if s["cat"] == "kernel"]
    names = {s["name"] for s in kernel}
    assert {"do_direct_IO", "shrink_page_list"} <= names
    # One slice per recorded call, in the same order.
    assert [s["name"] for s in kernel] == [
        r.text for r in run.trace if r.kind == "call"
    ]
    dio = next(s for s in kernel if s["name"] == "do_direct_IO")
    assert dio["tid"] == 1  # task 0, read(O_DIRECT)
    assert dio["end"] > dio["start"]


def test_return_values_match_the_race_diagram(
    run: Machine, trace: dict[str, Any]
) -> None:
    """The diagram folds each ret into its call; the export attaches the same."""
    from_diagram = []
    for _, text in trace_lines(run.trace):
        head = text.strip()
        if "()" in head and not head.startswith(("- ", "! ", "~ ", ">>> ", "!!! ")):
            name, _, ret = head.partition("()")
            from_diagram.append((name, ret.removeprefix(" = ") or None))
    kernel = [s for s in _slices(trace["traceEvents"]) if s["cat"] == "kernel"]
    exported = [
        (s["name"], str(s["args"]["ret"]) if "ret" in s["args"] else None)
        for s in kernel
    ]
    assert exported == from_diagram
    assert any(ret is not None for _, ret in exported)


def test_sleeps_are_slices(trace: dict[str, Any]) -> None:
    slices = _slices(trace["traceEvents"])
    waits = [s for s in slices if s["cat"] == "wait"]
    assert waits, "no sleep slice"
    assert all(s["name"].startswith("sleep: ") for s in waits)
    assert any(s["name"] == "sleep: dio_await_one" for s in waits)
    assert all(s["end"] > s["start"] for s in waits)
    idle = [s for s in slices if s["cat"] == "idle"]
    assert idle
    assert all(s["name"].startswith("idle: ") for s in idle)


def test_violation_is_a_global_instant(
    cex: CounterexampleFile, trace: dict[str, Any]
) -> None:
    assert cex.violation.oracle in ("nobuffers-writeback", "kernel-bug")
    marks = [
        e
        for e in trace["traceEvents"]
        if e["ph"] == "i" and e["s"] == "g" and e["cat"] == "violation"
    ]
    assert cex.violation.oracle in {e["args"]["oracle"] for e in marks}
    mark = next(e for e in marks if e["args"]["oracle"] == cex.violation.oracle)
    name = "kernel BUG" if cex.violation.oracle == "kernel-bug" else mark["name"]
    assert mark["name"] == name
    if cex.violation.oracle != "kernel-bug":
        assert mark["name"] == cex.violation.oracle
    assert cex.violation.message in mark["args"]["message"]
    # The instants of tracepoints stay on their thread.
    points = [e for e in trace["traceEvents"] if e["ph"] == "i" and e["s"] == "t"]
    assert any(e["cat"] == "tracepoint" for e in points)
    assert any(e["cat"] == "warn" for e in points)


def test_time_advances_step_by_step(run: Machine) -> None:
    out = chrome_trace(run, step_us=100)
    begins = [e for e in out["traceEvents"] if e["ph"] in ("B", "i")]
    recs = [r for r in run.trace if r.kind != "ret"]
    assert len(begins) == len(recs)
    for ev, rec in zip(begins, recs, strict=True):
        assert rec.step * 100 <= ev["ts"] < (rec.step + 1) * 100
    assert [e["ts"] for e in begins] == sorted(e["ts"] for e in begins)


def test_dumps_is_byte_identical_across_runs(cex: CounterexampleFile) -> None:
    a = dumps(chrome_trace(_replay(cex), title="t"))
    b = dumps(chrome_trace(_replay(cex), title="t"))
    assert a == b
    assert a.endswith("\n")
    assert json.loads(a)["otherData"]["title"] == "t"
    assert dumps(json.loads(a)) == a


# -- a hand-made trace ---------------------------------------------------------------


class _Tiny(Machine):
    """Two tasks, an irq among them, and a trace written by the test."""

    def __init__(self, trace: list[TraceRecord], steps: int) -> None:
        super().__init__()
        self.spawn("writer", "proc", self._idle())
        self.spawn("irq:end", "irq", self._idle(), context="irq")
        self.trace = trace
        self.steps = steps

    def _idle(self) -> Path:
        yield

    def state_snapshot(self) -> tuple[int, ...]:
        return ()


def _rec(step: int, task: int, depth: int, kind: str, text: str) -> TraceRecord:
    return TraceRecord(step, task, depth, kind, text)


HAND = [
    _rec(0, 0, 0, "call", "outer"),  # 0 us
    _rec(0, 0, 1, "call", "first"),  # 2.5 us
    _rec(0, 0, 2, "call", "leaf"),  # 5
    _rec(0, 0, 1, "ret", "7"),  # 7.5: ends leaf, then first = 7
    _rec(1, 0, 1, "call", "second"),  # 10
    _rec(1, 0, 1, "call", "third"),  # 13.333: ends second (a sibling)
    _rec(1, 0, 2, "ret", "True"),  # 16.666: no call at depth 2: nothing
    _rec(2, 0, 2, "wait", "sleeps: lock_page"),  # 20
    _rec(2, 0, 2, "violation", "some-oracle: judged while asleep"),  # 25
    _rec(3, 1, 0, "call", "bio_endio"),  # 30
    _rec(3, 1, 0, "event", "truncate: file1 truncated to 0"),  # 35: ends bio_endio
    _rec(4, 0, 2, "call", "unlock_page"),  # 40: ends the sleep
    _rec(4, 0, 2, "ret", "0"),  # 45
    _rec(5, -1, 0, "violation", "lost-write: file1:0 lost version 2"),  # 50
]


@pytest.fixture
def hand() -> dict[str, Any]:
    out: dict[str, Any] = json.loads(
        dumps(chrome_trace(_Tiny(HAND, steps=6), step_us=10))
    )
    return out


def _by_name(slices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in slices}


def test_ret_closes_exactly_its_call(hand: dict[str, Any]) -> None:
    s = _by_name(_slices(hand["traceEvents"]))
    assert s["first"]["args"] == {"ret": 7}
    assert (s["first"]["start"], s["first"]["end"]) == (2.5, 7.5)
    # Its open child ends with it, without a return value.
    assert (s["leaf"]["start"], s["leaf"]["end"]) == (5, 7.5)
    assert s["leaf"]["args"] == {}
    # The parent is not closed by its child's ret.
    assert s["outer"]["start"] == 0
    assert s["outer"]["end"] == 60  # end of the trace: 6 steps of 10 us
    assert s["unlock_page"]["args"] == {"ret": 0}
    assert s["unlock_page"]["end"] == 45
    # A ret at a depth with no open call attaches nowhere.
    assert all("ret" not in x["args"] for x in (s["second"], s["third"]))


def test_call_at_same_depth_closes_the_previous_sibling(hand: dict[str, Any]) -> None:
    s = _by_name(_slices(hand["traceEvents"]))
    assert s["second"]["end"] == s["third"]["start"]
    assert s["second"]["depth"] == s["third"]["depth"] == 1
    # A record in the caller (here a tracepoint at depth 0) ends the call too.
    assert (s["bio_endio"]["start"], s["bio_endio"]["end"]) == (30, 35)
    # third is still open when the sleep (deeper) starts: the sleep nests in it.
    wait = s["sleep: lock_page"]
    assert s["third"]["start"] < wait["start"]
    assert wait["end"] <= s["third"]["end"]
    assert wait["depth"] == 2


def test_sleep_lasts_until_the_tasks_next_record(hand: dict[str, Any]) -> None:
    s = _by_name(_slices(hand["traceEvents"]))
    wait = s["sleep: lock_page"]
    assert wait["cat"] == "wait"
    assert wait["args"] == {"reason": "lock_page"}
    # The violation judged while it slept (step 2) does not wake it; the next
    # call of the task does.
    assert (wait["start"], wait["end"]) == (20, 40)
    assert s["unlock_page"]["start"] == 40
    _nested_or_disjoint(list(s.values()))


def test_any_record_of_the_task_ends_its_sleep() -> None:
    """Even one deeper than the sleep, which the depth rule alone would not end."""
    m = _Tiny(
        [
            _rec(0, 0, 0, "call", "fsync"),
            _rec(1, 0, 1, "wait", "sleeps: wait_on_page_writeback"),
            _rec(1, 1, 0, "call", "end_page_writeback"),
            _rec(2, 0, 2, "event", "writeback_wait: file1:0"),
        ],
        steps=3,
    )
    s = _by_name(_slices(chrome_trace(m)["traceEvents"]))
    wait = s["sleep: wait_on_page_writeback"]
    assert (wait["start"], wait["end"]) == (10, 20)
    assert (s["fsync"]["start"], s["fsync"]["end"]) == (0, 30)


def test_hand_instants_and_threads(hand: dict[str, Any]) -> None:
    events = hand["traceEvents"]
    assert _thread_names(events) == {1: "writer", 2: "irq:end [irq]", 0: "oracles"}
    instants = [e for e in events if e["ph"] == "i"]
    tp = next(e for e in instants if e["cat"] == "tracepoint")
    assert (tp["tid"], tp["s"], tp["ts"]) == (2, "t", 35)
    assert tp["name"] == "truncate: file1 truncated to 0"
    judged = [e for e in instants if e["cat"] == "violation"]
    assert [(e["name"], e["tid"], e["s"]) for e in judged] == [
        ("some-oracle", 1, "g"),
        ("lost-write", 0, "g"),
    ]
    assert judged[1]["args"] == {
        "message": "lost-write: file1:0 lost version 2",
        "oracle": "lost-write",
    }


def test_a_finished_bug_and_an_idle_daemon() -> None:
    m = _Tiny(
        [
            _rec(0, 0, 0, "call", "writepages"),
            _rec(0, 0, 1, "call", "page_buffers"),
            _rec(0, 0, 1, "bug", "kernel BUG at x.c:f: BUG_ON(!PagePrivate(page))"),
            _rec(1, 1, 0, "wait", "idle: wb_workfn: no dirty inodes"),
        ],
        steps=1,
    )
    out = chrome_trace(m)
    s = _by_name(_slices(out["traceEvents"]))
    assert s["idle: wb_workfn: no dirty inodes"]["cat"] == "idle"
    # The wait record is stamped with the step after the one that slept.
    assert s["idle: wb_workfn: no dirty inodes"]["start"] == 10
    assert s["idle: wb_workfn: no dirty inodes"]["end"] == 20
    bug = next(e for e in out["traceEvents"] if e.get("cat") == "violation")
    assert (bug["name"], bug["s"], bug["args"]["oracle"]) == (
        "kernel BUG",
        "g",
        "kernel-bug",
    )


def test_empty_trace_and_bad_step() -> None:
    m = _Tiny([], steps=0)
    out = chrome_trace(m)
    assert {e["ph"] for e in out["traceEvents"]} == {"M"}
    assert _thread_names(out["traceEvents"]) == {1: "writer", 2: "irq:end [irq]"}
    assert [
        e["args"]["name"] for e in out["traceEvents"] if e["name"] == "process_name"
    ] == ["mmsim"]
    with pytest.raises(ValueError, match="step_us"):
        chrome_trace(m, step_us=0)
