"""Subscriptions, webhook ingest, quarantine.

Revision ID: 0004_subscriptions
Revises: 0003_delivery
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_subscriptions"
down_revision = "0003_delivery"
branch_labels = None
depends_on = None


def _text(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_inbox",
        sa.Column("id", _text(36), primary_key=True),
        sa.Column("source", _text(8), nullable=False),
        sa.Column("topic", _text(64), nullable=False),
        sa.Column("body_sha256", _text(64), nullable=False, unique=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", _utc(), nullable=True),
        sa.Column("record_id", _text(64), nullable=True),
        sa.Column("notified", sa.Integer(), nullable=False),
        sa.Column("error", _text(999), nullable=True),
    )
    op.create_index("ix_webhook_inbox_status", "webhook_inbox", ["status"])

    op.create_table(
        "webhook_quarantine",
        sa.Column("id", _text(36), primary_key=True),
        sa.Column("source", _text(8), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("reason", _text(64), nullable=False),
        sa.Column("message", _text(999), nullable=False),
        sa.Column("path", _text(200), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("inbox_id", _text(36), nullable=True),
    )
    op.create_index("ix_webhook_quarantine_received_at", "webhook_quarantine", ["received_at"])

    op.create_table(
        "subscription",
        sa.Column("code", _text(99), primary_key=True),
        sa.Column("sender_id", _text(200), nullable=False),
        sa.Column("transaction_id", _text(99), nullable=False),
        sa.Column("reference_id", _text(99), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("event_type", _text(16), nullable=False),
        sa.Column("notify_url", _text(2000), nullable=False),
        sa.Column("encrypt", sa.Boolean(), nullable=False),
        sa.Column("frequency", _text(200), nullable=True),
        sa.Column("start_time", _utc(), nullable=True),
        sa.Column("expires_at", _utc(), nullable=True),
        sa.Column("info_json", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("unsubscribed_at", _utc(), nullable=True),
        sa.Column("next_batch_at", _utc(), nullable=True),
    )
    for column in ("sender_id", "status", "event_type", "next_batch_at"):
        op.create_index(f"ix_subscription_{column}", "subscription", [column])

    op.create_table(
        "notify_event",
        sa.Column("record_id", _text(64), primary_key=True),
        sa.Column("event_key", _text(64), primary_key=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("inbox_id", _text(36), nullable=True),
        sa.Column("subscriptions", sa.Integer(), nullable=False),
    )

    op.create_table(
        "notify_pending",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscription_code", _text(99), nullable=False),
        sa.Column("record_id", _text(64), nullable=False),
        sa.Column("event_type", _text(16), nullable=False),
        sa.Column("item_json", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
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
