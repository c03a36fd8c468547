"""Message security tables: registered senders (DCI clients) and the replay guard.

- `dci_sender`: one row per DCI client allowed to call the bridge: its OAuth client secret
  (salted scrypt hash, never the secret), scopes (space-separated), public keys (an inline
  JWKS, or a JWKS URL fetched and cached), allowed callback URL prefixes (a JSON array), the
  signature scheme we answer it with, and an enabled flag.
- `seen_message`: (sender_id, message_id) of every accepted request whose `message_ts` is
  still inside the replay window; `expires_at` (message_ts + window) drives pruning.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from dci_bridge.db.column_types import c_text, utc

__all__ = ["SeenMessage", "Sender"]


class Sender(SQLModel, table=True):
    """A registered DCI client (its `sender_id` is also its OAuth `client_id`)."""

    __tablename__ = "dci_sender"

    sender_id: str = Field(sa_type=c_text(99), primary_key=True)
    name: str = Field(sa_type=c_text(200))
    secret_hash: str = Field(sa_type=c_text(200))
    scopes: str = Field(sa_type=c_text(400))
    jwks_json: str | None = Field(default=None, sa_type=sa.Text)
    jwks_url: str | None = Field(default=None, sa_type=c_text(2000))
    callback_prefixes: str = Field(sa_type=sa.Text)
    signature_scheme: str = Field(sa_type=c_text(16))
    enabled: bool = Field(default=True)
    created_at: dt.datetime = Field(sa_type=utc())
    updated_at: dt.datetime = Field(sa_type=utc())


class SeenMessage(SQLModel, table=True):
    """A request message id already accepted from a sender (replay guard)."""

    __tablename__ = "seen_message"

    sender_id: str = Field(sa_type=c_text(99), primary_key=True)
    message_id: str = Field(sa_type=c_text(99), primary_key=True)
    expires_at: dt.datetime = Field(sa_type=utc(), index=True)
