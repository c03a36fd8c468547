"""The structs themselves: defaults, limits, code lists and the companion API bodies."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from dci_bridge.protocol import codec
from dci_bridge.protocol.ack import Ack, AckMessage, ErrorInfo, HttpError, HttpErrorResponse
from dci_bridge.protocol.auth import JwkSet, TokenResponse
from dci_bridge.protocol.codes import AckStatus, ErrorCode, KeyUse, RequestStatus
from dci_bridge.protocol.envelope import Envelope
from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.protocol.notify import NotifyEventData, NotifyEventItem
from dci_bridge.protocol.primitives import wire_locale
from dci_bridge.protocol.search import PaginationRequest, SearchResponseData, SortItem

TS = "2025-03-01T10:00:00Z"


def test_search_response_data_built_from_one_object_holds_a_list() -> None:
    data = SearchResponseData(reg_records={"@type": "CRVS_Person"})
    assert data.reg_records == [{"@type": "CRVS_Person"}]


def test_structs_are_frozen() -> None:
    header = MsgHeader(message_id="m", message_ts=TS, action="search", sender_id="s", total_count=1)
    with pytest.raises(AttributeError):
        header.total_count = 2  # type: ignore[misc]


def test_defaults_the_standard_declares_are_written() -> None:
    assert json.loads(codec.encode(PaginationRequest(page_size=5))) == {
        "page_size": 5,
        "page_number": 1,
    }
    assert json.loads(codec.encode(SortItem(attribute_name="a"))) == {
        "attribute_name": "a",
        "sort_order": "asc",
    }
    header = json.loads(
        codec.encode(
            MsgHeader(message_id="m", message_ts=TS, action="search", sender_id="s", total_count=0)
        )
    )
    assert header["version"] == "1.0.0"
    assert header["is_msg_encrypted"] is False
    assert "sender_uri" not in header


@pytest.mark.parametrize(("length", "ok"), [(999, True), (1000, False)])
def test_status_reason_message_is_at_most_999_characters(length: int, ok: bool) -> None:
    raw = json.dumps(
        {
            "message_id": "m",
            "message_ts": TS,
            "action": "on-search",
            "status": "rjct",
            "status_reason_message": "x" * length,
        }
    ).encode()
    if ok:
        assert (
            msgspec.json.decode(raw, type=MsgCallbackHeader).status_reason_message == "x" * length
        )
    else:
        with pytest.raises(msgspec.ValidationError, match="length <= 999"):
            msgspec.json.decode(raw, type=MsgCallbackHeader)


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "SUCC"), ("status", "done"), ("status_reason_code", "rjct.unknown")],
)
def test_callback_header_code_lists_are_closed(field: str, value: str) -> None:
    raw = {
        "message_id": "m",
        "message_ts": TS,
        "action": "on-search",
        "status": "succ",
        field: value,
    }
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(json.dumps(raw).encode(), type=MsgCallbackHeader)
    assert codec.error_path(info.value) == f"$.{field}"


def test_ack_encodes_as_the_standard_response() -> None:
    ack = Ack(
        message=AckMessage(
            ack_status=AckStatus.ERR,
            timestamp=TS,
            error=ErrorInfo(code=ErrorCode.SIGNATURE_INVALID, message="bad signature"),
            correlation_id="c-1",
        )
    )
    assert codec.encode(ack) == (
        b'{"message":{"ack_status":"ERR","timestamp":"2025-03-01T10:00:00Z",'
        b'"error":{"code":"err.signature.invalid","message":"bad signature"},'
        b'"correlation_id":"c-1"}}'
    )
    assert codec.decode_ack(codec.encode(ack)) == ack


@pytest.mark.parametrize(
    ("message", "path"),
    [
        ({"ack_status": "OK", "timestamp": TS, "correlation_id": "c"}, "$.message.ack_status"),
        (
            {
                "ack_status": "ERR",
                "timestamp": TS,
                "correlation_id": "c",
                "error": {"code": "err.x"},
            },
            "$.message.error.code",
        ),
        (
            {"ack_status": "ACK", "timestamp": TS, "correlation_id": "c" * 100},
            "$.message.correlation_id",
        ),
    ],
)
def test_ack_code_lists_and_limits(message: dict[str, Any], path: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        codec.decode_ack(json.dumps({"message": message}).encode())
    assert codec.error_path(info.value) == path


def test_http_error_response() -> None:
    body = HttpErrorResponse(
        errors=[HttpError(code="err.request.unauthorized", message="no token")]
    )
    assert (
        codec.encode(body)
        == b'{"errors":[{"code":"err.request.unauthorized","message":"no token"}]}'
    )
    assert codec.decode_http_error(codec.encode(body)) == body


@pytest.mark.parametrize("expires_in", ["36000", 36000])
def test_token_response_expires_in_as_string_or_number(expires_in: str | int) -> None:
    raw = json.dumps({"access_token": "a", "token_type": "bearer", "expires_in": expires_in})
    assert msgspec.json.decode(raw.encode(), type=TokenResponse).expires_in == expires_in


def test_jwks_keys_need_a_known_use_and_keep_rsa_parameters() -> None:
    raw = {
        "keys": [
            {
                "kty": "RSA",
                "kid": "k",
                "use": "sig",
                "alg": "RS256",
                "n": "n",
                "e": "AQAB",
                "x5c": [],
            }
        ]
    }
    jwks = msgspec.json.decode(json.dumps(raw).encode(), type=JwkSet)
    assert jwks.keys[0].use is KeyUse.SIG
    assert jwks.keys[0].e == "AQAB"
    raw["keys"][0]["use"] = "wrap"
    with pytest.raises(msgspec.ValidationError, match=r"\$\.keys\[0\]\.use"):
        msgspec.json.decode(json.dumps(raw).encode(), type=JwkSet)


def test_notify_subscription_code_is_written_only_when_set() -> None:
    data = NotifyEventData(reg_record_type="Person", reg_records=[])
    item = NotifyEventItem(reference_id="r", timestamp=TS, data=data)
    assert "subscription_code" not in json.loads(codec.encode(item))
    linked = NotifyEventItem(reference_id="r", timestamp=TS, data=data, subscription_code="s-1")
    assert json.loads(codec.encode(linked))["subscription_code"] == "s-1"


def test_envelope_carries_an_already_encoded_message_unchanged() -> None:
    header = MsgCallbackHeader(
        message_id="m", message_ts=TS, action="notify", status=RequestStatus.SUCC
    )
    raw = msgspec.Raw(b'{"transaction_id":"t","notify_event":[]}')
    out = codec.encode(Envelope(signature="sig", header=header, message=raw))
    assert out.endswith(b',"message":{"transaction_id":"t","notify_event":[]}}')
    assert out.startswith(b'{"signature":"sig","header":{')


@pytest.mark.parametrize(
    ("value", "wire"), [("eng", "eng"), ("en", None), (None, None), ("fra", "fra")]
)
def test_wire_locale_echoes_only_standard_locales(value: str | None, wire: str | None) -> None:
    assert wire_locale(value) == wire
