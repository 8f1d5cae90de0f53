"""Deletion stamps: ``row_deletions``, one random stamp per table the row images track
(``workloads``, ``instances``, ``nodes``), replaced by trigger whenever rows of that
table are deleted.

A row image (``store.row_image``) brings itself up to date from the rows changed since
its last read (``change_seq``, 0007), which cannot show a row that is gone. It used to
count the tracked rows to notice one: over 10,000 instances a scan of the table, ~3 ms
of the database's time per image and loop step. A reader now reads the table's stamp
(one primary-key lookup) in the same snapshot as the rows, and reads everything again
when it is not the one of its last read. A trigger rather than the deleters: no delete
path (another process, an operator's SQL, ``store.testing.reset_database``) can
forget it. The stamp is random, not a counter, so a table emptied together with
``row_deletions`` and seeded again still shows a new one.

- PostgreSQL: one statement-level trigger per table, ``AFTER DELETE OR TRUNCATE``
  (``gen_random_uuid``, built in since PostgreSQL 13).
- SQLite (no statement triggers, no TRUNCATE): a row trigger ``AFTER DELETE``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("workloads", "instances", "nodes")


def upgrade() -> None:
    table = op.create_table(
        "row_deletions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("stamp", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_row_deletions"),
    )
    op.bulk_insert(table, [{"name": t, "stamp": str(uuid.uuid4())} for t in TABLES])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION intercloud_row_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO row_deletions (name, stamp) "
            "VALUES (TG_TABLE_NAME, gen_random_uuid()::text) "
            "ON CONFLICT (name) DO UPDATE SET stamp = EXCLUDED.stamp; RETURN NULL; END $$"
        )
        for name in TABLES:
            op.execute(
                f"CREATE TRIGGER {name}_row_deleted AFTER DELETE OR TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION intercloud_row_deleted()"
            )
    else:
        for name in TABLES:
            op.execute(
                f"CREATE TRIGGER {name}_row_deleted AFTER DELETE ON {name} BEGIN "
                "INSERT OR REPLACE INTO row_deletions (name, stamp) "
                f"VALUES ('{name}', lower(hex(randomblob(16)))); END"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in TABLES:
        op.execute(f"DROP TRIGGER {name}_row_deleted" + (f" ON {name}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION intercloud_row_deleted()")
    op.drop_table("row_deletions")
