"""Change sequence: ``change_seq`` on ``workloads``, ``instances`` and ``nodes``.

Every insert or update of a row stamps it, by trigger, with a number that grows with
the store's writes, so the control loop's bulk reads fetch only the rows changed since
their last read (``store.row_image``) instead of all 10,000 of a large fleet. A trigger
rather than the writers: no write path (the agent's, a test helper's, a future one) can
forget it.

- PostgreSQL: the writing transaction's id (``pg_current_xact_id()``); a reader keeps
  the oldest transaction still running at its last read (``pg_snapshot_xmin``) as its
  low mark, so a transaction that commits late is still seen. No lock is shared by
  writers.
- SQLite: one counter row (``change_counter``), bumped by each write; SQLite runs one
  writer at a time, so the counter grows in commit order. (The table exists on
  PostgreSQL too, unused, so both schemas match ``tables.py``.)

SQLite drops a table's triggers when a batch migration rebuilds it: a later revision
that rebuilds one of these tables must create its triggers again
(``tests/store/test_row_image.py`` checks they exist at the head revision).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("workloads", "instances", "nodes")


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_change_counter"),
    )
    op.execute("INSERT INTO change_counter (id, value) VALUES (1, 0)")
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0"),
        )
        op.create_index(f"ix_{table}_change_seq", table, ["change_seq"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION intercloud_change_seq() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN NEW.change_seq := pg_current_xact_id()::text::bigint; RETURN NEW; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_change_seq BEFORE INSERT OR UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION intercloud_change_seq()"
            )
    else:
        for table in TABLES:
            for when, guard in (
                ("INSERT", ""),
                ("UPDATE", " WHEN NEW.change_seq = OLD.change_seq"),
            ):
                op.execute(
                    f"CREATE TRIGGER {table}_change_seq_{when.lower()} AFTER {when} ON {table}"
                    f"{guard} BEGIN "
                    "UPDATE change_counter SET value = value + 1 WHERE id = 1; "
                    f"UPDATE {table} SET change_seq = (SELECT value FROM change_counter "
                    "WHERE id = 1) WHERE id = NEW.id; END"
                )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if postgres:
            op.execute(f"DROP TRIGGER {table}_change_seq ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_change_seq_insert")
            op.execute(f"DROP TRIGGER {table}_change_seq_update")
        op.drop_index(f"ix_{table}_change_seq", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("change_seq")
    if postgres:
        op.execute("DROP FUNCTION intercloud_change_seq()")
    op.drop_table("change_counter")
