"""Tenants get their limits: fair-share weight, guaranteed GPUs and GPU quotas per type,
whether they may borrow idle quota, a monthly USD budget, a version and ``updated_at``.

Existing tenants (``default`` and any created by ``ensure_tenant``) keep working: every
new column has a default meaning "no limit" (weight 1, no guarantee, no quota, may
borrow, no budget), and ``updated_at`` starts at ``created_at``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

_COLUMNS = (
    "weight",
    "guarantees",
    "quotas",
    "can_borrow",
    "monthly_budget_usd",
    "version",
    "updated_at",
)


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild): SQLite accepts it for nullable columns and for
    # NOT NULL ones with a constant default, and the rebuild would fight the foreign keys
    # that point at ``tenants``.
    op.add_column(
        "tenants", sa.Column("weight", sa.Float(), nullable=False, server_default=sa.text("1"))
    )
    op.add_column(
        "tenants",
        sa.Column("guarantees", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.add_column(
        "tenants", sa.Column("quotas", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
    )
    op.add_column(
        "tenants",
        sa.Column("can_borrow", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("tenants", sa.Column("monthly_budget_usd", sa.Float(), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )
    op.add_column("tenants", sa.Column("updated_at", TS, nullable=True))
    op.execute("UPDATE tenants SET updated_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
