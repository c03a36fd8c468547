"""The system-client token: obtained once, cached, renewed before expiry and after a 401.

`POST {auth}/token?grant_type=client_credentials&client_id=..&client_secret=..` (empty body,
OpenCRVS v1.3+ and v2) or, with `legacy_auth`, `POST {auth}/authenticateSystemClient` with
a JSON body (v1.2 and older). The expiry is read from the JWT's `exp` claim (not verified:
the token is only passed back to OpenCRVS, which verifies it). One renewal at a time: a
lock makes concurrent searches share a single token call.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable

import msgspec

from dci_bridge.errors import UpstreamError
from dci_bridge.upstream.opencrvs.http import UpstreamHttp


class _Claims(msgspec.Struct):
    exp: float | None = None


class _TokenAnswer(msgspec.Struct):
    access_token: str | None = None
    token: str | None = None


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (seconds since the epoch), or None if unreadable."""
    try:
        payload = token.split(".")[1]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        return msgspec.json.decode(raw, type=_Claims).exp
    except (IndexError, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        return None


class TokenProvider:
    """Caches the system token of one integration."""

    def __init__(
        self,
        http: UpstreamHttp,
        *,
        auth_url: str,
        client_id: str,
        client_secret: str,
        legacy: bool = False,
        margin_s: float = 60.0,
        timeout_s: float = 5.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._auth_url = auth_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._legacy = legacy
        self._margin_s = margin_s
        self._timeout_s = timeout_s
        self._now = now
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.issued = 0
        """Tokens obtained so far (for tests and metrics)."""

    def _fresh(self) -> str | None:
        if self._token is not None and self._now() < self._expires_at - self._margin_s:
            return self._token
        return None

    async def get(self) -> str:
        """A token with more than the margin left; obtains a new one if needed."""
        token = self._fresh()
        if token is not None:
            return token
        async with self._lock:
            token = self._fresh()
            if token is not None:
                return token
            return await self._obtain()

    async def renew(self, stale: str) -> str:
        """After a 401 with `stale`: a new token (unless another caller already renewed)."""
        async with self._lock:
            if self._token is not None and self._token != stale and self._fresh():
                return self._token
            return await self._obtain()

    def forget(self) -> None:
        self._token = None

    async def _obtain(self) -> str:
        if self._legacy:
            status, content = await self._http.request(
                "POST",
                f"{self._auth_url}/authenticateSystemClient",
                body=msgspec.json.encode(
                    {"client_id": self._client_id, "client_secret": self._client_secret}
                ),
                headers={"Content-Type": "application/json"},
                timeout_s=self._timeout_s,
                idempotent=True,  # a second token request is harmless
            )
        else:
            status, content = await self._http.request(
                "POST",
                f"{self._auth_url}/token",
                params={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
                timeout_s=self._timeout_s,
                idempotent=True,  # a second token request is harmless
            )
        if status in (400, 401, 403):
            raise UpstreamError(f"OpenCRVS refused the system client credentials (HTTP {status})")
        if status != 200:
            raise UpstreamError(f"OpenCRVS auth answered HTTP {status}")
        try:
            body = msgspec.json.decode(content, type=_TokenAnswer)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise UpstreamError("OpenCRVS auth answered with an unreadable body") from None
        token = body.access_token or body.token
        if not token:
            raise UpstreamError("OpenCRVS auth answered without a token")
        if not (token.isascii() and token.isprintable()):  # it goes into a request header
            raise UpstreamError("OpenCRVS auth answered with a token that is not header text")
        expiry = token_expiry(token)
        self._token = token
        self._expires_at = expiry if expiry is not None else self._now() + 600
        self.issued += 1
        return token
