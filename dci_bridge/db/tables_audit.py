"""Audit trail tables.

- `audit_event`: one row per disclosure decision: every search message (sync or async) and
  every notification sent. Who (`sender_id`), which message (`message_id`,
  `transaction_id`), when (`at`), the outcome (`status`), how many items and records, the
  returned record ids (`record_ids`, a JSON array of person ids) and `detail`, a JSON
  document with one entry per request item: its query with every identifier and value
  HASHED (HMAC-SHA256 under `audit_key`), the request's consent and authorize fields as
  sent, the item status and its record ids. No names, dates or identifiers in clear.
- `audit_key`: the one HMAC key (random, created by the first process that needs it, shared
  by every replica through the database), so the same identifier always hashes the same and
  `dci-bridge audit --identifier` can find searches for it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from dci_bridge.db.column_types import c_text, utc

__all__ = ["AuditEvent", "AuditKey"]


def _id_type() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid).
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class AuditEvent(SQLModel, table=True):
    """One audited message: a search answered or a notification sent."""

    __tablename__ = "audit_event"

    id: int | None = Field(
        default=None, sa_column=sa.Column(_id_type(), primary_key=True, autoincrement=True)
    )
    at: dt.datetime = Field(sa_type=utc(), index=True)
    action: str = Field(sa_type=c_text(32), index=True)
    sender_id: str = Field(sa_type=c_text(128), index=True)
    message_id: str = Field(sa_type=c_text(128))
    transaction_id: str | None = Field(default=None, sa_type=c_text(128))
    status: str = Field(sa_type=c_text(32))
    item_count: int = Field(default=0)
    record_count: int = Field(default=0)
    record_ids: str = Field(sa_type=sa.Text)
    detail: str = Field(sa_type=sa.Text)


class AuditKey(SQLModel, table=True):
    """The HMAC key identifiers are hashed with (one row, id 1)."""

    __tablename__ = "audit_key"

    id: int = Field(primary_key=True)
    key_hex: str = Field(sa_type=c_text(128))
    created_at: dt.datetime = Field(sa_type=utc())
