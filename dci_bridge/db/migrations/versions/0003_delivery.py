"""Delivery: transactions, outbox, attempts.

Revision ID: 0003_delivery
Revises: 0002_security
Create Date: 2026-11-23
"""

from __future__ import annotations

revision = "0003_delivery"
down_revision = "0002_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: filled in by the feature that owns these tables


def downgrade() -> None:
    pass
