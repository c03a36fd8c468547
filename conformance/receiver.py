"""The loopback callback receiver: records every callback the target POSTs for async cases.

Any POST path is accepted and recorded (registries differ in whether `sender_uri` is the exact
callback URL or a base); the receiver answers with a valid Ack so the target's delivery
succeeds. `GET /.well-known/jwks.json` serves the tester's public keys, so a target that
fetches a sender's JWKS by URL can verify the tester's signatures.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.envelopes import new_id, timestamp
from conformance.evidence import NOT_JSON, Exchange, parse_json
from conformance.server import BackgroundServer

CALLBACK_PATHS = {
    "search": "/registry/on-search",
    "subscribe": "/registry/on-subscribe",
    "unsubscribe": "/registry/on-unsubscribe",
    "txn-status": "/registry/txn/on-status",
    "notify": "/registry/notify",
}
"""Callback path per request action (spec digest §1)."""

MAX_BODY = 10 * 1024 * 1024


@dataclass
class Callback:
    """One POST the target made to the receiver."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float = field(default_factory=time.monotonic)

    @property
    def header(self) -> dict[str, Any]:
        h = self.json.get("header") if isinstance(self.json, dict) else None
        return h if isinstance(h, dict) else {}

    @property
    def message(self) -> dict[str, Any]:
        m = self.json.get("message") if isinstance(self.json, dict) else None
        return m if isinstance(m, dict) else {}

    def as_exchange(self, base_url: str) -> Exchange:
        """The callback as evidence (the target is the requester here)."""
        return Exchange(
            method="POST",
            url=base_url + self.path,
            request_headers=self.headers,
            request_body=self.body.decode("utf-8", "replace"),
            status=200,
            label=f"callback {self.header.get('action', self.path)}",
        )


Matcher = Callable[[Callback], bool]


class ReceiverApp:
    """The ASGI app behind the receiver."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.callbacks: list[Callback] = []
        self._cond = threading.Condition()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and path.endswith("/.well-known/jwks.json"):
            await _respond(send, 200, self.jwks)
            return
        if method != "POST":
            await _respond(send, 405, {"errors": [{"code": "method", "message": "POST only"}]})
            return
        body = b""
        more = True
        while more:
            event = await receive()
            body += event.get("body", b"")
            more = event.get("more_body", False)
            if len(body) > MAX_BODY:
                await _respond(send, 413, {"errors": [{"code": "too_large", "message": ""}]})
                return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parsed = parse_json(body)
        with self._cond:
            self.callbacks.append(Callback(path, headers, body, parsed))
            self._cond.notify_all()
        ack_status = "ACK" if parsed is not NOT_JSON else "ERR"
        ack: dict[str, Any] = {
            "message": {
                "ack_status": ack_status,
                "timestamp": timestamp(),
                "correlation_id": new_id("cor-"),
            }
        }
        if ack_status == "ERR":
            ack["message"]["error"] = {"code": "err.request.bad", "message": "not JSON"}
        await _respond(send, 200 if ack_status == "ACK" else 400, ack)

    def wait_for(self, match: Matcher, timeout_s: float) -> Callback | None:
        """The first recorded callback matching, waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for item in self.callbacks:
                    if match(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def matching(self, match: Matcher) -> list[Callback]:
        with self._cond:
            return [c for c in self.callbacks if match(c)]


async def _respond(send: Any, status: int, body: Any) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class Receiver:
    """The running receiver: its URLs and its recorded callbacks."""

    def __init__(
        self,
        jwks: dict[str, Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        sender_uri_mode: str = "exact",
    ) -> None:
        self.app = ReceiverApp(jwks)
        self._server = BackgroundServer(self.app, host, port)
        self._public_url = public_url
        self.sender_uri_mode = sender_uri_mode

    @property
    def base_url(self) -> str:
        return (self._public_url or self._server.url).rstrip("/")

    def sender_uri(self, action: str) -> str:
        """The `header.sender_uri` to send with a request of `action`."""
        if self.sender_uri_mode == "base":
            return self.base_url
        return self.base_url + CALLBACK_PATHS.get(action, "/registry/callback")

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/.well-known/jwks.json"

    def wait_for(self, match: Matcher, timeout_s: float) -> Callback | None:
        return self.app.wait_for(match, timeout_s)

    def matching(self, match: Matcher) -> list[Callback]:
        return self.app.matching(match)

    def start(self) -> Receiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


def for_transaction(transaction_id: str, action: str | None = None) -> Matcher:
    """Matches callbacks whose message carries `transaction_id` (and header `action`)."""

    def match(cb: Callback) -> bool:
        if action is not None and cb.header.get("action") != action:
            return False
        return cb.message.get("transaction_id") == transaction_id

    return match
