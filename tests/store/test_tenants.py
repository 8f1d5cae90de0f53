"""Tenants in the store, on both backends: create, read, guarded updates with events,
bad values refused with nothing changed, usage and month-to-date spend estimates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intercloud.control.states import JobState
from intercloud.store import (
    InvalidRequest,
    Store,
    TenantExists,
    UnknownTenant,
    open_store,
)
from intercloud.store.testing import FakeClock

S = JobState
SPEC = "name: llama\nresources:\n  accelerators: H100:8\n"


def test_default_tenant_has_no_limits(store: Store) -> None:
    [t] = store.tenants()
    assert (t.name, t.weight, t.guarantees, t.quotas) == ("default", 1.0, {}, {})
    assert t.can_borrow is True and t.monthly_budget_usd is None and t.version == 1
    assert t.updated_at == t.created_at


def test_create_then_read(store: Store, clock: FakeClock) -> None:
    t = store.create_tenant(
        "research",
        weight=2,
        guarantees={"H100": 4},
        quotas={"H100": 8},
        can_borrow=False,
        monthly_budget_usd=1000,
    )
    assert store.get_tenant("research") == t
    assert (t.weight, t.guarantees, t.quotas, t.can_borrow) == (
        2.0,
        {"H100": 4},
        {"H100": 8},
        False,
    )
    assert t.monthly_budget_usd == 1000.0 and t.version == 1 and t.created_at == clock.now
    assert [x.name for x in store.tenants()] == ["default", "research"]
    [ev] = store.tenant_events("research")
    assert ev.kind == "tenant_created" and ev.workload_id is None
    assert ev.data is not None and ev.data["tenant"] == "research"
    assert ev.data["guarantees"] == {"H100": 4} and ev.data["monthly_budget_usd"] == 1000.0
    # now it can be submitted to
    job = store.submit("training", "x", SPEC, tenant="research")
    assert store.get(job).tenant == "research"


def test_duplicate_and_unknown(store: Store) -> None:
    store.create_tenant("research")
    with pytest.raises(TenantExists, match="'research' already exists"):
        store.create_tenant("research", weight=5)
    assert store.get_tenant("research").weight == 1.0
    with pytest.raises(TenantExists):
        store.create_tenant("default")
    with pytest.raises(UnknownTenant, match="intercloud tenants create nobody"):
        store.get_tenant("nobody")
    with pytest.raises(UnknownTenant, match=r"unknown tenant 'nobody' \(create it with"):
        store.submit("training", "x", SPEC, tenant="nobody")
    with pytest.raises(UnknownTenant):
        store.update_tenant("nobody", weight=2)
    assert store.list_workloads() == []
    assert len(store.tenant_events("research")) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"weight": 0}, "weight"),
        ({"weight": -1}, "weight"),
        ({"weight": float("inf")}, "weight"),
        ({"weight": float("nan")}, "weight"),
        ({"weight": True}, "weight"),
        ({"weight": 1e300}, "weight"),
        ({"weight": 1e-300}, "weight"),
        ({"guarantees": {"H100": -1}}, "guarantees.H100"),
        ({"guarantees": {"H100": 1.5}}, "guarantees.H100"),
        ({"guarantees": {"H100": 10**12}}, "guarantees.H100"),
        ({"guarantees": [1]}, "guarantees"),
        ({"quotas": {"H100": -4}}, "quotas.H100"),
        ({"quotas": {"": 4}}, "quotas"),
        ({"monthly_budget_usd": -0.01}, "monthly_budget_usd"),
        ({"monthly_budget_usd": float("nan")}, "monthly_budget_usd"),
        ({"monthly_budget_usd": float("inf")}, "monthly_budget_usd"),
        ({"monthly_budget_usd": 1e300}, "monthly_budget_usd"),
        ({"can_borrow": "yes"}, "can_borrow"),
        ({"guarantees": {"H100": 8}, "quotas": {"H100": 4}}, "quotas.H100"),
    ],
)
def test_bad_values_change_nothing(store: Store, fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest, match=field.replace(".", r"\.")):
        store.create_tenant("bad", **fields)  # type: ignore[arg-type]
    assert [t.name for t in store.tenants()] == ["default"]
    before = store.create_tenant("t", guarantees={"H100": 2}, quotas={"H100": 6})
    with pytest.raises(InvalidRequest, match=field.replace(".", r"\.")):
        store.update_tenant("t", **fields)  # type: ignore[arg-type]
    assert store.get_tenant("t") == before
    assert len(store.tenant_events("t")) == 1


def test_unknown_field_is_a_type_error(store: Store) -> None:
    with pytest.raises(TypeError, match="colour"):
        store.update_tenant("default", colour="red")


def test_update_is_guarded_and_recorded(store: Store, clock: FakeClock) -> None:
    store.create_tenant("research", guarantees={"H100": 4})
    clock.tick(60)
    t = store.update_tenant("research", weight=3, monthly_budget_usd=50.0)
    assert t is not None and t.version == 2 and t.weight == 3.0 and t.updated_at == clock.now
    assert t.monthly_budget_usd == 50.0 and t.guarantees == {"H100": 4}
    # same values again: no change, no event, no version bump
    assert store.update_tenant("research", weight=3) == t
    # a stale version changes nothing
    assert store.update_tenant("research", expected_version=1, weight=9) is None
    assert store.get_tenant("research") == t
    t3 = store.update_tenant("research", expected_version=2, monthly_budget_usd=None, quotas={})
    assert t3 is not None and t3.version == 3 and t3.monthly_budget_usd is None
    events = store.tenant_events("research")
    assert [e.kind for e in events] == ["tenant_created", "tenant_updated", "tenant_updated"]
    assert events[1].data == {
        "tenant": "research",
        "changes": {"weight": [1.0, 3.0], "monthly_budget_usd": [None, 50.0]},
    }
    assert events[2].data == {
        "tenant": "research",
        "changes": {"monthly_budget_usd": [50.0, None]},
    }
    # the default tenant can be given limits too
    d = store.update_tenant("default", weight=0.5)
    assert d is not None and d.weight == 0.5
    # a quota below the stored guarantee is refused on update as well
    with pytest.raises(InvalidRequest, match=r"quotas\.H100 \(2\) is below guarantees\.H100"):
        store.update_tenant("research", quotas={"H100": 2})


def _run(store: Store, clock: FakeClock, tenant: str, placement: dict[str, object]) -> int:
    job = store.submit("training", "x", SPEC, tenant=tenant)
    store.transition(job, S.PENDING, S.PLACING, "placed", placement=placement, attempt=1)
    store.begin_attempt(job, 1)
    store.transition(job, S.PLACING, S.PROVISIONING, "up")
    store.transition(job, S.PROVISIONING, S.RUNNING, "running")
    return job


H100X4 = {"accelerator": "H100", "accelerator_count": 4, "nodes": 1, "gpus": 4, "hourly_usd": 10.0}


def test_usage_counts_running_gpus_and_this_months_spend(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 3, 31, 23, 0, tzinfo=UTC))
    with open_store(db_url, clock=clock) as s2:
        _usage_story(s2, clock)


def _usage_story(s2: Store, clock: FakeClock) -> None:
    s2.create_tenant("research")
    old = _run(s2, clock, "research", H100X4)  # starts an hour before April
    clock.tick(3600)  # April 1st, 00:00
    live = _run(s2, clock, "research", H100X4)
    clock.tick(1800)
    assert s2.transition(old, S.RUNNING, S.SUCCEEDED, "done")
    s2.end_attempt(old, 1, "succeeded")
    clock.tick(1800)  # 01:00: old ran 30 min of April, live 60 min so far
    use = s2.tenant_usage()
    assert use["research"].running_gpus == {"H100": 4}
    assert use["research"].spent_closed_usd == pytest.approx(5.0)
    assert use["research"].spent_open_usd == pytest.approx(10.0)
    assert use["research"].spent_usd == pytest.approx(15.0)
    assert use["default"].running_gpus == {} and use["default"].spent_usd == 0.0
    # a job that finished without its attempt being closed stops costing when it finished
    assert s2.transition(live, S.RUNNING, S.FAILED, "lost")
    clock.tick(3600 * 5)
    use = s2.tenant_usage()
    assert use["research"].running_gpus == {}
    assert use["research"].spent_closed_usd == pytest.approx(15.0)
    # next month: nothing spent yet
    clock.now = datetime(2026, 5, 2, tzinfo=UTC)
    assert s2.tenant_usage()["research"].spent_usd == 0.0


def test_a_0001_database_upgrades_keeping_its_tenants_and_downgrades(empty_db_url: str) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from intercloud.store.engine import MIGRATIONS_DIR

    def migrate(conn: sa.Connection, to: str, up: bool = True) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        (command.upgrade if up else command.downgrade)(cfg, to)

    engine = sa.create_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            migrate(conn, "0001")
            conn.execute(
                sa.text("INSERT INTO tenants (name, created_at) VALUES ('team-a', :t)"),
                {"t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        with open_store(empty_db_url) as store:  # upgrades to head
            t = store.get_tenant("team-a")
            assert (t.weight, t.guarantees, t.quotas, t.can_borrow) == (1.0, {}, {}, True)
            assert t.monthly_budget_usd is None and t.version == 1
            assert t.updated_at == t.created_at == datetime(2026, 1, 1, tzinfo=UTC)
            assert store.update_tenant("team-a", weight=2) is not None
        with engine.begin() as conn:
            migrate(conn, "0001", up=False)
            names = conn.execute(sa.text("SELECT name FROM tenants ORDER BY id")).scalars()
            assert list(names) == ["default", "team-a"]
    finally:
        engine.dispose()


def test_racing_creates_and_updates_one_winner_each(store: Store) -> None:
    import threading

    n = 8
    barrier = threading.Barrier(n)
    created: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        barrier.wait()
        try:
            store.create_tenant("research", weight=i + 1)
        except TenantExists:
            with lock:
                refused.append(i)
            return
        with lock:
            created.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(created) == 1 and len(refused) == n - 1
    assert store.get_tenant("research").weight == created[0] + 1
    assert len(store.tenant_events("research")) == 1
    # updates guarded by the same version: exactly one applies
    won: list[object] = []

    def update(i: int) -> None:
        barrier.wait()
        rec = store.update_tenant("research", expected_version=1, quotas={"H100": i})
        if rec is not None:
            with lock:
                won.append(rec)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1 and store.get_tenant("research").version == 2
    assert len(store.tenant_events("research")) == 2
