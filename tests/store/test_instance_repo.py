"""Instance store methods on both backends: requests, guarded transitions, binding."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from intercloud.control.instances.transitions import IllegalInstanceTransition
from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState
from intercloud.store import InvalidRequest, Store, open_store
from intercloud.store.records import AssignmentState
from intercloud.store.testing import FakeClock, temporary_postgres_database

S = InstanceState
OFFER = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
SPEC = "name: llama\nresources:\n  accelerators: H100:8\n"


@pytest.fixture()
def pg_url(postgres_required: None) -> Iterator[str]:
    with temporary_postgres_database() as url:
        yield url


def _running(store: Store, request_id: str = "r1", count: int = 2) -> list[int]:
    rows = store.request_instances(request_id, count, OFFER, PricingKind.ON_DEMAND, 98.3)
    ids = [r.id for r in rows]
    for n, iid in enumerate(ids):
        assert store.transition_instance(
            iid, S.REQUESTED, S.ALLOCATED, "seen", provider_instance_id=f"i-{request_id}{n}"
        )
        assert store.transition_instance(iid, S.ALLOCATED, S.RUNNING, "agent registered")
    return ids


def test_request_is_idempotent_by_request_and_slot(store: Store) -> None:
    first = store.request_instances("r1", 3, OFFER, PricingKind.SPOT, 12.5, contract="c1")
    again = store.request_instances("r1", 3, OFFER, PricingKind.SPOT, 12.5, contract="c1")
    assert [r.id for r in first] == [r.id for r in again]
    assert [r.slot for r in first] == [0, 1, 2]
    r = first[0]
    assert (r.state, r.pricing, r.contract, r.usd_per_hour) == ("requested", "spot", "c1", 12.5)
    assert r.offering == OFFER and r.idle and r.version == 1
    events = store.instance_events(r.id)
    assert [(e.kind, e.to_state) for e in events] == [("instance", "requested")]
    assert len(store.instances(request_id="r1")) == 3


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", 1, OFFER, "on_demand", 1.0), "request_id"),
        (("r", 0, OFFER, "on_demand", 1.0), "count"),
        (("r", 1, ("aws", "", "", "x"), "on_demand", 1.0), "offering"),
        (("r", 1, OFFER, "cheap", 1.0), "pricing"),
        (("r", 1, OFFER, "on_demand", -1.0), "usd_per_hour"),
    ],
)
def test_bad_request_names_the_field(store: Store, args: tuple, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidRequest, match=f"^{field}:"):
        store.request_instances(*args)


def test_transition_is_guarded_and_stamped(store: Store, clock: FakeClock) -> None:
    (iid,) = [r.id for r in store.request_instances("r1", 1, OFFER, "on_demand", 1.0)]
    rec = store.transition_instance(
        iid, S.REQUESTED, S.ALLOCATED, "seen", provider_instance_id="i-1", address="10.0.0.5"
    )
    assert rec and rec.version == 2 and rec.provider_instance_id == "i-1"
    # The guard: a stale expected state or version changes nothing.
    assert store.transition_instance(iid, S.REQUESTED, S.ALLOCATED, "again") is None
    assert store.transition_instance(iid, S.ALLOCATED, S.RUNNING, "x", expected_version=1) is None
    clock.tick(5)
    rec = store.transition_instance(iid, S.ALLOCATED, S.RUNNING, "up", expected_version=2)
    assert rec and rec.running_at == clock.now and rec.idle_since == clock.now
    with pytest.raises(IllegalInstanceTransition):
        store.transition_instance(iid, S.RUNNING, S.REQUESTED, "back")
    with pytest.raises(TypeError, match="workload_id"):
        store.transition_instance(iid, S.RUNNING, S.DRAINING, "x", workload_id=3)
    rec = store.transition_instance(iid, S.RUNNING, S.TERMINATING, "bye")
    rec = store.transition_instance(iid, S.TERMINATING, S.TERMINATED, "gone")
    assert rec and rec.ended_at == clock.now
    history = [(e.from_state, e.to_state) for e in store.instance_events(iid)]
    assert history == [
        (None, "requested"),
        ("requested", "allocated"),
        ("allocated", "running"),
        ("running", "terminating"),
        ("terminating", "terminated"),
    ]
    assert store.owned_request_ids("aws") == set()
    assert store.get_instance(10**6) is None


def test_bind_is_all_or_nothing(store: Store) -> None:
    job = store.submit("training", "llama", SPEC)
    a, b = _running(store, "r1")
    (c,) = store.request_instances("r2", 1, OFFER, "on_demand", 1.0)  # not running
    assert store.bind_instances(job, 1, [a, b, c.id]) is None
    assert all(r.idle for r in store.instances())
    bound = store.bind_instances(job, 1, [b, a])
    assert bound is not None
    assert [(r.id, r.rank, r.attempt, r.workload_id) for r in bound] == [
        (b, 0, 1, job),
        (a, 1, 1, job),
    ]
    # Taken instances cannot be bound twice.
    assert store.bind_instances(job, 2, [a]) is None
    assert {r.id for r in store.instances(workload_id=job)} == {a, b}


def test_bind_writes_each_row_and_event_as_before(store: Store, clock: FakeClock) -> None:
    """On both backends (PostgreSQL: one statement) a bind clears the assignment and
    idle time, bumps each version and writes one event per instance in rank order."""
    job = store.submit("training", "llama", SPEC)
    ids = _running(store, "r1", 3)
    before = {r.id: r for r in store.instances()}
    assert all(r.idle_since is not None for r in before.values())
    clock.tick(5)
    order = [ids[2], ids[0], ids[1]]
    bound = store.bind_instances(job, 3, order)
    assert bound is not None
    assert [(r.id, r.rank, r.attempt, r.workload_id) for r in bound] == [
        (iid, rank, 3, job) for rank, iid in enumerate(order)
    ]
    for r in bound:
        assert r.version == before[r.id].version + 1 and r.updated_at == clock.now
        assert (r.assignment, r.assignment_state, r.exit_code, r.idle_since) == (None,) * 4
    assert store.instances() == sorted(bound, key=lambda r: r.id)  # the images carry them
    events = [e for e in store.events(job) if e.kind == "instance"]
    assert [(e.instance_id, e.time, e.reason, e.data) for e in events] == [
        (iid, clock.now, f"bound to job {job} attempt 3 rank {rank}", {"attempt": 3, "rank": rank})
        for rank, iid in enumerate(order)
    ]
    # refused: nothing written, no event
    assert store.bind_instances(job, 4, [ids[1]]) is None
    assert len([e for e in store.events(job) if e.kind == "instance"]) == 3


def test_unbind_writes_each_row_and_event_as_before(store: Store, clock: FakeClock) -> None:
    """On both backends (PostgreSQL: one statement): every instance of the attempt
    forgets the job, a live one is idle from now, a final one is not idle; one event
    per instance with its old rank, in id order."""
    job = store.submit("training", "llama", SPEC)
    ids = _running(store, "r1", 3)
    other = _running(store, "r2", 1)
    assert store.bind_instances(job, 1, [ids[1], ids[2], ids[0]])
    assert store.bind_instances(job, 2, other)  # another attempt: left alone
    assert store.transition_instance(ids[2], S.RUNNING, S.TERMINATING, "reclaimed")
    assert store.transition_instance(ids[2], S.TERMINATING, S.TERMINATED, "gone")
    before = {r.id: r for r in store.instances()}
    clock.tick(7)
    freed = store.unbind_instances(job, 1)
    assert [r.id for r in freed] == sorted(ids)
    for r in freed:
        assert (r.workload_id, r.attempt, r.rank, r.assignment, r.assignment_state) == (None,) * 5
        assert r.version == before[r.id].version + 1 and r.updated_at == clock.now
        assert r.idle_since == (None if r.id == ids[2] else clock.now)
    assert store.get_instance(other[0]).workload_id == job  # type: ignore[union-attr]
    assert store.instances() == sorted([*freed, before[other[0]]], key=lambda r: r.id)
    released = [e for e in store.events(job) if e.reason and e.reason.startswith("released")]
    assert [(e.instance_id, e.time, e.reason, e.data) for e in released] == [
        (iid, clock.now, f"released by job {job} attempt 1", {"attempt": 1, "rank": rank})
        for iid, rank in sorted({ids[1]: 0, ids[2]: 1, ids[0]: 2}.items())
    ]
    assert store.unbind_instances(job, 1) == []


def test_bind_racing_another_writer_binds_all_or_none(pg_url: str) -> None:
    """A bind waiting on a row another transaction holds sees that transaction's
    change once it commits (PostgreSQL, READ COMMITTED): it binds none of them."""
    store = open_store(pg_url)
    try:
        job = store.submit("training", "llama", SPEC)
        a, b = _running(store, "r1")
        with store._db.engine.connect() as other:
            other.execute(
                sa.text("UPDATE instances SET workload_id = :j WHERE id = :i"), {"j": job, "i": b}
            )  # (row b locked until this commits)
            got: list[object] = []
            t = threading.Thread(target=lambda: got.append(store.bind_instances(job, 1, [a, b])))
            t.start()
            time.sleep(0.3)
            assert t.is_alive()  # waiting for b's lock
            other.commit()
            t.join(10)
        assert got == [None]
        assert store.get_instance(a).workload_id is None  # type: ignore[union-attr]
        assert [e for e in store.events(job) if e.kind == "instance"] == []
    finally:
        store.close()


def test_assignment_lifecycle_and_unbind(store: Store, clock: FakeClock) -> None:
    job = store.submit("training", "llama", SPEC)
    (a,) = _running(store, "r1", 1)
    assert store.assign(a, job, 1, 0, {"run": "echo"}) is None  # not bound yet
    assert store.bind_instances(job, 1, [a])
    assert store.assign(a, job, 1, 1, {"run": "echo"}) is None  # wrong rank
    rec = store.assign(a, job, 1, 0, {"run": "echo"})
    assert rec and rec.assignment == {"run": "echo"}
    assert rec.assignment_state is AssignmentState.ASSIGNED
    assert store.assign(a, job, 1, 0, {"run": "again"}) is None  # one assignment only
    S_ = AssignmentState
    assert store.set_assignment_state(a, S_.STARTED, S_.EXITED, 0) is None
    assert store.set_assignment_state(a, S_.ASSIGNED, S_.STARTED)
    rec = store.set_assignment_state(a, S_.STARTED, S_.EXITED, exit_code=3)
    assert rec and rec.exit_code == 3 and rec.assignment_state is S_.EXITED
    clock.tick(30)
    (freed,) = store.unbind_instances(job, 1)
    assert freed.idle and freed.assignment is None and freed.assignment_state is None
    assert freed.idle_since == clock.now and freed.state == "running"
    assert store.unbind_instances(job, 1) == []
    job_events = [e for e in store.events(job) if e.kind == "instance"]
    assert [e.instance_id for e in job_events] == [a] * len(job_events)
    assert len(job_events) == 5  # bound, assigned, started, exited, released


def test_set_fields_is_version_guarded(store: Store, clock: FakeClock) -> None:
    (a,) = _running(store, "r1", 1)
    rec = store.get_instance(a)
    assert rec is not None
    new = store.set_instance_fields(a, rec.version, heartbeat_at=clock.now)
    assert new and new.heartbeat_at == clock.now and new.version == rec.version + 1
    assert store.set_instance_fields(a, rec.version, heartbeat_at=clock.now) is None
    assert store.owned_request_ids("aws") == {"r1"}
