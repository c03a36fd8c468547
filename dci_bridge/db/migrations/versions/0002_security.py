"""Message security: senders, replay guard.

Revision ID: 0002_security
Revises: 0001_embedded_store
Create Date: 2026-11-23
"""

from __future__ import annotations

revision = "0002_security"
down_revision = "0001_embedded_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: filled in by the feature that owns these tables


def downgrade() -> None:
    pass
