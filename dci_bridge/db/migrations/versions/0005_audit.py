"""Audit trail: audit_event, audit_key.

Revision ID: 0005_audit
Revises: 0004_subscriptions
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dci_bridge.db.column_types import c_text, utc

revision = "0005_audit"
down_revision = "0004_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", utc(), nullable=False),
        sa.Column("action", c_text(32), nullable=False),
        sa.Column("sender_id", c_text(128), nullable=False),
        sa.Column("message_id", c_text(128), nullable=False),
        sa.Column("transaction_id", c_text(128), nullable=True),
        sa.Column("status", c_text(32), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("record_ids", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_action", "audit_event", ["action"])
    op.create_index("ix_audit_event_sender_id", "audit_event", ["sender_id"])
    op.create_table(
        "audit_key",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("key_hex", c_text(128), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_key")
    op.drop_index("ix_audit_event_sender_id", table_name="audit_event")
    op.drop_index("ix_audit_event_action", table_name="audit_event")
    op.drop_index("ix_audit_event_at", table_name="audit_event")
    op.drop_table("audit_event")
