"""Transaction status: `TxnStatusRequest` (`txn-status`) and `TxnStatusResponse` (`txn-on-status`).

`txnstatus_request` is one object, not a batch. `txn_status` in the response is the whole
original response message (search, subscribe or unsubscribe); it stays untyped on decode and
`codec.decode_txn_status` reads it for its `txn_type`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from dci_bridge.protocol.codes import TxnAttributeType, TxnType
from dci_bridge.protocol.primitives import (
    CorrelationId,
    Locale,
    ReferenceId,
    TransactionId,
)

TXN_STATUS_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"$ref": "#/$defs/SearchResponse"},
        {"$ref": "#/$defs/SubscribeResponse"},
        {"$ref": "#/$defs/UnSubscribeResponse"},
    ]
}

TxnStatus = Annotated[
    Any,
    Meta(
        description="The original response message for txn_type",
        extra_json_schema=TXN_STATUS_SCHEMA,
    ),
]


class TxnStatusQuery(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """What to look up: a transaction id, a correlation id, or lists of reference ids or
    subscription codes (`attribute_value` is a string or an array of strings)."""

    reference_id: ReferenceId
    txn_type: TxnType
    attribute_type: TxnAttributeType
    attribute_value: str | list[str]
    locale: Locale | None = None


class TxnStatusRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of a `txn-status` request."""

    transaction_id: TransactionId
    txnstatus_request: TxnStatusQuery


class TxnStatusResult(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """The status found: the original response message of type `txn_type`."""

    txn_type: TxnType
    txn_status: TxnStatus


class TxnStatusResponse(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of a `txn-on-status` callback or a sync txn status answer."""

    transaction_id: TransactionId
    correlation_id: CorrelationId
    txnstatus_response: TxnStatusResult
