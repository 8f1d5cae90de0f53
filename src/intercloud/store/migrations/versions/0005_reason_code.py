"""Reason codes: ``workloads.reason_code``, the code of the latest transition's reason.

``reason`` keeps the words a user reads; ``reason_code`` (``scheduler.reasons.ReasonCode``
value, nullable: transitions without a code and rows written before this revision) is
what control code compares, so it survives a crash (a preempted job stays preempted).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.drop_column("reason_code")
