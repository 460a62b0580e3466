"""drivers/infiniband/core/umem.c: registrations, and the completion queue the
RDMA application polls."""

from __future__ import annotations

from mmsim._api import machine_factory
from mmsim.engine import Path
from mmsim.machine import Kernel


def _idle(k: Kernel) -> Path:
    yield k.wait_until(lambda: False, "for ever")


def _by_name(k: Kernel, name: str) -> int:
    return next(t.tid for t in k.tasks if t.name == name and not t.done)


def test_the_application_polls_its_completion_not_its_peers_slot() -> None:
    """Once the peer's RDMA WRITE completed, the application may go on, even
    when another kernel-started task (a bio's completion, say) has since taken
    the slot the peer ran in."""
    make, _, _ = machine_factory("rdma/001", "baseline")
    k = make()
    assert isinstance(k, Kernel)
    app = _by_name(k, "rdma-app")
    while k.tasks[app].wait is None:
        k.step(app)
    assert k.tasks[app].wait is not None
    assert k.tasks[app].wait.reason == "ibv_poll_cq"
    assert app not in k.enabled()  # no completion yet
    peer = _by_name(k, "nic:rdma-write")
    while not k.tasks[peer].done:
        k.step(peer)
    (umem,) = k.umems
    assert umem is not None
    assert umem.completions == 1
    other = k.spawn_irq("softirq:end_bio", _idle(k))
    assert other.tid == peer  # the peer's slot, reused
    assert app in k.enabled()


def test_registrations_take_the_lowest_free_slot_and_release_it() -> None:
    make, _, _ = machine_factory("rdma/001", "baseline")
    k = make()
    assert isinstance(k, Kernel)
    app = _by_name(k, "rdma-app")
    for _ in range(200):
        if k.tasks[app].done:
            break
        enabled = k.enabled()
        k.step(app if app in enabled else enabled[0])
    assert k.umems == [None]  # released: a free slot, left out of the state
    assert k.state_snapshot()[-1] == ()
