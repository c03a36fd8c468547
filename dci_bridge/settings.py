"""The one Settings object, read once from the environment (and CLI flags) and passed down.

Environment variables are `DCI_BRIDGE_<GROUP>__<FIELD>` in upper case, for example
`DCI_BRIDGE_DATABASE__URL` or `DCI_BRIDGE_SEARCH__MAX_PAGE_SIZE`. This module is the only
reader of `os.environ`; `Settings.from_env` takes the mapping as an argument so tests pass a
dict. Invalid values fail at start with a message naming the variable, the value and what
is expected.

Adding a group: a frozen `msgspec.Struct` (kw_only, forbid_unknown_fields) whose docstring
says what the group configures and whose every field has a default and a docstring (the
string literal right under it), plus one field on `Settings`. docs/configuration.md is
generated from these (`scripts/export_config_docs.py`; a test fails when it is stale).
Cross-field rules go in `__post_init__` and raise `ValueError` with a sentence naming the
variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

ENV_PREFIX = "DCI_BRIDGE_"
DEFAULT_DATA_DIR = Path("data")

Port = Annotated[int, Meta(ge=0, le=65535)]
Positive = Annotated[int, Meta(ge=1)]
Seconds = Annotated[float, Meta(gt=0, le=3600)]


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The database: the embedded record store and all of the bridge's own state."""

    url: str = ""
    """SQLAlchemy URL of the embedded store; empty means a SQLite file in the data directory."""
    pool_size: Positive = 5
    """Connections per process (PostgreSQL)."""
    migrate_on_start: bool = True
    """Apply database migrations when the server starts (turn off to migrate separately)."""


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The HTTP server run by `dci-bridge serve` and `dci-bridge demo`."""

    host: str = "127.0.0.1"
    """Address `dci-bridge serve` listens on."""
    port: Port = 8000
    """Port `dci-bridge serve` listens on."""
    workers: Positive = 1
    """Server worker processes."""
    max_body_bytes: Positive = 1_048_576
    """Largest accepted request body; larger bodies get HTTP 413 with `err.request.bad`."""
    base_path: Annotated[str, Meta(pattern=r"^(/[A-Za-z0-9._~-]+)*$")] = ""
    """Path prefix in front of the DCI registry endpoints (`/registry/...`; the standard leaves
    it to the deployment), e.g. `/dci`: one or more `/segment`s, no trailing slash. The token
    endpoint, JWKS, webhooks and operations endpoints keep their paths."""
    graceful_timeout_s: Annotated[int, Meta(ge=0)] = 20
    """On SIGTERM: seconds to let in-flight requests finish before they are cut off."""
    fast_routes: bool = True
    """Answer the hottest route (`POST /registry/sync/search`) before the web framework's
    router: the same answers for about 0.1 ms less CPU per request (false: route it too)."""
    gc_threshold: Annotated[int, Meta(ge=0)] = 10_000
    """Server workers: allocations between two collections of Python's youngest garbage
    generation (Python's default is 700; 0 keeps Python's settings). What the worker built
    at start is also frozen out of collections (`gc.freeze`). Measured: 8% fewer CPU
    instructions per search."""


class SearchSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits of DCI searches (sync and async)."""

    default_page_size: Positive = 10
    """Page size when a search names none."""
    max_page_size: Positive = 100
    """Largest page size a search may ask for; more is rejected with rjct.pagination.invalid."""
    max_batch_items: Positive = 50
    """Most search_request items in one envelope; more: rjct.total_count.limit_exceeded."""
    max_total_count: Positive = 10_000
    """Most matches a search may have before it is rejected with too_many_records_found."""

    def __post_init__(self) -> None:
        if self.default_page_size > self.max_page_size:
            raise ValueError(
                f"DCI_BRIDGE_SEARCH__DEFAULT_PAGE_SIZE ({self.default_page_size}) must not"
                f" exceed DCI_BRIDGE_SEARCH__MAX_PAGE_SIZE ({self.max_page_size})"
            )


class RegistrySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who this bridge is on the DCI wire."""

    registry_id: str = "crvs.dci-bridge.local"
    """Our id on the wire: `receiver_id` we accept and `sender_id` of what we send."""


class LogSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Process logs (configured by `dci-bridge serve` and `demo`). Never personal data."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level written; `info` writes one line per request."""
    format: Literal["json", "text"] = "json"
    """`json`: one JSON object per line (for log collectors); `text`: for people."""


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Prometheus metrics at `/metrics`."""

    enabled: bool = True
    """Serve `/metrics` and count requests (off: `/metrics` answers 404)."""
    multiprocess_dir: str = ""
    """Directory for per-worker metric files when `server.workers` > 1 (emptied at start; one
    per `serve` process, never shared by replicas); empty: a new temporary directory."""


class AuditSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The audit trail: who searched what, for which purpose, and what they were given."""

    enabled: bool = True
    """Record every search and notification in the `audit_event` table."""
    flush_interval_ms: Annotated[int, Meta(ge=10, le=60_000)] = 500
    """Audit rows are written in batches at most this long after the request."""
    batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 500
    """A batch is written at once when it reaches this many rows."""


class DeliverySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Async callbacks and notifications: the outbox worker and the callback sender."""

    worker: bool = True
    """Run the delivery worker in this process (the database coordinates several processes)."""
    poll_interval_s: Annotated[float, Meta(gt=0, le=60)] = 0.5
    """How often the worker looks for due jobs (it is also woken when this process enqueues)."""
    batch_size: Annotated[int, Meta(ge=1, le=1000)] = 100
    """Most jobs claimed in one go."""
    max_in_flight: Annotated[int, Meta(ge=1, le=10_000)] = 256
    """Most jobs one process works on at once."""
    lease_s: Annotated[float, Meta(gt=0)] = 60.0
    """How long a claimed job stays reserved; longer than `timeout_s`. A process killed while
    holding jobs delays them by at most this long (then another process retries them)."""
    timeout_s: Annotated[float, Meta(gt=0, le=300)] = 15.0
    """Total time one callback attempt may take (connect, send, answer)."""
    max_response_bytes: Annotated[int, Meta(ge=0, le=16_777_216)] = 65_536
    """How much of a callback receiver's answer is read; the rest is discarded."""
    allow_private_addresses: bool = False
    """Allow callbacks to loopback, private, link-local and other non-global addresses
    (tests and the demo run on loopback). Never in production."""
    callback_prefixes: str = ""
    """Comma-separated URL prefixes every sender may use as callback (in addition to the
    prefixes registered per sender)."""
    default_callback_url: str = ""
    """Callback URL for requests without `sender_uri` when the sender has no default."""
    max_async_records: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    """Most records an async search item delivers, over several on-search pages."""
    retention_days: Annotated[float, Meta(gt=0)] = 7.0
    """Finished jobs, their attempts and transactions are pruned after this many days."""

    def __post_init__(self) -> None:
        if self.lease_s < self.timeout_s + 5:
            raise ValueError("delivery lease_s must be at least timeout_s + 5 seconds")


SigningAlgorithm = Literal["EdDSA", "ES256", "RS256"]
PositiveSeconds = Annotated[float, Meta(gt=0)]


class SecuritySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Message security: bearer tokens, signatures, the bridge's keys, replay guard, JWE."""

    enabled: bool = True
    """Require a bearer token and a valid message signature on every registry endpoint and
    sign every response. Turn off only for local experiments and benchmarks."""
    keys_dir: str = ""
    """Directory of the bridge's keys (created on first start); empty: `<data_dir>/keys`."""
    algorithm: SigningAlgorithm = "EdDSA"
    """Algorithm of generated signing keys: EdDSA (Ed25519), ES256 or RS256."""
    signing_key: str = ""
    """A private signing key (JWK or PEM text) to use instead of the key directory's."""
    next_signing_key: str = ""
    """The next signing key (published ahead of use) when `signing_key` is configured."""
    encryption_key: str = ""
    """A private RSA key (JWK or PEM) for JWE instead of the key directory's."""
    key_overlap_s: PositiveSeconds = 172_800.0
    """How long a retired key still verifies and decrypts after `dci-bridge keys rotate`."""
    keys_refresh_s: PositiveSeconds = 1.0
    """How often a server re-reads the key directory (another process may have rotated)."""
    token_ttl_s: Annotated[int, Meta(ge=30, le=86_400)] = 900
    """Lifetime of the access tokens `POST /oauth2/client/token` issues."""
    issuer: str = ""
    """`iss` of our access tokens; empty: the registry id."""
    audience: str = ""
    """`aud` our access tokens carry and we require; empty: the registry id."""
    timestamp_window_s: Annotated[int, Meta(ge=1, le=86_400)] = 300
    """A request's `message_ts` may be this far in the past or future (replay guard)."""
    jwks_fetch_timeout_s: PositiveSeconds = 2.0
    """Whole-exchange timeout when fetching a sender's JWKS URL."""
    jwks_cache_ttl_s: PositiveSeconds = 300.0
    """How long a fetched sender JWKS is used before it is fetched again."""
    jwks_refetch_cooldown_s: PositiveSeconds = 30.0
    """At most one refetch per sender in this time (unknown kid, failed fetch)."""
    jwks_max_bytes: Positive = 65_536
    """Largest sender JWKS document read."""
    sender_cache_ttl_s: PositiveSeconds = 5.0
    """How long a server caches a sender's registration (changes by the CLI show after it)."""
    max_encrypted_bytes: Positive = 1_048_576
    """Largest decrypted message accepted from an encrypted request."""


class UpstreamSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The record source: the embedded store, or a live OpenCRVS reached through its APIs."""

    source: Literal["embedded", "opencrvs"] = "embedded"
    """Where searches are answered: the embedded store, or a live OpenCRVS."""
    generation: Literal["v1", "v2"] = "v1"
    """OpenCRVS API generation: v1 (v1.3-v1.8: GraphQL and webhooks) or v2 (events API)."""
    auth_url: str = "http://localhost:4040"
    """OpenCRVS auth service (`POST {auth_url}/token`)."""
    gateway_url: str = "http://localhost:7070"
    """OpenCRVS gateway (`/graphql`, `/location`; in v2 the events API under `events_prefix`)."""
    webhooks_url: str = "http://localhost:2525"
    """OpenCRVS webhooks service (v1 subscriptions)."""
    events_prefix: str = "/events"
    """v2: path of the events API on the gateway (`/events`, or `/api/events` on the main host)."""
    client_id: str = ""
    """Client id of the RECORD_SEARCH integration (v2: an integration with record.search)."""
    client_secret: str = ""
    """Client secret of that integration."""
    legacy_auth: bool = False
    """Use `POST /authenticateSystemClient` (OpenCRVS v1.2 and older) instead of `/token`."""
    timeout_s: Seconds = 5.0
    """Per upstream call; a search answers within a few times this or fails with HTTP 504."""
    concurrency: Positive = 8
    """Record fetches in flight at once per search (OpenCRVS v1 fetches one record per call)."""
    max_connections: Positive = 32
    """Connections to OpenCRVS shared by all searches of one worker."""
    max_linked_records: Positive = 50
    """Most records gathered for one identifier search; more is rejected as too many."""
    breaker_failures: Positive = 5
    """Consecutive upstream failures that open the circuit breaker (fail fast with 503)."""
    breaker_reset_s: Seconds = 15.0
    """How long an open breaker fails fast before it lets one trial call through."""
    token_refresh_margin_s: Annotated[float, Meta(ge=0, le=600)] = 60.0
    """Renew the system token when fewer seconds than this remain before it expires."""

    def __post_init__(self) -> None:
        if self.source != "opencrvs":
            return
        if not self.client_id or not self.client_secret:
            raise ValueError(
                "the OpenCRVS source (DCI_BRIDGE_UPSTREAM__SOURCE=opencrvs) needs"
                " DCI_BRIDGE_UPSTREAM__CLIENT_ID and DCI_BRIDGE_UPSTREAM__CLIENT_SECRET"
            )
        for name in ("auth_url", "gateway_url"):
            if not getattr(self, name).startswith(("http://", "https://")):
                raise ValueError(f"DCI_BRIDGE_UPSTREAM__{name.upper()} must be an http(s) URL")


class PolicySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-sender disclosure policies (`dci-bridge policy ...`)."""

    enforce: bool = True
    """Apply per-sender disclosure policies (a sender without one is refused). `false` lets
    every sender learn everything: for benchmarks and closed test set-ups only."""
    cache_ttl_s: Annotated[float, Meta(ge=0, le=300)] = 5.0
    """How long a server process keeps a sender's policy before reading it again."""
    rate_processes: Annotated[int, Meta(ge=1, le=10_000)] = 1
    """Server processes (replicas x workers) sharing each sender's `requests_per_minute`:
    rate limits count per process, and each refills at 1/N of the figure, so the deployment
    allows about the figure behind an even load balancer. 1: each process allows all of it."""


class OpencrvsWebhookSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """OpenCRVS -> bridge: the v1.x webhook receiver and the v2 lifecycle-hook receiver."""

    sha_secret: str = ""
    """The WEBHOOK integration's sha_secret; empty switches `/opencrvs/webhooks` off (503)."""
    client_id: str = ""
    """Client id of the WEBHOOK (or NATIONAL_ID) integration (`dci-bridge opencrvs subscribe`)."""
    client_secret: str = ""
    """Client secret of that integration."""
    callback_url: str = ""
    """The bridge's `/opencrvs/webhooks` URL as OpenCRVS reaches it (empty: server host:port)."""
    v2_token: str = ""
    """Bearer token a v2 country-config hook must send to `/trigger/events/...`; empty: off."""
    v2_field_map: str = ""
    """JSON object overriding the v2 declaration field ids (defaults: Farajaland)."""
    process_batch: Positive = 20
    """Inbox rows processed per transaction-loop pass."""
    retry_failed_after_s: Positive = 60
    """A delivery whose processing failed is retried after this many seconds (then quarantined)."""
    max_attempts: Positive = 3
    """Processing attempts before an inbox row is quarantined as failed."""


class SubscriptionSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """DCI subscriptions: limits, lifetime and batching."""

    max_per_sender: Positive = 100
    """Active subscriptions one sender may hold; more are rejected per item."""
    max_lifetime_days: Positive = 366
    """Subscriptions without an end time expire after this many days."""
    max_batch_events: Positive = 100
    """Most notify_event items in one batched notify message."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Top-level settings."""

    data_dir: str = str(DEFAULT_DATA_DIR)
    """Directory for the default SQLite store, keys and other local state."""
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    search: SearchSettings = msgspec.field(default_factory=SearchSettings)
    registry: RegistrySettings = msgspec.field(default_factory=RegistrySettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    audit: AuditSettings = msgspec.field(default_factory=AuditSettings)
    delivery: DeliverySettings = msgspec.field(default_factory=DeliverySettings)
    security: SecuritySettings = msgspec.field(default_factory=SecuritySettings)
    upstream: UpstreamSettings = msgspec.field(default_factory=UpstreamSettings)
    policy: PolicySettings = msgspec.field(default_factory=PolicySettings)
    opencrvs_webhook: OpencrvsWebhookSettings = msgspec.field(
        default_factory=OpencrvsWebhookSettings
    )
    subscriptions: SubscriptionSettings = msgspec.field(default_factory=SubscriptionSettings)

    @property
    def database_url(self) -> str:
        """The store's URL: the configured one, or a SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'dci-bridge.sqlite3'}"

    @property
    def keys_dir(self) -> Path:
        """The bridge's key directory: the configured one or `<data_dir>/keys`."""
        return Path(self.security.keys_dir or Path(self.data_dir) / "keys")

    @property
    def token_issuer(self) -> str:
        return self.security.issuer or self.registry.registry_id

    @property
    def token_audience(self) -> str:
        return self.security.audience or self.registry.registry_id

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `DCI_BRIDGE_*` variables, then apply `overrides` (CLI flags).

        `overrides` keys are `field` or `group__field`. Raises `SettingsError`.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for key, value in env.items():
            if key.startswith(ENV_PREFIX):
                _put(raw, key[len(ENV_PREFIX) :].lower(), value, source=key)
        for key, value in overrides.items():
            if value is not None:
                _put(raw, key.lower(), value, source=f"option {key}")
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_explain(str(exc), raw)) from None


