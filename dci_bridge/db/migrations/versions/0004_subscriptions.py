"""Subscriptions, webhook ingest, quarantine.

Revision ID: 0004_subscriptions
Revises: 0003_delivery
Create Date: 2026-11-23
"""

from __future__ import annotations

revision = "0004_subscriptions"
down_revision = "0003_delivery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: filled in by the feature that owns these tables


def downgrade() -> None:
    pass
