"""The bridge's own signing key: ES256 or RS256 instead of Ed25519, or a key given in the
environment instead of the key directory."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.clock import SystemClock
from dci_bridge.crypto import KeySet, verify_envelope
from dci_bridge.crypto.jwk import generate_signing_key
from dci_bridge.settings import Settings
from tests.e2e.conftest import item, sender_for
from tests.security_support import compact
from tests.servers import serve_asgi


def _answer(base: str, database_url: str) -> dict:
    client = sender_for(database_url)
    body = client.sign(
        client.envelope(
            {
                "transaction_id": "t",
                "search_request": [item("idtype-value", {"type": "BRN", "value": "x"})],
            }
        )
    )
    response = httpx.post(
        base + "/registry/sync/search",
        content=body,
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {client.token(base)}",
        },
    )
    assert response.status_code == 200, response.text
    answer = json.loads(response.content)
    keys = KeySet.from_jwks(httpx.get(base + "/.well-known/jwks.json").content)
    verify_envelope(
        answer["signature"],
        compact(answer["header"]),
        compact(answer["message"]),
        keys,
        clock=SystemClock(),
    )
    return answer


def _jws_header(signature: str) -> dict:
    segment = signature.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_the_configured_algorithm_signs_answers_and_tokens(seeded_sqlite_url, tmp_path, alg):
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
            "DCI_BRIDGE_DATA_DIR": str(tmp_path),
            "DCI_BRIDGE_SECURITY__ALGORITHM": alg,
        }
    )
    with serve_asgi(create_app(settings)) as base:
        answer = _answer(base, seeded_sqlite_url)
        assert _jws_header(answer["signature"])["alg"] == alg
        token = sender_for(seeded_sqlite_url).token(base)
        assert _jws_header(token)["alg"] == alg


def test_a_signing_key_from_the_environment(seeded_sqlite_url, tmp_path):
    key = generate_signing_key("EdDSA", clock=SystemClock())
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
            "DCI_BRIDGE_DATA_DIR": str(tmp_path),
            "DCI_BRIDGE_SECURITY__SIGNING_KEY": json.dumps(key.private_jwk()),
        }
    )
    with serve_asgi(create_app(settings)) as base:
        answer = _answer(base, seeded_sqlite_url)
        assert _jws_header(answer["signature"])["kid"] == key.kid
        jwks = httpx.get(base + "/.well-known/jwks.json").json()
        assert [k["kid"] for k in jwks["keys"] if k["use"] == "sig"] == [key.kid]
    assert not (tmp_path / "keys" / "signing-current.json").exists()
