"""Job-level providers' health in the loop: a provider whose ``poll`` fails, or that says
it is unreachable, never fails the step for the other providers' jobs; its failures are
recorded as provider calls, so it is down after ``failover.down_after_s`` and up again on
its first good answer (also after a restart of the loop)."""

from __future__ import annotations

from collections.abc import Callable

from control_helpers import all_terminal, run_until, submit

from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.model import Offering
from intercloud.providers.base import (
    Allocation,
    NodeCommand,
    NodeEvent,
    NodeHandle,
    Provider,
    ProviderError,
    ProvisionRequest,
)
from intercloud.providers.local import LocalProvider
from intercloud.store import Store


class Cluster(Provider):
    """A provider that runs nothing and whose cluster is gone while ``gone`` is set:
    ``poll`` raises, or answers and says it is ``unreachable`` (as ray does once it
    reports a dead cluster's nodes lost)."""

    name = "lab"

    def __init__(self) -> None:
        self.gone: str | None = None
        self.poll_raises = True

    def offerings(self) -> list[Offering]:
        return []

    def provision(self, request: ProvisionRequest) -> Allocation:
        raise ProviderError("runs nothing")

    def release(self, allocation_id: str) -> None:
        return None

    def start_node(self, allocation: Allocation, command: NodeCommand) -> NodeHandle:
        raise ProviderError("runs nothing")

    def kill(self, handle: NodeHandle) -> None:
        return None

    def adopt(self, handle: NodeHandle) -> bool:
        return False

    def poll(self) -> list[NodeEvent]:
        if self.gone is not None and self.poll_raises:
            raise ProviderError(self.gone)
        return []

    def unreachable(self) -> str | None:
        return self.gone


def _loop(store: Store, local: LocalProvider, lab: Cluster) -> Reconciler:
    rec = Reconciler(store, {"local": local, "lab": lab})
    rec.ctx.down_after_s = 0.0  # down at its first failed call
    rec.recover()
    return rec


def _lab(store: Store) -> tuple[bool, str | None]:
    [h] = [h for h in store.provider_health() if h.name == "lab"]
    return h.down, h.error


def test_a_failing_provider_is_down_and_the_others_jobs_run(
    store: Store, make_provider: Callable[..., LocalProvider]
) -> None:
    lab = Cluster()
    lab.gone = "cannot reach the lab cluster"
    rec = _loop(store, make_provider(), lab)
    job = submit(store, "echo hi")
    run_until(rec, all_terminal(store, job))
    assert store.get(job).state is JobState.SUCCEEDED  # the step never failed
    assert _lab(store) == (True, "cannot reach the lab cluster")

    lab.poll_raises = False  # it answers its polls, yet says it cannot be reached
    lab.gone = "the lab cluster has not answered"
    rec.step()
    assert _lab(store) == (True, "the lab cluster has not answered")

    # a restarted loop, with the cluster back: up at its first good poll
    lab.gone = None
    again = _loop(store, make_provider(), lab)
    again.step()
    assert _lab(store)[0] is False
    # a provider that was never failing gets no record
    assert [h.name for h in store.provider_health()] == ["lab"]
