"""Message security over real HTTP: tokens, senders, signatures, replays, JWKS, rotation.

Every bad input of issue 4 is a request here, answered with the DCI error (status, code,
header reason) and nothing else happening. The bridge is the session's seeded one (SQLite
and PostgreSQL); extra senders are registered per test with unique ids.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from dci_bridge.clock import FixedClock, SystemClock, isoformat_z
from dci_bridge.crypto import KeySet, KeyStore, issue_access_token, sign_envelope, verify_envelope
from dci_bridge.crypto.jwk import generate_signing_key
from dci_bridge.registry.senders import SenderRegistry
from tests.dci_assertions import assert_dci_error
from tests.e2e.conftest import Bridge, item
from tests.security_support import RAW, DciTestClient, compact

SEARCH = "/registry/sync/search"
JSON = {"content-type": "application/json"}


def _message(known_brn: str = "NO-SUCH-BRN") -> dict[str, Any]:
    return {
        "transaction_id": "txn-sec",
        "search_request": [item("idtype-value", {"type": "BRN", "value": known_brn})],
    }


def _post(bridge: Bridge, body: bytes, token: str | None) -> httpx.Response:
    headers = dict(JSON)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(bridge.url + SEARCH, content=body, headers=headers, timeout=15)


def _signed(client: DciTestClient, **header: Any) -> tuple[dict[str, Any], bytes]:
    envelope = client.envelope(_message(), **header)
    return envelope, client.sign(envelope)


def _bridge_keys(bridge: Bridge) -> KeyStore:
    return KeyStore(bridge.data_dir / "keys")


def _register(bridge: Bridge, **kwargs: Any) -> DciTestClient:
    sender_id = f"sp-{uuid.uuid4().hex[:10]}.example.org"
    return DciTestClient.register(bridge.database_url, sender_id, **kwargs)


# --- happy path ---------------------------------------------------------------------------


def test_signed_request_gets_a_signed_response_that_verifies_against_the_jwks(bridge: Bridge):
    client = bridge.sender
    _, body = _signed(client)
    response = _post(bridge, body, client.token(bridge.url))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["header"]["receiver_id"] == client.sender_id
    jwks = httpx.get(bridge.url + "/.well-known/jwks.json").json()
    keys = KeySet.from_jwks(jwks)
    raw = json.loads(response.content)
    verified = verify_envelope(
        raw["signature"],
        compact(raw["header"]),
        compact(raw["message"]),
        keys,
        clock=SystemClock(),
    )
    assert verified.scheme == "jws"
    assert verified.key_id == _bridge_keys(bridge).current.kid


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_clients_may_sign_with_es256_and_rs256(bridge: Bridge, alg: str):
    client = _register(bridge, alg=alg)
    _, body = _signed(client)
    assert _post(bridge, body, client.token(bridge.url)).status_code == 200


def test_dci_signature_scheme_both_ways(bridge: Bridge):
    client = _register(bridge, signature_scheme="dci-signature")
    envelope = client.envelope(_message())
    header, message = compact(envelope["header"]), compact(envelope["message"])
    signature = sign_envelope(
        header, message, client.key, "dci-signature", sender_id=client.sender_id
    )
    body = b'{"signature":%s,"header":%s,"message":%s}' % (compact(signature), header, message)
    response = _post(bridge, body, client.token(bridge.url))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["signature"].startswith("namespace=")
    assert f'kidId="{answer["header"]["sender_id"]}|' in answer["signature"]


# --- tokens -------------------------------------------------------------------------------


def test_missing_token(bridge: Bridge):
    _, body = _signed(bridge.sender)
    response = _post(bridge, body, None)
    assert_dci_error(response, 401, "err.request.unauthorized", style="sync")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_not_a_bearer_token(bridge: Bridge):
    _, body = _signed(bridge.sender)
    response = httpx.post(
        bridge.url + SEARCH, content=body, headers={**JSON, "authorization": "Basic eDp5"}
    )
    assert_dci_error(response, 401, "err.request.unauthorized", style="sync")


def _token(bridge: Bridge, client_id: str, **overrides: Any) -> str:
    keys = _bridge_keys(bridge)
    args: dict[str, Any] = {
        "key": keys.current,
        "issuer": "crvs.dci-bridge.local",
        "audience": "crvs.dci-bridge.local",
        "clock": SystemClock(),
        "ttl_s": 600,
    }
    args.update(overrides)
    token, _ = issue_access_token(client_id, ["registry.search"], **args)
    return token


@pytest.mark.parametrize(
    "overrides",
    [
        {"clock": FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))},
        {"audience": "some.other.registry"},
        {"issuer": "someone.else"},
        {"key": generate_signing_key("EdDSA", clock=SystemClock())},
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "foreign-key"],
)
def test_bad_tokens(bridge: Bridge, overrides: dict[str, Any]):
    _, body = _signed(bridge.sender)
    token = _token(bridge, bridge.sender.sender_id, **overrides)
    assert_dci_error(_post(bridge, body, token), 401, "err.request.unauthorized", style="sync")


def test_garbage_and_alg_none_tokens(bridge: Bridge):
    _, body = _signed(bridge.sender)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(
        json.dumps({"sub": bridge.sender.sender_id, "scope": "registry.search"}).encode()
    )
    for token in ["garbage", f"{header}.{claims.rstrip(b'=').decode()}.", "a.b.c"]:
        assert_dci_error(_post(bridge, body, token), 401, "err.request.unauthorized")


def test_missing_scope(bridge: Bridge):
    client = _register(bridge, scopes=("registry.subscribe",))
    _, body = _signed(client)
    response = _post(bridge, body, client.token(bridge.url))
    assert_dci_error(response, 403, "err.request.forbidden", style="sync")


# --- senders ------------------------------------------------------------------------------


def test_sender_id_must_be_the_token_client(bridge: Bridge):
    other = _register(bridge)
    _, body = _signed(bridge.sender)  # signed by spp.example.org, token of another client
    response = _post(bridge, body, other.token(bridge.url))
    assert_dci_error(response, 403, "err.sender_id.invalid", style="sync")


def test_unknown_sender(bridge: Bridge):
    ghost = DciTestClient("ghost.example.org", "x" * 20, bridge.sender.key)
    _, body = _signed(ghost)
    token = _token(bridge, "ghost.example.org")  # a valid token for an unregistered client
    assert_dci_error(_post(bridge, body, token), 403, "err.sender_id.invalid", style="sync")


def test_disabled_sender(bridge: Bridge):
    client = _register(bridge)
    token = client.token(bridge.url)
    registry = SenderRegistry.from_url(bridge.database_url)
    try:
        registry.disable(client.sender_id)
    finally:
        registry.close()
    _, body = _signed(client)
    assert_dci_error(_post(bridge, body, token), 403, "err.sender_id.invalid", style="sync")
    refused = httpx.post(
        bridge.url + "/oauth2/client/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.sender_id,
            "client_secret": client.secret,
        },
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


# --- signatures ---------------------------------------------------------------------------


def test_missing_signature(bridge: Bridge):
    client = bridge.sender
    envelope = client.envelope(_message())
    response = _post(bridge, compact(envelope), client.token(bridge.url))
    assert_dci_error(response, 401, "err.signature.missing", style="sync")
    empty = compact({"signature": "", **envelope})
    assert_dci_error(_post(bridge, empty, client.token(bridge.url)), 401, "err.signature.missing")


@pytest.mark.parametrize(
    ("part", "field", "value"),
    [
        ("header", "total_count", 2),
        ("header", "receiver_id", "crvs.dci-bridge.local"),
        ("message", "transaction_id", "txn-other"),
    ],
)
def test_tampered_header_or_message(bridge: Bridge, part: str, field: str, value: Any):
    client = bridge.sender
    _, body = _signed(client)
    signed = json.loads(body)
    signed[part][field] = value
    response = _post(bridge, compact(signed), client.token(bridge.url))
    assert_dci_error(response, 401, "err.signature.invalid", style="sync")


def test_whitespace_outside_the_signed_parts_does_not_matter(bridge: Bridge):
    client = bridge.sender
    _, body = _signed(client)
    spaced = body.replace(b',"header":', b',\n  "header" : ', 1)
    assert _post(bridge, spaced, client.token(bridge.url)).status_code == 200


def test_signature_by_another_key_and_unknown_kid(bridge: Bridge):
    client = bridge.sender
    stranger = generate_signing_key("EdDSA", clock=SystemClock())
    envelope = client.envelope(_message())
    body = client.sign(envelope, key=stranger)
    response = _post(bridge, body, client.token(bridge.url))
    assert_dci_error(response, 401, "err.signature.invalid", style="sync")


def _jws(header: dict[str, Any], envelope: dict[str, Any], signature: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = compact({"header": envelope["header"], "message": envelope["message"]})
    return f"{b64(compact(header))}.{b64(payload)}.{b64(signature)}"


def test_alg_none_and_algorithm_confusion(bridge: Bridge):
    client = bridge.sender
    kid = client.key.kid
    import hashlib
    import hmac

    for header in (
        {"alg": "none", "kid": kid},
        {"alg": "ES256", "kid": kid},
        {"alg": "RS256", "kid": kid},
        {"alg": "HS256", "kid": kid},
    ):
        envelope = client.envelope(_message())
        x = client.key.public.jwk["x"]
        mac = hmac.new(x.encode(), b"anything", hashlib.sha256).digest()
        signature = b"" if header["alg"] == "none" else mac
        body = compact({**envelope, "signature": _jws(header, envelope, signature)})
        response = _post(bridge, body, client.token(bridge.url))
        assert_dci_error(response, 401, "err.signature.invalid", style="sync")


# --- replay guard -------------------------------------------------------------------------


def test_replayed_message_id(bridge: Bridge):
    client = bridge.sender
    _, body = _signed(client)
    token = client.token(bridge.url)
    assert _post(bridge, body, token).status_code == 200
    response = _post(bridge, body, token)
    assert_dci_error(
        response, 409, "err.request.bad", reason="rjct.message_id.duplicate", style="sync"
    )
    # the same message id from another sender is a different message
    other = _register(bridge)
    header = json.loads(body)["header"]
    _, again = _signed(other, message_id=header["message_id"])
    assert _post(bridge, again, other.token(bridge.url)).status_code == 200


@pytest.mark.parametrize("offset_s", [-301, 301, -86_400, 10 * 365 * 86_400])
def test_message_ts_outside_the_window(bridge: Bridge, offset_s: int):
    client = bridge.sender
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)
    _, body = _signed(client, message_ts=isoformat_z(moment))
    response = _post(bridge, body, client.token(bridge.url))
    error = assert_dci_error(
        response, 400, "err.request.bad", reason="rjct.message_ts.invalid", style="sync"
    )
    assert "$.header.message_ts" in error["errors"][0]["message"]


def test_message_ts_with_an_offset_inside_the_window(bridge: Bridge):
    client = bridge.sender
    local = dt.datetime.now(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    _, body = _signed(client, message_ts=local.isoformat(timespec="seconds"))
    assert _post(bridge, body, client.token(bridge.url)).status_code == 200


# --- sender JWKS by URL -------------------------------------------------------------------


class _JwksServer:
    """A loopback JWKS server whose behaviour a test sets: serve, hang or talk garbage."""

    def __init__(self) -> None:
        self.mode = "serve"
        self.jwks: dict[str, Any] = {"keys": []}
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                if outer.mode == "hang":
                    time.sleep(5)
                    return
                body = b"<html>not json" if outer.mode == "garbage" else compact(outer.jwks)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer()
    yield server
    server.close()


def _register_with_url(bridge: Bridge, url: str) -> DciTestClient:
    client = _register(bridge)
    registry = SenderRegistry.from_url(bridge.database_url)
    try:
        registry.update(client.sender_id, jwks_url=url)
    finally:
        registry.close()
    return client


def test_jwks_url_is_fetched_and_cached(bridge: Bridge, jwks_server: _JwksServer):
    client = _register_with_url(bridge, jwks_server.url)
    jwks_server.jwks = client.jwks
    token = client.token(bridge.url)
    for _ in range(3):
        _, body = _signed(client)
        assert _post(bridge, body, token).status_code == 200
    assert jwks_server.hits == 1


def test_a_new_client_key_is_fetched_once_then_forged_kids_wait_for_the_cool_down(
    bridge: Bridge, jwks_server: _JwksServer
):
    client = _register_with_url(bridge, jwks_server.url)
    jwks_server.jwks = client.jwks
    token = client.token(bridge.url)
    _, body = _signed(client)
    assert _post(bridge, body, token).status_code == 200
    # the client rotates: its JWKS now has the new key; the bridge refetches on the new kid
    client.key = generate_signing_key("EdDSA", clock=SystemClock())
    jwks_server.jwks = client.jwks
    _, body = _signed(client)
    assert _post(bridge, body, token).status_code == 200, "refetched on an unknown kid"
    assert jwks_server.hits == 2
    # a kid nobody published: no third fetch inside the cool-down, just the refusal
    stranger = generate_signing_key("EdDSA", clock=SystemClock())
    body = client.sign(client.envelope(_message()), key=stranger)
    assert_dci_error(_post(bridge, body, token), 401, "err.signature.invalid")
    assert jwks_server.hits == 2


@pytest.mark.parametrize("mode", ["hang", "garbage"])
def test_jwks_url_that_hangs_or_returns_garbage(
    bridge: Bridge, jwks_server: _JwksServer, mode: str
):
    client = _register_with_url(bridge, jwks_server.url)
    jwks_server.mode = mode
    token = client.token(bridge.url)
    started = time.monotonic()
    _, body = _signed(client)
    response = _post(bridge, body, token)
    assert_dci_error(response, 401, "err.signature.invalid", style="sync")
    assert time.monotonic() - started < 4.5  # the fetch timeout (2 s), not the server's hang
    # the failure is remembered for the cool-down: no second fetch, the same answer at once
    _, body = _signed(client)
    started = time.monotonic()
    assert_dci_error(_post(bridge, body, token), 401, "err.signature.invalid")
    assert time.monotonic() - started < 1.0
    assert jwks_server.hits == 1


# --- token endpoint -----------------------------------------------------------------------


def _token_call(bridge: Bridge, **kwargs: Any) -> httpx.Response:
    return httpx.post(bridge.url + "/oauth2/client/token", timeout=10, **kwargs)


def test_token_endpoint_issues_scoped_short_lived_tokens(bridge: Bridge):
    client = bridge.sender
    response = _token_call(
        bridge,
        data={
            "grant_type": "client_credentials",
            "client_id": client.sender_id,
            "client_secret": client.secret,
            "scope": "registry.search",
        },
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["token_type"] == "bearer"
    assert answer["expires_in"] == "900"
    assert answer["scope"] == "registry.search"
    basic = base64.b64encode(f"{client.sender_id}:{client.secret}".encode()).decode()
    via_basic = _token_call(
        bridge,
        data={"grant_type": "client_credentials"},
        headers={"authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200, via_basic.text
    assert via_basic.json()["scope"].split() == [
        "registry.search",
        "registry.subscribe",
        "registry.txn-status",
    ]


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": {"grant_type": "password"}}, 400, "unsupported_grant_type"),
        ({"data": {"client_id": "x"}}, 400, "invalid_request"),
        ({"json": {"grant_type": "client_credentials"}}, 400, "invalid_request"),
        ({"content": b"grant_type=client_credentials&grant_type=x", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}, 400, "invalid_request"),
        ({"data": {"grant_type": "client_credentials"}}, 401, "invalid_client"),
        (
            {"data": {"grant_type": "client_credentials", "client_id": "spp.example.org",
                      "client_secret": "wrong-secret-wrong-secret"}},
            401,
            "invalid_client",
        ),
        (
            {"data": {"grant_type": "client_credentials", "client_id": "nobody",
                      "client_secret": "wrong-secret-wrong-secret"}},
            401,
            "invalid_client",
        ),
        (
            {"data": {"grant_type": "client_credentials"},
             "headers": {"authorization": "Basic !!!"}},
            401,
            "invalid_client",
        ),
    ],
    ids=[
        "grant-type", "no-grant", "json", "repeated", "no-client", "bad-secret",
        "unknown-client", "bad-basic",
    ],
)  # fmt: skip
def test_token_endpoint_errors_are_rfc6749(
    bridge: Bridge, kwargs: dict[str, Any], status: int, error: str
):
    response = _token_call(bridge, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert "errors" not in body  # OAuth errors, not DCI ones
    assert response.headers["cache-control"] == "no-store"


def test_token_endpoint_refuses_a_scope_the_client_lacks(bridge: Bridge):
    client = bridge.sender
    response = _token_call(
        bridge,
        data={
            "grant_type": "client_credentials",
            "client_id": client.sender_id,
            "client_secret": client.secret,
            "scope": "registry.admin",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


# --- JWKS and rotation --------------------------------------------------------------------


def test_jwks_publishes_current_and_next_keys(bridge: Bridge):
    response = httpx.get(bridge.url + "/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    store = _bridge_keys(bridge)
    kids = [key["kid"] for key in keys]
    assert store.current.kid in kids
    assert store.next is not None
    assert store.next.kid in kids
    assert {key["use"] for key in keys} == {"sig", "enc"}
    assert all("d" not in key for key in keys)  # public parts only
    assert all(key["alg"] for key in keys)


def test_rotation_without_downtime(bridge: Bridge):
    client = bridge.sender
    token = client.token(bridge.url)
    _, body = _signed(client)
    before = _post(bridge, body, token)
    assert before.status_code == 200
    store = _bridge_keys(bridge)
    old, upcoming = store.current, store.next
    assert upcoming is not None
    store.rotate()
    time.sleep(1.2)  # servers re-read the key directory every keys_refresh_s (1 s)
    jwks = KeySet.from_jwks(httpx.get(bridge.url + "/.well-known/jwks.json").content)
    assert old.kid in jwks  # retired, still verifies during the overlap
    assert upcoming.kid in jwks
    raw = json.loads(before.content)
    verify_envelope(
        raw["signature"], compact(raw["header"]), compact(raw["message"]), jwks,
        clock=SystemClock(),
    )  # fmt: skip
    # tokens issued with the old key keep working; new responses use the promoted key
    _, body = _signed(client)
    after = _post(bridge, body, token)
    assert after.status_code == 200, after.text
    header = json.loads(base64.urlsafe_b64decode(after.json()["signature"].split(".")[0] + "=="))
    assert header["kid"] == upcoming.kid


def test_unauthenticated_bodies_never_reach_the_search(raw_client: httpx.Client):
    for body in (b"{", b"{}", b'{"header":{},"message":{}}'):
        response = raw_client.post(SEARCH, content=body, headers={**JSON, RAW: "1"})
        assert_dci_error(response, 401, "err.request.unauthorized", style="sync")
