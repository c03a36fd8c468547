"""A small DCI CRVS registry for testing the suite: correct by default, broken on request.

`FakeRegistry(faults={...})` switches on named deviations from the standard, so tests can
assert that exactly the cases checking them fail. It validates requests with the suite's
bundled schemas, signs with its own Ed25519 key, issues JWT bearer tokens and calls back
over HTTP like a real registry.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from jwcrypto import jwt

from conformance.schemas import SchemaSet
from conformance.signing import JwksVerifier, SignatureProblem, TesterKeys, sign_envelope
from tests.conformance.fakes.asgi import App, Request, Response

CLIENT_ID = "conf-client"
CLIENT_SECRET = "conf-secret"
REGISTRY_ID = "fake-registry.example.org"

FAULTS = frozenset(
    {
        "unsigned",  # responses and callbacks carry no signature
        "wrong_action",  # sync search answers with header.action 'search'
        "no_correlation",  # correlation_id missing from responses and callbacks
        "crash_on_bad_input",  # HTTP 500 instead of err.request.bad
        "ignore_pagination",  # every record on every page, no pagination validation
        "accept_bad_tokens",  # no bearer token check at all
        "echo_message_id",  # the request's message_id copied into responses
        "no_replay_guard",  # duplicate message_id and stale message_ts accepted
        "private_jwks",  # the JWKS leaks the private key
        "skip_signature_check",  # request signatures are not verified
        "wrong_callback_ids",  # callbacks carry a different transaction_id
        "lenient_formats",  # locale, length and timestamp limits not enforced
        "notify_invalid",  # notify events without data.reg_record_type (schema-invalid)
        "notify_unlinked",  # notify names no subscription (no code, a fresh transaction_id)
        "notify_after_unsubscribe",  # unsubscribed subscriptions are still notified
    }
)

PEOPLE: list[dict[str, Any]] = [
    {
        "identifier": [{"identifier_type": "BRN", "identifier_value": f"BRN-{n:04d}"}],
        "name": {"surname": f"Person{n}", "given_name": "Test"},
        "sex": "female" if n % 2 else "male",
        "birth_date": f"{1990 + n}-0{n}-1{n}",
    }
    for n in range(1, 6)
]

REQUEST_SCHEMAS = {
    "/registry/sync/search": ("search", "SearchRequestEnvelope"),
    "/registry/search": ("search", "SearchRequestEnvelope"),
    "/registry/subscribe": ("subscribe", "SubscribeRequestEnvelope"),
    "/registry/unsubscribe": ("unsubscribe", "UnsubscribeRequestEnvelope"),
    "/registry/txn/status": ("txn-status", "TxnStatusRequestEnvelope"),
    "/registry/sync/txn/status": ("txn-status", "TxnStatusRequestEnvelope"),
}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ack(
    status: str = "ACK", code: str | None = None, correlation_id: str | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "ack_status": status,
        "timestamp": now(),
        "correlation_id": correlation_id or uuid.uuid4().hex,
    }
    if code:
        message["error"] = {"code": code, "message": code}
    return {"message": message}


class Rejected(Exception):
    def __init__(self, status: int, code: str, header_code: str | None = None) -> None:
        self.status, self.code, self.header_code = status, code, header_code


class FakeRegistry:
    def __init__(
        self, tester_jwks: dict[str, Any], *, sender_id: str, faults: set[str] | None = None
    ) -> None:
        self.faults = set(faults or ())
        assert self.faults <= FAULTS, self.faults - FAULTS
        self.keys = TesterKeys.generate()
        self.tester = JwksVerifier(tester_jwks)
        self.sender_id = sender_id
        self.schemas = SchemaSet.load()
        self.seen: set[str] = set()
        self.transactions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.app = App(
            {
                ("POST", "/oauth2/client/token"): self.token,
                ("GET", "/.well-known/jwks.json"): self.jwks,
                ("POST", "/registry/sync/search"): self.sync_search,
                ("POST", "/registry/search"): self.async_search,
                ("POST", "/registry/sync/txn/status"): self.sync_txn,
                ("POST", "/registry/txn/status"): self.async_txn,
                ("POST", "/registry/subscribe"): self.subscribe,
                ("POST", "/registry/unsubscribe"): self.unsubscribe,
                ("POST", "/simulate/event"): self.simulate_event,
            }
        )

    # -- auth and keys ------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Response(401, {"error": "invalid_client"})
        claims = {"sub": CLIENT_ID, "iat": int(time.time()), "exp": int(time.time()) + 600}
        token = jwt.JWT(header={"alg": "EdDSA", "kid": self.keys.kid}, claims=claims)
        token.make_signed_token(self.keys.key)
        return Response(
            200, {"access_token": token.serialize(), "token_type": "Bearer", "expires_in": "600"}
        )

    async def jwks(self, request: Request) -> Response:
        jwks = self.keys.public_jwks()
        if "private_jwks" in self.faults:
            jwks["keys"][0]["d"] = json.loads(self.keys.key.export_private())["d"]
        return Response(200, jwks)

    def _authorised(self, request: Request) -> bool:
        if "accept_bad_tokens" in self.faults:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        try:
            jwt.JWT(jwt=token, key=self.keys.key, algs=["EdDSA"])
        except Exception:
            return False
        return True

    # -- request checks -----------------------------------------------------------------------
    def _check(self, request: Request) -> dict[str, Any]:
        """The decoded envelope, or Rejected with the standard's code."""
        if not request.content_type.startswith("application/json"):
            raise Rejected(415, "err.request.bad")
        try:
            envelope = json.loads(request.body)
        except ValueError:
            if "crash_on_bad_input" in self.faults:
                raise Rejected(500, "err.service.unavailable") from None
            raise Rejected(400, "err.request.bad") from None
        action, schema = REQUEST_SCHEMAS[request.path]
        header = envelope.get("header") if isinstance(envelope, dict) else None
        if isinstance(header, dict) and header.get("version", "1.0.0") != "1.0.0":
            raise Rejected(400, "err.version.not_supported")
        if isinstance(header, dict) and header.get("is_msg_encrypted") is True:
            raise Rejected(400, "err.encryption.invalid")
        if isinstance(header, dict) and header.get("action") != action:
            raise Rejected(400, "err.request.bad", "rjct.action.invalid")
        problems = self.schemas.violations(schema, envelope)
        if "lenient_formats" in self.faults:
            problems = [
                p for p in problems if "locale" not in p.path and "transaction_id" not in p.path
            ]
        if problems:
            if "crash_on_bad_input" in self.faults:
                raise Rejected(500, "err.service.unavailable")
            raise Rejected(400, "err.request.bad")
        if header["sender_id"] != self.sender_id:
            raise Rejected(403, "err.sender_id.invalid")
        if "skip_signature_check" not in self.faults:
            if not envelope.get("signature"):
                raise Rejected(401, "err.signature.missing")
            try:
                self.tester.verify(envelope)
            except SignatureProblem:
                raise Rejected(401, "err.signature.invalid") from None
        if "no_replay_guard" not in self.faults:
            sent = datetime.fromisoformat(header["message_ts"].replace("Z", "+00:00"))
            if abs(datetime.now(UTC) - sent) > timedelta(hours=1):
                raise Rejected(400, "err.request.bad", "rjct.message_ts.invalid")
            if header["message_id"] in self.seen:
                raise Rejected(409, "err.request.bad", "rjct.message_id.duplicate")
            self.seen.add(header["message_id"])
        items = envelope["message"].get("search_request") or envelope["message"].get(
            "subscribe_request"
        )
        if isinstance(items, list) and header["total_count"] != len(items):
            raise Rejected(400, "err.request.bad", "rjct.total_count.invalid")
        return dict(envelope)

    async def _guarded(self, request: Request, sync: bool, handle: Any) -> Response:
        if not self._authorised(request):
            return Response(
                401, {"errors": [{"code": "err.request.unauthorized", "message": "token"}]}
            )
        try:
            envelope = self._check(request)
        except Rejected as exc:
            if exc.status == 500:
                return Response(500, {"detail": "Internal Server Error"})
            if sync and exc.header_code:
                return Response(exc.status, self._sync_reject(exc.header_code))
            return Response(exc.status, ack("ERR", exc.code))
        result: Response = await handle(envelope)
        return result

    def _sync_reject(self, code: str) -> dict[str, Any]:
        header = self._callback_header("on-search", "rjct")
        header["status_reason_code"] = code
        return self._sign({"header": header, "message": {}})

    # -- responses ----------------------------------------------------------------------------
    def _callback_header(
        self, action: str, status: str = "succ", request: Any = None
    ) -> dict[str, Any]:
        message_id = uuid.uuid4().hex
        if "echo_message_id" in self.faults and request is not None:
            message_id = request["header"]["message_id"]
        return {
            "version": "1.0.0",
            "message_id": message_id,
            "message_ts": now(),
            "action": action,
            "status": status,
            "sender_id": REGISTRY_ID,
            "receiver_id": self.sender_id,
            "total_count": 1,
            "completed_count": 1,
            "is_msg_encrypted": False,
        }

    def _sign(self, envelope: dict[str, Any]) -> dict[str, Any]:
        if "unsigned" in self.faults:
            return envelope
        return sign_envelope(self.keys, "jws", REGISTRY_ID, envelope)

    def _search_item(self, item: dict[str, Any], seen_refs: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reference_id": item["reference_id"],
            "timestamp": now(),
            "locale": "eng",
        }
        if "lenient_formats" in self.faults and "locale" in item:
            out["locale"] = item["locale"]  # echoes even a locale outside the pattern
        criteria = item["search_criteria"]
        page = criteria.get("pagination") or {"page_size": 10, "page_number": 1}
        size, number = page.get("page_size", 10), page.get("page_number", 1)

        def reject(code: str) -> dict[str, Any]:
            return out | {"status": "rjct", "status_reason_code": code}

        if item["reference_id"] in seen_refs:
            return reject("rjct.reference_id.duplicate")
        seen_refs.add(item["reference_id"])
        if "ignore_pagination" not in self.faults and (size < 1 or number < 1):
            return reject("rjct.pagination.invalid")
        query_type, query = criteria["query_type"], criteria["query"]
        if query_type == "idtype-value":
            found = [
                p
                for p in PEOPLE
                if any(i["identifier_value"] == query.get("value") for i in p["identifier"])
            ]
        elif query_type == "predicate":
            found = list(PEOPLE)
        else:
            return reject("rjct.search_criteria.invalid")
        for key in reversed(criteria.get("sort") or []):
            found.sort(
                key=lambda p, k=key: str(p.get(k["attribute_name"])),
                reverse=key["sort_order"] == "desc",
            )
        total = len(found)
        if "ignore_pagination" not in self.faults:
            found = found[(number - 1) * size : number * size]
        return out | {
            "status": "succ",
            "data": {"reg_record_type": "spdci-extensions-dci:Person", "reg_records": found},
            "pagination": {"page_size": size, "page_number": number, "total_count": total},
        }

    def _search_response(self, envelope: dict[str, Any], correlation_id: str) -> dict[str, Any]:
        refs: set[str] = set()
        items = [self._search_item(i, refs) for i in envelope["message"]["search_request"]]
        message: dict[str, Any] = {
            "transaction_id": envelope["message"]["transaction_id"],
            "correlation_id": correlation_id,
            "search_response": items,
        }
        if "no_correlation" in self.faults:
            del message["correlation_id"]
        return message

    async def sync_search(self, request: Request) -> Response:
        async def handle(envelope: dict[str, Any]) -> Response:
            header = self._callback_header("on-search", request=envelope)
            if "wrong_action" in self.faults:
                header["action"] = "search"
            message = self._search_response(envelope, uuid.uuid4().hex)
            return Response(200, self._sign({"header": header, "message": message}))

        return await self._guarded(request, True, handle)

    def _callback(
        self, envelope: dict[str, Any], action: str, message: dict[str, Any], url: str | None = None
    ) -> None:
        if "wrong_callback_ids" in self.faults:
            message = message | {"transaction_id": "not-" + str(message.get("transaction_id"))}
        if "no_correlation" in self.faults:
            message.pop("correlation_id", None)
        header = self._callback_header(action, request=envelope)
        if action in ("on-subscribe", "on-unsubscribe"):
            header.pop("status")
        body = self._sign({"header": header, "message": message})
        target = url or envelope["header"].get("sender_uri")

        async def deliver() -> None:
            await asyncio.sleep(0.01)
            # plain-HTTP loopback: no CA bundle to load per client
            async with httpx.AsyncClient(timeout=5, verify=False) as client:  # noqa: S501
                await client.post(str(target), json=body)

        task = asyncio.get_running_loop().create_task(deliver())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def async_search(self, request: Request) -> Response:
        async def handle(envelope: dict[str, Any]) -> Response:
            correlation_id = uuid.uuid4().hex
            message = self._search_response(envelope, correlation_id)
            self.transactions[envelope["message"]["transaction_id"]] = {
                "type": "search",
                "message": message,
                "correlation_id": correlation_id,
            }
            self._callback(envelope, "on-search", message)
            return Response(202, ack(correlation_id=correlation_id))

        return await self._guarded(request, False, handle)

    def _txn_message(
        self, envelope: dict[str, Any], correlation_id: str
    ) -> tuple[dict[str, Any], bool]:
        req = envelope["message"]["txnstatus_request"]
        attr, value = req["attribute_type"], req["attribute_value"]
        found = None
        for txn_id, txn in self.transactions.items():
            refs = [i.get("reference_id") for i in txn["message"].get("search_response", [])]
            if (
                (attr == "transaction_id" and txn_id == value)
                or (attr == "correlation_id" and txn["correlation_id"] == value)
                or (
                    attr == "reference_id_list"
                    and isinstance(value, list)
                    and set(value) <= set(refs)
                )
            ):
                found = txn
        message = {
            "transaction_id": envelope["message"]["transaction_id"],
            "correlation_id": correlation_id,
        }
        if found is None:
            return message, False
        return message | {
            "txnstatus_response": {"txn_type": found["type"], "txn_status": found["message"]}
        }, True

    async def sync_txn(self, request: Request) -> Response:
        async def handle(envelope: dict[str, Any]) -> Response:
            message, ok = self._txn_message(envelope, uuid.uuid4().hex)
            header = self._callback_header(
                "txn-on-status", "succ" if ok else "rjct", request=envelope
            )
            return Response(200, self._sign({"header": header, "message": message}))

        return await self._guarded(request, True, handle)

    async def async_txn(self, request: Request) -> Response:
        async def handle(envelope: dict[str, Any]) -> Response:
            correlation_id = uuid.uuid4().hex
            message, _ok = self._txn_message(envelope, correlation_id)
            self._callback(envelope, "txn-on-status", message)
            return Response(202, ack(correlation_id=correlation_id))

        return await self._guarded(request, False, handle)

    async def subscribe(self, request: Request) -> Response:
        async def handle(envelope: dict[str, Any]) -> Response:
            correlation_id = uuid.uuid4().hex
            item = envelope["message"]["subscribe_request"][0]
            code = "sub-" + uuid.uuid4().hex
            self.subscriptions[code] = {"uri": envelope["header"].get("sender_uri"), "active": True}
            message = {
                "transaction_id": envelope["message"]["transaction_id"],
                "correlation_id": correlation_id,
                "subscribe_response": [
                    {
                        "reference_id": item["reference_id"],
                        "timestamp": now(),
                        "status": "succ",
                        "subscriptions": [
                            {"code": code, "status": "subscribe", "timestamp": now()}
                        ],
                    }
                ],
            }
            self.transactions[envelope["message"]["transaction_id"]] = {
                "type": "subscribe",
                "message": message,
                "correlation_id": correlation_id,
            }
            self._callback(envelope, "on-subscribe", message)
            return Response(202, ack(correlation_id=correlation_id))

        return await self._guarded(request, False, handle)

    async def unsubscribe(self, request: Request) -> Response:
        async def handle(envelope: dict[str, Any]) -> Response:
            correlation_id = uuid.uuid4().hex
            codes = envelope["message"]["subscription_codes"]
            message: dict[str, Any] = {
                "transaction_id": envelope["message"]["transaction_id"],
                "correlation_id": correlation_id,
                "timestamp": now(),
            }
            known = [c for c in codes if c in self.subscriptions]
            if len(known) != len(codes):
                message |= {
                    "status": "rjct",
                    "status_reason_code": "rjct.subscription_code.invalid",
                }
            elif not all(self.subscriptions[c]["active"] for c in codes):
                message |= {
                    "status": "rjct",
                    "status_reason_code": "rjct.event.already_unsubscribed",
                }
            else:
                for c in codes:
                    self.subscriptions[c]["active"] = False
                message |= {
                    "status": "succ",
                    "subscription_status": [{"code": c, "status": "unsubscribe"} for c in codes],
                }
            self._callback(envelope, "on-unsubscribe", message)
            return Response(202, ack(correlation_id=correlation_id))

        return await self._guarded(request, False, handle)

    async def simulate_event(self, request: Request) -> Response:
        """Stands in for a vital event registered upstream: notify every active subscriber."""
        for code, sub in self.subscriptions.items():
            if not sub["uri"]:
                continue
            if not sub["active"] and "notify_after_unsubscribe" not in self.faults:
                continue
            event: dict[str, Any] = {
                "reference_id": uuid.uuid4().hex,
                "timestamp": now(),
                "subscription_code": code,
                "data": {
                    "reg_event_type": "spdci-common:RegistryEventType:LiveBirth",
                    "reg_record_type": "spdci-extensions-dci:Person",
                    "reg_records": [PEOPLE[0]],
                },
            }
            if "notify_invalid" in self.faults:
                del event["data"]["reg_record_type"]
            if "notify_unlinked" in self.faults:
                del event["subscription_code"]
            message = {"transaction_id": "evt-" + uuid.uuid4().hex, "notify_event": [event]}
            envelope = {"header": {"message_id": code}}
            self._callback(
                envelope, "notify", message, url=sub["uri"].replace("on-subscribe", "notify")
            )
        return Response(200, {"ok": True})
