"""The tester's HTTP side: bearer tokens, signing, sending, and recording every exchange."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx

from conformance.config import Config
from conformance.evidence import Exchange, parse_json
from conformance.signing import TesterKeys, sign_envelope

AuthMode = Literal["valid", "none"] | str
"""`valid`: a token from the token endpoint; `none`: no Authorization; other: that token."""


class TokenError(Exception):
    """The token endpoint did not issue a token for the configured credentials."""

    def __init__(self, message: str, exchange: Exchange | None) -> None:
        super().__init__(message)
        self.exchange = exchange


class DciClient:
    """Sends envelopes to the target; every exchange goes to `on_exchange` as evidence."""

    def __init__(
        self,
        config: Config,
        keys: TesterKeys,
        http: httpx.Client,
        on_exchange: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.config = config
        self.keys = keys
        self.http = http
        self.on_exchange = on_exchange
        self._token: str | None = None
        self._token_until = 0.0

    # -- tokens ---------------------------------------------------------------------------
    def token(self) -> str | None:
        """A valid bearer token (cached until shortly before expiry), None without credentials."""
        auth = self.config.auth
        if auth.token:
            return auth.token
        if not (auth.client_id and auth.client_secret):
            return None
        if self._token and time.monotonic() < self._token_until:
            return self._token
        exchange = self.request_token(auth.client_id, auth.client_secret)
        body = exchange.response_json
        if exchange.status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            raise TokenError(
                f"Expected a token from {self.config.token_url}, got {exchange.summary()}",
                exchange,
            )
        self._token = str(body["access_token"])
        try:
            ttl = float(body.get("expires_in", 300))
        except (TypeError, ValueError):
            ttl = 300.0
        self._token_until = time.monotonic() + max(ttl - 30.0, 5.0)
        return self._token

    def request_token(
        self, client_id: str, client_secret: str, grant_type: str = "client_credentials"
    ) -> Exchange:
        form = {"grant_type": grant_type, "client_id": client_id, "client_secret": client_secret}
        if self.config.auth.scope:
            form["scope"] = self.config.auth.scope
        return self.raw(
            "POST",
            self.config.token_url,
            content=httpx.QueryParams(form).__str__().encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            label="token",
        )

    def auth_headers(self, auth: AuthMode) -> dict[str, str]:
        if auth == "none":
            return {}
        token = self.token() if auth == "valid" else auth
        return {"Authorization": f"Bearer {token}"} if token else {}

    # -- sending --------------------------------------------------------------------------
    def sign(self, envelope: dict[str, Any], scheme: str | None = None) -> dict[str, Any]:
        scheme = scheme or self.config.identity.signature_scheme
        return sign_envelope(self.keys, scheme, self.config.identity.sender_id, envelope)

    def send(
        self,
        endpoint: str,
        envelope: Any,
        *,
        sign: bool = True,
        auth: AuthMode = "valid",
        headers: dict[str, str] | None = None,
        label: str = "",
    ) -> Exchange:
        """POST an envelope (signed with the configured scheme unless `sign` is False)."""
        if sign and isinstance(envelope, dict):
            envelope = self.sign(envelope)
        body = json.dumps(envelope).encode()
        return self.post(endpoint, body, auth=auth, headers=headers, label=label)

    def post(
        self,
        endpoint: str,
        body: bytes,
        *,
        auth: AuthMode = "valid",
        headers: dict[str, str] | None = None,
        content_type: str | None = "application/json",
        label: str = "",
    ) -> Exchange:
        """POST raw bytes to an endpoint path (or absolute URL)."""
        sent: dict[str, str] = {"Accept": "application/json"}
        if content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(self.auth_headers(auth))
        sent.update(headers or {})
        return self.raw("POST", self.config.url(endpoint), content=body, headers=sent, label=label)

    def get(self, url: str, *, label: str = "") -> Exchange:
        return self.raw(
            "GET", self.config.url(url), headers={"Accept": "application/json"}, label=label
        )

    def raw(
        self,
        method: str,
        url: str,
        *,
        content: bytes = b"",
        headers: dict[str, str] | None = None,
        label: str = "",
    ) -> Exchange:
        headers = dict(headers or {})
        exchange = Exchange(
            method=method,
            url=url,
            request_headers=headers,
            request_body=content.decode("utf-8", "replace"),
            label=label or method.lower(),
        )
        started = time.perf_counter()
        try:
            request = self.http.build_request(method, url, content=content or None, headers=headers)
            # httpx adds a default Content-Type only when we give one; strip its guess otherwise
            if "Content-Type" not in headers and "content-type" in request.headers:
                del request.headers["content-type"]
            response = self.http.send(request)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
        else:
            exchange.status = response.status_code
            exchange.response_headers = dict(response.headers)
            exchange.response_body = response.content.decode("utf-8", "replace")
            exchange.response_json = parse_json(response.content)
        exchange.elapsed_ms = (time.perf_counter() - started) * 1000
        if self.on_exchange is not None:
            self.on_exchange(exchange)
        return exchange
