"""JwksCache against a real HTTP server on loopback: caching, refetch on unknown kid with a
cool-down, and servers that hang, trickle, redirect or answer garbage."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import pytest

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.envelope import sign_envelope, signature_key_id, verify_envelope
from dci_bridge.crypto.jwk import SigningKey, UnknownKeyError
from dci_bridge.crypto.jwks import JwksCache, JwksError
from tests.unit.crypto.crypto_support import HEADER, MESSAGE, SENDER_ID

pytestmark = pytest.mark.anyio


@dataclass
class ServerState:
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    hits: Counter[str] = field(default_factory=Counter)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    server: JwksServer

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?")[0]
        state.hits[path] += 1
        if path == "/jwks":
            self._send(200, json.dumps(state.jwks).encode())
        elif path == "/hang":
            state.release.wait(10)
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "10000")
            self.end_headers()
            while not state.release.wait(0.05):
                self.wfile.write(b" ")
                self.wfile.flush()
        elif path == "/garbage":
            self._send(200, b"<html>this is not json</html>")
        elif path == "/not-jwks":
            self._send(200, b'{"keys": "nope"}')
        elif path == "/big":
            self._send(200, b'{"keys": [' + b" " * 100_000 + b"]}")
        elif path == "/big-unannounced":
            self.send_response(200)
            self.end_headers()  # no Content-Length: read until close
            self.wfile.write(b'{"keys": [' + b" " * 100_000 + b"]}")
        elif path == "/gzip":
            self._send(200, gzip.compress(json.dumps(state.jwks).encode()), gzip=True)
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/jwks")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(500, b"oops")

    def _send(self, status: int, body: bytes, *, gzip: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class JwksServer(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


@pytest.fixture(scope="module")
def server() -> Iterator[JwksServer]:
    httpd = JwksServer(("127.0.0.1", 0), Handler)
    httpd.state = ServerState()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def state(server: JwksServer, ed_key: SigningKey) -> ServerState:
    server.state.hits.clear()
    server.state.jwks = {"keys": [dict(ed_key.public.jwk)]}
    return server.state


@pytest.fixture
def base_url(server: JwksServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def make_cache(client: httpx.AsyncClient, clock: FixedClock, **kwargs: Any) -> JwksCache:
    """A cache for the tests. The timeout tests set their own short `timeout_s`; the others
    get 5 s: at 0.5 s a loopback fetch from the in-process server timed out once in CI on
    the shared 2-core machine."""
    options: dict[str, Any] = {"ttl_s": 300, "timeout_s": 5.0, "refetch_cooldown_s": 30, **kwargs}
    return JwksCache(client, clock=clock, **options)


async def test_fetched_keys_are_cached_for_the_ttl(
    client: httpx.AsyncClient,
    clock: FixedClock,
    state: ServerState,
    base_url: str,
    ed_key: SigningKey,
) -> None:
    cache = make_cache(client, clock)
    keys = await cache.keys(SENDER_ID, url=f"{base_url}/jwks")
    assert keys.signing_key(ed_key.kid).kid == ed_key.kid
    assert keys.sender_id == SENDER_ID
    assert await cache.keys(SENDER_ID, url=f"{base_url}/jwks") is keys
    assert state.hits["/jwks"] == 1
    clock.advance(300)
    await cache.keys(SENDER_ID, url=f"{base_url}/jwks")
    assert state.hits["/jwks"] == 2


async def test_unknown_kid_refetches_once_then_cools_down(
    client: httpx.AsyncClient,
    clock: FixedClock,
    state: ServerState,
    base_url: str,
    ed_key: SigningKey,
    other_keys_by_alg: dict[str, SigningKey],
) -> None:
    cache = make_cache(client, clock)
    url = f"{base_url}/jwks"
    await cache.keys(SENDER_ID, url=url)
    rotated = other_keys_by_alg["EdDSA"]
    signature = sign_envelope(HEADER, MESSAGE, rotated)

    # the sender rotated: its new kid is not cached yet, so one refetch finds it
    state.jwks = {"keys": [dict(ed_key.public.jwk), dict(rotated.public.jwk)]}
    keys = await cache.keys(SENDER_ID, url=url, kid=signature_key_id(signature))
    assert verify_envelope(signature, HEADER, MESSAGE, keys, clock=clock).key_id == rotated.kid
    assert state.hits["/jwks"] == 2

    # forged kids do not cause a fetch each: at most one per cool-down
    for n in range(20):
        keys = await cache.keys(SENDER_ID, url=url, kid=f"forged-{n}")
        with pytest.raises(UnknownKeyError):
            keys.signing_key(f"forged-{n}")
    assert state.hits["/jwks"] == 2
    clock.advance(30)
    for n in range(20):
        await cache.keys(SENDER_ID, url=url, kid=f"forged-again-{n}")
    assert state.hits["/jwks"] == 3


async def test_concurrent_requests_share_one_fetch(
    client: httpx.AsyncClient, clock: FixedClock, state: ServerState, base_url: str
) -> None:
    cache = make_cache(client, clock)
    results: list[Any] = []

    async def one() -> None:
        results.append(await cache.keys(SENDER_ID, url=f"{base_url}/jwks"))

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(one)
    assert len(results) == 10
    assert len({id(keys) for keys in results}) == 1
    assert state.hits["/jwks"] == 1


async def test_a_hanging_server_costs_one_timeout_then_fails_fast(
    client: httpx.AsyncClient, clock: FixedClock, state: ServerState, base_url: str
) -> None:
    cache = make_cache(client, clock, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(JwksError, match=r"did not answer within 0\.3 s") as caught:
        await cache.keys(SENDER_ID, url=f"{base_url}/hang")
    assert time.monotonic() - started < 2
    assert caught.value.code == "err.signature.invalid"

    started = time.monotonic()
    with pytest.raises(JwksError, match="did not answer"):
        await cache.keys(SENDER_ID, url=f"{base_url}/hang")  # remembered: no second wait
    assert time.monotonic() - started < 0.1
    assert state.hits["/hang"] == 1


async def test_a_trickling_server_is_cut_off_by_the_total_timeout(
    client: httpx.AsyncClient, clock: FixedClock, state: ServerState, base_url: str
) -> None:
    cache = make_cache(client, clock, timeout_s=0.4)
    started = time.monotonic()
    with pytest.raises(JwksError, match="did not answer"):
        await cache.keys(SENDER_ID, url=f"{base_url}/trickle")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/garbage", "did not return a JSON Web Key Set: JWKS is not valid JSON"),
        ("/not-jwks", "did not return a JSON Web Key Set"),
        ("/big", "larger than 65536 bytes"),
        ("/big-unannounced", "larger than 65536 bytes"),
        ("/gzip", "compressed"),
        ("/redirect", "HTTP 302"),
        ("/missing", "HTTP 500"),
    ],
)
async def test_bad_answers_are_clear_errors(
    client: httpx.AsyncClient,
    clock: FixedClock,
    state: ServerState,
    base_url: str,
    path: str,
    reason: str,
) -> None:
    cache = make_cache(client, clock)
    with pytest.raises(JwksError) as caught:
        await cache.keys(SENDER_ID, url=f"{base_url}{path}")
    assert reason in caught.value.message


async def test_unreachable_server_is_a_clear_error(
    client: httpx.AsyncClient, clock: FixedClock
) -> None:
    cache = make_cache(client, clock)
    with pytest.raises(JwksError, match="could not be fetched"):
        await cache.keys(SENDER_ID, url="http://127.0.0.1:9/jwks")  # discard port: refused


async def test_stale_keys_serve_while_the_server_is_down(
    client: httpx.AsyncClient,
    clock: FixedClock,
    state: ServerState,
    base_url: str,
    ed_key: SigningKey,
) -> None:
    cache = make_cache(client, clock, max_stale_s=3600)
    url = f"{base_url}/jwks"
    keys = await cache.keys(SENDER_ID, url=url)
    clock.advance(301)
    state.jwks = {"keys": "broken"}  # type: ignore[dict-item]
    assert await cache.keys(SENDER_ID, url=url) is keys
    clock.advance(3600)
    with pytest.raises(JwksError, match="JSON Web Key Set"):
        await cache.keys(SENDER_ID, url=url)
    state.jwks = {"keys": [dict(ed_key.public.jwk)]}
    clock.advance(30)
    assert ed_key.kid in await cache.keys(SENDER_ID, url=url)


async def test_inline_jwks_is_parsed_once_and_follows_changes(
    client: httpx.AsyncClient,
    clock: FixedClock,
    ed_key: SigningKey,
    other_keys_by_alg: dict[str, SigningKey],
) -> None:
    cache = make_cache(client, clock)
    inline = {"keys": [dict(ed_key.public.jwk)]}
    first = await cache.keys(SENDER_ID, inline=inline)
    assert await cache.keys(SENDER_ID, inline=dict(inline)) is first
    assert ed_key.kid in await cache.keys(SENDER_ID, inline=json.dumps(inline))
    other = other_keys_by_alg["EdDSA"]
    changed = await cache.keys(SENDER_ID, inline={"keys": [dict(other.public.jwk)]})
    assert other.kid in changed
    assert ed_key.kid not in changed
    with pytest.raises(JwksError, match="registered JWKS is not usable"):
        await cache.keys(SENDER_ID, inline=b"{nope")


async def test_a_sender_without_keys_is_an_error(
    client: httpx.AsyncClient, clock: FixedClock
) -> None:
    with pytest.raises(JwksError, match="no registered keys"):
        await make_cache(client, clock).keys(SENDER_ID)


async def test_changing_the_url_or_invalidating_refetches(
    client: httpx.AsyncClient, clock: FixedClock, state: ServerState, base_url: str
) -> None:
    cache = make_cache(client, clock)
    await cache.keys(SENDER_ID, url=f"{base_url}/jwks")
    await cache.keys(SENDER_ID, url=f"{base_url}/jwks?v=2")
    cache.invalidate(SENDER_ID)
    await cache.keys(SENDER_ID, url=f"{base_url}/jwks")
    assert state.hits["/jwks"] == 3
