"""Decoding and encoding of DCI bodies: the two stages, strictness, encoding, error paths."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from dci_bridge.protocol import codec
from dci_bridge.protocol.codes import Action, RequestStatus
from dci_bridge.protocol.envelope import Envelope
from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.protocol.search import (
    Pagination,
    SearchRequest,
    SearchResponse,
    SearchResponseData,
    SearchResponseItem,
)
from tests.unit.protocol.protocol_samples import HEADER, ITEM, MESSAGE, TS, body, rejection

# --------------------------------------------------------------------------- envelopes


def test_request_envelope_keeps_the_message_raw_until_its_action_is_known() -> None:
    envelope = codec.decode_request_envelope(body(signature="sig"))
    assert envelope.signature == "sig"
    assert envelope.header.action == "search"
    assert envelope.header.version == "1.0.0"
    assert envelope.header.is_msg_encrypted is False
    assert json.loads(bytes(envelope.message)) == MESSAGE
    message = codec.decode_message(envelope.header.action, envelope.message)
    assert isinstance(message, SearchRequest)
    assert message.search_request[0].search_criteria.query == {"type": "UIN", "value": "123"}


def test_request_envelope_without_message_is_rejected_at_the_root() -> None:
    raw = json.dumps({"header": HEADER}).encode()
    with pytest.raises(msgspec.ValidationError, match="missing required field `message`"):
        codec.decode_request_envelope(raw)


def test_callback_envelope_may_come_without_message() -> None:
    raw = json.dumps(
        {"header": {"message_id": "m", "message_ts": TS, "action": "on-search", "status": "rjct"}}
    ).encode()
    envelope = codec.decode_callback_envelope(raw)
    assert envelope.message is msgspec.UNSET
    assert envelope.header.status is RequestStatus.RJCT
    assert envelope.header.sender_id is None


def test_raw_envelope_keeps_header_and_message_byte_for_byte() -> None:
    raw = b'{"signature":"s","header": {"b":1,  "a":2},"message":{"z" : [1, 2]}}'
    envelope = codec.decode_raw_envelope(raw)
    assert bytes(envelope.header) == b'{"b":1,  "a":2}'
    assert not isinstance(envelope.message, msgspec.UnsetType)
    assert bytes(envelope.message) == b'{"z" : [1, 2]}'


def test_malformed_json_is_a_decode_error_not_a_validation_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        codec.decode_request_envelope(b'{"header": ')


# --------------------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    ("header", "path"),
    [
        ({"total_count": "1"}, "$.header.total_count"),
        ({"total_count": 1.0}, "$.header.total_count"),
        ({"message_ts": "2025-03-01T10:00:00"}, "$.header.message_ts"),
        ({"message_ts": ""}, "$.header.message_ts"),
        ({"message_id": ""}, "$.header.message_id"),
        ({"sender_id": None}, "$.header.sender_id"),
        ({"meta": ""}, "$.header.meta"),
        ({"is_msg_encrypted": "false"}, "$.header.is_msg_encrypted"),
    ],
)
def test_header_type_errors_name_the_field(header: dict[str, Any], path: str) -> None:
    assert rejection(codec.decode_request_envelope, body(header)) == path


def test_missing_header_field_is_reported_at_the_header() -> None:
    raw = json.dumps(
        {"header": {k: v for k, v in HEADER.items() if k != "sender_id"}, "message": {}}
    )
    with pytest.raises(msgspec.ValidationError, match="`sender_id`") as info:
        codec.decode_request_envelope(raw.encode())
    assert codec.error_path(info.value) == "$.header"


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-01T10:00:00Z",
        "2025-03-01t10:00:00z",
        "2025-03-01T10:00:00.123456+05:30",
        "2022-12-04T17:20:07-04:00",
        "2016-12-31T23:59:60Z",
    ],
)
def test_date_times_with_an_offset_are_accepted(value: str) -> None:
    assert codec.decode_request_envelope(body({"message_ts": value})).header.message_ts == value


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-01T10:00:00",
        "2025-03-01 10:00:00Z",
        "2025-03-01",
        "2025-13-01T10:00:00Z",
        "2025-03-01T24:00:00Z",
        "2025-03-01T10:00:00+0530",
        "2025-03-01T10:00:00Z\n",
        "٢٠٢٥-03-01T10:00:00Z",
        "1606970629",
    ],
)
def test_date_times_without_offset_or_malformed_are_rejected(value: str) -> None:
    assert (
        rejection(codec.decode_request_envelope, body({"message_ts": value}))
        == "$.header.message_ts"
    )


def test_message_errors_are_reported_below_message() -> None:
    bad = {**MESSAGE, "search_request": [{**ITEM, "timestamp": "yesterday"}]}
    envelope = codec.decode_request_envelope(body(message=bad))
    path = rejection(codec.decode_message, "search", envelope.message)
    assert path == "$.message.search_request[0].timestamp"


def test_a_message_of_the_wrong_json_type_is_reported_at_message() -> None:
    assert rejection(codec.decode_message, "search", b"[]") == "$.message"


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("transaction_id", "x" * 100, "$.message.transaction_id"),
        ("transaction_id", "", "$.message.transaction_id"),
        ("search_request", {}, "$.message.search_request"),
    ],
)
def test_message_limits(field: str, value: Any, path: str) -> None:
    assert (
        rejection(codec.decode_message, "search", json.dumps({**MESSAGE, field: value}).encode())
        == path
    )


def test_ids_of_99_characters_are_accepted() -> None:
    raw = json.dumps({**MESSAGE, "transaction_id": "x" * 99}).encode()
    message = codec.decode_message("search", raw)
    assert isinstance(message, SearchRequest)
    assert len(message.transaction_id) == 99


@pytest.mark.parametrize(
    ("criteria", "path"),
    [
        ({"query_type": "sql"}, "$.message.search_request[0].search_criteria.query_type"),
        (
            {"sort": [{"attribute_name": "x", "sort_order": "up"}]},
            "$.message.search_request[0].search_criteria.sort[0].sort_order",
        ),
        ({"sort": [{"sort_order": "asc"}]}, "$.message.search_request[0].search_criteria.sort[0]"),
        (
            {"pagination": {"page_size": "10"}},
            "$.message.search_request[0].search_criteria.pagination.page_size",
        ),
    ],
)
def test_closed_code_lists_and_types_in_criteria(criteria: dict[str, Any], path: str) -> None:
    item = {**ITEM, "search_criteria": {**ITEM["search_criteria"], **criteria}}
    raw = json.dumps({**MESSAGE, "search_request": [item]}).encode()
    assert rejection(codec.decode_message, "search", raw) == path


def test_pagination_bounds_are_left_to_the_use_case() -> None:
    criteria = {**ITEM["search_criteria"], "pagination": {"page_size": 0, "page_number": -3}}
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "search_criteria": criteria}]})
    message = codec.decode_message("search", raw.encode())
    assert isinstance(message, SearchRequest)
    pagination = message.search_request[0].search_criteria.pagination
    assert pagination is not None
    assert (pagination.page_size, pagination.page_number) == (0, -3)


def test_unknown_action_has_its_own_error() -> None:
    with pytest.raises(codec.UnknownActionError) as info:
        codec.decode_message("search-all", b"{}")
    assert info.value.action == "search-all"


def test_every_action_has_a_message_type() -> None:
    assert set(codec.MESSAGE_TYPES) == set(Action)


# --------------------------------------------------------------------------- encoding


def test_encoding_omits_absent_fields_but_always_writes_version_and_encryption_flag() -> None:
    header = MsgCallbackHeader(
        message_id="m", message_ts=TS, action="on-search", status=RequestStatus.SUCC
    )
    assert codec.encode(header) == (
        b'{"version":"1.0.0","message_id":"m","message_ts":"2025-03-01T10:00:00Z",'
        b'"action":"on-search","status":"succ","is_msg_encrypted":false}'
    )


def test_a_sync_search_answer_encodes_to_the_expected_bytes() -> None:
    header = MsgCallbackHeader(
        message_id="m2",
        message_ts=TS,
        action="on-search",
        status=RequestStatus.SUCC,
        total_count=1,
        completed_count=1,
        sender_id="crvs",
        receiver_id="spp",
    )
    response = SearchResponse(
        transaction_id="t",
        correlation_id="c",
        search_response=[
            SearchResponseItem(
                reference_id="r",
                timestamp=TS,
                status=RequestStatus.SUCC,
                data=SearchResponseData(reg_records=[msgspec.Raw(b'{"@type":"CRVS_Person"}')]),
                pagination=Pagination(page_size=10, page_number=1, total_count=1),
            )
        ],
    )
    out = codec.encode(Envelope(header=header, message=response))
    assert out == (
        b'{"header":{"version":"1.0.0","message_id":"m2","message_ts":"2025-03-01T10:00:00Z",'
        b'"action":"on-search","status":"succ","total_count":1,"completed_count":1,'
        b'"sender_id":"crvs","receiver_id":"spp","is_msg_encrypted":false},'
        b'"message":{"transaction_id":"t","correlation_id":"c","search_response":[{'
        b'"reference_id":"r","timestamp":"2025-03-01T10:00:00Z","status":"succ",'
        b'"data":{"version":"1.0.0","reg_records":[{"@type":"CRVS_Person"}]},'
        b'"pagination":{"page_size":10,"page_number":1,"total_count":1}}]}}'
    )


def test_envelope_without_message_or_signature_writes_only_the_header() -> None:
    header = MsgHeader(message_id="m", message_ts=TS, action="search", sender_id="s", total_count=0)
    assert json.loads(codec.encode(Envelope(header=header))) == {
        "header": json.loads(codec.encode(header))
    }


def test_error_path_of_a_root_error_is_none() -> None:
    assert codec.error_path(msgspec.ValidationError("Expected `object`, got `array`")) is None
    assert codec.error_path(msgspec.ValidationError("bad - at `$.a[0].b`")) == "$.a[0].b"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"message_ts": "now"}, "Expected an RFC 3339 date-time with a time zone offset"),
        ({"total_count": "1"}, "Expected `int`, got `str`"),
    ],
)
def test_error_message_is_readable_and_has_no_path(header: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        codec.decode_request_envelope(body(header))
    assert codec.error_message(info.value) == message


def test_error_message_names_the_locale_pattern() -> None:
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "locale": "english"}]}).encode()
    with pytest.raises(msgspec.ValidationError) as info:
        codec.decode_message("search", raw)
    assert codec.error_message(info.value) == "Expected an ISO 639-3 language code such as `eng`"
