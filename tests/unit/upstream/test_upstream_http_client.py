"""The OpenCRVS HTTP client (`upstream.opencrvs.http`) against real loopback servers whose
answers each test scripts byte by byte: what goes on the wire, keep-alive and its limits,
every way an answer can be framed, and every way an exchange can fail."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dci_bridge.upstream.opencrvs import http as http_module
from dci_bridge.upstream.opencrvs.http import (
    Headers,
    TransportError,
    TransportTimeout,
    UpstreamHttp,
)

pytestmark = pytest.mark.anyio

Answer = Callable[[bytes, bytes], Awaitable[bytes | None]]
"""(request head, request body) -> the bytes to send back, or None to close without any."""


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


Raw = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
"""A connection handler of its own, for exchanges `Answer` cannot script."""


class Server:
    """A loopback HTTP/1.1 server answering each request with what `answer` returns (or
    handing each connection to `raw`)."""

    def __init__(self, answer: Answer | None = None, raw: Raw | None = None) -> None:
        self.answer = answer
        self.raw = raw
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.none_open = asyncio.Event()
        self.url = ""
        self._listener: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> str:
        self._listener = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        port = self._listener.sockets[0].getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        assert self._listener is not None
        self._listener.close()
        await self._listener.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.raw is not None:
            try:
                await self.raw(self, reader, writer)
            finally:
                writer.close()
            return
        assert self.answer is not None
        self.open_now += 1
        self.none_open.clear()
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append((head, body))
                out = await self.answer(head, body)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.open_now -= 1
            if not self.open_now:
                self.none_open.set()
            writer.close()

    async def wait_all_closed(self, within_s: float = 2.0) -> None:
        """Until the client has closed every connection (the server reads its EOF)."""
        await asyncio.wait_for(self.none_open.wait(), within_s)


def answering(*answers: bytes | None) -> Answer:
    """An `Answer` giving `answers` in turn (the last one again after that)."""
    queue = list(answers)

    async def answer(head: bytes, body: bytes) -> bytes | None:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(
        answer: Answer | None = None,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        raw: Raw | None = None,
    ):
        server = Server(answer, raw)
        await server.start(tls, host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[UpstreamHttp]:
    http = UpstreamHttp(max_connections=4, timeout_s=5)
    yield http
    await http.aclose()


# --- what goes on the wire ------------------------------------------------------------------


async def test_a_post_carries_host_length_headers_and_the_exact_body(serve, client):
    server = await serve(answering(ok()))
    headers = UpstreamHttp.headers(
        {"Authorization": "Bearer t0k", "Content-Type": "application/json"}
    )
    status, body = await client.request(
        "POST", f"{server.url}/graphql", body=b'{"q":1}', headers=headers
    )
    assert (status, body) == (200, b'{"ok":true}')
    head, sent = server.requests[0]
    port = server.url.rsplit(":", 1)[1]
    assert head == (
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
        b"Authorization: Bearer t0k\r\nContent-Type: application/json\r\n"
        b"Content-Length: 7\r\n\r\n" % port.encode()
    )
    assert sent == b'{"q":1}'


async def test_a_get_with_params_has_an_encoded_query_and_no_body(serve, client):
    server = await serve(answering(ok()))
    await client.request("GET", f"{server.url}/token?x=1", params={"a": "b c", "é": "&="})
    head, sent = server.requests[0]
    assert head.startswith(b"GET /token?x=1&a=b+c&%C3%A9=%26%3D HTTP/1.1\r\n")
    assert b"content-length" not in head.lower()
    assert sent == b""


async def test_a_path_is_percent_encoded_where_a_request_line_needs_it(serve, client):
    server = await serve(answering(ok()))
    await client.request("GET", f"{server.url}/a b/é%20c?q=x y")
    head, _ = server.requests[0]
    assert head.startswith(b"GET /a%20b/%C3%A9%20c?q=x%20y HTTP/1.1\r\n")


async def test_a_plain_mapping_of_headers_is_sent_too(serve, client):
    server = await serve(answering(ok()))
    await client.request("POST", f"{server.url}/x", body=b"", headers={"X-Trace": "1"})
    head, _ = server.requests[0]
    assert b"\r\nX-Trace: 1\r\n" in head
    assert b"\r\nContent-Length: 0\r\n" in head


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "one\r\nInjected: yes"},
        {"X-A": "one\ntwo"},
        {"X-A": "nul\0"},
        {"Bad Name": "x"},
        {"": "x"},
        {"Host": "elsewhere"},
        {"content-length": "5"},
        {"Transfer-Encoding": "chunked"},
    ],
)
def test_headers_that_would_change_the_framing_are_refused(headers):
    with pytest.raises(ValueError, match="header"):
        Headers(headers)


async def test_methods_without_a_body_in_their_answer_are_refused(client):
    with pytest.raises(ValueError, match="unsupported method"):
        await client.request("HEAD", "http://127.0.0.1:9/x")


async def test_a_url_that_is_not_http_is_a_transport_error(client):
    with pytest.raises(TransportError):
        await client.request("GET", "ftp://127.0.0.1/x")


# --- keep-alive and its limits ----------------------------------------------------------------


async def test_sequential_requests_share_one_connection(serve, client):
    server = await serve(answering(ok()))
    for _ in range(5):
        assert await client.request("POST", f"{server.url}/graphql", body=b"{}") == (
            200,
            b'{"ok":true}',
        )
    assert server.connections == 1


async def test_an_answer_saying_connection_close_is_not_reused(serve, client):
    server = await serve(answering(ok(extra=b"Connection: close\r\n"), ok()))
    await client.request("POST", f"{server.url}/a", body=b"{}")
    await client.request("POST", f"{server.url}/a", body=b"{}")
    assert server.connections == 2


async def test_no_more_connections_than_the_limit(serve):
    async def slow(head: bytes, body: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return ok(body)

    server = await serve(slow)
    http = UpstreamHttp(max_connections=2, timeout_s=5)
    try:
        bodies = [b"%d" % n for n in range(10)]
        answers = await asyncio.gather(
            *(http.request("POST", f"{server.url}/x", body=body) for body in bodies)
        )
    finally:
        await http.aclose()
    assert [answer for _, answer in answers] == bodies
    assert server.most_open == 2
    assert server.connections == 2


async def test_waiting_for_a_free_connection_counts_against_the_timeout(serve):
    release = asyncio.Event()

    async def held(head: bytes, body: bytes) -> bytes:
        if body == b"hold":
            await release.wait()
        return ok(body)

    server = await serve(held)
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    try:
        holding = asyncio.create_task(http.request("POST", f"{server.url}/x", body=b"hold"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(TransportTimeout, match="no connection free"):
            await http.request("POST", f"{server.url}/x", body=b"late", timeout_s=0.2)
        assert time.monotonic() - started < 1.5
        release.set()
        assert await holding == (200, b"hold")
        assert await http.request("POST", f"{server.url}/x", body=b"next") == (200, b"next")
    finally:
        await http.aclose()
    assert server.connections == 1


async def test_a_cancelled_request_closes_its_connection_and_frees_its_slot(serve):
    async def hang_first(head: bytes, body: bytes) -> bytes:
        if body == b"hang":
            await asyncio.sleep(30)
        return ok(body)

    server = await serve(hang_first)
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    try:
        hanging = asyncio.create_task(http.request("POST", f"{server.url}/x", body=b"hang"))
        await asyncio.sleep(0.05)
        hanging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging
        assert await http.request("POST", f"{server.url}/x", body=b"after") == (200, b"after")
    finally:
        await http.aclose()
    assert server.connections == 2  # the cancelled exchange's connection was not reused


# --- how an answer can be framed --------------------------------------------------------------


async def test_a_chunked_answer_is_joined(serve, client):
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\n\r\n"
    )
    server = await serve(answering(chunked, ok()))
    assert await client.request("GET", f"{server.url}/x") == (200, b"hello, world")
    assert await client.request("GET", f"{server.url}/x") == (200, b'{"ok":true}')
    assert server.connections == 1


async def test_an_answer_ended_by_the_close_of_the_connection(serve, client):
    async def close_delimited(server: Server, reader, writer) -> None:  # type: ignore[no-untyped-def]
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()

    server = await serve(raw=close_delimited)
    assert await client.request("GET", f"{server.url}/x") == (200, b"until the end")
    assert await client.request("GET", f"{server.url}/x") == (200, b"until the end")
    assert server.connections == 2


async def test_a_204_has_no_body_and_keeps_the_connection(serve, client):
    server = await serve(answering(b"HTTP/1.1 204 No Content\r\n\r\n", ok()))
    assert await client.request("POST", f"{server.url}/x", body=b"{}") == (204, b"")
    assert await client.request("POST", f"{server.url}/x", body=b"{}") == (200, b'{"ok":true}')
    assert server.connections == 1


async def test_an_interim_100_continue_is_skipped(serve, client):
    server = await serve(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"real")))
    assert await client.request("POST", f"{server.url}/x", body=b"{}") == (200, b"real")


async def test_error_statuses_are_answers_not_transport_errors(serve, client):
    server = await serve(
        answering(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown")
    )
    assert await client.request("GET", f"{server.url}/x") == (503, b"down")


# --- how an exchange can fail -----------------------------------------------------------------


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_closed(serve):
    closed_by_client = asyncio.Event()

    async def silent(server: Server, reader, writer) -> None:  # type: ignore[no-untyped-def]
        """Reads the request, never answers, and notes when the client hangs up."""
        server.requests.append((await reader.readuntil(b"\r\n\r\n"), b""))
        if await reader.read() == b"":
            closed_by_client.set()

    server = await serve(raw=silent)
    http = UpstreamHttp(max_connections=1, timeout_s=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(TransportTimeout, match=r"no answer within 0\.2 s"):
            await http.request("GET", f"{server.url}/x", idempotent=True)
        assert time.monotonic() - started < 1.5
        await asyncio.wait_for(closed_by_client.wait(), 2)
    finally:
        await http.aclose()
    assert len(server.requests) == 1  # a timeout is never sent again


@pytest.mark.parametrize(
    "truncated",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"HTTP/1.1 100 Continue\r\n\r\n",
    ],
)
async def test_an_answer_cut_short_is_an_error_never_a_shorter_body(serve, truncated):
    """The connection closes part-way through an answer whose length is known (or whose
    head is incomplete): the request failed; it is not sent again, even when idempotent,
    because the server had begun to answer it."""

    async def cutting(server: Server, reader, writer) -> None:  # type: ignore[no-untyped-def]
        server.requests.append((await reader.readuntil(b"\r\n\r\n"), b""))
        writer.write(truncated)
        await writer.drain()

    server = await serve(raw=cutting)
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    try:
        with pytest.raises(TransportError, match="closed before the answer"):
            await http.request("GET", f"{server.url}/x", idempotent=True)
    finally:
        await http.aclose()
    assert len(server.requests) == 1


async def test_a_refused_connection_is_a_transport_error(client, serve):
    server = await serve(answering(ok()))
    url = server.url
    await server.stop()
    with pytest.raises(TransportError) as caught:
        await client.request("GET", f"{url}/x", idempotent=True)
    assert not isinstance(caught.value, TransportTimeout)
    await server.start()  # the fixture stops it again


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTX/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_a_malformed_answer_is_a_transport_error_and_the_connection_is_dropped(
    serve, client, garbage
):
    server = await serve(answering(garbage, ok()))
    with pytest.raises(TransportError, match="malformed HTTP answer"):
        await client.request("GET", f"{server.url}/x")
    assert await client.request("GET", f"{server.url}/x") == (200, b'{"ok":true}')
    assert server.connections == 2


async def test_an_answer_over_the_size_limit_is_refused(serve, client, monkeypatch):
    monkeypatch.setattr(http_module, "MAX_ANSWER_BYTES", 100)
    declared = b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n" + b"x" * 101
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"y" * 64
    chunked += b"\r\n40\r\n" + b"z" * 64 + b"\r\n0\r\n\r\n"
    server = await serve(answering(declared, chunked, ok(b"x" * 100)))
    with pytest.raises(TransportError, match="larger than 100 bytes"):
        await client.request("GET", f"{server.url}/x")
    with pytest.raises(TransportError, match="larger than 100 bytes"):
        await client.request("GET", f"{server.url}/x")
    assert await client.request("GET", f"{server.url}/x") == (200, b"x" * 100)


async def test_bytes_nobody_asked_for_make_the_connection_untrusted(serve, client):
    server = await serve(answering(ok(b"first") + ok(b"surplus"), ok(b"second")))
    assert await client.request("GET", f"{server.url}/x") == (200, b"first")
    assert await client.request("GET", f"{server.url}/x") == (200, b"second")
    assert server.connections == 2


async def test_a_closed_client_refuses_requests(serve):
    server = await serve(answering(ok()))
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    await http.request("GET", f"{server.url}/x")
    await http.aclose()
    await server.wait_all_closed()
    with pytest.raises(TransportError, match="closed"):
        await http.request("GET", f"{server.url}/x")


# --- TLS --------------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_checks_the_server_certificate(serve, tmp_path):
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    server = await serve(answering(ok(b"secret")), tls=server_tls, host="localhost")

    trusting = ssl.create_default_context(cafile=str(cert_file))
    http = UpstreamHttp(max_connections=1, timeout_s=5, tls=trusting)
    try:
        assert await http.request("GET", f"{server.url}/x") == (200, b"secret")
        assert await http.request("GET", f"{server.url}/x") == (200, b"secret")
    finally:
        await http.aclose()
    assert server.connections == 1
    head, _ = server.requests[0]
    assert b"\r\nHost: localhost:" in head

    default = UpstreamHttp(max_connections=1, timeout_s=5)  # the system's trust store
    try:
        with pytest.raises(TransportError, match="SSLCertVerificationError"):
            await default.request("GET", f"{server.url}/x")
    finally:
        await default.aclose()


# --- the token that goes into every request's headers -----------------------------------------


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "abc\ndef", "tökén"])
async def test_a_token_that_is_not_header_text_is_an_upstream_error(serve, token):
    """OpenCRVS's auth answer becomes the Authorization header of every call: a token that
    could not be sent as one is refused as OpenCRVS failing (503), not a crash."""
    import msgspec

    from dci_bridge.errors import UpstreamError
    from dci_bridge.upstream.opencrvs.auth import TokenProvider

    server = await serve(answering(ok(msgspec.json.encode({"token": token}))))
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    tokens = TokenProvider(
        http,
        auth_url=server.url,
        client_id="c",
        client_secret="s",
        legacy=True,
        margin_s=30,
        timeout_s=5,
    )
    try:
        with pytest.raises(UpstreamError, match="not header text") as caught:
            await tokens.get()
    finally:
        await http.aclose()
    assert caught.value.http_status == 503
