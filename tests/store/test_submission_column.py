"""``workloads.submission``: stored with the workload, read back as given, and added by
migration 0003 to a database created by 0001 without touching its rows."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from intercloud.store import HEAD_REVISION, Store, open_store
from intercloud.store.db import Database
from intercloud.store.engine import MIGRATIONS_DIR, normalize_url


def test_submission_round_trip(store: Store) -> None:
    context = {
        "env": {"TOKEN": "s3cr3t", "EMPTY": ""},
        "spec_dir": "/home/u/proj",
        "files": {"workdir": "/home/u/proj/code", "file_mounts": [["/data", "/home/u/d"]]},
        "plan": {"provider": "local", "nodes": 2, "hourly_usd": 0.5},
        "nodes": 2,
    }
    job = store.submit("training", "with-context", "run: x\n", submission=context)
    plain = store.submit("training", "without", "run: x\n")
    assert store.get(job).submission == context
    assert store.get(plain).submission is None
    listed = {w.id: w.submission for w in store.list_workloads()}
    assert listed == {job: context, plain: None}
    moved = store.transition(job, "PENDING", "PLACING", "placing")
    assert moved is not None and moved.submission == context  # never changed by the loop


def test_upgrade_from_0001_keeps_rows(empty_db_url: str) -> None:
    url = make_url(normalize_url(empty_db_url))
    db = Database(url, busy_timeout_s=5.0, connect_timeout_s=5)
    try:
        with db.write() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            tenant = conn.execute(sa.text("SELECT id FROM tenants")).scalar_one()
            now = datetime.now(UTC)
            conn.execute(
                sa.text(
                    "INSERT INTO workloads (tenant_id, name, kind, spec_text, spec_format, "
                    "state, desired, priority, attempt, restarts, max_restarts, version, "
                    "created_at, updated_at) VALUES (:t, 'old', 'training', 'run: x', "
                    "'intercloud', 'PENDING', 'run', 0, 0, 0, 0, 1, :now, :now)"
                ),
                {"t": tenant, "now": now if not db.is_sqlite else now.replace(tzinfo=None)},
            )
    finally:
        db.dispose()
    with open_store(empty_db_url) as store:
        (old,) = store.list_workloads()
        assert (old.name, old.submission) == ("old", None)
        new = store.submit("batch", "new", "run: y\n", submission={"env": {"A": "1"}})
        assert store.get(new).submission == {"env": {"A": "1"}}
    engine = sa.create_engine(normalize_url(empty_db_url))
    try:
        with engine.connect() as conn:
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            assert revision == HEAD_REVISION
    finally:
        engine.dispose()
