"""Per-sender disclosure policies.

Revision ID: 0006_policy
Revises: 0005_audit
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_policy"
down_revision = "0005_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disclosure_policy",
        sa.Column(
            "sender_id",
            sa.String(99).with_variant(sa.String(99, collation="C"), "postgresql"),
            primary_key=True,
        ),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("disclosure_policy")
