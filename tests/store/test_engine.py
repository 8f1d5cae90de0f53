"""Opening the store: where it lives, schema creation and upgrade, and one-line failures."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from intercloud.control.states import JobState
from intercloud.store import (
    HEAD_REVISION,
    Store,
    StoreError,
    database_url,
    normalize_url,
    open_store,
)
from intercloud.store import engine as engine_module
from intercloud.store.engine import alembic_head
from intercloud.store.tables import metadata

TABLES = {"tenants", "workloads", "attempts", "nodes", "events", "settings", "alembic_version"}


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.strip() == text and text
    return text


# -- where ------------------------------------------------------------------------------


def test_database_url_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INTERCLOUD_DB_URL", raising=False)
    monkeypatch.setenv("INTERCLOUD_HOME", str(tmp_path / "ih"))
    assert database_url() == f"sqlite:///{tmp_path / 'ih' / 'state.db'}"
    assert database_url(tmp_path / "x") == f"sqlite:///{tmp_path / 'x' / 'state.db'}"
    monkeypatch.delenv("INTERCLOUD_HOME")
    assert database_url() == f"sqlite:///{Path.home() / '.intercloud' / 'state.db'}"
    # blank is unset, as settings (and so the CLI) read it: not a folder named "  " here
    monkeypatch.setenv("INTERCLOUD_HOME", "  ")
    assert database_url() == f"sqlite:///{Path.home() / '.intercloud' / 'state.db'}"


def test_db_url_env_wins_and_gets_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERCLOUD_DB_URL", "postgresql://u@db.example:5432/ic")
    assert database_url() == "postgresql+psycopg://u@db.example:5432/ic"
    assert normalize_url("postgres://u:pw@h/ic") == "postgresql+psycopg://u:pw@h/ic"


def test_bad_urls_are_one_line_errors() -> None:
    with pytest.raises(StoreError) as e:
        normalize_url("mysql://u@h/db")
    assert "unsupported database mysql://u@h/db:" in _one_line(e.value)
    with pytest.raises(StoreError) as e:
        normalize_url("not a url")
    _one_line(e.value)


# -- schema -----------------------------------------------------------------------------


def test_head_revision_matches_migration_scripts() -> None:
    assert alembic_head() == HEAD_REVISION


def test_migrations_create_schema_and_are_idempotent(empty_db_url: str) -> None:
    open_store(empty_db_url).close()
    engine = sa.create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                (HEAD_REVISION,)
            ]
    finally:
        engine.dispose()
    with open_store(empty_db_url) as store:  # second open: fast path, nothing changes
        assert [t.name for t in store.tenants()] == ["default"]
    with open_store(empty_db_url) as store:
        assert [t.name for t in store.tenants()] == ["default"]


def test_migration_matches_tables_module(empty_db_url: str) -> None:
    """The hand-written migration creates exactly what ``tables.py`` declares."""
    open_store(empty_db_url).close()
    engine = sa.create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_unknown_newer_revision_is_refused(empty_db_url: str) -> None:
    open_store(empty_db_url).close()
    engine = sa.create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError) as e:
        open_store(empty_db_url)
    assert "9999" in _one_line(e.value) and "upgrade intercloud" in str(e.value)


def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_store(f"sqlite:///{path}"):
        pass
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()


def test_open_runs_no_alembic_when_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What keeps a warm open fast: a current schema neither imports nor runs Alembic.
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()

    def no_upgrade(conn: object) -> None:
        raise AssertionError("a current store ran the Alembic upgrade")

    monkeypatch.setattr(engine_module, "_run_alembic_upgrade", no_upgrade)
    open_store(url).close()


# -- faults -----------------------------------------------------------------------------


def test_missing_home_is_created(tmp_path: Path) -> None:
    home = tmp_path / "a" / "b" / "home"
    with open_store(f"sqlite:///{home / 'state.db'}") as store:
        assert store.tenants()
    assert (home / "state.db").is_file()


def test_home_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    with pytest.raises(StoreError) as e:
        open_store(f"sqlite:///{blocker / 'home' / 'state.db'}")
    assert "cannot create directory" in _one_line(e.value)
    assert blocker.read_text() == "I am a file"


def test_unwritable_home(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        if _can_write(home):
            pytest.skip("running as root: permissions do not stop writes")
        with pytest.raises(StoreError) as e:
            open_store(f"sqlite:///{home / 'state.db'}")
        assert str(home) in _one_line(e.value)
    finally:
        home.chmod(0o700)


def _can_write(path: Path) -> bool:
    try:
        (path / "probe").write_text("x")
    except OSError:
        return False
    (path / "probe").unlink()
    return True


def test_database_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StoreError) as e:
        open_store(f"sqlite:///{tmp_path / 'state.db'}")
    assert "not a file" in _one_line(e.value)


def test_corrupt_sqlite_file_is_reported_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    junk = b"this is not a database, but somebody's precious notes\n" * 200
    path.write_bytes(junk)
    with pytest.raises(StoreError) as e:
        open_store(f"sqlite:///{path}")
    msg = _one_line(e.value)
    assert str(path) in msg and "file is not a database" in msg
    assert path.read_bytes() == junk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_locked_database_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    open_store(url).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing and does not let go
    try:
        with open_store(url, busy_timeout_s=0.2) as store:  # WAL: reading still works
            assert store.list_workloads() == []
            t = time.perf_counter()
            with pytest.raises(StoreError) as e:
                store.submit("batch", "b", "x: 1")
            assert time.perf_counter() - t < 3
            assert "database is locked" in _one_line(e.value) and str(path) in str(e.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with open_store(url) as store:  # nothing half-written
        assert store.list_workloads() == []
        assert store.submit("batch", "b", "x: 1") == 1


def test_foreign_database_is_left_alone(empty_db_url: str) -> None:
    engine = sa.create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE precious (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO precious VALUES (42)"))
    try:
        with pytest.raises(StoreError) as e:
            open_store(empty_db_url)
        assert "not an intercloud database" in _one_line(e.value)
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) == {"precious"}
            assert conn.execute(sa.text("SELECT x FROM precious")).all() == [(42,)]
    finally:
        engine.dispose()


def test_locked_fresh_database_cannot_be_initialised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a first open retries a lock for ``migration_wait_s`` (60 s: another opener may be
    # mid-migration); this lock is never released, so the test waits half a second
    wait = engine_module.ensure_schema
    monkeypatch.setattr(engine_module, "ensure_schema", lambda db: wait(db, migration_wait_s=0.5))
    path = tmp_path / "state.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError) as e:
            open_store(f"sqlite:///{path}", busy_timeout_s=0.2)
        assert "locked" in _one_line(e.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_unreachable_postgres_fails_fast() -> None:
    t = time.perf_counter()
    with pytest.raises(StoreError) as e:
        open_store("postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout_s=2)
    assert time.perf_counter() - t < 5
    msg = _one_line(e.value)
    assert msg.startswith("database postgresql+psycopg://postgres@127.0.0.1:1/nowhere:")


def test_missing_postgres_database_is_a_one_line_error(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    missing = sa.make_url(db_url).set(database="intercloud_no_such_db")
    with pytest.raises(StoreError) as e:
        open_store(missing.render_as_string(hide_password=False))
    assert "intercloud_no_such_db" in _one_line(e.value)


def test_password_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError) as e:
        open_store("postgresql://u:s3cret@127.0.0.1:1/x", connect_timeout_s=1)
    assert "s3cret" not in str(e.value)


def test_tilde_in_sqlite_url_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with open_store("sqlite:///~/ic/state.db") as store:
        assert store.name == f"database {tmp_path / 'ic' / 'state.db'}"
    assert (tmp_path / "ic" / "state.db").is_file()


def test_in_memory_sqlite_works() -> None:
    with open_store("sqlite://") as store:
        job = store.submit("batch", "m", "x: 1")
        assert store.get(job).name == "m"


def test_row_image_reads_send_their_mark_inline(store: Store) -> None:
    """A prepared statement's generic plan turned the row images' ``change_seq >= :low``
    into a scan of every row: the mark goes in the SQL text, never as a parameter, so
    PostgreSQL plans each read for its mark."""
    seen: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, sql: str, params: object, *_: object) -> None:
        if "change_seq >=" in sql:
            seen.append((sql, params))

    sa.event.listen(store._db.engine, "before_cursor_execute", capture)
    try:
        for _ in range(3):  # the first read takes every row; later ones from the mark
            store.submit("batch", "m", "x: 1")
            store.list_workloads(states=[s for s in JobState if not s.terminal])
    finally:
        sa.event.remove(store._db.engine, "before_cursor_execute", capture)
    assert seen
    for sql, _params in seen:
        assert re.search(r"change_seq >= \d+", sql), sql
