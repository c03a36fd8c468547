"""Audit trail.

Revision ID: 0005_audit
Revises: 0004_subscriptions
Create Date: 2026-11-23
"""

from __future__ import annotations

revision = "0005_audit"
down_revision = "0004_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: filled in by the feature that owns these tables


def downgrade() -> None:
    pass
