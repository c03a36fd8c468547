"""A registered DCI client for tests: keys, client secret, tokens, signed requests.

`DciTestClient.register(database_url)` registers a sender (its own Ed25519 key by default,
optionally an RSA encryption key) in the bridge's database; `authenticated(base_url)` is an
`httpx.Client` whose transport adds the bearer token and signs every envelope posted to
`/registry/...` that has no signature yet, exactly as a real client would (JWS over the
JSON of header and message). A request with the header `x-test-raw: 1` is sent as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from dci_bridge.clock import SystemClock, isoformat_z
from dci_bridge.crypto import SigningKey, sign_envelope
from dci_bridge.crypto.jwk import DecryptionKey, generate_decryption_key, generate_signing_key
from dci_bridge.registry.policy import UNRESTRICTED, DisclosurePolicy
from dci_bridge.registry.policy_store import PolicyStore
from dci_bridge.registry.senders import SenderRegistry

SENDER_ID = "spp.example.org"
RAW = "x-test-raw"


def now_ts() -> str:
    return isoformat_z(dt.datetime.now(dt.UTC))


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class DciTestClient:
    sender_id: str
    secret: str
    key: SigningKey
    enc_key: DecryptionKey | None = None
    scheme: str = "jws"
    _tokens: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    @classmethod
    def register(
        cls,
        database_url: str,
        sender_id: str = SENDER_ID,
        *,
        alg: str = "EdDSA",
        encryption: bool = False,
        scopes: tuple[str, ...] = ("registry.search", "registry.subscribe", "registry.txn-status"),
        callback_prefixes: tuple[str, ...] = (),
        signature_scheme: str = "jws",
        policy: DisclosurePolicy | None = UNRESTRICTED,
    ) -> DciTestClient:
        """Generate keys and register the sender directly in the bridge's database, with a
        disclosure policy (default: everything; None: none, so its searches are refused)."""
        clock = SystemClock()
        key = generate_signing_key(alg, clock=clock)
        enc_key = generate_decryption_key("RSA-OAEP-256", clock=clock) if encryption else None
        jwks = {"keys": [dict(key.public.jwk)]}
        if enc_key is not None:
            jwks["keys"].append(dict(enc_key.public.jwk))
        registry = SenderRegistry.from_url(database_url)
        try:
            _, secret = registry.register(
                sender_id,
                jwks=jwks,
                scopes=scopes,
                callback_prefixes=callback_prefixes,
                signature_scheme=signature_scheme,
            )
        finally:
            registry.close()
        if policy is not None:
            policies = PolicyStore.from_url(database_url)
            try:
                policies.set(sender_id, policy)
            finally:
                policies.close()
        return cls(sender_id, secret, key, enc_key, signature_scheme)

    @property
    def jwks(self) -> dict[str, Any]:
        keys = [dict(self.key.public.jwk)]
        if self.enc_key is not None:
            keys.append(dict(self.enc_key.public.jwk))
        return {"keys": keys}

    def token(self, base_url: str, scope: str | None = None) -> str:
        cached = self._tokens.get((base_url, scope or ""))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        form = {
            "grant_type": "client_credentials",
            "client_id": self.sender_id,
            "client_secret": self.secret,
        }
        if scope:
            form["scope"] = scope
        response = httpx.post(f"{base_url}/oauth2/client/token", data=form, timeout=10)
        assert response.status_code == 200, response.text
        answer = response.json()
        self._tokens[(base_url, scope or "")] = (answer["access_token"], time.monotonic() + 60)
        return str(answer["access_token"])

    def sign(self, body: dict[str, Any], *, key: SigningKey | None = None) -> bytes:
        """The body with a signature over its header and message (JWS, attached)."""
        header, message = compact(body["header"]), compact(body["message"])
        signature = sign_envelope(header, message, key or self.key, "jws")
        return (
            b'{"signature":'
            + compact(signature)
            + b',"header":'
            + header
            + b',"message":'
            + message
            + b"}"
        )

    def envelope(self, message: dict[str, Any], **header: Any) -> dict[str, Any]:
        head = {
            "version": "1.0.0",
            "message_id": str(uuid.uuid4()),
            "message_ts": now_ts(),
            "action": "search",
            "sender_id": self.sender_id,
            "total_count": len(message.get("search_request", [])) or 1,
        }
        head.update(header)
        return {"header": head, "message": message}

    def authenticated(self, base_url: str, **kwargs: Any) -> httpx.Client:
        transport = _SigningTransport(self, base_url)
        return httpx.Client(base_url=base_url, transport=transport, **kwargs)


class _SigningTransport(httpx.BaseTransport):
    def __init__(self, client: DciTestClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get(RAW) or not request.url.path.startswith("/registry/"):
            request.headers.pop(RAW, None)
            return self.inner.handle_request(request)
        headers = dict(request.headers)
        headers.setdefault("authorization", "Bearer " + self.client.token(self.base_url))
        content = request.read()
        try:
            body = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            body = None
        if (
            isinstance(body, dict)
            and isinstance(body.get("header"), dict)
            and "message" in body
            and "signature" not in body
        ):
            content = self.client.sign(body)
        headers.pop("content-length", None)
        signed = httpx.Request(request.method, request.url, headers=headers, content=content)
        return self.inner.handle_request(signed)

    def close(self) -> None:
        self.inner.close()
