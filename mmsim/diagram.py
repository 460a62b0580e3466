"""Race diagrams in the style of Jan Kara's e-mail: one column per task.

A traced replay (``Machine.tracing``) records every kernel function a step calls,
nested by call depth, with the return value of plain functions, tracepoints,
warnings, sleeps and the violation. :func:`render` lays those records out in
time order, each in its task's column, so that reading down the page follows the
interleaving.
"""

from __future__ import annotations

import textwrap

from mmsim.engine import Machine, TraceRecord

__all__ = ["render", "trace_lines"]

_MARK = {"event": "- ", "warn": "! ", "wait": "~ ", "bug": "!!! ", "violation": ">>> "}


def trace_lines(trace: list[TraceRecord]) -> list[tuple[int, str]]:
    """The trace as ``(task, text)`` lines, return values folded into their calls."""
    lines: list[tuple[int, str]] = []
    open_calls: dict[int, list[tuple[int, int]]] = {}  # task -> [(depth, line index)]
    for rec in trace:
        stack = open_calls.setdefault(rec.task, [])
        if rec.kind == "call":
            while stack and stack[-1][0] >= rec.depth:
                stack.pop()
            stack.append((rec.depth, len(lines)))
            lines.append((rec.task, "  " * rec.depth + rec.text + "()"))
        elif rec.kind == "ret":
            while stack and stack[-1][0] > rec.depth:
                stack.pop()
            if stack and stack[-1][0] == rec.depth:
                idx = stack.pop()[1]
                task, text = lines[idx]
                lines[idx] = (task, f"{text} = {rec.text}")
        else:
            mark = _MARK.get(rec.kind, "- ")
            lines.append((rec.task, "  " * rec.depth + mark + rec.text))
    return lines


def render(machine: Machine, *, max_width: int = 52, title: str = "") -> str:
    """Draw the traced run of ``machine`` as columns, one per task.

    Each column is as wide as its longest line, up to ``max_width``; longer lines
    wrap with a hanging indent.
    """
    lines = trace_lines(machine.trace)
    tasks = sorted({t for t, _ in lines if t >= 0})
    names = {
        t.tid: f"{t.name} [{t.context}]" if t.context != "process" else t.name
        for t in machine.tasks
    }
    col = {tid: i for i, tid in enumerate(tasks)}
    widths = [len(names.get(t, "")) for t in tasks]
    for task, text in lines:
        if task >= 0:
            widths[col[task]] = max(widths[col[task]], len(text))
    widths = [min(w, max_width) + 2 for w in widths]
    out = []
    if title:
        out += [title, ""]
    out.append(
        "".join(
            names.get(t, f"task {t}").ljust(w)
            for t, w in zip(tasks, widths, strict=True)
        ).rstrip()
    )
    out.append("".join(("-" * (w - 2)).ljust(w) for w in widths).rstrip())
    for task, text in lines:
        if task < 0:
            out.append(text)
            continue
        i = col[task]
        indent = len(text) - len(text.lstrip())
        wrapped = textwrap.wrap(
            text.strip(),
            width=max(widths[i] - 2 - indent, 16),
            subsequent_indent="    ",
            break_on_hyphens=False,
            break_long_words=False,
        ) or [""]
        for piece in wrapped:
            cells = [""] * len(tasks)
            cells[i] = " " * indent + piece
            out.append(
                "".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
            )
    return "\n".join(out) + "\n"
