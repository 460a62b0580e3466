"""Policies: candidate fixes plugged into the kernel model at named hook points.

A policy is a class whose optional hook methods replace the baseline kernel at a
point named after the kernel function it overrides (``set_page_dirty_lock``,
``clear_page_dirty_for_io``, ``try_to_release_page``, ``put_page``, …). As in
trio's ``Instrument``, only the hooks a policy overrides are dispatched: the hook
table is built once per machine, and a hook nobody overrides is the baseline
function itself, with no indirection.

Every hook receives ``nxt`` first: the implementation below it in the stack (the
next policy's override, or the baseline). Calling ``nxt`` keeps the kernel's
behaviour; not calling it replaces it. Policies compose into stacks: in
``Stack(A, B)``, A's hooks wrap B's, which wrap the baseline.

Hooks whose kernel function may sleep are generator functions (paths, called with
``yield from``) and may ``yield k.wait_until(...)``; the others are plain
functions. An override must be of the same kind as the hook: this is checked when
the policy is loaded, with an error naming the hook.

Policies keep no state of their own: whatever a fix needs to remember lives in the
machine (for example on the page), so that the explorer's fingerprint sees it.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import attrs

__all__ = [
    "HOOKS",
    "Objection",
    "Ops",
    "Policy",
    "PolicyError",
    "Stack",
    "build_ops",
    "builtin_policy_names",
    "load_entry",
    "load_policy",
    "policy_names",
]


class PolicyError(ValueError):
    """A policy is unknown or malformed."""


#: The hook points: kernel function name → (may sleep, what it models).
HOOKS: dict[str, tuple[bool, str]] = {
    "get_user_pages_fast": (True, "mm/gup.c: take references on user pages"),
    "iov_iter_get_pages": (True, "lib/iov_iter.c: how direct I/O takes its buffer"),
    "get_user_pages_longterm": (
        True,
        "mm/gup.c: how long-term users (RDMA) take their pages",
    ),
    "check_vma_flags": (False, "mm/gup.c: may GUP take this VMA's pages at all?"),
    "put_user_page": (False, "mm/gup.c: release a FOLL_GET reference GUP gave out"),
    "unpin_user_page": (False, "mm/gup.c: release a FOLL_PIN pin"),
    "set_page_dirty_lock": (True, "mm/page-writeback.c: dirty a page under its lock"),
    "clear_page_dirty_for_io": (
        True,
        "mm/page-writeback.c: clean a page for writeback",
    ),
    "writeback_before_lock": (
        True,
        "writeback, before it locks a dirty page it looked up (v4.15: go on)",
    ),
    "break_layouts": (
        True,
        "truncate and hole punch, before the page cache goes (v4.15: nothing)",
    ),
    "blk_queue_bounce": (False, "block/bounce.c: copy a bio's pages before the I/O"),
    "page_mkclean": (False, "mm/rmap.c: write-protect and clean every PTE of a page"),
    "try_to_release_page": (False, "mm/filemap.c: drop a page's private data"),
    "put_page": (False, "mm/swap.c: drop a page reference"),
    "reclaim_keep_pinned": (
        False,
        "mm/vmscan.c: in shrink_page_list after try_to_unmap, keep the page?",
    ),
    "has_writepage": (
        False,
        "mm/vmscan.c: may pageout() write this file's pages (a ->writepage)?",
    ),
    "ext4_page_buffers": (
        False,
        "fs/ext4/inode.c: writeback met a page without buffers (v4.15: BUG)",
    ),
    "call_read_iter": (
        True,
        "include/linux/fs.h: which ->read_iter an O_DIRECT read takes "
        "(v4.15 ext4 and btrfs: fs/direct-io.c)",
    ),
}


@attrs.frozen
class Objection:
    """A maintainer's objection to a fix, and the report figure that tests it.

    Either a verdict (``scenario``, ``oracle``, on ``fs``): the objection is
    confirmed when that oracle is not Never for the fix; or a cost (``workload``,
    ``metric``): confirmed when the fix's mean is above the baseline's by more
    than the spread over seeds and by at least 5% (``metric`` ``"ending"``: when
    a run of the fix did not finish).
    """

    who: str
    said: str
    scenario: str = ""
    oracle: str = ""
    fs: str = "ext4"
    workload: str = ""
    metric: str = ""


class Policy:
    """Base class of every policy; override any hook named in :data:`HOOKS`.

    Class attributes describe the proposal (shown by ``mmsim list``).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    status: ClassVar[str] = ""
    link: ClassVar[str] = ""
    kernel_version: ClassVar[str] = ""
    #: The filesystems (``--fs`` names) the mechanism applies to; empty for all.
    #: Checked when a machine is built, with an error that says why.
    filesystems: ClassVar[tuple[str, ...]] = ()
    #: Why the mechanism applies only to ``filesystems`` (for that error).
    filesystems_why: ClassVar[str] = ""
    #: What maintainers objected to, each with the figure that tests it.
    objections: ClassVar[tuple[Objection, ...]] = ()
    #: The tracepoints and counters the policy's own hooks emit, beyond the
    #: kernel model's (:data:`mmsim.machine.EVENTS`): a reachability goal may
    #: name them.
    events: ClassVar[tuple[str, ...]] = ()

    #: Machine-wide constant: the fingerprint ignores the policy object.
    snapshot_tag: ClassVar[int] = 0

    def overridden_hooks(self) -> list[str]:
        """Names of the hooks this policy overrides."""
        return [h for h in HOOKS if _own_hook(self, h) is not None]


