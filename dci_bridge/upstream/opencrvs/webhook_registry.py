"""Registering the bridge's webhook with an OpenCRVS v1.x (digest 3.1).

`GET {webhooks}/webhooks` lists the integration's own subscriptions (`{"entries": [{id,
callback, createdAt, createdBy, topic}]}`); `POST {webhooks}/webhooks` with
`{"hub": {callback, mode: "subscribe", topic, secret: <sha_secret>}}` subscribes one topic
(202, empty body, after OpenCRVS' verification handshake with our receiver);
`DELETE {webhooks}/webhooks/{id}` removes one (204). OpenCRVS has no "already subscribed"
check, so `ensure` lists first and subscribes only the topics not yet present for the same
callback. All calls carry the WEBHOOK (or NATIONAL_ID) integration's system token; an
"Unauthorized" answer renews it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

from dci_bridge.errors import UpstreamError
from dci_bridge.upstream.opencrvs.auth import TokenProvider
from dci_bridge.upstream.opencrvs.http import TransportError, TransportTimeout, UpstreamHttp

REGISTERED_TOPICS = ("BIRTH_REGISTERED", "DEATH_REGISTERED")
"""The topics OpenCRVS v1.x actually fires (the others are accepted but never sent)."""


class _Entry(msgspec.Struct, rename="camel"):
    id: str
    callback: str
    topic: str
    created_at: str | None = None


class _Listing(msgspec.Struct):
    entries: list[_Entry]


class _Denied(msgspec.Struct):
    hub: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    id: str
    callback: str
    topic: str
    created_at: str | None


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    topic: str
    status: Literal["subscribed", "already subscribed"]
    subscription_id: str | None = None


def same_callback(a: str, b: str) -> bool:
    """Callback URLs compare equal apart from a trailing slash."""
    return a.rstrip("/") == b.rstrip("/")


class WebhookRegistry:
    """The webhook subscriptions of one OpenCRVS integration."""

    def __init__(
        self, http: UpstreamHttp, tokens: TokenProvider, *, webhooks_url: str, timeout_s: float
    ) -> None:
        self._http = http
        self._tokens = tokens
        self._url = webhooks_url.rstrip("/") + "/webhooks"
        self._timeout_s = timeout_s

    async def _call(self, method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
        token = await self._token(None)
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                status, content = await self._http.request(
                    method, url, body=body, headers=headers, timeout_s=self._timeout_s
                )
            except TransportTimeout:
                raise UpstreamError(
                    f"OpenCRVS webhooks service at {url} did not answer within"
                    f" {self._timeout_s:g} s"
                ) from None
            except TransportError as exc:
                raise UpstreamError(
                    f"OpenCRVS webhooks service at {url} is unreachable ({exc})"
                ) from None
            if status == 401 and attempt == 0:
                token = await self._token(token)
                continue
            return status, content
        raise UpstreamError(f"OpenCRVS refused the integration's token at {url} (HTTP 401)")

    async def _token(self, stale: str | None) -> str:
        try:
            if stale is None:
                return await self._tokens.get()
            return await self._tokens.renew(stale)
        except TransportTimeout:
            raise UpstreamError("OpenCRVS auth service did not answer in time") from None
        except TransportError as exc:
            raise UpstreamError(f"OpenCRVS auth service is unreachable ({exc})") from None

    async def subscriptions(self) -> list[WebhookSubscription]:
        """This integration's subscriptions (OpenCRVS shows each client only its own)."""
        status, content = await self._call("GET", self._url)
        if status != 200:
            raise UpstreamError(f"listing webhooks: OpenCRVS answered HTTP {status}")
        try:
            listing = msgspec.json.decode(content, type=_Listing)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise UpstreamError("listing webhooks: OpenCRVS answered an unreadable body") from None
        return [
            WebhookSubscription(e.id, e.callback, e.topic, e.created_at) for e in listing.entries
        ]

    async def subscribe(self, callback: str, topic: str, sha_secret: str) -> None:
        """Subscribe one topic; OpenCRVS checks our receiver with its handshake first."""
        hub = {"callback": callback, "mode": "subscribe", "topic": topic, "secret": sha_secret}
        status, content = await self._call("POST", self._url, msgspec.json.encode({"hub": hub}))
        if status in (200, 201, 202):
            return
        raise UpstreamError(f"subscribing {topic}: {_refusal(status, content, callback)}")

    async def delete(self, subscription_id: str) -> None:
        status, _ = await self._call("DELETE", f"{self._url}/{subscription_id}")
        if status == 404:
            raise UpstreamError(f"OpenCRVS has no webhook subscription {subscription_id}")
        if status not in (200, 202, 204):
            raise UpstreamError(f"deleting webhook {subscription_id}: OpenCRVS answered {status}")

    async def ensure(
        self, callback: str, topics: Iterable[str], sha_secret: str
    ) -> list[TopicOutcome]:
        """Subscribe `callback` to each topic not already subscribed for it (listed first)."""
        existing = {
            s.topic: s for s in await self.subscriptions() if same_callback(s.callback, callback)
        }
        outcomes: list[TopicOutcome] = []
        for topic in dict.fromkeys(topics):  # each topic once, in the order given
            if topic in existing:
                outcomes.append(TopicOutcome(topic, "already subscribed", existing[topic].id))
                continue
            await self.subscribe(callback, topic, sha_secret)
            outcomes.append(TopicOutcome(topic, "subscribed", None))
        created = [o.topic for o in outcomes if o.status == "subscribed"]
        if created:  # OpenCRVS answers 202 without the id: read it back
            ids: Mapping[str, str] = {
                s.topic: s.id
                for s in await self.subscriptions()
                if same_callback(s.callback, callback)
            }
            outcomes = [
                TopicOutcome(o.topic, o.status, o.subscription_id or ids.get(o.topic))
                for o in outcomes
            ]
        return outcomes


def _refusal(status: int, content: bytes, callback: str) -> str:
    """OpenCRVS' reason for refusing a subscription, in words an operator can act on."""
    if status == 400 and content.startswith(b"Subscription callback check failed"):
        return (
            f"OpenCRVS could not verify the callback {callback} (its handshake GET got no"
            " matching challenge): is the bridge reachable from OpenCRVS at that URL?"
        )
    try:
        reason = msgspec.json.decode(content, type=_Denied).hub.get("reason")
    except (msgspec.DecodeError, msgspec.ValidationError):
        reason = None
    if reason:
        return f"OpenCRVS denied it: {reason}"
    return f"OpenCRVS answered HTTP {status}"
