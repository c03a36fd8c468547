"""Message security: senders, replay guard.

Revision ID: 0002_security
Revises: 0001_embedded_store
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dci_bridge.db.column_types import c_text, utc

revision = "0002_security"
down_revision = "0001_embedded_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dci_sender",
        sa.Column("sender_id", c_text(99), primary_key=True),
        sa.Column("name", c_text(200), nullable=False),
        sa.Column("secret_hash", c_text(200), nullable=False),
        sa.Column("scopes", c_text(400), nullable=False),
        sa.Column("jwks_json", sa.Text(), nullable=True),
        sa.Column("jwks_url", c_text(2000), nullable=True),
        sa.Column("callback_prefixes", sa.Text(), nullable=False),
        sa.Column("signature_scheme", c_text(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
    )
    op.create_table(
        "seen_message",
        sa.Column("sender_id", c_text(99), primary_key=True),
        sa.Column("message_id", c_text(99), primary_key=True),
        sa.Column("expires_at", utc(), nullable=False),
    )
    op.create_index("ix_seen_message_expires_at", "seen_message", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_seen_message_expires_at", table_name="seen_message")
    op.drop_table("seen_message")
    op.drop_table("dci_sender")
