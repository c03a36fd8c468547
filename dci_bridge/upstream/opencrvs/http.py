"""The one HTTP client of the OpenCRVS source: HTTP/1.1 keep-alive on the event loop.

A DCI search through OpenCRVS makes two or more OpenCRVS calls, and the bridge's budget is
1 ms of CPU per search. The general-purpose clients measured for this spend a large part of
it on the calls alone (`bench/upstream_client.py`, CPU per loopback call at 16 concurrent:
aiohttp 0.22 ms, pyreqwest 0.12 ms plus a runtime thread that must take the GIL from the
busy event loop to hand back every answer). This client does the exchange on the event loop
itself, with the pieces the server side already uses: the loop's own transports (uvloop
when installed) and llhttp's C parser through `httptools` (the parser uvicorn uses). What is
ours is small: the request head, a keep-alive pool per origin, and the rules below. About
0.07 ms of CPU per call, no thread (docs/decisions.md, "The OpenCRVS record source").

What it does, and what it deliberately does not:
- HTTP/1.1 over TCP or TLS (`https`, the system's trust store, the URL's host checked);
  bodies by `Content-Length`, chunked, or until the server closes; no redirects (a system
  client's API does not redirect), no cookies, no compression (nothing is asked for), no
  proxies (the bridge talks to OpenCRVS's gateway directly: docs/operations.md).
- At most `max_connections` connections per origin; further requests wait for one.
- Kept-alive connections: a server closes an idle connection after its own keep-alive
  timeout (Node.js, which OpenCRVS's gateway runs on, and uvicorn: 5 s). A request sent on
  such a connection just as the server closes it fails before any answer. So idle pooled
  connections are not reused after `KEEPALIVE_S`, below those 5 s, and a request the caller
  marks `idempotent` (queries, token requests) is sent once more, on a new connection, when
  a reused connection broke under it before any byte of an answer. Timeouts are never
  retried.
- One timeout covers the whole exchange (connecting, sending, the complete answer); on
  timeout or cancellation the connection is closed, never reused half-read.
- Answers larger than `MAX_ANSWER_BYTES` are refused (`TransportError`).
Errors come out as `TransportTimeout` / `TransportError` so callers need not know the
transport.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, urlencode, urlsplit

import httptools

__all__ = [
    "KEEPALIVE_S",
    "MAX_ANSWER_BYTES",
    "Headers",
    "TransportError",
    "TransportTimeout",
    "UpstreamHttp",
]

KEEPALIVE_S: Final = 4.0
"""How long an idle pooled connection is kept: below the common 5 s server-side timeout."""

MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
"""The largest answer body accepted (a fetched record is a few kB; a search page of 50
records well under 1 MB)."""

_NO_BODY_STATUSES: Final = frozenset({204, 304})
_TARGET_SAFE: Final = "/?#[]@!$&'()*+,;=:%-._~"
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
"""Methods whose answers carry a body when they say so (not HEAD, not CONNECT)."""


class TransportError(Exception):
    """The request failed before a complete HTTP answer arrived (refused, reset, DNS...)."""


class TransportTimeout(TransportError):
    """No complete answer within the timeout."""


class _Broken(TransportError):
    """The connection failed under the request. `answered`: some of the answer had arrived
    (the request reached the server: it must not be sent again)."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


class _TooLarge(Exception):
    """Raised inside the parser: the answer is over `MAX_ANSWER_BYTES`."""


class _Unasked(Exception):
    """Raised inside the parser: an answer began with no request waiting for it."""


class Headers:
    """Request headers checked and encoded once, sent many times (`UpstreamHttp.headers`)."""

    __slots__ = ("block",)

    def __init__(self, values: Mapping[str, str]) -> None:
        lines = []
        for name, value in values.items():
            if not name or not _is_token(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in _FRAMING:
                raise ValueError(f"header {name} is set by the client")
            if any(char in value for char in "\r\n\0"):
                raise ValueError(f"invalid value for header {name}")
            lines.append(f"{name}: {value}\r\n")
        self.block = "".join(lines).encode("latin-1")


_FRAMING: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})
"""Headers the client writes itself: a caller's copy would contradict them."""

