"""The ``mmsim`` command line (argparse: the standard library's parser).

Exit status: 0 when no violation exists (Never), 1 when one was found (or a
replay reproduced it), 2 for bad input (one line on stderr, no traceback), 3 when
a bound cut a search that found nothing (Unknown: not a proof), 141 (quietly) when
the reader of its output went away.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import attrs

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from mmsim.explorer import SearchStats

__all__ = ["main"]

_T = TypeVar("_T")

EXIT_NEVER, EXIT_VIOLATION, EXIT_BAD_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3
#: A shell's status for a command killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141

#: The modules of the kernel model, one per kernel file.
MODEL_MODULES = [
    "mmsim.bio",
    "mmsim.buffer",
    "mmsim.direct_io",
    "mmsim.ext4.inode",
    "mmsim.ext4.page_io",
    "mmsim.filemap",
    "mmsim.fs_writeback",
    "mmsim.gup",
    "mmsim.iov_iter",
    "mmsim.memory",
    "mmsim.page_writeback",
    "mmsim.programs",
    "mmsim.rds",
    "mmsim.rmap",
    "mmsim.swap",
    "mmsim.truncate",
    "mmsim.umem",
    "mmsim.vmscan",
]


#: Defaults: the depth bound (a sampled run's most steps), a sampler's most
#: runs, and PCT's bug depth.
_MAX_STEPS, _RUNS, _PCT_DEPTH = 400, 10_000, 2


class _BadInput(ValueError):
    """Options that do not go together (a one-line error, exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"mmsim: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mmsim", description="Judge fixes for the GUP / file-page race.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="explore every interleaving of a scenario")
    c.add_argument("scenario", help="a scenario id, e.g. dio/001")
    _policy_and_fs(c, "scenario")
    c.add_argument(
        "--oracle",
        action="append",
        default=None,
        metavar="ID",
        help="judge by this oracle instead of the scenario's (repeatable)",
    )
    c.add_argument(
        "--max-steps",
        type=_positive,
        default=_MAX_STEPS,
        help=f"depth bound, and a sampled run's most steps (default {_MAX_STEPS})",
    )
    c.add_argument(
        "--preemption-bound",
        type=_natural,
        default=None,
        help="explore only runs with at most N preemptions (incomplete)",
    )
    c.add_argument(
        "--max-time",
        type=_above_zero,
        default=None,
        metavar="SECONDS",
        help="stop after this much wall time (the result says so)",
    )
    c.add_argument(
        "--param",
        action="append",
        default=None,
        type=_param,
        metavar="KEY=N",
        help="size a scenario that takes parameters, e.g. readers=2 (repeatable)",
    )
    c.add_argument(
        "--goal",
        action="append",
        default=None,
        metavar="EVENT",
        help="a tracepoint or vmstat counter some run must reach, or the verdict "
        "is flagged (repeatable; adds to the scenario's goals)",
    )
    c.add_argument(
        "--first",
        action="store_true",
        help="stop at the first violation (breadth first: one of the shortest)",
    )
    c.add_argument(
        "--strategy",
        choices=["exhaustive", "random", "pct", "swarm", "portfolio"],
        default="exhaustive",
        help="exhaustive search (default), or a sampler for scenarios too large "
        "to exhaust: it can find a violation, never prove there is none",
    )
    c.add_argument(
        "--runs",
        type=_positive,
        default=None,
        help=f"a sampler's most runs (default {_RUNS:,})",
    )
    c.add_argument(
        "--seed",
        type=_natural,
        default=None,
        help="a sampler's seed (default: drawn, and printed)",
    )
    c.add_argument(
        "--pct-depth",
        type=_positive,
        default=None,
        help=f"PCT's bug depth (default {_PCT_DEPTH})",
    )
    c.add_argument(
        "--jobs",
        type=_processes,
        default=1,
        help="expand the search's states in N processes (same verdicts and states)",
    )
    _dask_option(c, "expand the search's states")
    c.add_argument(
        "--no-symmetry",
        action="store_true",
        help="do not merge states that differ by a permutation of identical tasks",
    )
    c.add_argument(
        "--no-dead-variables",
        action="store_true",
        help="do not merge states that differ only in locals no task reads again",
    )
    c.add_argument(
        "--table-steps",
        action=argparse.BooleanOptionalAction,
        default=None,  # not given: tabled, but refused to a sampler if given
        help="learn each task's steps as a table and compose a state's children "
        "from it, replaying the state only for a step not learnt yet (the "
        "default: same states and verdicts as replaying every state, several "
        "times faster on large searches, for more memory)",
    )
    c.add_argument(
        "--max-memory",
        type=_above_zero,
        default=None,
        metavar="MIB",
        help="stop once the search holds this much resident memory (this "
        "process and its --jobs workers), checked after every batch (the result "
        "says so); the verdicts computed from its states afterwards count in "
        "its peak but are not cut",
    )
    c.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="FILE",
        help="on Ctrl-C or a budget cut, save the search to FILE",
    )
    c.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="FILE",
        help="continue a search saved with --checkpoint (a pickle: resume only "
        "checkpoints you made)",
    )
    c.add_argument(
        "--coverage",
        action="store_true",
        help="list the steps of the entered kernel functions no run took",
    )
    c.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the result, with a replayable counterexample, to FILE",
    )
    c.add_argument("--no-diagram", action="store_true", help="do not draw the race")

    r = sub.add_parser("replay", help="re-run a counterexample step by step")
    r.add_argument("file", type=Path)
    r.add_argument("--quiet", action="store_true", help="only the outcome")

    lst = sub.add_parser("list", help="scenarios, policies, oracles")
    lst.add_argument(
        "--functions",
        action="store_true",
        help="every modelled kernel function: kernel file, version, mmsim module",
    )
    lst.add_argument(
        "--events",
        action="store_true",
        help="every tracepoint and /proc/vmstat counter a --goal may name",
    )

    cst = sub.add_parser("cost", help="run a cost workload on the timed clock")
    cst.add_argument("workload", help="a workload id, e.g. db-dio")
    _policy_and_fs(cst, "workload")
    cst.add_argument(
        "--seeds", type=_positive, default=3, help="runs, one per seed (default 3)"
    )
    cst.add_argument(
        "--seed", type=_natural, default=1, help="the first seed (default 1)"
    )
    cst.add_argument(
        "--scale",
        type=_scale,
        default=1.0,
        help="multiply the number of operations (default 1.0)",
    )
    cst.add_argument(
        "--cost-model",
        type=Path,
        default=None,
        metavar="FILE",
        help="a TOML file replacing any of the cost model's figures",
    )
    cst.add_argument("--json", type=Path, default=None, metavar="FILE")

    cmp = sub.add_parser("compare", help="regenerate the comparison report")
    cmp.add_argument(
        "--out", type=Path, default=Path("reports"), help="output directory"
    )
    cmp.add_argument(
        "--jobs",
        type=_processes,
        default=None,
        help="judge cells in N processes (default: one per CPU); the report is the same",
    )
    _dask_option(cmp, "judge the cells")
    _fuzz_parser(sub)
    return p


