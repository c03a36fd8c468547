"""The callback sender: one shared HTTP client that only connects to checked addresses.

The client is one aiohttp session (its connection pool). CPU per callback POST measured here
(docs/benchmarks.md): httpx's own transport about 2 ms, httpx over the `httpx-aiohttp`
transport 0.44-0.49 ms, aiohttp itself 0.13-0.19 ms. The callbacks are most of a delivery
worker's work, so they go over aiohttp directly, as the OpenCRVS client does.
- Host names are resolved by `GuardedResolver` (`safety.resolve_checked`): every address
  must be public unless allowed, and aiohttp connects to the addresses the resolver returned,
  i.e. the checked ones. aiohttp does not ask a resolver about IP literals, so `post` checks
  those itself before anything is sent. TLS still verifies the certificate against the URL's
  host name. Proxies from the environment are ignored; redirects are not followed.
- One attempt has a total deadline (`timeout_s`, 15 s by default) covering connect, upload
  and the answer, so a receiver that answers byte by byte cannot hold a slot longer.
- At most `max_response_bytes` of an answer are read; the connection is then dropped.
- `post` never raises for network trouble: it returns a `SendResult` the worker records.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from dci_bridge.delivery.safety import CallbackRefused, address_allowed, resolve_checked

__all__ = ["CallbackSender", "GuardedResolver", "SendResult"]

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


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver: only public addresses (unless allowed), checked before use."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = f"[{host}]" if ":" in host else host
        found = await resolve_checked(
            f"http://{literal}:{port or 80}/", allow_private=self.allow_private
        )
        return [
            ResolveResult(
                hostname=host,
                host=item.address,
                port=port,
                family=item.family,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for item in found
            if family in (socket.AF_UNSPEC, item.family)
        ] or [
            ResolveResult(
                hostname=host,
                host=item.address,
                port=port,
                family=item.family,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for item in found
        ]

    async def close(self) -> None:
        return None


def _literal_refused(url: str, *, allow_private: bool) -> CallbackRefused | None:
    """The refusal for an IP-literal host aiohttp would connect to without asking."""
    try:
        host = urlsplit(url).hostname or ""
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if "%" in host or not address_allowed(address, allow_private=allow_private):
        return CallbackRefused("the callback address is not a public address")
    return None


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
        self._resolver = GuardedResolver(allow_private=allow_private)
        self._ssl = ssl.create_default_context()
        self._max_connections = max_connections
        # the total deadline in `post` decides; this only backs it up
        self._timeout = aiohttp.ClientTimeout(total=timeout_s + 1.0)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The shared session, created on first use (inside the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                ssl=self._ssl,
                limit=self._max_connections,
                ttl_dns_cache=10,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,  # no proxies from the environment
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,  # a small reading limit must not inflate
            )
        return self._session

    async def post(
        self, url: str, body: bytes, *, headers: dict[str, str] | None = None
    ) -> SendResult:
        """POST `body` to `url`; never raises for network trouble or a refused target."""
        started = time.perf_counter()
        refused = _literal_refused(url, allow_private=self.allow_private)
        if refused is not None:
            return SendResult(None, b"", _ms(started), str(refused), refused=True)
        sent_headers = _JSON if not headers else {**_JSON, **headers}
        try:  # the guarded resolver raises CallbackRefused before connecting anywhere wrong
            async with (
                asyncio.timeout(self.timeout_s),
                self._open().post(
                    url, data=body, headers=sent_headers, allow_redirects=False
                ) as response,
            ):
                answer = await self._read(response)
                status = response.status
        except CallbackRefused as exc:
            return SendResult(None, b"", _ms(started), str(exc), refused=exc.permanent)
        except TimeoutError:
            return SendResult(None, b"", _ms(started), f"no answer within {self.timeout_s:g} s")
        except aiohttp.InvalidURL:
            return SendResult(None, b"", _ms(started), "not a usable URL", refused=True)
        except (aiohttp.ClientError, OSError) as exc:
            return SendResult(None, b"", _ms(started), _describe(exc))
        error = None if 200 <= status < 300 else f"HTTP {status}"
        if 300 <= status < 400:
            error = f"HTTP {status}: redirects are not followed"
        return SendResult(status, answer, _ms(started), error)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            if size < limit:
                chunks.append(chunk[: limit - size])
            size += len(chunk)
            if size >= limit:
                response.close()  # the rest is not read: the connection is dropped
                break
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_JSON = {"Content-Type": "application/json"}


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _describe(exc: BaseException) -> str:
    """A short text for a failed attempt (the exception's type, never its message: that may
    quote the receiver's answer)."""
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return "connection refused or failed"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientResponseError
        | aiohttp.http_exceptions.HttpProcessingError,
    ):
        return "the receiver broke the HTTP protocol"
    return f"network error: {type(exc).__name__}"