class SettingsError(ValueError):
    """Invalid configuration: the message names the variable and what is wrong."""


def _put(raw: dict[str, Any], dotted: str, value: Any, *, source: str) -> None:
    parts = dotted.split("__")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SettingsError(f"{source}: {part} is not a group of settings")
        node = child
    node[parts[-1]] = value


def _explain(message: str, raw: Mapping[str, Any]) -> str:
    """Turn msgspec's message into one naming the variable, the value and what is expected."""
    text, _, path = message.partition(" - at `$.")
    parts = path.rstrip("`").split(".") if path else []
    if text.startswith("Object contains unknown field `"):
        parts = [*parts, text.split("`")[1]]
        variable = _variable(parts)
        hint = _suggest(parts)
        return f"unknown setting {variable}" + (f"; did you mean {hint}?" if hint else "")
    if not parts:  # a cross-field rule of the top level (__post_init__)
        return text
    variable = _variable(parts)
    value: Any = raw
    for part in parts:
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, Mapping) and text.endswith("got `object`"):
        return f"{variable} is a single setting, not a group: remove {variable}__*"
    if isinstance(value, Mapping) and not text.startswith("Expected `object`"):
        return text  # a group's __post_init__ rule: its message names the variables
    shown = f"={value!r}" if value is not None and not isinstance(value, Mapping) else ""
    if text.startswith("Expected `object`"):
        return f"{variable}{shown}: {variable} is a group; set {variable}__<FIELD> instead"
    return f"{variable}{shown}: {_expected(text)}"


def _variable(parts: list[str]) -> str:
    return ENV_PREFIX + "__".join(parts).upper()


def _expected(text: str) -> str:
    replacements = {
        "Expected `int`": "expected a whole number",
        "Expected `float`": "expected a number",
        "Expected `bool`": "expected true or false",
        "Expected `str`": "expected text",
    }
    for old, new in replacements.items():
        if text.startswith(old):
            rest = text[len(old) :].split(", got", 1)[0].strip()
            return f"{new} {rest}".strip() if rest else new
    if text.startswith("Invalid enum value"):
        return f"{text.lower()}; see docs/configuration.md for the allowed values"
    return text


def _suggest(parts: list[str]) -> str | None:
    """The nearest known variable name for a misspelt one."""
    import difflib

    known = [variable for variable, _ in _all_variables(Settings)]
    match = difflib.get_close_matches(_variable(parts), known, n=1, cutoff=0.75)
    return match[0] if match else None


def known_variables() -> set[str]:
    """Every environment variable `Settings` reads (for tools checking deployment files)."""
    return {variable for variable, _ in _all_variables(Settings)}


def _all_variables(
    struct: type[msgspec.Struct], prefix: tuple[str, ...] = ()
) -> list[tuple[str, Any]]:
    """Every leaf setting as (environment variable, msgspec field info)."""
    out: list[tuple[str, Any]] = []
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        path = (*prefix, field.name)
        if isinstance(field.type, msgspec.inspect.StructType):
            out.extend(_all_variables(field.type.cls, path))
        else:
            out.append((_variable(list(path)), field))
    return out