def _dask_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help=f"{what} on the Dask cluster whose scheduler is at ADDRESS "
        "(tcp://host:8786), instead of --jobs; its workers need the same mmsim "
        "(checked before the work) and the policies installed (pip install "
        "'mmsim[dask]'); the results are the same",
    )


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _processes(text: str) -> int:
    """A number of worker processes: at least 1, at most 4 per CPU (more only
    thrash: each is a whole Python process holding the model)."""
    value = _positive(text)
    most = 4 * (os.cpu_count() or 1)
    if value > most:
        raise argparse.ArgumentTypeError(
            f"at most {most} (4 per CPU; this machine has {most // 4}), not {text}"
        )
    return value


def _policy_and_fs(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--policy", default="baseline", help="a registered policy (default: baseline)"
    )
    p.add_argument(
        "--fs", default=None, help=f"filesystem personality (default: the {what}'s)"
    )


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be in (0, 100], not {text}")
    return value


def _param(text: str) -> tuple[str, int]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=N, not {text!r}")
    return key, _positive(value)


def _params(args: argparse.Namespace) -> dict[str, int]:
    """The ``--param`` options as a dict; a key given twice is refused rather
    than the last one silently winning."""
    params: dict[str, int] = {}
    for key, value in args.param or []:
        if key in params:
            raise _BadInput(f"--param {key} given twice ({params[key]} and {value})")
        params[key] = value
    return params


