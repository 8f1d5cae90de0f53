"""The persisted spend ledger (``contracts/ledger.py``, written by the live loop's
``ledger`` step, ``contracts/accrual.py``).

- ``ledger_accruals``: node-hours and USD per month, provider, contract, kind, tenant.
- ``ledger_cash``: what each contract was billed per month.
- ``ledger_pools``: each reserved pool's paid, running and used node-hours and cost.
- ``ledger_marks``: how far the ledger runs and under which contracts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_accruals",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("contract", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("node_hours", sa.Float(), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "provider", "contract", "kind", "tenant", name="pk_ledger_accruals"
        ),
    )
    op.create_table(
        "ledger_cash",
        sa.Column("contract", sa.String(128), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "month", name="pk_ledger_cash"),
    )
    op.create_table(
        "ledger_pools",
        sa.Column("contract", sa.String(128), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(128), nullable=False),
        sa.Column("paid_node_hours", sa.Float(), nullable=False),
        sa.Column("running_node_hours", sa.Float(), nullable=False),
        sa.Column("used_node_hours", sa.Float(), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "region", "instance_type", name="pk_ledger_pools"),
    )
    op.create_table(
        "ledger_marks",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("accrued_until", TS, nullable=False),
        sa.Column("contracts_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ledger_marks"),
    )


def downgrade() -> None:
    op.drop_table("ledger_marks")
    op.drop_table("ledger_pools")
    op.drop_table("ledger_cash")
    op.drop_table("ledger_accruals")
