"""One guarded call to OpenCRVS: token, circuit breaker, timeout, and errors as DCI errors.

`Upstream.call(url, body, read)` sends an authenticated JSON POST and hands the answer to
`read`, which decodes it or raises. A 401 or a GraphQL "Unauthorized" renews the token and
retries once. Timeouts become `UpstreamTimeoutError` (504), connection failures, 5xx and
unreadable answers `UpstreamError` (503); they count against the breaker. The daily search
quota is not an outage: it does not open the breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import msgspec

from dci_bridge.errors import UpstreamError, UpstreamTimeoutError
from dci_bridge.ops import metrics
from dci_bridge.upstream.opencrvs.auth import TokenProvider
from dci_bridge.upstream.opencrvs.breaker import CircuitBreaker
from dci_bridge.upstream.opencrvs.http import (
    Headers,
    TransportError,
    TransportTimeout,
    UpstreamHttp,
)

T = TypeVar("T")


class UpstreamAnswer(msgspec.Struct, frozen=True):
    status: int
    content: bytes


class GraphQLError(UpstreamError):
    """OpenCRVS answered, but with an error or a shape we cannot read."""

    def __init__(self, message: str, *, unauthorized: bool = False) -> None:
        super().__init__(message)
        self.unauthorized = unauthorized


class QuotaExceededError(UpstreamError):
    """OpenCRVS's daily search quota for our integration is used up (retry tomorrow)."""


class Upstream:
    def __init__(
        self,
        http: UpstreamHttp,
        tokens: TokenProvider,
        breaker: CircuitBreaker,
        *,
        timeout_s: float,
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.breaker = breaker
        self.timeout_s = timeout_s
        self.graphql = True
        """v1 GraphQL reports its errors in the body (read them); v2 REST errors are statuses."""
        self._headers = UpstreamHttp.headers({})
        self._headers_token = ""

    def _auth_headers(self, token: str) -> Headers:
        """The request headers for `token`, built once per token (a plain dict would be
        converted on every call)."""
        if token != self._headers_token:
            self._headers = UpstreamHttp.headers(
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            )
            self._headers_token = token
        return self._headers

    async def call(self, url: str, body: bytes | None, read: Callable[[UpstreamAnswer], T]) -> T:
        """POST `body` (GET when None) to `url` with our token; `read` decodes the answer.

        Counted in the `dci_bridge_upstream_*` metrics (operation: graphql or rest)."""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self._call(url, body, read)
            outcome = "ok"
            return result
        except UpstreamTimeoutError:
            outcome = "timeout"
            raise
        except QuotaExceededError:
            outcome = "quota"
            raise
        finally:
            operation = "graphql" if self.graphql else "rest"
            metrics.observe_upstream(operation, outcome, time.perf_counter() - started)

    async def _call(self, url: str, body: bytes | None, read: Callable[[UpstreamAnswer], T]) -> T:
        stale: str | None = None
        for attempt in range(2):
            self.breaker.before()
            try:
                token = await (self.tokens.get() if stale is None else self.tokens.renew(stale))
                status, content = await self.http.request(
                    "GET" if body is None else "POST",
                    url,
                    body=body,
                    headers=self._auth_headers(token),
                    timeout_s=self.timeout_s,
                    idempotent=True,  # searches and fetches only read
                )
            except TransportTimeout:
                self.breaker.failure()
                raise UpstreamTimeoutError(
                    f"OpenCRVS did not answer within {self.timeout_s:g} s"
                ) from None
            except TransportError as exc:
                self.breaker.failure()
                raise UpstreamError(f"OpenCRVS is unreachable ({exc})") from None
            except UpstreamError:
                self.breaker.failure()
                raise
            if status == 401 and attempt == 0:
                stale = token
                continue
            if status >= 500 or status in (401, 403) or (status >= 400 and not self.graphql):
                self.breaker.failure()
                raise UpstreamError(f"OpenCRVS answered HTTP {status}")
            try:
                result = read(UpstreamAnswer(status, content))
            except QuotaExceededError:
                self.breaker.success()
                raise
            except GraphQLError as exc:
                if exc.unauthorized and attempt == 0:
                    stale = token
                    continue
                self.breaker.failure()
                raise
            self.breaker.success()
            return result
        raise UpstreamError("OpenCRVS refused a freshly issued token")  # pragma: no cover
