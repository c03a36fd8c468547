"""Every DCI struct survives encode -> decode unchanged, and what it encodes to is valid
under the exported JSON Schema of its body."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci_bridge.protocol import codec
from dci_bridge.protocol.ack import Ack, HttpErrorResponse
from dci_bridge.protocol.auth import JwkSet, TokenResponse
from dci_bridge.protocol.codes import Action, RequestStatus
from dci_bridge.protocol.encrypted import EncryptedMessage
from dci_bridge.protocol.envelope import Envelope
from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.protocol.jsonschema import export_schemas
from dci_bridge.protocol.search import ExpressionQuery, IdTypeValueQuery, PredicateItem
from tests.property.protocol.protocol_strategies import instances

PROFILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGES = sorted(codec.MESSAGE_TYPES.items())
CALLBACK_HEADER = {Action.ON_SEARCH, Action.NOTIFY, Action.TXN_ON_STATUS}
OTHER_BODIES = [
    (Ack, "ack"),
    (HttpErrorResponse, "http_error"),
    (TokenResponse, "authz.token_response"),
    (JwkSet, "jwks"),
]


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(export_schemas()[name])


def roundtrip(value: Any, kind: Any) -> Any:
    return msgspec.json.decode(codec.encode(value), type=kind)


@pytest.mark.parametrize(("action", "kind"), MESSAGES, ids=[a.value for a, _ in MESSAGES])
@PROFILE
@given(data=st.data())
def test_every_message_round_trips_through_decode_message(
    action: Action, kind: type[Any], data: st.DataObject
) -> None:
    message = data.draw(instances(kind))
    assert codec.decode_message(action, codec.encode(message)) == message


@pytest.mark.parametrize(
    "kind",
    [
        MsgHeader,
        MsgCallbackHeader,
        EncryptedMessage,
        IdTypeValueQuery,
        ExpressionQuery,
        PredicateItem,
    ]
    + [kind for kind, _ in OTHER_BODIES],
    ids=lambda k: k.__name__,
)
@PROFILE
@given(data=st.data())
def test_every_struct_round_trips(kind: type[Any], data: st.DataObject) -> None:
    value = data.draw(instances(kind))
    assert roundtrip(value, kind) == value


@pytest.mark.parametrize(("action", "kind"), MESSAGES, ids=[a.value for a, _ in MESSAGES])
@PROFILE
@given(data=st.data())
def test_envelopes_round_trip_and_match_their_exported_schema(
    action: Action, kind: type[Any], data: st.DataObject
) -> None:
    message = data.draw(instances(kind, standard=True))
    header: MsgHeader | MsgCallbackHeader
    if action in CALLBACK_HEADER:
        header = msgspec.structs.replace(
            data.draw(instances(MsgCallbackHeader, standard=True)),
            action=action.value,
            is_msg_encrypted=False,
        )
    else:
        header = msgspec.structs.replace(
            data.draw(instances(MsgHeader, standard=True)),
            action=action.value,
            is_msg_encrypted=False,
        )
    signature = data.draw(st.none() | st.text(max_size=20))
    body = codec.encode(Envelope(signature=signature, header=header, message=message))

    errors = list(validator(f"{action.value}.request").iter_errors(msgspec.json.decode(body)))
    assert not errors, errors[0]
    if action in CALLBACK_HEADER:
        callback = codec.decode_callback_envelope(body)
        assert callback.header == header
        assert not isinstance(callback.message, msgspec.UnsetType)
        assert codec.decode_message(action, callback.message) == message
    else:
        request = codec.decode_request_envelope(body)
        assert request.header == header
        assert request.signature == signature
        assert codec.decode_message(action, request.message) == message


@pytest.mark.parametrize(("kind", "name"), OTHER_BODIES, ids=[n for _, n in OTHER_BODIES])
@PROFILE
@given(data=st.data())
def test_other_bodies_match_their_exported_schema(
    kind: type[Any], name: str, data: st.DataObject
) -> None:
    value = data.draw(instances(kind, standard=True))
    errors = list(validator(name).iter_errors(msgspec.to_builtins(value)))
    assert not errors, errors[0]


@PROFILE
@given(message=instances(EncryptedMessage), status=st.sampled_from(RequestStatus))
def test_an_encrypted_message_travels_in_the_envelope(
    message: EncryptedMessage, status: RequestStatus
) -> None:
    header = MsgCallbackHeader(
        message_id="m",
        message_ts="2025-01-01T00:00:00Z",
        action="on-search",
        status=status,
        is_msg_encrypted=True,
    )
    body = codec.encode(Envelope(header=header, message=message))
    envelope = codec.decode_callback_envelope(body)
    assert envelope.header.is_msg_encrypted
    assert not isinstance(envelope.message, msgspec.UnsetType)
    assert codec.decode_encrypted(envelope.message) == message
    assert not list(validator("on-search.request").iter_errors(msgspec.json.decode(body)))
