"""The bridge: a fake cloud's instances in the store, as a job-level provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from fake_cloud import OFFER, OTHER, FakeProvider, fake_offering

from intercloud.agent.protocol import Assignment
from intercloud.control.instance_pool import InstancePoolProvider, parse_allocation_id
from intercloud.control.instances.step import InstanceReconciler
from intercloud.control.instances.transitions import EndCause, end_cause
from intercloud.model import PricingKind
from intercloud.providers.base import (
    Capability,
    CapacityError,
    NodeAlreadyStarted,
    NodeCommand,
    NodeEventKind,
    ProviderError,
    ProvisionRequest,
)
from intercloud.providers.contract import InstanceState
from intercloud.store import Store
from intercloud.store.records import AssignmentState, InstanceRecord
from intercloud.store.testing import FakeClock

S = InstanceState
A = AssignmentState
MakeStep = Callable[..., tuple[InstanceReconciler, FakeProvider]]


def pool_of(
    store: Store, make_step: MakeStep, clock: FakeClock, count: int = 3, **kw: object
) -> tuple[InstancePoolProvider, InstanceReconciler, FakeProvider, list[int]]:
    rows = store.request_instances("r1", count, OFFER, PricingKind.ON_DEMAND, 10.0)
    step, provider = make_step()
    for _ in range(3):
        step.step()
    assert {r.state for r in store.instances()} == {"running"}
    bridge = InstancePoolProvider(store, provider, clock=clock, **kw)  # type: ignore[arg-type]
    return bridge, step, provider, [r.id for r in rows]


def job(store: Store) -> int:
    return store.submit("training", "j", "name: j\n")


def prov(job_id: int, nodes: int, attempt: int = 1, **kw: object) -> ProvisionRequest:
    return ProvisionRequest(
        request_id=f"{job_id}-a{attempt}",
        job_id=str(job_id),
        offering=kw.pop("offering", fake_offering()),  # type: ignore[arg-type]
        nodes=nodes,
        **kw,  # type: ignore[arg-type]
    )


def command(job_id: int, rank: int, attempt: int = 1) -> NodeCommand:
    return NodeCommand(
        job_id=str(job_id),
        attempt=attempt,
        rank=rank,
        num_nodes=2,
        setup="pip install x",
        run="python train.py",
        env={"A": "1"},
        log_dir="",
        checkpoint_dir="",
    )


def inst(store: Store, iid: int) -> InstanceRecord:
    rec = store.get_instance(iid)
    assert rec is not None
    return rec


def test_contract_basics(store: Store, make_step: MakeStep, clock: FakeClock) -> None:
    bridge, _, provider, _ = pool_of(store, make_step, clock, count=1)
    assert bridge.name == "fake"
    assert Capability.ADOPT in bridge.capabilities
    assert bridge.capabilities >= provider.capabilities
    assert bridge.free_capacity() is None
    assert {(o.provider, o.region, o.zone, o.instance_type) for o in bridge.offerings()} == {
        OFFER,
        OTHER,
    }
    assert parse_allocation_id("12-a3") == (12, 3)
    with pytest.raises(ValueError, match="allocation id"):
        parse_allocation_id("job-12")


def test_provision_binds_idle_running_instances(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    bridge, _, _, _ = pool_of(store, make_step, clock)
    j = job(store)
    alloc = bridge.provision(prov(j, 2))
    assert alloc.allocation_id == f"{j}-a1" and alloc.zone == OFFER[2]
    assert [s.rank for s in alloc.nodes] == [0, 1]
    bound = store.instances(workload_id=j)
    assert [r.id for r in bound] == alloc.extra["instances"]
    assert [s.host for s in alloc.nodes] == [r.address for r in bound]
    assert all(s.host.startswith("10.0.0.") for s in alloc.nodes)
    again = bridge.provision(prov(j, 2))  # the same request id: the same allocation
    assert again == alloc
    other = job(store)
    with pytest.raises(CapacityError, match="1 of 2"):
        bridge.provision(prov(other, 2))
    with pytest.raises(CapacityError, match="0 of 1 spot"):
        bridge.provision(prov(other, 1, pricing=PricingKind.SPOT))
    with pytest.raises(CapacityError):
        bridge.provision(prov(other, 1, offering=fake_offering(OTHER)))
    assert len(store.instances(bound=False)) == 1


def test_start_node_writes_the_assignment_once(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    bridge, _, _, _ = pool_of(store, make_step, clock, count=2)
    j = job(store)
    alloc = bridge.provision(prov(j, 2))
    assert bridge.node_handle(str(j), 1, 0) is None
    handle = bridge.start_node(alloc, command(j, 0))
    iid = handle.extra["instance_id"]
    rec = inst(store, iid)
    assert rec.assignment_state is A.ASSIGNED and rec.rank == 0
    assert rec.assignment is not None
    work = Assignment.from_json(rec.assignment)
    assert (work.job_id, work.attempt, work.rank, work.run) == (str(j), 1, 0, command(j, 0).run)
    assert work.env["RANK"] == "0" and work.env["WORLD_SIZE"] == "2"
    with pytest.raises(NodeAlreadyStarted) as info:
        bridge.start_node(alloc, command(j, 0))
    assert info.value.handle == handle
    assert bridge.node_handle(str(j), 1, 0) == handle
    assert not bridge.node_alive(str(j), 1, 0)
    with pytest.raises(ProviderError, match="no instance serves node 5"):
        bridge.start_node(alloc, command(j, 5))
    with pytest.raises(ProviderError, match="workdir"):
        bridge.start_node(
            alloc,
            dataclasses.replace(command(j, 1), workdir="/w"),
        )


def test_poll_reports_exits_and_losses_once(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    bridge, step, provider, _ = pool_of(store, make_step, clock, count=3)
    j = job(store)
    alloc = bridge.provision(prov(j, 3))
    handles = [bridge.start_node(alloc, command(j, r)) for r in range(3)]
    iids = [h.extra["instance_id"] for h in handles]
    assert bridge.poll() == []  # assigned, nothing happened yet
    for iid in iids:
        assert store.set_assignment_state(iid, A.ASSIGNED, A.STARTED)  # the agents
    assert store.set_assignment_state(iids[0], A.STARTED, A.EXITED, exit_code=3)
    provider.reclaim(inst(store, iids[1]).provider_instance_id or "")
    provider.lose(inst(store, iids[2]).provider_instance_id or "")
    step.step()
    events = sorted(bridge.poll(), key=lambda e: e.rank)
    assert [(e.kind, e.rank, e.exit_code) for e in events] == [
        (NodeEventKind.EXITED, 0, 3),
        (NodeEventKind.PREEMPTED, 1, None),
        (NodeEventKind.LOST, 2, None),
    ]
    assert all(e.job_id == str(j) and e.attempt == 1 and e.ended_at for e in events)
    assert "reclaimed" in events[1].reason
    assert bridge.poll() == []  # each once
    # adopt re-attaches (a restarted loop) and lets poll say it again
    assert bridge.adopt(handles[0])
    assert not bridge.adopt(handles[1])
    assert [e.rank for e in bridge.poll()] == [0]


def test_kill_asks_the_agent_and_waits_for_it(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    bridge, _, _, _ = pool_of(store, make_step, clock, count=2)
    j = job(store)
    alloc = bridge.provision(prov(j, 2))
    h0, h1 = (bridge.start_node(alloc, command(j, r)) for r in range(2))
    bridge.kill(h0)  # never picked up: withdrawn at once
    assert inst(store, h0.extra["instance_id"]).assignment_state is A.KILLED
    i1 = h1.extra["instance_id"]
    assert store.set_assignment_state(i1, A.ASSIGNED, A.STARTED)
    with pytest.raises(ProviderError, match="still stopping"):
        bridge.kill(h1)
    stopping = inst(store, i1)
    assert stopping.assignment_state is A.STARTED and stopping.assignment is not None
    assert stopping.assignment["kill"] is True  # what the agent polls for
    with pytest.raises(ProviderError, match="still stopping"):
        bridge.kill(h1)
    assert store.set_assignment_state(i1, A.STARTED, A.KILLED)  # the agent confirms
    bridge.kill(h1)
    bridge.kill(h1)  # idempotent
    assert bridge.poll() == []  # killed nodes are the reconciler's own record
    bridge.release(alloc.allocation_id)
    assert {r.state for r in store.instances()} == {"running"}
    assert all(r.idle for r in store.instances())


def test_kill_of_a_silent_agent_ends_the_instance(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    bridge, step, _, _ = pool_of(store, make_step, clock, count=1, kill_timeout_s=30)
    j = job(store)
    alloc = bridge.provision(prov(j, 1))
    handle = bridge.start_node(alloc, command(j, 0))
    iid = handle.extra["instance_id"]
    assert store.set_assignment_state(iid, A.ASSIGNED, A.STARTED)
    with pytest.raises(ProviderError):
        bridge.kill(handle)
    clock.tick(31)
    with pytest.raises(ProviderError):
        bridge.kill(handle)
    rec = inst(store, iid)
    assert rec.state == "terminating" and end_cause(rec.extra) is EndCause.KILL_TIMEOUT
    step.step()
    step.step()
    assert inst(store, iid).state == "terminated"
    bridge.kill(handle)  # gone: done


def test_release_returns_idle_instances_and_drains_busy_ones(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    bridge, step, _, _ = pool_of(store, make_step, clock, count=2)
    j = job(store)
    alloc = bridge.provision(prov(j, 2))
    h0, h1 = (bridge.start_node(alloc, command(j, r)) for r in range(2))
    for h in (h0, h1):
        assert store.set_assignment_state(h.extra["instance_id"], A.ASSIGNED, A.STARTED)
    assert store.set_assignment_state(h0.extra["instance_id"], A.STARTED, A.EXITED, 0)
    clock.tick(10)
    bridge.release(alloc.allocation_id)
    bridge.release(alloc.allocation_id)
    free, busy = inst(store, h0.extra["instance_id"]), inst(store, h1.extra["instance_id"])
    assert free.idle and free.state == "running" and free.idle_since == clock.now
    assert busy.idle and busy.state == "draining"
    step.step()
    step.step()
    assert inst(store, busy.id).state == "terminated"
    # the freed instance serves the next job
    j2 = job(store)
    alloc2 = bridge.provision(prov(j2, 1))
    assert alloc2.extra["instances"] == [free.id]


def test_a_shared_checkpoint_dir_reaches_the_agent(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    """The command's checkpoint folder (config ``checkpoint_dir``) is the node's
    ``INTERCLOUD_CHECKPOINT_DIR``; without one the agent picks a folder of its own."""
    bridge, _, _, _ = pool_of(store, make_step, clock, count=2)
    j = job(store)
    alloc = bridge.provision(prov(j, 2))
    shared = dataclasses.replace(command(j, 0), checkpoint_dir=f"/mnt/shared/{j}")
    h0 = bridge.start_node(alloc, shared)
    h1 = bridge.start_node(alloc, command(j, 1))
    env0 = Assignment.from_json(inst(store, h0.extra["instance_id"]).assignment or {}).env
    env1 = Assignment.from_json(inst(store, h1.extra["instance_id"]).assignment or {}).env
    assert env0["INTERCLOUD_CHECKPOINT_DIR"] == f"/mnt/shared/{j}"
    assert "INTERCLOUD_CHECKPOINT_DIR" not in env1