def _own_hook(policy: Policy, hook: str) -> Callable[..., Any] | None:
    impl = getattr(type(policy), hook, None)
    return (
        impl if impl is not None and impl is not getattr(Policy, hook, None) else None
    )


@attrs.frozen
class Stack:
    """Several policies applied together; earlier ones wrap later ones.

    Registered through the ``mmsim.policies`` entry point like a policy, with the
    same descriptive fields.
    """

    policies: tuple[Policy, ...]
    name: str = ""
    summary: str = ""
    status: str = ""
    link: str = ""
    kernel_version: str = ""
    objections: tuple[Objection, ...] = ()


@attrs.define(slots=True, eq=False)
class Ops:
    """The dispatch table a machine calls: one callable per hook."""

    get_user_pages_fast: Callable[..., Any]
    iov_iter_get_pages: Callable[..., Any]
    get_user_pages_longterm: Callable[..., Any]
    check_vma_flags: Callable[..., Any]
    put_user_page: Callable[..., Any]
    unpin_user_page: Callable[..., Any]
    writeback_before_lock: Callable[..., Any]
    break_layouts: Callable[..., Any]
    blk_queue_bounce: Callable[..., Any]
    set_page_dirty_lock: Callable[..., Any]
    clear_page_dirty_for_io: Callable[..., Any]
    page_mkclean: Callable[..., Any]
    try_to_release_page: Callable[..., Any]
    put_page: Callable[..., Any]
    reclaim_keep_pinned: Callable[..., Any]
    has_writepage: Callable[..., Any]
    ext4_page_buffers: Callable[..., Any]
    call_read_iter: Callable[..., Any]


_VALIDATED: set[type[Policy]] = set()


def _validate(cls: type[Policy]) -> None:
    """Check a policy class once: every public method is a hook of the right kind."""
    if cls in _VALIDATED:
        return
    _check_hooks(cls())
    _VALIDATED.add(cls)


def _check_hooks(policy: Policy) -> None:
    for attr in dir(type(policy)):
        if attr.startswith("_") or attr in vars(Policy):
            continue
        value = getattr(type(policy), attr)
        if callable(value) and attr not in HOOKS and not isinstance(value, type):
            raise PolicyError(
                f"policy {policy.name or type(policy).__name__!r} defines {attr!r}, "
                f"which is not a hook (hooks: {', '.join(HOOKS)})"
            )
    for hook, (sleeps, _) in HOOKS.items():
        impl = _own_hook(policy, hook)
        if impl is not None and inspect.isgeneratorfunction(impl) != sleeps:
            kind = (
                "a generator function (it may sleep)" if sleeps else "a plain function"
            )
            raise PolicyError(
                f"policy {policy.name!r}: hook {hook!r} must be {kind}, like the "
                "kernel function it overrides"
            )


def build_ops(
    policies: tuple[Policy, ...], baseline: dict[str, Callable[..., Any]]
) -> Ops:
    """Build the hook table: the baseline wrapped by each overriding policy."""
    table = dict(baseline)
    for policy in reversed(policies):
        _validate(type(policy))
        for hook in HOOKS:
            impl = _own_hook(policy, hook)
            if impl is not None:
                table[hook] = partial(getattr(policy, hook), table[hook])
    return Ops(**table)


def policy_names() -> list[str]:
    """Every policy registered under the ``mmsim.policies`` entry point."""
    return sorted(
        ep.name for ep in importlib.metadata.entry_points(group="mmsim.policies")
    )


def builtin_policy_names() -> list[str]:
    """The registered policies that ship with mmsim (``mmsim.strategies``).

    The comparison report is built from these only, so that it does not depend
    on which third-party policies happen to be installed.
    """
    return sorted(
        ep.name
        for ep in importlib.metadata.entry_points(group="mmsim.policies")
        if ep.value.startswith("mmsim.strategies.")
    )


def load_policy(name: str) -> tuple[Policy, ...]:
    """Load a registered policy (or stack) by name, as a tuple of policies."""
    entry = load_entry(name)
    return entry.policies if isinstance(entry, Stack) else (entry,)


#: The ``mmsim.policies`` entry points by name, as last scanned.
_REGISTERED: dict[str, importlib.metadata.EntryPoint] | None = None


def load_entry(name: str) -> Policy | Stack:
    """Load what a ``mmsim.policies`` entry point names: a policy or a stack."""
    global _REGISTERED
    if _REGISTERED is None or name not in _REGISTERED:
        # Scanned once per process (a cell loads its policy several times), and
        # again for a name not seen yet, so a plug-in installed while the
        # process runs is still found.
        _REGISTERED = {
            ep.name: ep
            for ep in importlib.metadata.entry_points(group="mmsim.policies")
        }
    eps = _REGISTERED
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise PolicyError(f"unknown policy {name!r} (registered: {known})")
    try:
        obj = eps[name].load()
    except Exception as exc:
        raise PolicyError(f"policy {name!r} failed to load: {exc}") from exc
    if isinstance(obj, type) and issubclass(obj, Policy):
        return obj()
    if isinstance(obj, Stack):
        return obj
    # Named as the entry point names it: a repr may hold a memory address, and
    # the listing must read the same on every run.
    raise PolicyError(
        f"entry point {name!r} names {eps[name].value} (a {type(obj).__name__}), "
        "which is neither a Policy subclass nor a Stack"
    )
