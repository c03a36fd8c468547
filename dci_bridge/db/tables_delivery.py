"""Delivery tables: async transactions, the transactional outbox and its attempts.

- `dci_transaction`: one row per accepted async request (search, txn status; the notify
  feature stores subscribe/unsubscribe here too). Keyed by the `correlation_id` we
  generated and announced in the Ack; `response_json` is the response message that
  `txn/status` reports (the original SearchResponse, ...).
- `outbox_job`: one unit of work, written in the same transaction as whatever caused it.
  `kind` says what the worker does with it: an HTTP delivery of a signed DCI envelope
  (`header_json` + `message_json` POSTed to `target_url`, signed at send time) or a task a
  registered handler runs (an async search). `state` is `pending` until `done` or `dead`;
  a worker owns a pending job while `lease_until` is in the future.
- `outbox_attempt`: every attempt of every job: when, how long, HTTP status, outcome, error.
- `delivery_endpoint`: callback URLs that answered 410 Gone (disabled until replayed).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from dci_bridge.db.column_types import c_text, utc

__all__ = ["DciTransaction", "DeliveryEndpoint", "OutboxAttempt", "OutboxJob"]


class DciTransaction(SQLModel, table=True):
    """An accepted async request and, once known, the response `txn/status` reports."""

    __tablename__ = "dci_transaction"
    __table_args__ = (sa.Index("ix_dci_transaction_sender_txn", "sender_id", "transaction_id"),)

    correlation_id: str = Field(sa_type=c_text(99), primary_key=True)
    sender_id: str = Field(sa_type=c_text(99))
    transaction_id: str = Field(sa_type=c_text(99))
    message_id: str = Field(sa_type=c_text(99))
    txn_type: str = Field(sa_type=c_text(16))
    status: str = Field(sa_type=c_text(8))
    reference_ids: str = Field(sa_type=sa.Text)
    callback_url: str | None = Field(default=None, sa_type=c_text(2000))
    response_json: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: dt.datetime = Field(sa_type=utc(), index=True)
    updated_at: dt.datetime = Field(sa_type=utc())


class OutboxJob(SQLModel, table=True):
    """A job the delivery worker claims, runs or sends, and retries until done or dead."""

    __tablename__ = "outbox_job"
    __table_args__ = (sa.Index("ix_outbox_job_due", "state", "next_attempt_at"),)

    job_id: str = Field(sa_type=c_text(36), primary_key=True)
    kind: str = Field(sa_type=c_text(32), index=True)
    state: str = Field(sa_type=c_text(8))
    sender_id: str | None = Field(default=None, sa_type=c_text(99), index=True)
    correlation_id: str | None = Field(default=None, sa_type=c_text(99), index=True)
    message_id: str | None = Field(default=None, sa_type=c_text(99), index=True)
    target_url: str | None = Field(default=None, sa_type=c_text(2000))
    scheme: str | None = Field(default=None, sa_type=c_text(16))
    header_json: bytes = Field(sa_type=sa.LargeBinary)
    message_json: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    attempts: int = Field(default=0)
    next_attempt_at: dt.datetime = Field(sa_type=utc())
    lease_owner: str | None = Field(default=None, sa_type=c_text(64))
    lease_until: dt.datetime | None = Field(default=None, sa_type=utc())
    last_status: int | None = Field(default=None)
    last_error: str | None = Field(default=None, sa_type=c_text(500))
    created_at: dt.datetime = Field(sa_type=utc())
    updated_at: dt.datetime = Field(sa_type=utc())
    completed_at: dt.datetime | None = Field(default=None, sa_type=utc())


class OutboxAttempt(SQLModel, table=True):
    """One attempt of a job: started when, how long, the HTTP status, outcome and error."""

    __tablename__ = "outbox_attempt"

    attempt_id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(sa_type=c_text(36), index=True)
    number: int
    started_at: dt.datetime = Field(sa_type=utc())
    latency_ms: float
    http_status: int | None = Field(default=None)
    outcome: str = Field(sa_type=c_text(8))
    error: str | None = Field(default=None, sa_type=c_text(500))
    worker: str = Field(sa_type=c_text(64))


class DeliveryEndpoint(SQLModel, table=True):
    """A callback URL that answered 410 Gone: nothing more is sent to it until replayed."""

    __tablename__ = "delivery_endpoint"

    url_hash: str = Field(sa_type=c_text(64), primary_key=True)
    url: str = Field(sa_type=c_text(2000))
    sender_id: str | None = Field(default=None, sa_type=c_text(99))
    disabled_at: dt.datetime = Field(sa_type=utc())
