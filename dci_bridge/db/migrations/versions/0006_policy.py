"""Per-sender disclosure policies.

Revision ID: 0006_policy
Revises: 0005_audit
Create Date: 2026-11-23
"""

from __future__ import annotations

revision = "0006_policy"
down_revision = "0005_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: filled in by the feature that owns these tables


def downgrade() -> None:
    pass
