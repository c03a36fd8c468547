"""Per-sender disclosure policies.

Revision ID: 0006_policy
Revises: 0005_audit
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dci_bridge.db.column_types import c_text, utc

revision = "0006_policy"
down_revision = "0005_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disclosure_policy",
        sa.Column(
            "sender_id",
            c_text(99),
            primary_key=True,
        ),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("disclosure_policy")
