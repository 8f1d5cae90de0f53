"""The unchanged job reconciler runs a gang on instances through the bridge.

Instances come up through the instance step on the fake cloud; the test plays the node
agents (assigned -> started -> exited). The job ends SUCCEEDED, and its instances go
back to their pool, idle and running, ready for the next job.
"""

from __future__ import annotations

from collections.abc import Callable

from control_helpers import spec
from fake_cloud import OFFER, FakeProvider

from intercloud.control.decide import PlannerDecider
from intercloud.control.instance_pool import InstancePoolProvider
from intercloud.control.instances.step import InstanceReconciler
from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.model import PricingKind
from intercloud.store import Store
from intercloud.store.records import AssignmentState
from intercloud.store.testing import FakeClock

A = AssignmentState


def agents(store: Store, exit_code: int | None) -> None:
    """Every node agent starts what it was assigned, confirms kills, and (when
    ``exit_code`` is given) ends what it started with that code."""
    for r in store.instances(bound=True):
        if r.state not in ("running", "draining"):
            continue  # its VM is gone, and its agent with it
        killed = (r.assignment or {}).get("kill")
        if r.assignment_state is A.STARTED and exit_code is not None and not killed:
            store.set_assignment_state(r.id, A.STARTED, A.EXITED, exit_code=exit_code)
        elif r.assignment_state is A.ASSIGNED:
            store.set_assignment_state(r.id, A.ASSIGNED, A.STARTED)
        elif r.assignment_state is A.STARTED and (r.assignment or {}).get("kill"):
            store.set_assignment_state(r.id, A.STARTED, A.KILLED)


def test_gang_runs_on_pool_instances_and_returns_them(
    store: Store,
    make_step: Callable[..., tuple[InstanceReconciler, FakeProvider]],
    clock: FakeClock,
) -> None:
    store.request_instances("pool-1", 2, OFFER, PricingKind.ON_DEMAND, 10.0)
    step, provider = make_step()
    bridge = InstancePoolProvider(store, provider, clock=clock)
    # No back-off: a job that finds no idle instance retries at the next step.
    loop = Reconciler(store, {"fake": bridge}, decider=PlannerDecider(), retry_backoff_s=(0.0, 0.0))
    loop.recover()
    job = store.submit("training", "g", spec("python train.py", nodes=2, instance_type="gpu8"))
    for _ in range(12):
        step.step()
        loop.step()
        agents(store, exit_code=0)
        if store.get(job).state is JobState.SUCCEEDED:
            break
    w = store.get(job)
    assert w.state is JobState.SUCCEEDED, (w.state, w.reason)
    nodes = store.nodes(job, 1)
    assert [(n.rank, n.state.value, n.exit_code) for n in nodes] == [
        (0, "exited", 0),
        (1, "exited", 0),
    ]
    hosts = {n.host for n in nodes}
    assert hosts == {r.address for r in store.instances()}
    assert {(r.state, r.idle) for r in store.instances()} == {("running", True)}
    assert provider.launch_calls and len(provider.launch_calls) == 1


def test_reclaimed_instance_preempts_its_node_and_the_gang_resumes(
    store: Store,
    make_step: Callable[..., tuple[InstanceReconciler, FakeProvider]],
    clock: FakeClock,
) -> None:
    store.request_instances("pool-1", 3, OFFER, PricingKind.SPOT, 3.0)
    step, provider = make_step()
    bridge = InstancePoolProvider(store, provider, clock=clock)
    loop = Reconciler(store, {"fake": bridge}, decider=PlannerDecider(), retry_backoff_s=(0.0, 0.0))
    loop.recover()
    for _ in range(3):
        step.step()
    text = spec("python train.py", nodes=2, instance_type="gpu8", spot="only")
    job = store.submit("training", "g", text, max_restarts=1)
    for _ in range(6):
        loop.step()
        agents(store, exit_code=None)
    assert store.get(job).state is JobState.RUNNING
    victim = next(r for r in store.instances(bound=True) if r.rank == 0)
    provider.reclaim(victim.provider_instance_id or "")
    for _ in range(12):
        step.step()
        loop.step()
        agents(store, exit_code=0 if store.get(job).attempt > 1 else None)
        if store.get(job).state is JobState.SUCCEEDED:
            break
    w = store.get(job)
    assert w.state is JobState.SUCCEEDED and w.attempt == 2, (w.state, w.reason)
    first = {n.rank: n for n in store.nodes(job, 1)}
    assert first[0].state.value == "lost"
    lost = [e for e in store.events(job) if e.kind == "node_lost"]
    assert [e.data and e.data["rank"] for e in lost] == [0]
    assert "reclaimed" in (lost[0].reason or "")
    assert {r.id for r in store.instances(states=["running"])} == {
        r.id for r in store.instances() if r.id != victim.id
    }
    assert all(r.idle for r in store.instances())
