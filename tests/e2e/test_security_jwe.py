"""Encrypted messages (`is_msg_encrypted`, JWE) over real HTTP: decrypted requests, encrypted
and signed answers, and every malformed JWE refused with `err.encryption.invalid`."""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.clock import SystemClock
from dci_bridge.crypto import KeySet, decrypt_message, encrypt_message, verify_envelope
from dci_bridge.crypto.jwk import generate_decryption_key
from dci_bridge.records.seed import KnownPersons
from dci_bridge.settings import Settings
from tests.dci_assertions import assert_dci_error
from tests.e2e.conftest import Bridge, item, sender_for
from tests.security_support import DciTestClient, compact
from tests.servers import serve_asgi

SEARCH = "/registry/sync/search"


def _bridge_enc_key(base_url: str) -> Any:
    keys = KeySet.from_jwks(httpx.get(base_url + "/.well-known/jwks.json").content)
    key = keys.encryption_key()
    assert key is not None
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _send(
    base_url: str, client: DciTestClient, message: Any, *, encrypted: bool = True, path=SEARCH
) -> httpx.Response:
    envelope = client.envelope({}, is_msg_encrypted=encrypted, total_count=1)
    header, body_message = compact(envelope["header"]), compact(message)
    from dci_bridge.crypto import sign_envelope

    signature = sign_envelope(header, body_message, client.key, "jws")
    body = b'{"signature":%s,"header":%s,"message":%s}' % (
        compact(signature),
        header,
        body_message,
    )
    return httpx.post(
        base_url + path,
        content=body,
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {client.token(base_url)}",
        },
        timeout=15,
    )


def _search(brn: str) -> dict[str, Any]:
    return {
        "transaction_id": "txn-jwe",
        "search_request": [item("idtype-value", {"type": "BRN", "value": brn})],
    }


def test_encrypted_request_gets_an_encrypted_signed_answer(bridge: Bridge, known: KnownPersons):
    client = bridge.sender
    assert client.enc_key is not None
    jwe = encrypt_message(compact(_search(known.child_brn)), _bridge_enc_key(bridge.url))
    response = _send(bridge.url, client, jwe)
    assert response.status_code == 200, response.text
    answer = json.loads(response.content)
    assert answer["header"]["is_msg_encrypted"] is True
    assert set(answer["message"]) == {"header", "encrypted_key", "iv", "ciphertext", "tag"}
    assert answer["message"]["header"]["kid"] == client.enc_key.kid
    assert known.child_brn.encode() not in response.content
    jwks = KeySet.from_jwks(httpx.get(bridge.url + "/.well-known/jwks.json").content)
    verify_envelope(  # the signature covers the encrypted message as sent
        answer["signature"],
        compact(answer["header"]),
        compact(answer["message"]),
        jwks,
        clock=SystemClock(),
    )
    plain = json.loads(decrypt_message(answer["message"], {client.enc_key.kid: client.enc_key}))
    [found] = plain["search_response"]
    assert found["status"] == "succ"
    assert len(found["data"]["reg_records"]) == 1


def _foreign_jwe(message: bytes) -> dict[str, Any]:
    stranger = generate_decryption_key("RSA-OAEP-256", clock=SystemClock())
    return encrypt_message(message, stranger.public)


def _tampered(bridge: Bridge) -> dict[str, Any]:
    jwe = encrypt_message(compact(_search("x")), _bridge_enc_key(bridge.url))
    data = bytearray(base64.urlsafe_b64decode(jwe["ciphertext"] + "=="))
    data[0] ^= 1
    return {**jwe, "ciphertext": _b64(bytes(data))}


def _wrong_wrapping(bridge: Bridge) -> dict[str, Any]:
    """Our kid in the header, the content key wrapped for somebody else."""
    ours = _bridge_enc_key(bridge.url)
    jwe = _foreign_jwe(compact(_search("x")))
    jwe["header"]["kid"] = ours.kid
    return jwe


def _compressed(bridge: Bridge) -> dict[str, Any]:
    """zip: DEF over a deflate bomb (1 MiB of zeros in about 1 KiB)."""
    bomb = zlib.compress(b"0" * 1_048_576, 9)
    jwe = encrypt_message(bomb, _bridge_enc_key(bridge.url))
    jwe["header"]["zip"] = "DEF"
    return jwe


@pytest.mark.parametrize(
    "make",
    [
        lambda bridge: _foreign_jwe(compact(_search("x"))),
        _wrong_wrapping,
        _tampered,
        _compressed,
        lambda bridge: _search("x"),  # is_msg_encrypted with a plain message (DCI-ERR-025)
        lambda bridge: {"header": {"alg": "dir", "enc": "A256GCM", "kid": "k"}, "iv": "!"},
        lambda bridge: "not an object",
        lambda bridge: {
            **encrypt_message(b"{}", _bridge_enc_key(bridge.url)),
            "header": {"alg": "RSA1_5", "enc": "A256GCM", "kid": _bridge_enc_key(bridge.url).kid},
        },
    ],
    ids=[
        "to-another-key",
        "wrapped-for-another-key",
        "tampered-ciphertext",
        "zip-deflate-bomb",
        "plain-message",
        "garbage-members",
        "not-an-object",
        "other-alg",
    ],
)
def test_bad_jwe_is_refused(bridge: Bridge, make: Any):
    response = _send(bridge.url, bridge.sender, make(bridge))
    assert_dci_error(response, 400, "err.encryption.invalid", style="sync")


def test_a_sender_without_an_encryption_key_cannot_ask_for_encryption(bridge: Bridge):
    import uuid

    client = DciTestClient.register(bridge.database_url, f"plain-{uuid.uuid4().hex[:8]}.org")
    jwe = encrypt_message(compact(_search("x")), _bridge_enc_key(bridge.url))
    response = _send(bridge.url, client, jwe)
    error = assert_dci_error(response, 400, "err.encryption.invalid", style="sync")
    assert "encryption key" in error["errors"][0]["message"]


def test_an_encrypted_message_not_flagged_is_a_schema_error(bridge: Bridge):
    jwe = encrypt_message(compact(_search("x")), _bridge_enc_key(bridge.url))
    response = _send(bridge.url, bridge.sender, jwe, encrypted=False)
    assert_dci_error(response, 400, "err.request.bad", style="sync")


@pytest.fixture(scope="module")
def small_bridge(
    seeded_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, DciTestClient]]:
    """A bridge that decrypts at most 2 KiB."""
    data: Path = tmp_path_factory.mktemp("small-jwe")
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
            "DCI_BRIDGE_DATA_DIR": str(data),
            "DCI_BRIDGE_SECURITY__MAX_ENCRYPTED_BYTES": "2048",
        }
    )
    client = sender_for(seeded_sqlite_url)
    with serve_asgi(create_app(settings)) as base:
        yield base, client


def test_oversized_encrypted_message_is_refused_before_decryption(small_bridge):
    base, client = small_bridge
    big = compact({**_search("x"), "padding": _b64(os.urandom(3000))})
    jwe = encrypt_message(big, _bridge_enc_key(base))
    response = _send(base, client, jwe)
    error = assert_dci_error(response, 400, "err.encryption.invalid", style="sync")
    assert "larger than 2048" in error["errors"][0]["message"]
    small = encrypt_message(compact(_search("x")), _bridge_enc_key(base))
    assert _send(base, client, small).status_code == 200
