"""Delivery: transactions, outbox, attempts.

Revision ID: 0003_delivery
Revises: 0002_security
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dci_bridge.db.column_types import c_text, utc

revision = "0003_delivery"
down_revision = "0002_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dci_transaction",
        sa.Column("correlation_id", c_text(99), primary_key=True),
        sa.Column("sender_id", c_text(99), nullable=False),
        sa.Column("transaction_id", c_text(99), nullable=False),
        sa.Column("message_id", c_text(99), nullable=False),
        sa.Column("txn_type", c_text(16), nullable=False),
        sa.Column("status", c_text(8), nullable=False),
        sa.Column("reference_ids", sa.Text(), nullable=False),
        sa.Column("callback_url", c_text(2000), nullable=True),
        sa.Column("response_json", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
    )
    op.create_index(
        "ix_dci_transaction_sender_txn", "dci_transaction", ["sender_id", "transaction_id"]
    )
    op.create_index("ix_dci_transaction_created_at", "dci_transaction", ["created_at"])

    op.create_table(
        "outbox_job",
        sa.Column("job_id", c_text(36), primary_key=True),
        sa.Column("kind", c_text(32), nullable=False),
        sa.Column("state", c_text(8), nullable=False),
        sa.Column("sender_id", c_text(99), nullable=True),
        sa.Column("correlation_id", c_text(99), nullable=True),
        sa.Column("message_id", c_text(99), nullable=True),
        sa.Column("target_url", c_text(2000), nullable=True),
        sa.Column("scheme", c_text(16), nullable=True),
        sa.Column("header_json", sa.LargeBinary(), nullable=False),
        sa.Column("message_json", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", utc(), nullable=False),
        sa.Column("lease_owner", c_text(64), nullable=True),
        sa.Column("lease_until", utc(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", c_text(500), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.Column("completed_at", utc(), nullable=True),
    )
    op.create_index("ix_outbox_job_due", "outbox_job", ["state", "next_attempt_at"])
    for column in ("kind", "sender_id", "correlation_id", "message_id"):
        op.create_index(f"ix_outbox_job_{column}", "outbox_job", [column])

    op.create_table(
        "outbox_attempt",
        sa.Column("attempt_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", c_text(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("outcome", c_text(8), nullable=False),
        sa.Column("error", c_text(500), nullable=True),
        sa.Column("worker", c_text(64), nullable=False),
    )
    op.create_index("ix_outbox_attempt_job_id", "outbox_attempt", ["job_id"])

    op.create_table(
        "delivery_endpoint",
        sa.Column("url_hash", c_text(64), primary_key=True),
        sa.Column("url", c_text(2000), nullable=False),
        sa.Column("sender_id", c_text(99), nullable=True),
        sa.Column("disabled_at", utc(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_endpoint")
    op.drop_table("outbox_attempt")
    op.drop_table("outbox_job")
    op.drop_table("dci_transaction")
