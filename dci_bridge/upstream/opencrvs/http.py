"""The one HTTP client of the OpenCRVS source: a shared pyreqwest client (keep-alive pool).

pyreqwest drives Rust's reqwest/hyper from asyncio: the HTTP exchange (writing the request,
parsing the answer, the connection pool) runs in compiled code on a runtime thread, and
Python sees one awaitable per call. A DCI search makes two or more OpenCRVS calls and the
bridge's budget is 1 ms CPU per search; measured CPU per loopback call (bench notes in
docs/benchmarks.md): httpx 0.28 1.9-2.9 ms, aiohttp 0.13-0.22 ms, pyreqwest 0.06-0.12 ms.
Errors come out as `TransportTimeout` / `TransportError` so callers need not know pyreqwest.
The client is created on first use, inside the running event loop.

Kept-alive connections: a server closes an idle connection after its own keep-alive timeout
(Node.js, which OpenCRVS' gateway runs on, and uvicorn: 5 s). A request sent on such a
connection just as the server closes it fails before any answer. So pooled connections are
dropped after `KEEPALIVE_S`, below those 5 s, and a request the caller marks `idempotent`
(queries, token requests) is sent once more, on a new connection, when the connection
failed under it that way. Timeouts are never retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import NetworkError, PyreqwestError
from pyreqwest.http import HeaderMap

KEEPALIVE_S = 4.0
"""How long an idle pooled connection is kept: below the common 5 s server-side timeout."""

Headers = HeaderMap
"""Request headers built once and sent many times (`UpstreamHttp.headers`)."""


def _connection_broke(exc: PyreqwestError) -> bool:
    """True when `exc` says the connection failed under the request, before an answer: reset,
    or closed before the answer was complete (reqwest files a kept-alive connection closed
    under the request as a connect error, so a refused connection counts too: sending an
    idempotent request once more to a refusing server costs one more refusal)."""
    return isinstance(exc, NetworkError)


class TransportError(Exception):
    """The request failed before an HTTP answer arrived (refused, reset, DNS...)."""


class TransportTimeout(TransportError):
    """No complete answer within the timeout."""


class UpstreamHttp:
    def __init__(self, *, max_connections: int, timeout_s: float) -> None:
        self._limit = max_connections
        self._timeout_s = timeout_s
        self._timeouts: dict[float, timedelta] = {timeout_s: timedelta(seconds=timeout_s)}
        self._client: Client | None = None

    @staticmethod
    def headers(values: Mapping[str, str]) -> Headers:
        """`values` as headers for `request`, converted once (a plain mapping is converted on
        every call)."""
        return HeaderMap(values)

    def _open(self) -> Client:
        if self._client is None:
            self._client = (
                ClientBuilder()
                .runtime_multithreaded(False)  # one runtime thread: the least CPU per call
                .max_connections(self._limit)
                .pool_idle_timeout(timedelta(seconds=KEEPALIVE_S))
                .timeout(self._timeouts[self._timeout_s])
                .follow_redirects(False)
                .default_cookie_store(False)  # a system client carries no cookies
                .build()
            )
        return self._client

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
        client = self._open()
        timeout_s = timeout_s or self._timeout_s
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            timeout = self._timeouts.setdefault(timeout_s, timedelta(seconds=timeout_s))
        for attempt in range(2 if idempotent else 1):
            builder = client.request(method, url).timeout(timeout)
            if headers:
                builder = builder.headers(headers)
            if params:
                builder = builder.query(params)
            if body is not None:
                builder = builder.body_bytes(body)
            try:
                response = await builder.build().send()
                return response.status, bytes(await response.bytes())
            except TimeoutError:
                raise TransportTimeout(f"no answer within {timeout_s:g} s") from None
            except PyreqwestError as exc:
                if attempt == 0 and idempotent and _connection_broke(exc):
                    continue
                raise TransportError(type(exc).__name__) from None
            except asyncio.CancelledError:
                raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
