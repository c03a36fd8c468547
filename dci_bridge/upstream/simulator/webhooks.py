"""OpenCRVS v1.x webhooks: subscriptions with the verification handshake, and signed deliveries.

Subscribing (digest 3.1) checks, in OpenCRVS's order: topic, active system, `hub.secret`,
`hub.mode`, then the handshake (3.2): `GET <callback>?mode=subscribe&challenge=..&topic=..`
(the query replaces the callback's own), answered `200 {"challenge": <decoded>}`; skipped
for `demo` clients. Delivery (3.3): compact JSON `{timestamp, id, event: {hub: {topic},
context: [bundle]}}`, `X-Hub-Signature` over the raw body, up to 3 immediate attempts and
only when the connection fails (HTTP error statuses are not retried). WEBHOOK clients get
the bundle filtered to the Composition sections they are allowed, plus the Task.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import msgspec

from dci_bridge.clock import isoformat_z
from dci_bridge.records._fhir import Resources, codes, ref_id
from dci_bridge.upstream.simulator.config import Faults, SimClient
from dci_bridge.upstream.webhook_signature import HEADER, webhook_signature

TOPICS = (
    "BIRTH_REGISTERED",
    "DEATH_REGISTERED",
    "BIRTH_CERTIFIED",
    "DEATH_CERTIFIED",
    "BIRTH_CORRECTED",
    "DEATH_CORRECTED",
)
DELIVERY_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    callback: str
    topic: str
    client: SimClient
    created_at: str

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "callback": self.callback,
            "createdAt": self.created_at,
            "createdBy": {
                "client_id": self.client.client_id,
                "name": self.client.name,
                "type": "health" if self.client.type == "HEALTH" else "webhook",
                "username": self.client.name,
            },
            "topic": self.topic,
        }


@dataclass(slots=True)
class Delivery:
    subscription_id: str
    callback: str
    topic: str
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    body: bytes = b""
    signature: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "callback": self.callback,
            "topic": self.topic,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "signature": self.signature,
        }


def _denied(topic: Any, reason: str) -> tuple[int, bytes]:
    body = {"hub": {"mode": "denied", "topic": topic, "reason": reason}}
    return 400, msgspec.json.encode(body)


def handshake_url(callback: str, challenge: str, topic: str) -> str:
    """`?mode=subscribe&challenge=..&topic=..` resolved against the callback (query replaced)."""
    parts = urlsplit(callback)
    query = urlencode({"mode": "subscribe", "challenge": challenge, "topic": topic})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def filter_bundle(bundle: Mapping[str, Any], sections: tuple[str, ...]) -> dict[str, Any]:
    """What a WEBHOOK client receives: resources of the allowed sections and the Task."""
    resources = Resources.of(bundle)
    keep: set[int] = set()
    for composition, _ in resources.of_type("Composition"):
        for section in composition.get("section") or ():
            if not any(code in sections for code in codes(section.get("code"))):
                continue
            for entry in section.get("entry") or ():
                target = resources.resolve(entry.get("reference"))
                if target is not None:
                    keep.add(id(target[0]))
                    if target[0].get("resourceType") == "RelatedPerson":
                        patient = resources.resolve(
                            (target[0].get("patient") or {}).get("reference")
                        )
                        if patient is not None:
                            keep.add(id(patient[0]))
    for task, _ in resources.of_type("Task"):
        keep.add(id(task))
    entries = [
        e
        for e in bundle.get("entry") or ()
        if isinstance(e, Mapping) and id(e.get("resource")) in keep
    ]
    return {**bundle, "entry": entries}


@dataclass(slots=True)
class WebhookHub:
    """Subscriptions of all clients and a log of deliveries (for tests, `/_sim/deliveries`)."""

    http: httpx.AsyncClient
    handshake_timeout_s: float = 5.0
    delivery_timeout_s: float = 10.0
    strict_scope: bool = False
    subscriptions: list[Subscription] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    async def subscribe(self, client: SimClient | None, body: Any) -> tuple[int, bytes]:
        hub = body.get("hub") if isinstance(body, Mapping) else None
        hub = hub if isinstance(hub, Mapping) else {}
        topic = hub.get("topic")
        if topic not in TOPICS:
            return _denied(topic, f"Unsupported topic: {topic}")
        if client is None or client.status != "active":
            return _denied(
                topic,
                "Active system details cannot be found.  This system is no longer authorized",
            )
        if self.strict_scope and client.type not in ("WEBHOOK", "NATIONAL_ID"):
            return _denied(topic, "Insufficient scope")
        if hub.get("secret") != client.sha_secret:
            return _denied(topic, "hub.secret is incorrect")
        if hub.get("mode") != "subscribe":
            return _denied(topic, "hub.mode must be set to subscribe")
        callback = hub.get("callback")
        if not isinstance(callback, str) or not callback.startswith(("http://", "https://")):
            return 400, b"Subscription callback check failed"
        if not client.demo and not await self._handshake(callback, str(topic)):
            return 400, b"Subscription callback check failed"
        created = isoformat_z(dt.datetime.now(dt.UTC))
        self.subscriptions.append(
            Subscription(str(uuid.uuid4()), callback, str(topic), client, created)
        )
        return 202, b""

    async def _handshake(self, callback: str, topic: str) -> bool:
        challenge = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        try:
            answer = await self.http.get(
                handshake_url(callback, challenge, topic), timeout=self.handshake_timeout_s
            )
            if answer.status_code != 200:
                return False
            data = msgspec.json.decode(answer.content)
        except (httpx.HTTPError, msgspec.DecodeError):
            return False
        return isinstance(data, dict) and data.get("challenge") == challenge

    def entries(self, client: SimClient) -> list[dict[str, Any]]:
        return [s.entry() for s in self.subscriptions if s.client.client_id == client.client_id]

    def delete(self, client: SimClient, subscription_id: str) -> bool:
        for sub in self.subscriptions:
            if sub.id == subscription_id and sub.client.client_id == client.client_id:
                self.subscriptions.remove(sub)
                return True
        return False

    async def notify(
        self, topic: str, bundle: Mapping[str, Any], event: str, faults: Faults
    ) -> list[Delivery]:
        """Deliver a registration to every subscriber of `topic`; returns what happened."""
        if faults.webhook_delay_ms:
            await asyncio.sleep(faults.webhook_delay_ms / 1000)
        targets = [s for s in self.subscriptions if s.topic == topic]
        rounds = 2 if faults.webhook_duplicate else 1
        done: list[Delivery] = []
        for _ in range(rounds):
            done.extend(
                await asyncio.gather(*(self._deliver(s, bundle, event, faults) for s in targets))
            )
        self.deliveries.extend(done)
        return done

    async def _deliver(
        self, sub: Subscription, bundle: Mapping[str, Any], event: str, faults: Faults
    ) -> Delivery:
        context = bundle
        if sub.client.type == "WEBHOOK":
            context = filter_bundle(bundle, sub.client.webhook_permissions.get(event, ()))
        payload = {
            "timestamp": isoformat_z(dt.datetime.now(dt.UTC)),
            "id": sub.id,
            "event": {"hub": {"topic": sub.topic}, "context": [context]},
        }
        body = msgspec.json.encode(payload)
        secret = sub.client.sha_secret
        if faults.webhook_bad_signature:
            secret = "not-" + secret
        signature = webhook_signature(secret, body)
        delivery = Delivery(sub.id, sub.callback, sub.topic, body=body, signature=signature)
        headers = {"Content-Type": "application/json", HEADER: signature}
        for _ in range(DELIVERY_ATTEMPTS):
            delivery.attempts += 1
            try:
                answer = await self.http.post(
                    sub.callback, content=body, headers=headers, timeout=self.delivery_timeout_s
                )
            except httpx.HTTPError as exc:
                delivery.error = type(exc).__name__
                continue
            delivery.status, delivery.error = answer.status_code, None
            break
        return delivery


def task_ids(bundle: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(record id, Task id) of a bundle, for logs and answers."""
    resources = Resources.of(bundle)
    for task, _ in resources.of_type("Task"):
        return ref_id((task.get("focus") or {}).get("reference")), task.get("id")
    return None, None
