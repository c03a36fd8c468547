"""Subscriptions, webhook ingest, quarantine.

Revision ID: 0004_subscriptions
Revises: 0003_delivery
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dci_bridge.db.column_types import c_text, utc

revision = "0004_subscriptions"
down_revision = "0003_delivery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_inbox",
        sa.Column("id", c_text(36), primary_key=True),
        sa.Column("source", c_text(8), nullable=False),
        sa.Column("topic", c_text(64), nullable=False),
        sa.Column("body_sha256", c_text(64), nullable=False, unique=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", utc(), nullable=False),
        sa.Column("status", c_text(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", utc(), nullable=True),
        sa.Column("record_id", c_text(64), nullable=True),
        sa.Column("notified", sa.Integer(), nullable=False),
        sa.Column("error", c_text(999), nullable=True),
    )
    op.create_index("ix_webhook_inbox_status", "webhook_inbox", ["status"])

    op.create_table(
        "webhook_quarantine",
        sa.Column("id", c_text(36), primary_key=True),
        sa.Column("source", c_text(8), nullable=False),
        sa.Column("received_at", utc(), nullable=False),
        sa.Column("reason", c_text(64), nullable=False),
        sa.Column("message", c_text(999), nullable=False),
        sa.Column("path", c_text(200), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("inbox_id", c_text(36), nullable=True),
    )
    op.create_index("ix_webhook_quarantine_received_at", "webhook_quarantine", ["received_at"])

    op.create_table(
        "subscription",
        sa.Column("code", c_text(99), primary_key=True),
        sa.Column("sender_id", c_text(200), nullable=False),
        sa.Column("transaction_id", c_text(99), nullable=False),
        sa.Column("reference_id", c_text(99), nullable=False),
        sa.Column("status", c_text(16), nullable=False),
        sa.Column("event_type", c_text(16), nullable=False),
        sa.Column("notify_url", c_text(2000), nullable=False),
        sa.Column("encrypt", sa.Boolean(), nullable=False),
        sa.Column("frequency", c_text(200), nullable=True),
        sa.Column("start_time", utc(), nullable=True),
        sa.Column("expires_at", utc(), nullable=True),
        sa.Column("info_json", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("unsubscribed_at", utc(), nullable=True),
        sa.Column("next_batch_at", utc(), nullable=True),
    )
    for column in ("sender_id", "status", "event_type", "next_batch_at"):
        op.create_index(f"ix_subscription_{column}", "subscription", [column])

    op.create_table(
        "notify_event",
        sa.Column("record_id", c_text(64), primary_key=True),
        sa.Column("event_key", c_text(64), primary_key=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("inbox_id", c_text(36), nullable=True),
        sa.Column("subscriptions", sa.Integer(), nullable=False),
    )

    op.create_table(
        "notify_pending",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscription_code", c_text(99), nullable=False),
        sa.Column("record_id", c_text(64), nullable=False),
        sa.Column("event_type", c_text(16), nullable=False),
        sa.Column("item_json", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
    )
    op.create_index("ix_notify_pending_subscription_code", "notify_pending", ["subscription_code"])


def downgrade() -> None:
    for table in (
        "notify_pending",
        "notify_event",
        "subscription",
        "webhook_quarantine",
        "webhook_inbox",
    ):
        op.drop_table(table)