def _above_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _natural(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


class _PlainStatus:
    """A status line rewritten in place on a terminal, for want of rich: at
    most ten times a second, and wiped when the work is done."""

    def __init__(self) -> None:
        self.shown = False
        self.at = 0.0

    def __call__(self, text: str) -> None:
        import time

        now = time.monotonic()
        if now - self.at < 0.1:
            return
        self.at = now
        sys.stderr.write(f"\r{text}\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def wipe(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


@contextmanager
def _status(start: str) -> Iterator[Callable[[str], None] | None]:
    """A live status line on stderr when it is a terminal (rich's, if installed,
    else a plain one); None when it is not (a log, a pipe: nothing to rewrite)."""
    if not sys.stderr.isatty():
        yield None
        return
    try:
        from rich.console import Console
        from rich.status import Status
    except ImportError:
        plain = _PlainStatus()
        plain(start)
        try:
            yield plain
        finally:
            plain.wipe()
        return
    with Status(start, console=Console(stderr=True)) as status:
        yield status.update


@contextmanager
def _progress() -> Iterator[Callable[[SearchStats], None] | None]:
    """The exhaustive search's status line: states, transitions, depth, rate,
    and the time and memory so far (what ``--max-time`` and ``--max-memory``
    are measured against)."""
    with _status("exploring…") as status:
        if status is None:
            yield None
            return

        def update(s: SearchStats) -> None:
            rate = s.transitions / s.seconds if s.seconds else 0.0
            status(
                f"states {s.states:,}  transitions {s.transitions:,}  "
                f"depth {s.max_depth}  {rate:,.0f}/s  {s.seconds:,.0f} s  "
                f"peak {s.peak_mib:,.0f} MiB"
            )

        yield update


@contextmanager
def _sampling_progress(runs: int) -> Iterator[Callable[[int, int], None] | None]:
    """A sampler's status line: runs made of the most, steps, runs a second."""
    import time

    with _status("sampling…") as status:
        if status is None:
            yield None
            return
        start = time.monotonic()

        def update(done: int, steps: int) -> None:
            rate = done / max(time.monotonic() - start, 1e-9)
            status(f"run {done:,} of {runs:,}  steps {steps:,}  {rate:,.0f} runs/s")

        yield update


def _check_output(flag: str, path: Path, *, directory: bool = False) -> None:
    """Refuse an output path that cannot be written before the work, not after
    it: a long search's result would be lost. Nothing is created here (the
    directories are made when the output is written)."""
    if path.exists():
        if directory != path.is_dir():
            kind = "not a directory" if directory else "a directory"
            raise _BadInput(f"{flag} {path}: it is {kind}")
        if not os.access(path, os.W_OK | (os.X_OK if directory else 0)):
            raise _BadInput(f"{flag} {path}: cannot write it (permission denied)")
        where = path if directory else path.parent
    else:
        where = path.parent
        while not where.exists():
            where = where.parent
        if not where.is_dir():
            raise _BadInput(f"{flag} {path}: {where} is not a directory")
    if not os.access(where, os.W_OK | os.X_OK):
        raise _BadInput(f"{flag} {path}: cannot write in {where} (permission denied)")


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (:mod:`mmsim._files`); a
    failure (a full disk) is a one-line error, the old file kept."""
    from mmsim._files import write_whole

    try:
        write_whole(path, lambda f: f.write(text.encode()))
    except OSError as exc:
        raise _BadInput(f"{path}: cannot write it ({exc.strerror or exc})") from None


#: ``check``'s options that only a sampler takes, and those only the exhaustive
#: search takes, with the value each has when not given.
_SAMPLER_ONLY = {"runs": None, "seed": None}
_EXHAUSTIVE_ONLY = {
    "jobs": 1,
    "dask": None,
    "checkpoint": None,
    "resume": None,
    "preemption_bound": None,
    "max_time": None,
    "max_memory": None,
    "goal": None,
    "coverage": False,
    "no_symmetry": False,
    "no_dead_variables": False,
    "table_steps": None,
}


def _refuse_options(args: argparse.Namespace) -> None:
    """An option the chosen search does not take is an error, not ignored: a
    user who gave ``--runs`` to the exhaustive search, or ``--max-time`` to a
    sampler, would otherwise believe it in force."""

    def flag(dest: str, value: object = None) -> str:
        return ("--no-" if value is False else "--") + dest.replace("_", "-")

    if args.pct_depth is not None and args.strategy != "pct":
        raise _BadInput(
            "--pct-depth applies to --strategy pct only (the portfolio's PCT "
            "runs at depth 2)"
        )
    if args.strategy == "exhaustive":
        for dest, unset in _SAMPLER_ONLY.items():
            if getattr(args, dest) != unset:
                raise _BadInput(
                    f"{flag(dest)} applies to a sampler only "
                    "(--strategy random, pct, swarm or portfolio)"
                )
        return
    for dest, unset in _EXHAUSTIVE_ONLY.items():
        if getattr(args, dest) != unset:
            raise _BadInput(
                f"{flag(dest, getattr(args, dest))} applies to the exhaustive "
                "search only"
            )


def _refuse_clashes(
    outputs: dict[str, Path | None],
    inputs: dict[str, Path | None],
    allowed: tuple[tuple[str, str], ...] = (),
) -> None:
    """An output that is an input, or another output, is refused before the
    work: writing it would destroy what the run read, or the other output.
    ``allowed`` names the (output, input) pairs that may be one file."""
    seen: dict[str, str] = {}
    for flag, path in inputs.items():
        if path is not None and path.is_file():
            seen.setdefault(os.path.realpath(path), flag)
    for flag, out in outputs.items():
        if out is None:
            continue
        where = os.path.realpath(out)
        other = seen.get(where)
        if other is not None and (flag, other) not in allowed:
            raise _BadInput(f"{flag} {out}: it is the file of {other} too")
        seen[where] = flag


def _cmd_check(args: argparse.Namespace) -> int:
    _refuse_options(args)
    _refuse_clashes(
        {"--checkpoint": args.checkpoint, "--json": args.json},
        {"the scenario": Path(args.scenario), "--resume": args.resume},
        # A resumed search's checkpoint is saved again where it was.
        allowed=(("--checkpoint", "--resume"),),
    )
    if args.json is not None:
        _check_output("--json", args.json)
    if args.strategy != "exhaustive":
        return _cmd_sample(args)
    from mmsim._api import check
    from mmsim.oracles import ALWAYS_ON

    with _executor(args.jobs, args.dask) as executor, _progress() as progress:
        result = check(
            args.scenario,
            args.policy,
            fs=args.fs,
            oracles=args.oracle,
            params=_params(args),
            goals=args.goal,
            max_steps=args.max_steps,
            preemption_bound=args.preemption_bound,
            max_time=args.max_time,
            max_memory=args.max_memory,
            stop_on_first=args.first,
            symmetry=not args.no_symmetry,
            dead_variables=not args.no_dead_variables,
            table_steps=args.table_steps is not False,
            executor=executor,
            checkpoint=args.checkpoint,
            resume=args.resume,
            diagram=not args.no_diagram,
            progress=progress,
        )
    if args.json is not None:
        # Before any output: a reader that goes away (``| head``) stops the
        # printing, and must not take a long search's result with it.
        _write_atomic(args.json, result.model_dump_json(indent=2) + "\n")
    st = result.stats
    print(
        f"{_cell_name(result)} under {result.policy} on {result.fs}: {result.verdict}"
    )
    print(f"  oracles: {', '.join(result.oracles)} (always: {', '.join(ALWAYS_ON)})")
    scope = "complete" if st.complete else f"cut by {', '.join(st.cut_by)}"
    print(
        f"  search: {st.states:,} distinct states, {st.transitions:,} transitions, "
        f"{st.executions:,} executions, max depth {st.max_depth}, {scope}, "
        f"{st.seconds or 0.0:.2f}s"
        + (f", {st.replays:,} replays (tabled steps)" if st.table_steps else "")
    )
    if args.checkpoint is not None and not st.complete and args.checkpoint.exists():
        print(f"  checkpoint: {args.checkpoint} (continue with --resume)")
    for ov in result.per_oracle:
        shortest = f", shortest {ov.steps} steps" if ov.steps is not None else ""
        kind = "regression " if ov.regression else ""
        print(f"  {kind}{ov.oracle}: {ov.verdict}{shortest}")
    cov = result.coverage
    for goal, met in cov.goals.items():
        print(f"  goal {goal}: {'reached' if met else 'NEVER REACHED'}")
    if cov.unmet and result.verdict == "Never":
        print(
            "  warning: a reachability goal was never reached, so this Never may "
            "be vacuous (the scenario may not exercise what it means to)"
        )
    print(f"  steps never reached: {len(cov.unreached)}")
    if args.coverage:
        for where in cov.unreached:
            print(f"    {where}")
    cex = result.counterexample
    if cex is not None:
        what = "shortest counterexample"
        if result.verdict == "Never":
            what = "a refused request (regression)"
        print(
            f"  {what}: {len(cex.steps)} steps, "
            f"{cex.violation.oracle}: {cex.violation.message}"
        )
        if result.diagram:
            print()
            print(result.diagram, end="")
    if args.json is not None:
        print(f"  wrote {args.json}")
    print(f"  reproduce: {result.command}")
    if result.verdict in ("Sometimes", "Always"):
        return EXIT_VIOLATION
    if result.verdict == "Never" and not cov.unmet:
        return EXIT_NEVER
    return EXIT_UNKNOWN


def _cell_name(result: Any) -> str:
    params = ",".join(f"{k}={v}" for k, v in sorted(result.params.items()))
    return f"{result.scenario}[{params}]" if params else str(result.scenario)


@contextmanager
def _executor(jobs: int | None, dask: str | None) -> Iterator[Executor | None]:
    """The Dask cluster at ``dask``, else a process pool of ``jobs`` workers (one
    per CPU when None), or None (in this process) for one."""
    if dask is not None:
        if jobs is not None and jobs > 1:
            raise _BadInput(
                "--dask and --jobs: give one (the cluster's workers do the work)"
            )
        with _dask_client(dask) as client:
            yield client.get_executor()
        return
    jobs = jobs if jobs is not None else os.cpu_count() or 1
    if jobs <= 1:
        yield None
        return
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(jobs)
    try:
        yield pool
    finally:
        _stop_workers(pool)


def _stop_workers(pool: Any) -> None:
    """Shut a process pool down without waiting for a batch still running.

    A budget cut (``--max-time``) leaves the batches then running unwanted, and
    one may be inside a step that does not return (a hook that hangs, until
    the worker's watchdog fires, a minute later): the result is printed now,
    not then. Python 3.14's ``terminate_workers`` does this; before it, the
    workers are terminated one by one.
    """
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((pool._processes or {}).values()):
        if process.is_alive():
            process.terminate()
    # Now the pool's manager thread sees its workers gone, and shutdown joins
    # it at once (its pipes closed in order: no error at interpreter exit).
    pool.shutdown(wait=True, cancel_futures=True)


def _abandon(pool: Executor) -> None:
    """Drop an executor's queued work after Ctrl-C. Dask's executor takes no
    ``cancel_futures``: its ``shutdown(wait=False)`` cancels them all."""
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    except TypeError:
        pool.shutdown(wait=False)


def _dask_client(address: str) -> Any:
    """A client of the Dask scheduler at ``address``; a one-line error when
    Dask is not installed or the scheduler does not answer."""
    try:
        from distributed import Client
    except ImportError:
        raise _BadInput(
            "--dask needs Dask's distributed scheduler: pip install 'mmsim[dask]'"
        ) from None
    try:
        client: Any = Client(address, timeout=_DASK_TIMEOUT_S)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, TypeError) as exc:
        raise _BadInput(
            f"--dask {address}: no Dask scheduler answered ({_first_line(exc)})"
        ) from None
    # A worker with another model would merge its states into this search's
    # graph as if they were the same kernel: refuse it before any work.
    ours = _version()
    try:
        workers = _within(
            _DASK_TIMEOUT_S, lambda: client.get_versions(packages=["mmsim"])
        )["workers"]
    except TimeoutError:
        client.close(timeout=_DASK_TIMEOUT_S)
        raise _BadInput(
            f"--dask {address}: the scheduler did not say what its workers run "
            f"within {_DASK_TIMEOUT_S:g} s"
        ) from None
    problem = None if workers else "the scheduler has no workers"
    for worker, info in sorted(workers.items()):
        theirs = info["packages"].get("mmsim")
        if theirs != ours and problem is None:
            problem = (
                f"worker {worker} has "
                f"{'mmsim ' + theirs if theirs else 'no mmsim installed'}, "
                f"not mmsim {ours}"
            )
    if problem is None:
        # The same version may still be another model (an edited checkout):
        # the source digests must agree too, as each batch's will be checked.
        from mmsim.explorer import _model_digest

        our_model = _model()
        try:
            digests = _within(_DASK_TIMEOUT_S, lambda: client.run(_model_digest))
        except TimeoutError:
            problem = (
                f"a worker did not say which model it runs within {_DASK_TIMEOUT_S:g} s"
            )
        except Exception as exc:  # a worker's error, whatever it is, ends here
            problem = f"a worker could not say which model it runs ({_first_line(exc)})"
        else:
            for worker, theirs in sorted(digests.items()):
                if theirs != our_model and problem is None:
                    problem = (
                        f"worker {worker} runs another build of the model (source "
                        f"digest {theirs}, this process's {our_model})"
                    )
    if problem is not None:
        client.close(timeout=_DASK_TIMEOUT_S)
        raise _BadInput(f"--dask {address}: {problem}")
    return client


def _within(seconds: float, call: Callable[[], _T]) -> _T:
    """``call()``, waited for ``seconds`` at most (then TimeoutError).

    Dask's ``get_versions`` and ``run`` take no timeout, so a worker that hangs
    would hang the check. The call runs on a daemon thread, left behind if it
    never returns: a thread pool's threads are joined at exit, and would hang
    the exit instead.
    """
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, call()))
        except BaseException as exc:  # handed to the caller's thread
            box.append((False, exc))

    thread = threading.Thread(target=run, name="mmsim-dask-check", daemon=True)
    thread.start()
    thread.join(seconds)
    if not box:
        raise TimeoutError
    ok, value = box[0]
    if not ok:
        raise value
    result: _T = value
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("mmsim")


def _model() -> str:
    """This process's model digest (see :func:`mmsim.explorer._model_digest`)."""
    from mmsim.explorer import _model_digest

    return _model_digest()


#: How long to wait for a Dask scheduler to answer, seconds.
_DASK_TIMEOUT_S = 10


def _cmd_sample(args: argparse.Namespace) -> int:
    """``check --strategy random|pct|swarm|portfolio``: sample runs until a violation."""
    import random

    from mmsim._api import _command, _steps, machine_factory
    from mmsim.diagram import render
    from mmsim.explorer import Bounds
    from mmsim.results import CounterexampleFile, SampleReport, ViolationRecord
    from mmsim.sampling import sample
    from mmsim.scenarios import get_scenario, replayable_name

    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    runs = args.runs if args.runs is not None else _RUNS
    depth = args.pct_depth if args.pct_depth is not None else _PCT_DEPTH
    params = _params(args)
    make, fs, ids = machine_factory(
        args.scenario, args.policy, fs=args.fs, oracles=args.oracle, params=params
    )
    made = [0, 0]  # runs and steps so far, for an interrupt's message
    res = None
    with _sampling_progress(runs) as status:

        def progress(done: int, steps: int) -> None:
            made[:] = [done, steps]
            if status is not None:
                status(done, steps)

        # An interrupt is told below, once the status line is wiped.
        with contextlib.suppress(KeyboardInterrupt):
            res = sample(
                make,
                args.strategy,
                seed=seed,
                max_runs=runs,
                max_steps=args.max_steps,
                depth=depth,
                progress=progress,
            )
    if res is None:
        print(
            f"mmsim: interrupted after {made[0]:,} runs ({made[1]:,} steps) "
            f"of {args.strategy} sampling from seed {seed}, no violation "
            "found in them; nothing was written",
            file=sys.stderr,
        )
        return 130
    name = args.scenario + (
        "[" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + "]"
        if params
        else ""
    )
    # Everything the runs depend on (the oracles, a run's most steps too): the
    # same command makes the same runs.
    same = _command(
        args.scenario,
        params,
        args.policy,
        fs,
        ids,
        list(get_scenario(args.scenario, params).oracles),
        Bounds(max_steps=args.max_steps),
        symmetry=True,
        dead_variables=True,
        stop_on_first=False,
    )
    cmd = [*shlex.split(same), "--strategy", args.strategy, "--seed", str(seed)]
    cmd += ["--runs", str(runs)]
    if args.strategy == "pct":
        cmd += ["--pct-depth", str(depth)]
    cex = res.counterexample
    if args.json is not None:
        cell: dict[str, Any] = {
            "scenario": args.scenario,
            "params": params,
            "policy": args.policy,
            "fs": fs,
            "oracles": list(ids),
        }
        found = None
        if cex is not None:
            v = cex.violation
            found = CounterexampleFile(
                **{**cell, "scenario": replayable_name(args.scenario)},
                steps=_steps(make, list(cex.schedule)),
                violation=ViolationRecord(
                    oracle=v.oracle, message=v.message, task=v.task
                ),
                at_end=cex.at_end,
            )
        report = SampleReport(
            **cell,
            strategy=args.strategy,
            seed=seed,
            max_runs=runs,
            max_steps=args.max_steps,
            pct_depth=depth if args.strategy == "pct" else None,
            verdict="Unknown" if cex is None else "Sometimes",
            runs=res.runs,
            steps=res.steps,
            found_by=res.found_by if args.strategy == "portfolio" else None,
            pct_bound=res.bound,
            counterexample=found,
            command=shlex.join(cmd),
        )
        # Before any output, as check's.
        _write_atomic(args.json, report.model_dump_json(indent=2) + "\n")
    print(f"{name} under {args.policy} on {fs}: {args.strategy} sampling, seed {seed}")
    if cex is None:
        print(f"  no violation in {res.runs:,} runs ({res.steps:,} steps): Unknown")
        if res.bound is not None:
            print(
                f"  PCT bound: a bug of depth {res.depth} would be missed with "
                f"probability at most {res.bound:.3g}"
            )
            if res.daemons:
                names = " and ".join(res.daemons)
                print(
                    f"    (proved for tasks that end; a daemon here, {names}, goes "
                    "behind the other tasks after each pass, and a bug that needs "
                    "it sooner is not covered)"
                )
    else:
        by = f" (by {res.found_by})" if args.strategy == "portfolio" else ""
        print(
            f"  Sometimes: run {res.runs:,}{by}, {len(cex.schedule)} steps, "
            f"{cex.violation.oracle}: {cex.violation.message}"
        )
        if not args.no_diagram:
            from mmsim._api import _run

            traced = attrs.evolve(make, tracing=True)
            print()
            print(render(_run(traced, list(cex.schedule), at_end=cex.at_end)), end="")
    if args.json is not None:
        print(f"  wrote {args.json}")
    print(f"  reproduce: {shlex.join(cmd)}")
    return EXIT_UNKNOWN if cex is None else EXIT_VIOLATION


def _cmd_replay(args: argparse.Namespace) -> int:
    from mmsim._api import replay_counterexample, violation_of
    from mmsim.diagram import render
    from mmsim.results import load_counterexample

    cex = load_counterexample(args.file)
    shown = 0

    def on_step(i: int, m: object) -> None:
        nonlocal shown
        if args.quiet:
            return
        trace = m.trace  # type: ignore[attr-defined]
        tasks = m.tasks  # type: ignore[attr-defined]
        for rec in trace[shown:]:
            if rec.kind in ("call", "event", "warn", "bug", "violation", "wait"):
                print(
                    f"[{i:3}] {tasks[rec.task].name if rec.task >= 0 else '-':>16} "
                    f"{'  ' * rec.depth}{rec.text}"
                )
        shown = len(trace)

    m = replay_counterexample(cex, on_step)
    if not args.quiet:
        print()
        print(render(m, title=f"{cex.scenario} under {cex.policy} on {cex.fs}"), end="")
    v = violation_of(m, cex.violation.oracle)
    print(f"replayed {len(cex.steps)} steps: {v.oracle}: {v.message}")
    return EXIT_VIOLATION


def _cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if args.functions and args.events:
        raise _BadInput("list takes --functions or --events, not both")
    if args.functions:
        import importlib

        from mmsim.engine import KERNEL_FUNCTIONS

        for module in MODEL_MODULES:  # registration happens at import
            importlib.import_module(module)

        functions = sorted(
            (f.name, f.file, f.version, f.module) for f in KERNEL_FUNCTIONS.values()
        )
        print(tabulate(functions, headers=["function", "kernel file", "version", "in"]))
        return 0

    from mmsim.oracles import ORACLES
    from mmsim.policy import load_entry, load_policy, policy_names

    if args.events:
        from mmsim.machine import EVENTS

        events = {(name, "the kernel model", what) for name, what in EVENTS.items()}
        broken = []
        for name in policy_names():
            try:
                policies = load_policy(name)
            except ValueError as exc:
                broken.append(str(exc))
                continue
            for p in policies:
                events.update((e, f"policy {name}", "") for e in p.events)
        print(tabulate(sorted(events), headers=["event", "emitted by", "what"]))
        return _broken_policies(broken)

    from mmsim.scenario_spec import FILESYSTEMS
    from mmsim.scenarios import PARAMETERS, SCENARIOS

    print("Scenarios")
    print(
        tabulate(
            [
                (
                    s.id,
                    ",".join(s.groups),
                    ",".join(s.filesystems),
                    ",".join(s.oracles),
                    ",".join(PARAMETERS[s.id][1]) if s.id in PARAMETERS else "-",
                    s.title,
                )
                for s in SCENARIOS.values()
            ],
            headers=["id", "groups", "filesystems", "oracles", "--param", "title"],
            tablefmt="github",
        )
    )
    print("\nFilesystems")
    print(
        tabulate(
            [(name, cls.summary) for name, cls in FILESYSTEMS.items()],
            headers=["--fs", "what"],
            tablefmt="github",
        )
    )
    print("\nPolicies")
    rows = []
    broken = []
    for name in policy_names():
        try:
            entry = load_entry(name)
        except ValueError as exc:
            rows.append((name, "?", "?", "does not load (see below)", ""))
            broken.append(str(exc))
            continue
        rows.append(
            (name, entry.status, entry.kernel_version, entry.summary, entry.link)
        )
    print(
        tabulate(
            rows,
            headers=["name", "status", "kernel", "what", "link"],
            tablefmt="github",
        )
    )
    print("\nOracles")
    print(
        tabulate(
            [(o.id, o.meaning, o.symptom) for o in ORACLES.values()],
            headers=["id", "meaning", "kernel symptom"],
            tablefmt="github",
        )
    )
    return _broken_policies(broken)


def _broken_policies(errors: list[str]) -> int:
    """Name each registered policy that failed to load, one line each, after a
    listing of everything else: a broken plug-in is bad input, not a reason to
    hide the rest."""
    for error in errors:
        print(f"mmsim: error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT if errors else 0


def _cmd_cost(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from mmsim._api import cost
    from mmsim.vmstat import METRICS

    if args.json is not None:
        _check_output("--json", args.json)
    from mmsim.timed import WorkloadHang

    try:
        result = cost(
            args.workload,
            args.policy,
            fs=args.fs,
            seeds=args.seeds,
            seed=args.seed,
            scale=args.scale,
            cost_model=args.cost_model,
        )
    except WorkloadHang as exc:
        # A cost model can slow a run past its step budget (a huge step cost).
        raise _BadInput(f"{args.workload}: {exc}") from None
    if args.json is not None:  # before any output, as check's
        _write_atomic(args.json, result.model_dump_json(indent=2) + "\n")
    rows = []
    for name, spread in result.metrics.items():
        base = name.split(".")[0]
        unit = METRICS[base].unit if base in METRICS else ""
        rows.append((name, unit, spread.mean, spread.min, spread.max))
    seeds = result.seeds
    print(
        f"{result.workload} under {result.policy} on {result.fs}, "
        f"seeds {seeds[0]}..{seeds[-1]}: runs ended {', '.join(result.endings)}"
    )
    print(tabulate(rows, headers=["metric", "unit", "mean", "min", "max"]))
    if result.violations:
        fired = ", ".join(
            f"{o} ({n} of {len(seeds)})" for o, n in result.violations.items()
        )
        print(f"violations met: {fired}")
    if result.regressions:
        refused = ", ".join(
            f"{o} ({n} of {len(seeds)})" for o, n in result.regressions.items()
        )
        print(f"requests refused (regressions): {refused}")
    return EXIT_VIOLATION if result.violations else EXIT_NEVER


class _Bar:
    """Compare's progress: a rich bar on a terminal (if rich is installed), else
    one line at each phase's start and end, so CI logs stay short. Remembers how
    far each phase got, for the message of an interrupted run."""

    def __init__(self, live: Any = None) -> None:
        self.live = live
        self.bars: dict[str, Any] = {}
        self.seen: dict[str, int] = {}

    def __call__(self, done: int, total: int, what: str) -> None:
        self.seen[what] = done
        if self.live is not None:
            if what not in self.bars:
                self.bars[what] = self.live.add_task(what, total=total)
            self.live.update(self.bars[what], completed=done)
        elif done == 0:
            print(f"{what}: {total} cells", flush=True)
        elif done == total:
            print(f"{what}: done", flush=True)


@contextmanager
def _bar() -> Iterator[_Bar]:
    if sys.stderr.isatty():
        try:
            from rich.progress import Progress
        except ImportError:
            pass
        else:
            with Progress() as live:
                yield _Bar(live)
                return
    yield _Bar()


def _cmd_compare(args: argparse.Namespace) -> int:
    from mmsim.explorer import ModelMismatch
    from mmsim.report import compare

    _check_output("--out", args.out, directory=True)
    with _executor(args.jobs, args.dask) as pool, _bar() as progress:
        try:
            written = compare(args.out, executor=pool, progress=progress)
        except KeyboardInterrupt:
            if pool is not None:
                _abandon(pool)
            done = ", ".join(f"{n} {what} cells" for what, n in progress.seen.items())
            print(
                f"mmsim: interrupted after {done or 'nothing'}; nothing was written "
                f"(the report under {args.out} is unchanged)",
                file=sys.stderr,
            )
            return 130
        except ModelMismatch as exc:
            if pool is not None:
                _abandon(pool)
            raise _BadInput(
                f"{exc}; nothing was written (the report under {args.out} is unchanged)"
            ) from None
        except OSError as exc:
            # Writing the report failed (a full disk), or something before it:
            # write_report takes its temporary files away, so either way the
            # report there is the old one.
            raise _BadInput(
                f"{exc.filename or args.out}: {exc.strerror or exc}; nothing was "
                f"written (the report under {args.out} is unchanged)"
            ) from None
    print(f"wrote {len(written)} files under {args.out}")
    return 0


def _fuzz_parser(sub: Any) -> None:
    f = sub.add_parser(
        "fuzz", help="fuzz a policy with Hypothesis: operations and interleavings"
    )
    f.add_argument("--policy", required=True, help="a registered policy")
    f.add_argument(
        "--scenario",
        default=None,
        metavar="ID",
        help="fuzz only the interleavings of this scenario (default: the "
        "policy's state machine: operations started at any time)",
    )
    f.add_argument(
        "--fs",
        default=None,
        help="filesystem personality (default: the scenario's, or the policy's)",
    )
    f.add_argument(
        "--max-examples",
        type=_positive,
        default=None,
        metavar="N",
        help="examples to try (default: the profile's)",
    )
    f.add_argument(
        "--seed",
        type=_natural,
        default=None,
        help="the seed of every random choice (default: drawn, and printed)",
    )
    f.add_argument(
        "--profile",
        default=None,
        metavar="NAME",
        help="take Hypothesis's settings from mmsim's profile dev, ci or nightly",
    )


def _cmd_fuzz(args: argparse.Namespace) -> int:
    import random

    from hypothesis.errors import InvalidArgument

    from mmsim.fuzz import fuzzer

    seed = args.seed
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    # The status line, once the campaign runs (there is none off a terminal).
    shown: list[Callable[[str], None]] = []
    tried = [0]

    def progress(examples: int, failed: bool) -> None:
        tried[0] = examples
        if shown:
            doing = "shrinking the violation found" if failed else "no violation yet"
            shown[0](f"example {examples:,}: {doing}")

    try:
        run = fuzzer(
            args.policy,
            seed=seed,
            scenario=args.scenario,
            fs=args.fs,
            max_examples=args.max_examples,
            profile=args.profile,
            progress=progress,
        )
    except InvalidArgument as exc:
        raise _BadInput(str(exc)) from None
    cmd = ["mmsim", "fuzz", "--policy", args.policy]
    for flag, value in (
        ("--scenario", args.scenario),
        ("--fs", args.fs),
        ("--max-examples", args.max_examples),
        ("--profile", args.profile),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    cmd += ["--seed", str(seed)]
    print(f"seed: {seed}", flush=True)  # first: an interrupted run can be re-run
    with _status("fuzzing…") as status:
        shown.extend([status] if status is not None else [])
        found = run()
    if found is None:
        print(
            f"no violation found under {run.policy} on {run.fs} "
            f"in {tried[0]:,} run{'s' if tried[0] != 1 else ''}"
        )
        # Fuzzing samples: the rare interleaving may be past the budget (the
        # 22-step pageout-window race takes about 2,000 examples of dio/001). The runs
        # are Hypothesis's, which may run more than the examples it counts.
        if args.scenario:
            check = ["mmsim", "check", args.scenario, "--policy", args.policy]
            check += ["--fs", args.fs] if args.fs else []
            print(f"  a sample, not a proof: {shlex.join(check)} tries every run")
        else:
            print("  a sample, not a proof: --max-examples N tries more")
        print(f"  reproduce: {shlex.join(cmd)}")
        return EXIT_NEVER
    v = found.violation
    print(f"violation under {found.policy} on {found.fs}: {v.oracle}: {v.message}")
    what = "steps" if args.scenario else "operations and steps"
    print(f"shrunk run, {len(found.steps)} {what}:")
    for line in found.steps:
        print(f"  {line}")
    if found.at_end:
        print("  (then the run finished: the violation came when it was judged)")
    print(f"  reproduce: {shlex.join(cmd)}")
    return EXIT_VIOLATION


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Run as the program (``argv`` None), it owns the process: what the imports
    build lives until exit, so it is frozen out of the garbage collector's way
    (``gc.freeze``), as the ``gc`` documentation advises before a fork. Every
    full collection would walk those objects again, and a ``--jobs`` worker
    would copy every page whose objects it walked.
    """
    if argv is None:
        gc.disable()  # the imports below make only objects that live on
    from mmsim._api import ReplayError
    from mmsim.engine import StepFailed
    from mmsim.explorer import CheckpointError, Interrupted, ModelMismatch
    from mmsim.oracles import OracleError
    from mmsim.policy import PolicyError
    from mmsim.results import FileError
    from mmsim.scenarios import ScenarioError
    from mmsim.workloads import WorkloadError

    if argv is None:
        gc.freeze()
        gc.enable()
    args = _parser().parse_args(argv)
    handlers = {
        "check": _cmd_check,
        "replay": _cmd_replay,
        "list": _cmd_list,
        "compare": _cmd_compare,
        "cost": _cmd_cost,
        "fuzz": _cmd_fuzz,
    }
    try:
        status = handlers[args.command](args)
        sys.stdout.flush()  # here, so that a reader gone away is seen below
        return status
    except BrokenPipeError:
        # The reader stopped reading (``mmsim list | head``), as a pipe's reader
        # may: quiet, as other tools are. Python's last flush at exit goes to
        # /dev/null rather than complain a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (
        ScenarioError,
        PolicyError,
        OracleError,
        FileError,
        ReplayError,
        WorkloadError,
        CheckpointError,
        ModelMismatch,
        StepFailed,
        _BadInput,
    ) as exc:
        print(f"mmsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Interrupted as stop:
        st = stop.stats
        where = (
            f"saved to {stop.checkpoint}: continue with --resume {stop.checkpoint}"
            if stop.checkpoint is not None
            else "not saved (give --checkpoint FILE to keep it)"
        )
        print(
            f"mmsim: interrupted after {st.states:,} states, {st.transitions:,} "
            f"transitions, depth {st.max_depth}; the search was {where}",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:
        print("mmsim: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
