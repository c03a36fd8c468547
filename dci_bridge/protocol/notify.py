"""Notifications: `NotifyEventRequest`, pushed by the registry to a subscriber (`notify`)."""

from __future__ import annotations

from typing import Any

import msgspec

from dci_bridge.protocol.header import Version, version_default
from dci_bridge.protocol.primitives import (
    DateTime,
    Locale,
    ReferenceId,
    SubscriptionCode,
    TransactionId,
)


class NotifyEventData(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Records notified. NEW and DRAFT type `reg_records` as an object, search answers as an
    array; both are read and kept as sent, so the sender decides what it writes."""

    version: Version = msgspec.field(default_factory=version_default)
    reg_type: str | None = None
    reg_event_type: str | None = None
    reg_record_type: str
    reg_records: list[Any] | dict[str, Any]


class NotifyEventItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One notified event. `subscription_code` is our extension (the standard has no field
    linking a notification to its subscription); receivers that do not know it ignore it."""

    reference_id: ReferenceId
    timestamp: DateTime
    data: NotifyEventData
    locale: Locale | None = None
    subscription_code: SubscriptionCode | None = None


class NotifyEventRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of a `notify` push."""

    transaction_id: TransactionId
    notify_event: list[NotifyEventItem]
