"""Disclosure policy tables.

- `disclosure_policy`: one row per sender that may learn anything (a sender without a row
  is refused): the policy document as JSON text (`registry/policy.py` reads it), a
  revision counted up on every change (the audit trail names the revision that applied),
  and when it was set.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from dci_bridge.db.column_types import c_text

__all__ = ["DisclosurePolicyRow"]


class DisclosurePolicyRow(SQLModel, table=True):
    """The disclosure policy of one sender (keyed by its `sender_id`)."""

    __tablename__ = "disclosure_policy"

    sender_id: str = Field(sa_type=c_text(99), primary_key=True)
    document: str = Field(sa_type=sa.Text)
    revision: int = Field(default=1)
    updated_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))
