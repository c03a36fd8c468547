"""The callback sender: one shared HTTP client that only connects to checked addresses.

- The connection layer resolves the host itself (`safety.resolve_checked`) and connects to
  the address it checked; TLS still verifies the certificate against the URL's host name.
  Every connection goes through it, so no lookup, proxy or redirect can route around it
  (proxies from the environment are ignored, redirects are not followed).
- One attempt has a total deadline (`timeout_s`, 15 s by default) covering connect, upload
  and the answer, so a receiver that answers byte by byte cannot hold a worker slot longer.
- At most `max_response_bytes` of an answer are read; the rest is discarded.
- `post` never raises for network trouble: it returns a `SendResult` the worker records.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from dci_bridge.delivery.safety import CallbackRefused, resolve_checked

__all__ = ["CallbackSender", "GuardedNetworkBackend", "SendResult"]

USER_AGENT = "dci-bridge-callbacks"


@dataclass(frozen=True, slots=True)
class SendResult:
    """One POST: the HTTP status (None when there was no answer), the start of the answer,
    the latency, and a short error text (no personal data)."""

    status: int | None
    body: bytes
    latency_ms: float
    error: str | None = None
    refused: bool = False
    """True when the URL or its address was refused before connecting (for good)."""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer, resolving and checking every host before connecting."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = f"[{host}]" if ":" in host else host
        addresses = await resolve_checked(
            f"http://{literal}:{port}/", allow_private=self.allow_private
        )
        error: Exception | None = None
        for resolved in addresses:
            try:
                return await self._inner.connect_tcp(
                    resolved.address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise CallbackRefused("unix sockets are not callback targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, allow_private: bool, max_connections: int) -> None:
        super().__init__(trust_env=False, retries=0)
        # httpx builds its pool with the default network backend and exposes no option for
        # another one; replace the pool with the same settings and the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedNetworkBackend(allow_private=allow_private),
        )


class CallbackSender:
    """Shared by every delivery of a process; `aclose()` at shutdown."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout_s: float = 15.0,
        max_response_bytes: int = 65_536,
        max_connections: int = 256,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(
                allow_private=allow_private, max_connections=max_connections
            ),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": USER_AGENT},
        )

    async def post(
        self, url: str, body: bytes, *, headers: dict[str, str] | None = None
    ) -> SendResult:
        """POST `body` to `url`; never raises for network trouble or a refused target."""
        started = time.perf_counter()
        sent_headers = {"Content-Type": "application/json"}
        if headers:
            sent_headers.update(headers)
        try:  # the guarded backend raises CallbackRefused before connecting anywhere wrong
            async with asyncio.timeout(self.timeout_s):
                async with self._client.stream(
                    "POST", url, content=body, headers=sent_headers
                ) as response:
                    answer = await self._read(response)
                    status = response.status_code
        except CallbackRefused as exc:
            return SendResult(None, b"", _ms(started), str(exc), refused=exc.permanent)
        except TimeoutError:
            return SendResult(None, b"", _ms(started), f"no answer within {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return SendResult(None, b"", _ms(started), _describe(exc))
        except OSError as exc:
            return SendResult(None, b"", _ms(started), f"network error: {exc.strerror or exc}")
        error = None if 200 <= status < 300 else f"HTTP {status}"
        if 300 <= status < 400:
            error = f"HTTP {status}: redirects are not followed"
        return SendResult(status, answer, _ms(started), error)

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            if size < limit:
                chunks.append(chunk[: limit - size])
            size += len(chunk)
            if size >= limit:
                break  # the rest is not read; closing the stream drops the connection
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._client.aclose()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or failed"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the receiver broke the HTTP protocol"
    return type(exc).__name__
