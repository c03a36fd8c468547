"""Tables of subscriptions and notifications (migration 0004_subscriptions).

- `webhook_inbox`: every accepted OpenCRVS webhook delivery, stored before it is answered and
  processed afterwards (`status` pending -> done | failed). `body_sha256` is unique so an
  exact re-delivery is recognised without processing it again.
- `webhook_quarantine`: deliveries that could not be used (malformed JSON, unknown topic, a
  bundle the mapping cannot read), with the raw body for the operator.
- `subscription`: one row per DCI subscription code, owned by the sender that made it.
- `notify_event`: which (record, event) pairs were already notified, so the same OpenCRVS
  event delivered twice (or re-processed after a crash) notifies nobody a second time.
- `notify_pending`: notifications waiting for a batched subscription's next scheduled time.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from dci_bridge.db.column_types import c_text, utc

__all__ = [
    "NotifyEvent",
    "NotifyPending",
    "Subscription",
    "WebhookInbox",
    "WebhookQuarantine",
]


class WebhookInbox(SQLModel, table=True):
    """One accepted webhook delivery (v1 webhook or v2 lifecycle hook)."""

    __tablename__ = "webhook_inbox"

    id: str = Field(sa_type=c_text(36), primary_key=True)
    source: str = Field(sa_type=c_text(8))
    topic: str = Field(sa_type=c_text(64))
    body_sha256: str = Field(sa_type=c_text(64), unique=True)
    body: bytes = Field(sa_type=sa.LargeBinary)
    received_at: dt.datetime = Field(sa_type=utc())
    status: str = Field(sa_type=c_text(16), index=True)
    attempts: int = Field(default=0)
    processed_at: dt.datetime | None = Field(default=None, sa_type=utc())
    record_id: str | None = Field(default=None, sa_type=c_text(64))
    notified: int = Field(default=0)
    error: str | None = Field(default=None, sa_type=c_text(999))


class WebhookQuarantine(SQLModel, table=True):
    """A webhook payload that was refused or failed, kept as received."""

    __tablename__ = "webhook_quarantine"

    id: str = Field(sa_type=c_text(36), primary_key=True)
    source: str = Field(sa_type=c_text(8))
    received_at: dt.datetime = Field(sa_type=utc(), index=True)
    reason: str = Field(sa_type=c_text(64))
    message: str = Field(sa_type=c_text(999))
    path: str | None = Field(default=None, sa_type=c_text(200))
    body: bytes = Field(sa_type=sa.LargeBinary)
    inbox_id: str | None = Field(default=None, sa_type=c_text(36))


class Subscription(SQLModel, table=True):
    """A DCI subscription: who asked, what to match, where and when to notify."""

    __tablename__ = "subscription"

    code: str = Field(sa_type=c_text(99), primary_key=True)
    sender_id: str = Field(sa_type=c_text(200), index=True)
    transaction_id: str = Field(sa_type=c_text(99))
    reference_id: str = Field(sa_type=c_text(99))
    status: str = Field(sa_type=c_text(16), index=True)
    event_type: str = Field(sa_type=c_text(16), index=True)
    notify_url: str = Field(sa_type=c_text(2000))
    encrypt: bool = Field(default=False)
    frequency: str | None = Field(default=None, sa_type=c_text(200))
    start_time: dt.datetime | None = Field(default=None, sa_type=utc())
    expires_at: dt.datetime | None = Field(default=None, sa_type=utc())
    info_json: bytes = Field(sa_type=sa.LargeBinary)
    """The `SubscriptionInfo` as answered in on-subscribe (criteria as sent, normalised)."""
    created_at: dt.datetime = Field(sa_type=utc())
    unsubscribed_at: dt.datetime | None = Field(default=None, sa_type=utc())
    next_batch_at: dt.datetime | None = Field(default=None, sa_type=utc(), index=True)


class NotifyEvent(SQLModel, table=True):
    """(record, event) already fanned out; the key of notify idempotency."""

    __tablename__ = "notify_event"

    record_id: str = Field(sa_type=c_text(64), primary_key=True)
    event_key: str = Field(sa_type=c_text(64), primary_key=True)
    created_at: dt.datetime = Field(sa_type=utc())
    inbox_id: str | None = Field(default=None, sa_type=c_text(36))
    subscriptions: int = Field(default=0)


class NotifyPending(SQLModel, table=True):
    """One notify event item held for a batched subscription until its next run."""

    __tablename__ = "notify_pending"

    id: int | None = Field(default=None, primary_key=True)
    subscription_code: str = Field(sa_type=c_text(99), index=True)
    record_id: str = Field(sa_type=c_text(64))
    event_type: str = Field(sa_type=c_text(16))
    item_json: bytes = Field(sa_type=sa.LargeBinary)
    created_at: dt.datetime = Field(sa_type=utc())