_TOKEN_CHARS: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _is_token(text: str) -> bool:
    return all(char in _TOKEN_CHARS for char in text)


class _Origin:
    """Where requests for one scheme://host:port go, and the pool of its connections."""

    __slots__ = ("closed", "host", "host_header", "idle", "limit", "open", "port", "tls", "waiters")

    def __init__(
        self, scheme: str, host: str, port: int, limit: int, tls: ssl.SSLContext | None
    ) -> None:
        self.host = host
        self.port = port
        self.tls = (tls or ssl.create_default_context()) if scheme == "https" else None
        default = 443 if scheme == "https" else 80
        name = f"[{host}]" if ":" in host else host
        self.host_header = (name if port == default else f"{name}:{port}").encode("idna")
        self.limit = limit
        self.open = 0
        """Connections open or being opened (at most `limit`)."""
        self.idle: collections.deque[_Connection] = collections.deque()
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False

    def take_idle(self) -> _Connection | None:
        """The most recently used idle connection still fit for a request, or None."""
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if connection.usable(now):
                return connection
            connection.close()  # closing calls `forget` through connection_lost
        return None

    def forget(self, connection: _Connection) -> None:
        """`connection` is closed: it no longer counts, and a waiter may open another."""
        if connection.counted:
            connection.counted = False
            self.open -= 1
            if connection in self.idle:
                self.idle.remove(connection)
            self.wake()

    def give_back(self, connection: _Connection) -> None:
        if self.closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self.idle.append(connection)
        self.wake()

    def wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one exchange at a time."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.counted = True
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.answered = False
        self.headers_done = False
        self.delimited = False
        """The answer's end is marked (Content-Length or chunked), not the connection's close."""
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.too_large = False
        self.idle_since = 0.0
        self.reusable = True

    # --- the pool's view -------------------------------------------------------------------

    def usable(self, now: float) -> bool:
        transport = self.transport
        return (
            transport is not None
            and not transport.is_closing()
            and self.reusable
            and now - self.idle_since < KEEPALIVE_S
        )

    def send(self, data: bytes, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        """Start an exchange (the answer's own state starts in `on_message_begin`)."""
        self.waiter = waiter
        self.answered = self.headers_done = False
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()
        else:  # pragma: no cover - closed before it connected
            self.origin.forget(self)

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - we never ask to upgrade
            self._fail(TransportError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            if self.too_large:
                self._fail(TransportError(f"answer larger than {MAX_ANSWER_BYTES} bytes"))
            else:
                self._fail(TransportError(f"malformed HTTP answer ({type(exc).__name__})"))

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost completes or fails the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.waiter = None
            if self.headers_done and not self.delimited:  # an answer ends with the connection
                waiter.set_result((self.status, b"".join(self.chunks)))
            else:
                waiter.set_exception(
                    _Broken("connection closed before the answer", answered=self.answered)
                )
        self.origin.forget(self)

    # --- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None:  # a second answer in the same bytes: nobody asked for it
            raise _Unasked
        self.chunks = []
        self.size = 0
        self.status = 0
        self.length = None
        self.chunked = self.headers_done = self.delimited = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self.length = int(value) if value.strip().isdigit() else None
            if self.length is not None and self.length > MAX_ANSWER_BYTES:
                self.too_large = True
                raise _TooLarge
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        self.delimited = self.length is not None or self.chunked or self.status in _NO_BODY_STATUSES

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_ANSWER_BYTES:
            self.too_large = True
            raise _TooLarge
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.headers_done = False  # a close now cuts the real answer short
            return
        waiter = self.waiter
        self.waiter = None
        if not self.parser.should_keep_alive():
            self.reusable = False
        if waiter is not None and not waiter.done():
            body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            waiter.set_result((self.status, body))

    def _fail(self, error: TransportError) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()


class UpstreamHttp:
    def __init__(
        self, *, max_connections: int, timeout_s: float, tls: ssl.SSLContext | None = None
    ) -> None:
        """`tls`: the TLS settings of `https` URLs (default: the system's trust store, host
        names checked)."""
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._limit = max_connections
        self._timeout_s = timeout_s
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._targets: dict[str, tuple[_Origin, bytes]] = {}
        """Per URL (a few endpoints): its origin and request-target, parsed once."""
        self._tls = tls
        self._closed = False

    @staticmethod
    def headers(values: Mapping[str, str]) -> Headers:
        """`values` as headers for `request`, checked and encoded once (a plain mapping is
        encoded on every call)."""
        return Headers(values)

    def _target(self, url: str) -> tuple[_Origin, bytes]:
        found = self._targets.get(url)
        if found is not None:
            return found
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"not an http(s) URL: {scheme or 'no scheme'}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise TransportError("invalid port in URL") from None
        key = (scheme, parts.hostname, port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(
                scheme, parts.hostname, port, self._limit, self._tls
            )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # percent-encode what may not stand in a request line (spaces, controls, non-ASCII);
        # what is encoded already, and the reserved characters, stay as they are
        found = (origin, quote(path, safe=_TARGET_SAFE).encode("ascii"))
        if len(self._targets) < 64:
            self._targets[url] = found
        return found

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | Headers | None = None,
        timeout_s: float | None = None,
        idempotent: bool = False,
    ) -> tuple[int, bytes]:
        """(status, body) of one exchange; raises `TransportTimeout` / `TransportError`.

        `idempotent`: the request may be sent twice (a query, a token request): it is sent
        once more on a new connection when a kept-alive connection broke under it."""
        if self._closed:
            raise TransportError("client closed")
        if method not in _METHODS:
            raise ValueError(f"unsupported method {method!r}")
        origin, target = self._target(url)
        if params:
            target += (b"&" if b"?" in target else b"?") + urlencode(params).encode("ascii")
        if headers is not None and not isinstance(headers, Headers):
            headers = Headers(headers)
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (
            method.encode("ascii"),
            target,
            origin.host_header,
        )
        if headers is not None:
            head += headers.block
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: %d\r\n" % len(body or b"")
        data = head + b"\r\n" + body if body else head + b"\r\n"
        timeout = timeout_s or self._timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for attempt in range(2 if idempotent else 1):
            connection, reused = await self._connection(origin, loop, deadline, timeout)
            waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                connection.send(data, waiter)
                status, answer = await waiter
            except _Broken as exc:
                connection.close()
                if attempt == 0 and idempotent and reused and not exc.answered:
                    continue
                raise TransportError(str(exc)) from None
            except TransportTimeout:
                connection.close()
                raise TransportTimeout(f"no answer within {timeout:g} s") from None
            except BaseException:  # cancelled, or a malformed answer: never reuse it half-read
                connection.close()
                raise
            finally:
                timer.cancel()
            if connection.reusable:
                origin.give_back(connection)
            else:
                connection.close()
            return status, answer
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _connection(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, deadline: float, budget_s: float
    ) -> tuple[_Connection, bool]:
        """A connection for one exchange, and whether it was reused from the pool."""
        while True:
            connection = origin.take_idle()
            if connection is not None:
                return connection, True
            if origin.open < origin.limit:
                break
            waiter: asyncio.Future[None] = loop.create_future()
            origin.waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    origin.wake()  # our turn came as we gave up: pass it on
                else:
                    waiter.cancel()
                if isinstance(exc, TimeoutError):
                    raise TransportTimeout(f"no connection free within {budget_s:g} s") from None
                raise
        origin.open += 1
        fresh = _Connection(origin)
        try:
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(
                    lambda: fresh,
                    origin.host,
                    origin.port,
                    ssl=origin.tls,
                    server_hostname=origin.host if origin.tls else None,
                )
        except TimeoutError:
            origin.forget(fresh)
            raise TransportTimeout(f"no connection within {budget_s:g} s") from None
        except OSError as exc:
            origin.forget(fresh)
            raise TransportError(type(exc).__name__) from None
        except BaseException:
            origin.forget(fresh)
            raise
        return fresh, False

    async def aclose(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            origin.closed = True
            while origin.idle:
                origin.idle.pop().close()
        await asyncio.sleep(0)  # let the transports finish closing


def _expire(waiter: asyncio.Future[tuple[int, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(TransportTimeout("timeout"))
