"""Decoding and encoding of DCI bodies. Decoders and the encoder are built once, at import.

Inbound bodies go through two stages: the envelope (`decode_request_envelope`,
`decode_callback_envelope`), then the message for the header's action (`decode_message`).
Decoding is strict on types; the tolerated deviations from the standard are listed in
docs/decisions.md ("Wire tolerances"). Errors are `msgspec.DecodeError` (not JSON) or
`msgspec.ValidationError` (wrong shape), whose `$.x.y` path `error_path` extracts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import msgspec

from dci_bridge.protocol.ack import Ack, HttpErrorResponse
from dci_bridge.protocol.codes import Action, QueryType, TxnType
from dci_bridge.protocol.encrypted import EncryptedMessage
from dci_bridge.protocol.envelope import CallbackEnvelope, RawEnvelope, RequestEnvelope
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.protocol.notify import NotifyEventRequest
from dci_bridge.protocol.primitives import DATE_TIME_PATTERN, LOCALE_TOLERANT_PATTERN
from dci_bridge.protocol.search import (
    ExpressionQuery,
    IdTypeValueQuery,
    PredicateItem,
    SearchRequest,
    SearchResponse,
)
from dci_bridge.protocol.subscribe import (
    SubscribeRequest,
    SubscribeResponse,
    UnSubscribeRequest,
    UnSubscribeRequestCompat,
    UnSubscribeResponse,
    UnSubscribeResponseCompat,
)
from dci_bridge.protocol.txn import TxnStatusRequest, TxnStatusResponse

Message = (
    SearchRequest
    | SearchResponse
    | SubscribeRequest
    | SubscribeResponse
    | NotifyEventRequest
    | UnSubscribeRequest
    | UnSubscribeResponse
    | TxnStatusRequest
    | TxnStatusResponse
)
Query = IdTypeValueQuery | ExpressionQuery | list[PredicateItem]
TxnStatus = SearchResponse | SubscribeResponse | UnSubscribeResponse

MESSAGE_TYPES: Final[dict[Action, type[Message]]] = {
    Action.SEARCH: SearchRequest,
    Action.ON_SEARCH: SearchResponse,
    Action.SUBSCRIBE: SubscribeRequest,
    Action.ON_SUBSCRIBE: SubscribeResponse,
    Action.NOTIFY: NotifyEventRequest,
    Action.UNSUBSCRIBE: UnSubscribeRequest,
    Action.ON_UNSUBSCRIBE: UnSubscribeResponse,
    Action.TXN_STATUS: TxnStatusRequest,
    Action.TXN_ON_STATUS: TxnStatusResponse,
}
"""The message type each action carries (NEW spelling)."""

# The type actually decoded per action, and how to turn it into the public type: the
# unsubscribe messages are read through their typo-tolerant Compat structs.
_READERS: Final[dict[str, tuple[msgspec.json.Decoder[Any], Callable[[Any], Message] | None]]] = {
    Action.SEARCH: (msgspec.json.Decoder(SearchRequest), None),
    Action.ON_SEARCH: (msgspec.json.Decoder(SearchResponse), None),
    Action.SUBSCRIBE: (msgspec.json.Decoder(SubscribeRequest), None),
    Action.ON_SUBSCRIBE: (msgspec.json.Decoder(SubscribeResponse), None),
    Action.NOTIFY: (msgspec.json.Decoder(NotifyEventRequest), None),
    Action.UNSUBSCRIBE: (
        msgspec.json.Decoder(UnSubscribeRequestCompat),
        UnSubscribeRequestCompat.to_new,
    ),
    Action.ON_UNSUBSCRIBE: (
        msgspec.json.Decoder(UnSubscribeResponseCompat),
        UnSubscribeResponseCompat.to_new,
    ),
    Action.TXN_STATUS: (msgspec.json.Decoder(TxnStatusRequest), None),
    Action.TXN_ON_STATUS: (msgspec.json.Decoder(TxnStatusResponse), None),
}

_REQUEST_ENVELOPE: Final = msgspec.json.Decoder(RequestEnvelope)
_CALLBACK_ENVELOPE: Final = msgspec.json.Decoder(CallbackEnvelope)
_RAW_ENVELOPE: Final = msgspec.json.Decoder(RawEnvelope)
_REQUEST_HEADER: Final = msgspec.json.Decoder(MsgHeader)
_ENCRYPTED: Final = msgspec.json.Decoder(EncryptedMessage)
_ACK: Final = msgspec.json.Decoder(Ack)
_HTTP_ERROR: Final = msgspec.json.Decoder(HttpErrorResponse)
_ENCODER: Final = msgspec.json.Encoder()

_PATH_RE: Final = re.compile(r" - at `(\$[^`]*)`$")
# What a pattern means, for error messages a client can read.
_PATTERN_NAMES: Final = {
    f"`str` matching regex {DATE_TIME_PATTERN!r}": "an RFC 3339 date-time with a time zone offset",
    f"`str` matching regex {LOCALE_TOLERANT_PATTERN!r}": "an ISO 639-3 language code such as `eng`",
}


class UnknownActionError(ValueError):
    """`decode_message` was given an action the standard does not define."""

    def __init__(self, action: str) -> None:
        super().__init__(f"no DCI message is defined for action {action!r}")
        self.action = action


def decode_request_envelope(body: bytes) -> RequestEnvelope:
    """First stage of any inbound request: signature, typed header, raw message."""
    return _REQUEST_ENVELOPE.decode(body)


def decode_callback_envelope(body: bytes) -> CallbackEnvelope:
    """First stage of a callback or sync answer: signature, callback header, raw message."""
    return _CALLBACK_ENVELOPE.decode(body)


def decode_raw_envelope(body: bytes) -> RawEnvelope:
    """The envelope with header and message kept byte for byte (for signature checks)."""
    return _RAW_ENVELOPE.decode(body)


def decode_request_header(raw: bytes | msgspec.Raw) -> MsgHeader:
    """The request header of a `RawEnvelope` (errors at `$.header...`)."""
    try:
        return _REQUEST_HEADER.decode(raw)
    except msgspec.ValidationError as exc:
        raise msgspec.ValidationError(_under(str(exc), "$.header")) from None


def decode_message(action: str, raw: bytes | msgspec.Raw) -> Message:
    """Decode the message of an envelope by its header's action.

    Error paths are rewritten relative to the envelope (`$.message...`), so a caller can
    report them as they are. Raises `UnknownActionError` for an action without a message.
    """
    try:
        decoder, to_new = _READERS[action]
    except KeyError:
        raise UnknownActionError(action) from None
    try:
        message = decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise msgspec.ValidationError(_under(str(exc), "$.message")) from None
    return message if to_new is None else to_new(message)


def decode_encrypted(raw: bytes | msgspec.Raw) -> EncryptedMessage:
    """Decode a `message` that `header.is_msg_encrypted` says is an EncryptedMessage."""
    try:
        return _ENCRYPTED.decode(raw)
    except msgspec.ValidationError as exc:
        raise msgspec.ValidationError(_under(str(exc), "$.message")) from None


def decode_query(query_type: QueryType, value: Any) -> Query:
    """Read a search `query` (or subscribe `filter`) for its `query_type`.

    Paths in errors are relative to the query. Tolerated: a single predicate object where
    the standard wants an array, and bare predicates (`{attribute_name, operator,
    attribute_value}`, DRAFT's ExpPredicateList) as items.
    """
    if query_type == QueryType.IDTYPE_VALUE:
        return msgspec.convert(value, IdTypeValueQuery)
    if query_type == QueryType.PREDICATE:
        items = [value] if isinstance(value, dict) else value
        if isinstance(items, list):
            items = [_as_predicate_item(item) for item in items]
        return msgspec.convert(items, list[PredicateItem])
    return msgspec.convert(value, ExpressionQuery)


def decode_txn_status(txn_type: TxnType, value: Any) -> TxnStatus:
    """Read `txnstatus_response.txn_status`, the original response message of `txn_type`."""
    if txn_type in (TxnType.SEARCH, TxnType.ON_SEARCH):
        return msgspec.convert(value, SearchResponse)
    if txn_type in (TxnType.SUBSCRIBE, TxnType.ON_SUBSCRIBE):
        return msgspec.convert(value, SubscribeResponse)
    return msgspec.convert(value, UnSubscribeResponseCompat).to_new()


def decode_ack(body: bytes) -> Ack:
    """The Ack a receiver answered to one of our async posts."""
    return _ACK.decode(body)


def decode_http_error(body: bytes) -> HttpErrorResponse:
    """An HTTP-layer error body (`{"errors": [...]}`)."""
    return _HTTP_ERROR.decode(body)


def encode(obj: Any) -> bytes:
    """JSON bytes of any struct, envelope or plain JSON value (absent fields omitted)."""
    return _ENCODER.encode(obj)


def error_path(exc: msgspec.ValidationError) -> str | None:
    """The `$.x.y` path msgspec put in a validation error, or None at the root."""
    match = _PATH_RE.search(str(exc))
    return match.group(1) if match else None


def error_message(exc: msgspec.ValidationError) -> str:
    """msgspec's message without its path, with our regexes named (never the bad value)."""
    text = str(exc)
    match = _PATH_RE.search(text)
    if match is not None:
        text = text[: match.start()]
    for regex, name in _PATTERN_NAMES.items():
        text = text.replace(regex, name)
    return text


def _under(text: str, prefix: str) -> str:
    """Rewrite the path of a msgspec error message as a path below `prefix`."""
    match = _PATH_RE.search(text)
    if match is None:
        return f"{text} - at `{prefix}`"
    return f"{text[: match.start()]} - at `{prefix}{match.group(1)[1:]}`"


def _as_predicate_item(item: Any) -> Any:
    if isinstance(item, dict) and "expression1" not in item and "attribute_name" in item:
        return {"expression1": item}
    return item
