"""A social-protection system's callback receivers, for the suite's `client` profile.

Correct by default (checks bearer token, JSON, schema, action and the registry's signature);
`faults` make it accept anything, crash on bad input, or skip the token check.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from conformance.schemas import SchemaSet
from conformance.signing import JwksVerifier, SignatureProblem
from tests.conformance.fakes.asgi import App, Request, Response

TOKEN = "client-profile-token"
ROUTES = {
    "/registry/on-search": ("on-search", "OnSearchCallback"),
    "/registry/on-subscribe": ("on-subscribe", "OnSubscribeCallback"),
    "/registry/on-unsubscribe": ("on-unsubscribe", "OnUnsubscribeCallback"),
    "/registry/txn/on-status": ("txn-on-status", "TxnOnStatusCallback"),
    "/registry/notify": ("notify", "NotifyCallback"),
}
FAULTS = frozenset({"accept_anything", "crash_on_bad_input", "no_auth"})


def _ack(status: str = "ACK", code: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "ack_status": status,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "correlation_id": uuid.uuid4().hex,
    }
    if code:
        message["error"] = {"code": code, "message": code}
    return {"message": message}


class FakeClient:
    def __init__(self, registry_jwks: dict[str, Any], *, faults: set[str] | None = None) -> None:
        self.faults = set(faults or ())
        assert self.faults <= FAULTS
        self.verifier = JwksVerifier(registry_jwks)
        self.schemas = SchemaSet.load()
        self.seen: set[str] = set()
        self.app = App({("POST", path): self.receive for path in ROUTES})

    async def receive(self, request: Request) -> Response:
        if "accept_anything" in self.faults:
            return Response(200, _ack())
        if (
            "no_auth" not in self.faults
            and request.headers.get("authorization") != f"Bearer {TOKEN}"
        ):
            return Response(401, {"errors": [{"code": "err.request.unauthorized", "message": ""}]})
        action, schema = ROUTES[request.path]
        try:
            envelope = json.loads(request.body)
        except ValueError:
            return self._bad("err.request.bad")
        if self.schemas.violations(schema, envelope):
            return self._bad("err.request.bad")
        if not envelope.get("signature"):
            return Response(401, _ack("ERR", "err.signature.missing"))
        try:
            self.verifier.verify(envelope)
        except SignatureProblem:
            return Response(401, _ack("ERR", "err.signature.invalid"))
        message_id = envelope["header"]["message_id"]
        if message_id in self.seen:
            return Response(200, _ack())  # a duplicate delivery: acknowledged, not processed again
        self.seen.add(message_id)
        del action
        return Response(200, _ack())

    def _bad(self, code: str) -> Response:
        if "crash_on_bad_input" in self.faults:
            return Response(500, {"detail": "boom"})
        return Response(400, _ack("ERR", code))
