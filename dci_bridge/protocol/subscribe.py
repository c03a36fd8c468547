"""Subscriptions: subscribe / on-subscribe and unsubscribe / on-unsubscribe messages.

The public structs are the NEW spelling. DRAFT and V1 misspell three unsubscribe fields
(`timesstamp` and `sunscription_codes` in the request, `timesatmp` in the response); the
`*Compat` structs read either spelling and `to_new()` gives the public struct, so only the
NEW spelling is ever written. `codec.decode_message` does this for callers.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from dci_bridge.protocol.codes import (
    QueryType,
    RequestStatus,
    SubscribeStatusReasonCode,
    SubscriptionStatus,
    UnsubscribeStatusReasonCode,
)
from dci_bridge.protocol.header import Version, version_default
from dci_bridge.protocol.primitives import (
    CorrelationId,
    DateTime,
    Locale,
    ReferenceId,
    StatusReasonMessage,
    SubscriptionCode,
    TransactionId,
)
from dci_bridge.protocol.search import JsonObject, Pagination, Query

Cron = Annotated[
    str, Meta(description="Cron expression, e.g. `0 0 0 5,15 * ? *` (Quartz, seconds first)")
]


class EventFrequency(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """When to notify: a cron schedule applied between `start_time` and `end_time`."""

    start_time: DateTime
    end_time: DateTime
    frequency: Cron


class SubscribeCriteria(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Which events to notify about. `filter` has the shapes of a search query (`filter_type`)."""

    version: Version = msgspec.field(default_factory=version_default)
    reg_type: str | None = None
    reg_event_type: str
    frequency: EventFrequency | None = None
    filter_type: QueryType | None = None
    filter: Query
    notify_record_type: str
    authorize: JsonObject = None


class SubscribeRequestItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One subscription of a batch."""

    reference_id: ReferenceId
    timestamp: DateTime
    subscribe_criteria: SubscribeCriteria
    locale: Locale | None = None


class SubscribeRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of a `subscribe` request."""

    transaction_id: TransactionId
    subscribe_request: list[SubscribeRequestItem]


class SubscriptionInfo(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A subscription as the registry holds it; `code` is the registry-made subscription code."""

    version: Version = msgspec.field(default_factory=version_default)
    code: SubscriptionCode
    status: SubscriptionStatus
    timestamp: DateTime
    reg_type: str | None = None
    reg_event_type: str | None = None
    frequency: EventFrequency | None = None
    filter_type: QueryType | None = None
    filter: Query = None
    notify_record_type: str | None = None
    locale: Locale | None = None


class SubscribeResponseItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Answer to one subscribe item."""

    reference_id: ReferenceId
    timestamp: DateTime
    status: RequestStatus
    status_reason_code: SubscribeStatusReasonCode | None = None
    status_reason_message: StatusReasonMessage | None = None
    subscriptions: list[SubscriptionInfo] | None = None
    pagination: Pagination | None = None
    locale: Locale | None = None


class SubscribeResponse(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of an `on-subscribe` callback."""

    transaction_id: TransactionId
    correlation_id: CorrelationId
    subscribe_response: list[SubscribeResponseItem]


class UnSubscribeRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of an `unsubscribe` request (not batched: one timestamp, many codes)."""

    transaction_id: TransactionId
    timestamp: DateTime
    subscription_codes: list[SubscriptionCode]


class SubscriptionStatusItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """State of one subscription after an unsubscribe."""

    code: SubscriptionCode
    status: SubscriptionStatus


class UnSubscribeResponse(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of an `on-unsubscribe` callback."""

    transaction_id: TransactionId
    correlation_id: CorrelationId
    timestamp: DateTime
    status: RequestStatus
    status_reason_code: UnsubscribeStatusReasonCode | None = None
    status_reason_message: StatusReasonMessage | None = None
    subscription_status: list[SubscriptionStatusItem] | None = None


def _missing(name: str) -> ValueError:
    # Same wording as msgspec's own message, so error paths read alike.
    return ValueError(f"Object missing required field `{name}`")


class UnSubscribeRequestCompat(msgspec.Struct, kw_only=True, frozen=True):
    """Reads an unsubscribe request in the NEW or the DRAFT/V1 (misspelt) form."""

    transaction_id: TransactionId
    timestamp: DateTime | UnsetType = UNSET
    timesstamp: DateTime | UnsetType = UNSET
    subscription_codes: list[SubscriptionCode] | UnsetType = UNSET
    sunscription_codes: list[SubscriptionCode] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.timestamp is UNSET and self.timesstamp is UNSET:
            raise _missing("timestamp")
        if self.subscription_codes is UNSET and self.sunscription_codes is UNSET:
            raise _missing("subscription_codes")

    def to_new(self) -> UnSubscribeRequest:
        timestamp = self.timesstamp if self.timestamp is UNSET else self.timestamp
        codes = (
            self.sunscription_codes if self.subscription_codes is UNSET else self.subscription_codes
        )
        assert not isinstance(timestamp, UnsetType)
        assert not isinstance(codes, UnsetType)
        return UnSubscribeRequest(
            transaction_id=self.transaction_id, timestamp=timestamp, subscription_codes=codes
        )


class UnSubscribeResponseCompat(msgspec.Struct, kw_only=True, frozen=True):
    """Reads an unsubscribe response in the NEW or the DRAFT/V1 (`timesatmp`) form."""

    transaction_id: TransactionId
    correlation_id: CorrelationId
    timestamp: DateTime | UnsetType = UNSET
    timesatmp: DateTime | UnsetType = UNSET
    status: RequestStatus
    status_reason_code: UnsubscribeStatusReasonCode | None = None
    status_reason_message: StatusReasonMessage | None = None
    subscription_status: list[SubscriptionStatusItem] | None = None

    def __post_init__(self) -> None:
        if self.timestamp is UNSET and self.timesatmp is UNSET:
            raise _missing("timestamp")

    def to_new(self) -> UnSubscribeResponse:
        timestamp = self.timesatmp if self.timestamp is UNSET else self.timestamp
        assert not isinstance(timestamp, UnsetType)
        return UnSubscribeResponse(
            transaction_id=self.transaction_id,
            correlation_id=self.correlation_id,
            timestamp=timestamp,
            status=self.status,
            status_reason_code=self.status_reason_code,
            status_reason_message=self.status_reason_message,
            subscription_status=self.subscription_status,
        )
