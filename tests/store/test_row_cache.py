"""Bulk reads through the row cache: a changed row is always read again, an unchanged
one is the same record (not decoded again)."""

from __future__ import annotations

import sqlalchemy as sa

from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState as S
from intercloud.store import Store
from intercloud.store.tables import InstanceModel

OFFER = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")


def _running(store: Store, request_id: str, count: int) -> list[int]:
    ids = [
        r.id for r in store.request_instances(request_id, count, OFFER, PricingKind.ON_DEMAND, 1.0)
    ]
    for iid in ids:
        store.transition_instance(
            iid, S.REQUESTED, S.ALLOCATED, "seen", provider_instance_id=f"i-{iid}"
        )
        store.transition_instance(iid, S.ALLOCATED, S.RUNNING, "up")
    return ids


def test_unchanged_instances_are_reused_and_changes_are_seen(store: Store) -> None:
    a, b = _running(store, "r1", 2)
    first = {r.id: r for r in store.instances()}
    again = {r.id: r for r in store.instances()}
    assert again[a] is first[a] and again[b] is first[b]  # not decoded again

    moved = store.transition_instance(
        b, S.RUNNING, S.DRAINING, "idle", expected_version=first[b].version
    )
    assert moved is not None
    now = {r.id: r for r in store.instances()}
    assert now[a] is first[a]
    assert now[b] == moved and now[b].state == S.DRAINING.value
    assert [r.id for r in store.instances(states=[S.RUNNING])] == [a]

    # a heartbeat does not bump the version: the row is read again all the same
    assert store.agent_heartbeat(a, address="10.1.2.3")
    beat = {r.id: r for r in store.instances()}[a]
    assert beat.address == "10.1.2.3" and beat.heartbeat_at is not None


def test_a_write_that_skips_the_version_is_seen(store: Store) -> None:
    (a,) = _running(store, "r1", 1)
    assert store.instances()[0].state == S.RUNNING.value
    with store._db.write() as conn:  # as the agent test helpers write
        conn.execute(sa.update(InstanceModel).where(InstanceModel.id == a).values(state="failed"))
    assert store.instances()[0].state == "failed"


def test_workloads_are_read_again_when_their_version_moves(store: Store) -> None:
    j = store.submit("training", "j", "run: x\n")
    first = store.list_workloads()
    assert store.list_workloads()[0] is first[0]
    w = store.set_fields(j, first[0].version, reason="full")
    assert w is not None
    (now,) = store.list_workloads()
    assert now.reason == "full" and now.version == w.version


def test_many_changed_rows_are_fetched_in_chunks(store: Store) -> None:
    made = store.request_instances("big", 2_000, OFFER, PricingKind.ON_DEMAND, 1.0)
    got = store.instances()
    assert [r.id for r in got] == sorted(r.id for r in made) and len(got) == 2_000
    assert store.instances()[1_500] is got[1_500]
    # live states are read through the row image (``test_row_image``): equal rows
    assert store.instances(states=[S.REQUESTED]) == got
