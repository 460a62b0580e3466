"""Export a traced run as Chrome Trace Event Format JSON, for ui.perfetto.dev.

The race diagram (:mod:`mmsim.diagram`) reads a traced replay as text columns;
this module turns the same :class:`~mmsim.engine.TraceRecord` list into the
"JSON Object Format" of the Trace Event Format
(https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU),
which ``chrome://tracing`` and https://ui.perfetto.dev open. Perfetto treats
JSON as a *legacy* format, read on a best-effort basis (its native format is the
TrackEvent protobuf), but it opens these files and draws every task as a track
of nested slices.

The mapping:

* **Process and threads.** The machine is one process (pid 1), named by a
  ``process_name`` metadata event (the ``title``, or ``"mmsim"``). Each task is a
  thread with ``tid = task.tid + 1``, named by ``thread_name`` (the task's name,
  with ``" [irq]"`` appended for an interrupt context) and ordered by
  ``thread_sort_index``. Records not made by a task (``task == -1``: oracles
  judged at the end of the run) go to a thread ``"oracles"`` with tid 0. A slot
  that the model reuses (irqs, kworkers) keeps the name of its last occupant.
* **Time.** The explorer has no clock, so time is synthetic: step ``n`` of the
  run owns the window ``[n * step_us, (n + 1) * step_us)`` microseconds and the
  records of one step are spread evenly over its window, in record order.
  Times are computed in integer nanoseconds and written as microseconds with at
  most three decimals, so the output is the same on every run and platform.
  (Records made after a step's end, such as the sleep that ends it, carry the
  next step's number and are drawn at the start of the next window.)
* **Kernel functions** (``"call"`` records) become duration slices, as ``B``/``E``
  pairs on the task's thread: name = the kernel function, cat ``"kernel"``. A
  call stays open until a later record of the same task at a depth no greater
  than its own (a sibling call, a tracepoint or sleep in its caller, ...) or the
  end of the trace; a ``"ret"`` record at its depth closes exactly that call
  (after any deeper call still open) and adds ``args.ret`` (an int or bool when
  the text is one). The model records no return for generator functions and no
  task exit, so such a slice ends only when the task's next record shows it
  gone: a finished task's outer slices run to the end of the trace.
* **Sleeps** (``"wait"`` records) become slices on top of the task's open calls,
  from the record to the task's next record (or the end of the trace): name
  ``"sleep: <reason>"``, cat ``"wait"``; a daemon's idle point (``"idle: ..."``)
  is cat ``"idle"``. A violation judged after the step does not end the sleep.
* **Tracepoints and warnings** (``"event"``, ``"warn"``) become thread-scoped
  instant events (``"ph": "i", "s": "t"``), cat ``"tracepoint"`` (``"warn"`` for
  a warning, including the ``warn`` tracepoint), named by their text.
* **The violation** (``"violation"``, and ``"bug"`` for a ``BUG_ON``) becomes a
  global instant event (``"s": "g"``), cat ``"violation"``, so it is marked
  across every track: name = the oracle id (``"kernel BUG"`` for a bug),
  ``args = {"message": <the record's text>, "oracle": <oracle id>}``.

Every thread's ``B``/``E`` events are emitted in time order and nest properly
(a parent never ends before its children; no ``E`` without its ``B``); events at
the same timestamp keep the file's order, which Perfetto preserves. ``B``/``E``
rather than ``X`` events, because a reader converts each timestamp on its own
(monotonically), while ``ts + dur`` could round a child past its parent's end.

For example, to draw the counterexample of a cell::

    from mmsim import check
    from mmsim._api import _run, machine_factory

    cex = check("dio/001").counterexample
    make, _, _ = machine_factory("dio/001", tracing=True)
    m = _run(make, [s.task for s in cex.steps], at_end=cex.at_end)
    with open("dio-001.json", "w", encoding="utf-8") as f:
        f.write(dumps(chrome_trace(m, title="dio/001 baseline")))
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mmsim.engine import Machine, TraceRecord

__all__ = ["chrome_trace", "dumps"]

#: The process every task belongs to.
PID = 1
#: The thread of records made outside any task (``TraceRecord.task == -1``).
ORACLE_TID = 0


@dataclass(slots=True)
class _Open:
    """A slice begun and not yet ended: a kernel call or a sleep."""

    depth: int
    wait: bool
    begin: dict[str, Any]


def _us(ns: int) -> int | float:
    """A timestamp in microseconds: an int when whole, else at most 3 decimals."""
    whole, frac = divmod(ns, 1000)
    return whole if frac == 0 else ns / 1000


def _ret_value(text: str) -> bool | int | str:
    """The return value recorded as ``repr()``: a bool or int when it is one."""
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        return text


def _timestamps(trace: list[TraceRecord], step_ns: int) -> list[int]:
    """Each record's time in ns: its step's window, shared evenly in record order.

    Never decreasing, even for a hand-made trace whose steps go backwards.
    """
    per_step = Counter(r.step for r in trace)
    seen: Counter[int] = Counter()
    out: list[int] = []
    last = 0
    for rec in trace:
        i = seen[rec.step]
        seen[rec.step] += 1
        ts = rec.step * step_ns + i * step_ns // per_step[rec.step]
        last = max(last, ts)
        out.append(last)
    return out


def _thread_name(name: str, context: str) -> str:
    return name if context == "process" else f"{name} [{context}]"


def _metadata(name: str, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": PID, "tid": tid, "ts": 0, "args": args}


def _instant(rec: TraceRecord, tid: int, ts: int) -> dict[str, Any]:
    """The instant event of a tracepoint, warning, bug or violation record."""
    event: dict[str, Any] = {"ph": "i", "pid": PID, "tid": tid, "ts": _us(ts)}
    if rec.kind in ("violation", "bug"):
        if rec.kind == "bug":
            name, oracle = "kernel BUG", "kernel-bug"
        else:
            oracle = rec.text.partition(": ")[0]
            name = oracle
        event.update(
            name=name,
            cat="violation",
            s="g",
            args={"message": rec.text, "oracle": oracle},
        )
    elif rec.kind in ("event", "warn"):
        tracepoint = rec.text.partition(": ")[0]
        warn = rec.kind == "warn" or tracepoint == "warn"
        event.update(
            name=rec.text,
            cat="warn" if warn else "tracepoint",
            s="t",
            args={"tracepoint": tracepoint} if rec.kind == "event" else {},
        )
    else:  # a kind this exporter does not know: show it, scoped to its thread
        event.update(name=rec.text, cat=rec.kind, s="t", args={})
    return event


def _begin(rec: TraceRecord, tid: int, ts: int) -> _Open:
    """Open the slice of a call or a sleep."""
    if rec.kind == "call":
        begin: dict[str, Any] = {
            "name": rec.text,
            "cat": "kernel",
            "ph": "B",
            "pid": PID,
            "tid": tid,
            "ts": _us(ts),
        }
        return _Open(rec.depth, False, begin)
    what, _, reason = rec.text.partition(": ")
    if what == "idle":
        name, cat = f"idle: {reason}", "idle"
    elif what == "sleeps":
        name, cat = f"sleep: {reason}", "wait"
    else:
        name, cat, reason = f"sleep: {rec.text}", "wait", rec.text
    begin = {
        "name": name,
        "cat": cat,
        "ph": "B",
        "pid": PID,
        "tid": tid,
        "ts": _us(ts),
        "args": {"reason": reason},
    }
    return _Open(rec.depth, True, begin)


def _end(slice_: _Open, ts: int) -> dict[str, Any]:
    b = slice_.begin
    return {
        "name": b["name"],
        "cat": b["cat"],
        "ph": "E",
        "pid": PID,
        "tid": b["tid"],
        "ts": _us(ts),
    }


def chrome_trace(
    machine: Machine, *, title: str = "", step_us: int = 10
) -> dict[str, Any]:
    """The traced run of ``machine`` as a Chrome Trace Event Format object.

    ``machine.trace`` is read as recorded by a traced replay
    (``Machine.tracing``); see the module docstring for the mapping. Each step is
    ``step_us`` microseconds long. The result is plain data: pass it to
    :func:`dumps` (or ``json.dump``) and open the file in ui.perfetto.dev.
    """
    if isinstance(step_us, bool) or not isinstance(step_us, int) or step_us <= 0:
        raise ValueError(f"step_us must be a positive int, not {step_us!r}")
    trace = machine.trace
    step_ns = step_us * 1000
    times = _timestamps(trace, step_ns)
    end_ns = max(
        [(r.step + 1) * step_ns for r in trace] + times + [machine.steps * step_ns]
    )

    meta: list[dict[str, Any]] = [
        _metadata("process_name", 0, {"name": title or "mmsim"}),
    ]
    for task in machine.tasks:
        tid = task.tid + 1
        name = _thread_name(task.name, task.context)
        meta.append(_metadata("thread_name", tid, {"name": name}))
        meta.append(_metadata("thread_sort_index", tid, {"sort_index": tid}))
    if any(r.task < 0 for r in trace):
        meta.append(_metadata("thread_name", ORACLE_TID, {"name": "oracles"}))
        meta.append(
            _metadata("thread_sort_index", ORACLE_TID, {"sort_index": ORACLE_TID})
        )

    events: list[dict[str, Any]] = []
    stacks: dict[int, list[_Open]] = {}
    for rec, ts in zip(trace, times, strict=True):
        if rec.task < 0:
            events.append(_instant(rec, ORACLE_TID, ts))
            continue
        tid = rec.task + 1
        stack = stacks.setdefault(tid, [])
        if rec.kind == "violation":
            # Judged after the step, while the task sleeps: a marker, not the
            # task running. Otherwise it shows which calls have returned.
            if not (stack and stack[-1].wait):
                while stack and stack[-1].depth >= rec.depth:
                    events.append(_end(stack.pop(), ts))
            events.append(_instant(rec, tid, ts))
            continue
        # Any other record is the task running: its sleep is over.
        while stack and stack[-1].wait:
            events.append(_end(stack.pop(), ts))
        if rec.kind == "ret":
            while stack and stack[-1].depth > rec.depth:
                events.append(_end(stack.pop(), ts))
            if stack and stack[-1].depth == rec.depth:
                stack[-1].begin.setdefault("args", {})["ret"] = _ret_value(rec.text)
                events.append(_end(stack.pop(), ts))
            continue
        while stack and stack[-1].depth >= rec.depth:
            events.append(_end(stack.pop(), ts))
        if rec.kind in ("call", "wait"):
            opened = _begin(rec, tid, ts)
            stack.append(opened)
            events.append(opened.begin)
        else:
            events.append(_instant(rec, tid, ts))

    for stack in stacks.values():
        while stack:
            events.append(_end(stack.pop(), end_ns))

    other: dict[str, Any] = {
        "title": title,
        "generator": "mmsim.perfetto",
        "clock": f"synthetic: {step_us} us per step, records spread within a step",
        "step_us": step_us,
        "steps": machine.steps,
        "tasks": [
            {"tid": t.tid + 1, "name": t.name, "kind": t.kind, "context": t.context}
            for t in machine.tasks
        ],
        "violations": [
            {"oracle": v.oracle, "message": v.message, "task": v.task}
            for v in machine.violations
        ],
    }
    return {
        "traceEvents": meta + events,
        "displayTimeUnit": "ns",
        "otherData": other,
    }


def dumps(trace: dict[str, Any]) -> str:
    """Deterministic JSON text of a trace: sorted keys, one line, a newline.

    Non-ASCII text is written as UTF-8, not ``\\u`` escapes (some Perfetto
    versions do not read those).
    """
    return json.dumps(trace, sort_keys=True, ensure_ascii=False) + "\n"
