"""The guarded writes of nodes and instances hand back the row as they wrote it (one
``UPDATE``/``INSERT ... RETURNING``, no second statement to read it back): each record
returned equals the row read afterwards, and a guard that fails returns None and
changes nothing."""

from __future__ import annotations

from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState as I
from intercloud.store import NodeState, Store
from intercloud.store.records import AssignmentState as A
from intercloud.store.records import InstanceRecord

OFFER = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")


def _row(store: Store, instance_id: int) -> InstanceRecord:
    (got,) = [r for r in store.instances() if r.id == instance_id]
    return got


def test_node_writes_return_the_stored_row(store: Store) -> None:
    job = store.submit("training", "j", "run: x\n")
    started = store.record_node_starting(job, 1, 0, "aws")
    assert [started] == store.nodes(job, 1)
    running = store.record_node_started(job, 1, 0, "h", 42, 7, extra={"k": 1})
    assert running is not None and running.state is NodeState.RUNNING
    assert [running] == store.nodes(job, 1)
    assert store.record_node_started(job, 1, 0, "h", 43, 7) is None  # not starting
    ended = store.record_node_ended(job, 1, 0, NodeState.EXITED, exit_code=0)
    assert ended is not None and [ended] == store.nodes(job, 1)
    assert store.record_node_ended(job, 1, 0, NodeState.EXITED, exit_code=1) is None
    assert store.nodes(job, 1) == [ended]


def test_instance_writes_return_the_stored_row(store: Store) -> None:
    (inst,) = store.request_instances("r1", 1, OFFER, PricingKind.ON_DEMAND, 2.0)
    alloc = store.transition_instance(inst.id, I.REQUESTED, I.ALLOCATED, "seen")
    assert alloc is not None and alloc == _row(store, inst.id)
    assert store.transition_instance(inst.id, I.REQUESTED, I.ALLOCATED, "again") is None
    run = store.transition_instance(inst.id, I.ALLOCATED, I.RUNNING, "up")
    assert run is not None and run == _row(store, inst.id) and run.idle
    noted = store.set_instance_fields(run.id, run.version, reason="note", extra={"n": 1})
    assert noted is not None and noted == _row(store, inst.id)
    assert store.set_instance_fields(run.id, run.version, reason="stale") is None
    job = store.submit("training", "j", "run: x\n")
    bound = store.bind_instances(job, 1, [inst.id])
    assert bound is not None and bound == [_row(store, inst.id)]
    assert store.bind_instances(job, 2, [inst.id]) is None  # taken: nothing changes
    given = store.assign(inst.id, job, 1, 0, {"key": "k", "run": "x"})
    assert given is not None and given == _row(store, inst.id)
    started = store.set_assignment_state(inst.id, A.ASSIGNED, A.STARTED)
    assert started is not None and started == _row(store, inst.id)
    assert store.set_assignment_state(inst.id, A.ASSIGNED, A.STARTED) is None
    freed = store.unbind_instances(job, 1)
    assert freed == [_row(store, inst.id)] and freed[0].workload_id is None


def test_workload_writes_return_the_stored_record(store: Store) -> None:
    store.create_tenant("research")
    job = store.submit("training", "j", "run: x\n", tenant="research")
    w = store.get(job)
    placing = store.transition(job, "PENDING", "PLACING", "placed", expected_version=w.version)
    assert placing is not None and placing == store.get(job) and placing.tenant == "research"
    assert store.transition(job, "PENDING", "PLACING", "again") is None
    noted = store.set_fields(job, placing.version, reason="why", placement={"ranks": 1})
    assert noted is not None and noted == store.get(job)
    assert store.set_fields(job, placing.version, reason="stale") is None
    assert store.get(job) == noted
