"""The one HTTP client of the OpenCRVS source: a shared aiohttp session (keep-alive pool).

Measured on this machine (bench notes in docs/benchmarks.md): one loopback call costs the
caller about 1.9-2.9 ms CPU with httpx 0.28, 0.8-1.0 ms with httpx over the aiohttp
transport and 0.24-0.42 ms with aiohttp itself; a DCI search makes two or more calls, and
the bridge's budget is 1 ms CPU per search, so the upstream path uses aiohttp directly.
Errors come out as `TransportTimeout` / `TransportError` so callers need not know aiohttp.
The session is created on first use, inside the running event loop.

Kept-alive connections: a server closes an idle connection after its own keep-alive timeout
(Node.js, which OpenCRVS' gateway runs on, and uvicorn: 5 s). A request sent on such a
connection just as the server closes it fails with a reset or "server disconnected" before
any answer. So pooled connections are dropped after `KEEPALIVE_S`, below those 5 s, and a
request the caller marks `idempotent` (queries, token requests) is sent once more, on a new
connection, when the connection failed under it that way. Timeouts are never retried.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Mapping

import aiohttp
from yarl import URL

KEEPALIVE_S = 4.0
"""How long an idle pooled connection is kept: below the common 5 s server-side timeout."""

_STALE_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def _stale_connection(exc: BaseException) -> bool:
    """True when `exc` says the connection broke under the request (no answer was read)."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return True
    return isinstance(exc, OSError) and exc.errno in _STALE_ERRNOS


class TransportError(Exception):
    """The request failed before an HTTP answer arrived (refused, reset, DNS...)."""


class TransportTimeout(TransportError):
    """No complete answer within the timeout."""


class UpstreamHttp:
    def __init__(self, *, max_connections: int, timeout_s: float) -> None:
        self._limit = max_connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeouts = {timeout_s: self._timeout}
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}
        """Parsed URLs (a few endpoints): aiohttp would parse the text on every call."""

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit, keepalive_timeout=KEEPALIVE_S
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),  # a system client carries no cookies
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        idempotent: bool = False,
    ) -> tuple[int, bytes]:
        """(status, body) of one exchange; raises `TransportTimeout` / `TransportError`.

        `idempotent`: the request may be sent twice (a query, a token request): it is sent
        once more on a new connection when a kept-alive connection broke under it."""
        session = self._open()
        timeout = self._timeout
        if timeout_s:
            timeout = self._timeouts.get(timeout_s) or self._timeouts.setdefault(
                timeout_s, aiohttp.ClientTimeout(total=timeout_s)
            )
        target = self._urls.get(url)
        if target is None:
            target = URL(url)
            if len(self._urls) < 64:
                self._urls[url] = target
        for attempt in range(2 if idempotent else 1):
            try:
                async with session.request(
                    method,
                    target,
                    data=body,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as response:
                    return response.status, await response.read()
            except TimeoutError:
                raise TransportTimeout(f"no answer within {timeout.total:g} s") from None
            except (aiohttp.ClientError, OSError) as exc:
                if attempt == 0 and idempotent and _stale_connection(exc):
                    continue
                raise TransportError(type(exc).__name__) from None
            except asyncio.CancelledError:
                raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
