"""``workloads.reason_code``: written with the reason by ``transition`` and ``set_fields``
(and into the transition event's data), read back typed, and added by migration 0005
to a database at 0004 without touching its rows."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import Store, open_store
from intercloud.store.db import Database
from intercloud.store.engine import MIGRATIONS_DIR, normalize_url

C = ReasonCode


def test_transition_writes_the_code_with_the_reason(store: Store) -> None:
    job = store.submit("training", "j", "run: x\n")
    assert store.get(job).reason_code is None
    w = store.transition(job, "PENDING", "PLACING", "placing")
    assert w is not None and w.reason_code is None
    w = store.transition(job, "PLACING", "PENDING", "refused", reason_code=C.CAPACITY_REFUSED)
    assert w is not None and (w.reason, w.reason_code) == ("refused", C.CAPACITY_REFUSED)
    assert store.get(job).reason_code is C.CAPACITY_REFUSED
    event = [e for e in store.events(job) if e.kind == "transition"][-1]
    assert event.data == {"reason_code": "capacity_refused"}
    # a transition without a code clears it, as it replaces the reason
    w = store.transition(job, "PENDING", "PLACING", "placing", attempt=1)
    assert w is not None and w.reason_code is None
    event = [e for e in store.events(job) if e.kind == "transition"][-1]
    assert event.data == {"attempt": 1}


def test_set_fields_writes_the_code_only_with_a_reason(store: Store) -> None:
    job = store.submit("training", "j", "run: x\n")
    w = store.set_fields(job, store.get(job).version, reason="full", reason_code=C.OVER_QUOTA)
    assert w is not None and (w.reason, w.reason_code) == ("full", C.OVER_QUOTA)
    w = store.set_fields(job, w.version, priority=3)  # no reason: both kept
    assert w is not None and (w.reason, w.reason_code, w.priority) == ("full", C.OVER_QUOTA, 3)
    assert store.events(job)[-2].data == {"reason_code": "over_quota"}


def test_set_reasons_changes_many_held_jobs_each_guarded_by_its_version(store: Store) -> None:
    a, b, c = (store.submit("training", n, "run: x\n") for n in "abc")
    stale = store.get(c).version
    store.set_fields(c, stale, priority=2)  # c moved on since the loop read it
    changed = store.set_reasons(
        [
            (a, store.get(a).version, "no capacity", C.WAITING_FOR_CAPACITY),
            (b, store.get(b).version, "over quota", C.OVER_QUOTA),
            (c, stale, "no capacity", C.WAITING_FOR_CAPACITY),
        ]
    )
    assert changed == [a, b]
    held = store.get(a)
    assert (held.reason, held.reason_code) == ("no capacity", C.WAITING_FOR_CAPACITY)
    assert (store.get(b).reason, store.get(b).reason_code) == ("over quota", C.OVER_QUOTA)
    assert store.get(c).reason_code is None
    assert store.get(a).version == 2  # as set_fields: the version moves on
    last = store.events(b)[-1]
    assert (last.kind, last.reason, last.data) == (
        "updated",
        "over quota",
        {"reason_code": "over_quota"},
    )
    assert store.events(c)[-1].data == {"priority": 2}
    assert store.set_reasons([]) == []


def test_a_code_this_version_does_not_know_reads_as_none(store: Store, db_url: str) -> None:
    job = store.submit("training", "j", "run: x\n")
    engine = sa.create_engine(normalize_url(db_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE workloads SET reason_code = 'from_the_future' WHERE id = :id"),
                {"id": job},
            )
    finally:
        engine.dispose()
    assert store.get(job).reason_code is None


def test_upgrade_from_0004_keeps_rows(empty_db_url: str) -> None:
    url = make_url(normalize_url(empty_db_url))
    db = Database(url, busy_timeout_s=5.0, connect_timeout_s=5)
    try:
        with db.write() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004")
            tenant = conn.execute(sa.text("SELECT id FROM tenants")).scalar_one()
            now = datetime.now(UTC)
            conn.execute(
                sa.text(
                    "INSERT INTO workloads (tenant_id, name, kind, spec_text, spec_format, "
                    "state, desired, priority, attempt, restarts, max_restarts, reason, "
                    "version, created_at, updated_at) VALUES (:t, 'old', 'training', "
                    "'run: x', 'intercloud', 'PENDING', 'run', 0, 0, 0, 0, 'waiting', 1, "
                    ":now, :now)"
                ),
                {"t": tenant, "now": now if not db.is_sqlite else now.replace(tzinfo=None)},
            )
    finally:
        db.dispose()
    with open_store(empty_db_url) as store:
        (old,) = store.list_workloads()
        assert (old.name, old.reason, old.reason_code) == ("old", "waiting", None)
        job = store.submit("training", "new", "run: y\n")
        w = store.transition(job, "PENDING", "CANCELLED", "bye", reason_code=C.CANCELLED)
        assert w is not None and w.reason_code is C.CANCELLED


def test_set_reasons_with_one_job_twice_changes_it_once_with_the_first(store: Store) -> None:
    a = store.submit("training", "a", "run: x\n")
    v = store.get(a).version
    changed = store.set_reasons(
        [(a, v, "first", C.WAITING_FOR_CAPACITY), (a, v, "second", C.OVER_QUOTA)]
    )
    assert changed == [a]
    assert (store.get(a).reason, store.get(a).version) == ("first", v + 1)
    assert len([e for e in store.events(a) if e.kind == "updated"]) == 1
