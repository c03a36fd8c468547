"""What a simulated OpenCRVS holds: its integrations (system clients), population and faults.

`SimClient` is what a national system admin's "integration" gives a deployment (OpenCRVS
digest 1.1): `client_id`, `client_secret`, `sha_secret`, a type fixing its scope, a status
and a daily search quota. `Faults` are the switches tests turn at run time (`POST
/_sim/faults` or `OpenCrvsSimulator.faults`): latency, 5xx answers, hangs, malformed
bodies, expired tokens, quota errors.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ClientType = Literal["RECORD_SEARCH", "WEBHOOK", "NATIONAL_ID", "HEALTH"]
Generation = Literal["v1", "v2"]
QuotaStyle = Literal["v1.3", "v1.5", "v1.7"]
MalformedKind = Literal["json", "graphql"]

SCOPES: dict[str, str] = {
    "RECORD_SEARCH": "recordsearch",
    "WEBHOOK": "webhook",
    "NATIONAL_ID": "nationalId",
    "HEALTH": "notification-api",
}
V2_SCOPES = ("record.search", "record.read")

DEFAULT_SECTIONS: dict[str, tuple[str, ...]] = {
    "birth": ("child-details", "mother-details", "father-details", "birth-encounter"),
    "death": ("deceased-details", "death-encounter"),
}
"""Composition sections a WEBHOOK integration receives by default, per event."""


class SimClient(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    client_secret: str
    sha_secret: str
    type: ClientType = "RECORD_SEARCH"
    name: str = "dci-bridge"
    status: Literal["active", "deactivated"] = "active"
    daily_quota: int = 2000
    demo: bool = False
    """Dev/QA installs add scope `demo`, which skips the webhook verification handshake."""
    webhook_permissions: dict[str, tuple[str, ...]] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_SECTIONS)
    )
    system_id: str = ""
    """The integration's internal id (`sub` of its tokens); derived from client_id if empty."""

    @property
    def scopes(self) -> list[str]:
        scopes = [SCOPES[self.type]]
        if self.demo:
            scopes.append("demo")
        return scopes


# Fixed demo integrations (UUIDv4 strings, as OpenCRVS mints them). Tests and the demo use
# them; they are public test values, not secrets of any deployment.
SEARCH_CLIENT = SimClient(
    client_id="3b8a1f2e-5c4d-4e6f-8a9b-0c1d2e3f4a5b",
    client_secret="9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",  # noqa: S106
    sha_secret="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",  # noqa: S106
    type="RECORD_SEARCH",
    name="dci-bridge search",
)
WEBHOOK_CLIENT = SimClient(
    client_id="7c6b5a49-3827-4165-9e8d-7c6b5a493827",
    client_secret="0d1c2b3a-4958-4776-a5b4-c3d2e1f0a9b8",  # noqa: S106
    sha_secret="c0ffee00-1111-4222-8333-444455556666",  # noqa: S106
    type="NATIONAL_ID",
    name="dci-bridge notify",
)


class Faults(msgspec.Struct, kw_only=True):
    """Fault switches; counts apply to the next N upstream API calls (not `/_sim/*`).

    `scope` picks the calls a fault hits: `api` (search, fetch, events), `token`, or `all`.
    """

    latency_ms: float = 0.0
    """Added to every answer (all endpoints except `/_sim/*`)."""
    fail_next: int = 0
    """Answer the next N calls with `fail_status` and an OpenCRVS-like error body."""
    fail_status: int = 503
    hang_next: int = 0
    """Do not answer the next N calls for `hang_s` seconds (client timeouts)."""
    hang_s: float = 30.0
    malformed_next: int = 0
    """Answer the next N calls with a broken body: `json` (not JSON) or `graphql` (wrong shape)."""
    malformed_kind: MalformedKind = "json"
    scope: Literal["api", "token", "all"] = "api"
    quota_style: QuotaStyle = "v1.7"
    """Shape of the daily-quota error: v1.3-1.4 generic, v1.5-1.6 DAILY_QUOTA_EXCEEDED,
    v1.7+ RATE_LIMIT_EXCEEDED with HTTP 429."""
    quota_exceeded: bool = False
    """Force the quota error for every search (as if every client were over its quota)."""
    token_ttl_s: int = 600
    """Lifetime of new tokens (OpenCRVS system tokens: 600 s)."""
    webhook_bad_signature: bool = False
    """Sign deliveries with a wrong secret."""
    webhook_duplicate: bool = False
    """Deliver every notification twice (at-least-once)."""
    webhook_delay_ms: float = 0.0
    """Wait before delivering a notification."""


class SimulatorConfig(msgspec.Struct, kw_only=True):
    generation: Generation = "v1"
    persons: int = 1500
    seed: int = 20261123
    clients: tuple[SimClient, ...] = (SEARCH_CLIENT, WEBHOOK_CLIENT)
    strict_webhook_scope: bool = False
    """Refuse webhook subscriptions from clients without `webhook`/`nationalId` scope."""
    handshake_timeout_s: float = 5.0
    delivery_timeout_s: float = 10.0
    hook_url: str = ""
    """v2: base URL of the country-config lifecycle hook receiver (`/trigger/events/...`)."""
    base_url: str = ""
    """Our own public URL (for `fullUrl`s of the Location API); empty: from the request."""
    faults: Faults = msgspec.field(default_factory=Faults)
