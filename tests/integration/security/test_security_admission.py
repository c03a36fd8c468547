"""`SecurityService` without HTTP: token issuing, admission and sealing as plain async calls."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from dci_bridge.clock import FixedClock, isoformat_z
from dci_bridge.crypto import KeySet, sign_envelope, verify_envelope
from dci_bridge.crypto.jwk import generate_signing_key
from dci_bridge.db.engine import create_sync_engine, migrate
from dci_bridge.errors import (
    DuplicateMessageError,
    EncryptionError,
    SenderError,
    SignatureMissingError,
    UnauthorizedError,
)
from dci_bridge.registry.security import OAuthError, SecurityService
from dci_bridge.registry.senders import SenderRegistry
from dci_bridge.settings import Settings

START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
FORM = "application/x-www-form-urlencoded"


def _body(key, sender_id="sp.example.org", message_id="m-1", **header):
    head = {
        "version": "1.0.0",
        "message_id": message_id,
        "message_ts": isoformat_z(START),
        "action": "search",
        "sender_id": sender_id,
        "total_count": 1,
        **header,
    }
    h, m = json.dumps(head).encode(), b'{"transaction_id":"t","search_request":[]}'
    signature = sign_envelope(h, m, key, "jws")
    return b'{"signature":"%s","header":%s,"message":%s}' % (signature.encode(), h, m)


@pytest.fixture
async def service(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    migrate(url)
    clock = FixedClock(START)
    key = generate_signing_key("EdDSA", clock=clock)
    registry = SenderRegistry.from_url(url, clock=clock)
    _, secret = registry.register("sp.example.org", jwks={"keys": [dict(key.public.jwk)]})
    registry.close()
    engine = create_sync_engine(url)

    def make(**env: str) -> SecurityService:
        settings = Settings.from_env({"DCI_BRIDGE_DATA_DIR": str(tmp_path), **env})
        return SecurityService.create(settings, engine, clock=clock, http=http)

    async with httpx.AsyncClient() as http:
        yield make, key, secret
    engine.dispose()


@pytest.mark.anyio
async def test_token_admit_seal(service):
    make, key, secret = service
    security = make()
    form = f"grant_type=client_credentials&client_id=sp.example.org&client_secret={secret}"
    grant = await security.issue_token(form.encode(), FORM)
    auth = f"Bearer {grant.access_token}"
    admission = await security.admit(auth, _body(key), scope="registry.search")
    assert admission.sender is not None
    assert admission.sender.sender_id == "sp.example.org"
    assert admission.signature is not None
    assert admission.signature.key_id == key.kid
    assert json.loads(admission.message)["transaction_id"] == "t"
    sealed = json.loads(security.seal(admission, {"h": 1}, {"m": 2}))
    keys = KeySet.from_jwks(security.public_jwks_json())
    verify_envelope(sealed["signature"], b'{"h":1}', b'{"m":2}', keys, clock=security.clock)
    with pytest.raises(DuplicateMessageError):
        await security.admit(auth, _body(key), scope="registry.search")
    with pytest.raises(UnauthorizedError):
        await security.admit(None, _body(key, message_id="m-2"), scope="registry.search")
    with pytest.raises(SenderError):
        await security.admit(auth, _body(key, "other.org", "m-3"), scope="registry.search")
    unsigned = json.loads(_body(key, message_id="m-4"))
    del unsigned["signature"]
    with pytest.raises(SignatureMissingError):
        await security.admit(auth, json.dumps(unsigned).encode(), scope="registry.search")
    with pytest.raises(OAuthError) as info:
        await security.issue_token(form.replace(secret, "x" * 20).encode(), FORM)
    assert info.value.status == 401


@pytest.mark.anyio
async def test_disabled_security_passes_plain_messages_and_refuses_encrypted(service):
    make, key, _ = service
    security = make(DCI_BRIDGE_SECURITY__ENABLED="false")
    admission = await security.admit(None, _body(key), scope="registry.search")
    assert admission.sender is None
    assert security.seal(admission, {"h": 1}, {"m": 2}) == b'{"header":{"h":1},"message":{"m":2}}'
    with pytest.raises(EncryptionError):
        await security.admit(None, _body(key, is_msg_encrypted=True), scope="registry.search")
