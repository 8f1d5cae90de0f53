"""The grouped reads of ``store.stats`` (dashboard and ``/metrics``) on both backends:
tenant filters in the query, decision waits from the event log, running stretches."""

from __future__ import annotations

from datetime import timedelta

from intercloud.control.states import JobState as S
from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState
from intercloud.store import Store, stats
from intercloud.store.testing import FakeClock

SPEC = "name: x\nresources:\n  accelerators: H100:8\n"
WHERE = {
    "provider": "aws",
    "region": "us-east-1",
    "accelerator": "H100",
    "accelerator_count": 8,
    "nodes": 2,
}


def _run(store: Store, clock: FakeClock, tenant: str, wait_s: float) -> int:
    job = store.submit("training", f"{tenant}-job", SPEC, tenant=tenant)
    clock.tick(wait_s)
    assert store.transition(job, S.PENDING, S.PLACING, "placed", placement=WHERE)
    assert store.transition(job, S.PLACING, S.PROVISIONING, "allocated", attempt=1)
    store.begin_attempt(job, 1)
    assert store.transition(job, S.PROVISIONING, S.RUNNING, "up")
    return job


def test_counts_waits_and_stretches_are_scoped_in_the_query(store: Store, clock: FakeClock) -> None:
    store.create_tenant("alpha")
    store.create_tenant("beta")
    start = clock.now
    a = _run(store, clock, "alpha", 5)
    _run(store, clock, "beta", 2)
    store.submit("training", "waiting", SPEC, tenant="beta")
    clock.tick(60)
    store.end_attempt(a, 1, "succeeded")
    assert store.transition(a, S.RUNNING, S.SUCCEEDED, "done")

    assert stats.queue_counts(store) == {
        ("beta", "RUNNING", "none"): 1,
        ("beta", "PENDING", "none"): 1,
    }
    assert stats.queue_counts(store, "alpha") == {}
    assert stats.workload_counts(store) == {
        ("alpha", "SUCCEEDED"): 1,
        ("beta", "RUNNING"): 1,
        ("beta", "PENDING"): 1,
    }
    placed = stats.placements_after(store, 0)
    assert [(p.tenant, p.waited_s) for p in placed] == [("alpha", 5.0), ("beta", 2.0)]
    assert stats.placements_after(store, placed[0].event_id) == placed[1:]
    assert stats.placements_after(store, placed[-1].event_id) == []

    mine = stats.running_stretches(store, start, "alpha")
    assert [(s.workload_id, s.gpus, s.nodes, s.provider) for s in mine] == [(a, 16, 2, "aws")]
    assert mine[0].end is not None and mine[0].end - mine[0].start == timedelta(seconds=62)
    both = stats.running_stretches(store, start)
    assert {s.tenant for s in both} == {"alpha", "beta"}
    assert [s.tenant for s in stats.running_stretches(store, clock.now)] == ["beta"]


def test_instances_by_provider_and_state_and_their_running_time(
    store: Store, clock: FakeClock
) -> None:
    offer = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
    ids = [r.id for r in store.request_instances("r1", 2, offer, PricingKind.ON_DEMAND, 98.0)]
    start = clock.now
    assert store.transition_instance(ids[0], InstanceState.REQUESTED, InstanceState.ALLOCATED, "s")
    assert store.transition_instance(ids[0], InstanceState.ALLOCATED, InstanceState.RUNNING, "up")
    assert stats.instance_counts(store) == {("aws", "requested"): 1, ("aws", "running"): 1}
    up = stats.instance_stretches(store, start)
    assert [(s.provider, s.instance_type, s.end) for s in up] == [("aws", "p5.48xlarge", None)]


def test_list_workloads_latest_keeps_the_newest_in_id_order(store: Store) -> None:
    store.create_tenant("alpha")
    ids = [store.submit("training", f"j{i}", SPEC, tenant="alpha") for i in range(5)]
    store.submit("training", "other", SPEC)
    assert [w.id for w in store.list_workloads(tenant="alpha", latest=2)] == ids[-2:]
    assert [w.id for w in store.list_workloads(tenant="alpha", latest=10)] == ids
    assert [w.id for w in store.list_workloads(tenant="alpha")] == ids
