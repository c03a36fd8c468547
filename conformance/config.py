"""The run configuration: a TOML file (all sections optional) overlaid by CLI flags.

Every field has a default that fits a registry following the standard's paths, so
`dci-conformance run --target URL` works with no file. Unknown keys are errors, named with
their path, so a typo never silently disables a check.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

SignatureScheme = Literal["jws", "dci-signature", "none"]


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Endpoints(_Section):
    """Paths under the target's base URL (registry profile, then client profile)."""

    sync_search: str = "/registry/sync/search"
    search: str = "/registry/search"
    txn_status: str = "/registry/txn/status"
    sync_txn_status: str = "/registry/sync/txn/status"
    subscribe: str = "/registry/subscribe"
    unsubscribe: str = "/registry/unsubscribe"
    token: str = "/oauth2/client/token"  # noqa: S105 - a path, not a secret
    jwks: str = "/.well-known/jwks.json"
    on_search: str = "/registry/on-search"
    on_subscribe: str = "/registry/on-subscribe"
    on_unsubscribe: str = "/registry/on-unsubscribe"
    txn_on_status: str = "/registry/txn/on-status"
    notify: str = "/registry/notify"


class Identity(_Section):
    """Who the tester is towards the target."""

    sender_id: str = "dci-conformance.example.org"
    """`header.sender_id` of every request; register it at the target."""
    receiver_id: str | None = None
    """`header.receiver_id`; the target's id, if it checks it."""
    key_file: str | None = None
    """Private JWK (JSON) from `dci-conformance keys generate`; a fresh key when absent."""
    signature_scheme: SignatureScheme = "jws"
    """How requests are signed: compact JWS (default), the `Signature:` string, or not."""


class Auth(_Section):
    """OAuth2 client credentials (AUTHZ `POST /oauth2/client/token`) or a fixed token."""

    token_url: str | None = None
    """Absolute URL; default is the target base + endpoints.token."""
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    token: str | None = None
    """A ready bearer token; used instead of the token endpoint when set."""


class TargetKeys(_Section):
    jwks_url: str | None = None
    """The target's JWKS; default is the target base + endpoints.jwks."""


class Receiver(_Section):
    """The built-in callback receiver for async cases."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port."""
    public_url: str | None = None
    """Base URL the target must call back, when it cannot reach host:port directly."""
    sender_uri_mode: Literal["exact", "base"] = "exact"
    """`exact`: sender_uri is the full callback URL (spec example); `base`: the base URL."""
    callback_timeout_s: float = 15.0
    quiet_period_s: float = 2.0
    """How long to wait to be sure a callback does NOT come (after unsubscribe)."""


class Notify(_Section):
    """How to make the registry emit an event for the notify cases.

    `${uuid}` (fresh per trigger), `${now}` (RFC 3339 UTC) and `${today}` in the command,
    the URL, header values and string values of `trigger_json` are replaced on each trigger,
    so every call can register a distinct record.
    """

    trigger_command: str | None = None
    """A command (no shell) that registers a vital event upstream; exit 0 means done."""
    trigger_url: str | None = None
    """Absolute URL, or a path under the target, called to register a vital event."""
    trigger_method: str = "POST"
    trigger_json: dict[str, Any] | None = None
    """JSON body of the trigger call (`{}` when absent)."""
    trigger_headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Extra headers of the trigger call (e.g. the upstream's Authorization)."""
    timeout_s: float = 30.0


class Identifier(_Section):
    type: str
    value: str


class Data(_Section):
    """Test data known to the target."""

    registry_type: str = "ns:org:RegistryType:Civil"
    record_type: str = "spdci-extensions-dci:Person"
    event_type: str = "spdci-common:RegistryEventType:LiveBirth"
    existing_identifier: Identifier | None = None
    """An identifier a record exists for (idtype-value positive cases)."""
    missing_identifier: Identifier = msgspec.field(
        default_factory=lambda: Identifier(type="BRN", value="NO-SUCH-RECORD-0000000000")
    )
    expression_query: dict[str, Any] | None = None
    """An `expression` query the target understands (the syntax is implementation-defined)."""
    graphql_query: dict[str, Any] | None = None
    predicate_query: list[dict[str, Any]] = msgspec.field(
        default_factory=lambda: [
            {
                "seq_num": 1,
                "expression1": {
                    "attribute_name": "birth_date",
                    "operator": "ge",
                    "attribute_value": "1900-01-01",
                },
            }
        ]
    )
    """A predicate query matching at least two records (pagination and sorting use it too)."""
    sort_attribute: str = "birth_date"
    """Sort key; records are compared on the same-named field of `reg_records` items."""


class Features(_Section):
    """Optional parts of the standard to test. A disabled feature skips its cases."""

    sync_search: bool = True
    async_search: bool = True
    txn_status: bool = True
    sync_txn_status: bool = True
    subscribe: bool = True
    unsubscribe: bool = True
    notify: bool = True
    """Also needs a [notify] trigger."""
    query_idtype_value: bool = True
    query_expression: bool = True
    query_predicate: bool = True
    query_graphql: bool = False
    pagination: bool = True
    sorting: bool = True
    batch: bool = True
    auth: bool = True
    """Bearer auth enforced on every endpoint (needs credentials for the positive cases)."""
    response_signatures: bool = True
    """The target signs responses and callbacks (verified against its JWKS)."""
    request_signatures: bool = True
    """The target verifies request signatures (tampered/garbage signatures rejected)."""
    unsigned_rejected: bool = True
    """The target refuses unsigned messages (`err.signature.missing`); policy-dependent."""
    replay_protection: bool = True
    """Duplicate message_id and stale message_ts are rejected."""
    content_type: bool = True
    callbacks: bool = True
    """Run the callback receiver; async cases need it."""


class Config(_Section):
    target: str = ""
    """Base URL; endpoint paths are appended."""
    profile: Literal["registry", "client"] = "registry"
    timeout_s: float = 15.0
    verify_tls: bool = True
    openapi_url: str | None = None
    """Optional (absolute or under target): endpoints absent from this OpenAPI document count
    as not advertised."""
    endpoints: Endpoints = msgspec.field(default_factory=Endpoints)
    identity: Identity = msgspec.field(default_factory=Identity)
    auth: Auth = msgspec.field(default_factory=Auth)
    target_keys: TargetKeys = msgspec.field(default_factory=TargetKeys)
    receiver: Receiver = msgspec.field(default_factory=Receiver)
    notify: Notify = msgspec.field(default_factory=Notify)
    data: Data = msgspec.field(default_factory=Data)
    features: Features = msgspec.field(default_factory=Features)

    def url(self, path_or_url: str) -> str:
        if "://" in path_or_url:
            return path_or_url
        return self.target.rstrip("/") + "/" + path_or_url.lstrip("/")

    @property
    def token_url(self) -> str:
        return self.auth.token_url or self.url(self.endpoints.token)

    @property
    def jwks_url(self) -> str:
        return self.target_keys.jwks_url or self.url(self.endpoints.jwks)

    @property
    def has_credentials(self) -> bool:
        return bool(self.auth.token or (self.auth.client_id and self.auth.client_secret))


class ConfigError(ValueError):
    """The configuration file or flags are invalid; the message names the field."""


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read the TOML file (if any), apply dotted-key overrides (`auth.client_id`), validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        config = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
    if not config.target:
        raise ConfigError("no target: pass --target URL or set `target` in the config file")
    return config


EXAMPLE_CONFIG = """\
# dci-conformance configuration. Every key is optional; shown with its default or an example.
target = "https://registry.example.org/dci"
profile = "registry"          # or "client" (tests a social-protection system's callbacks)
timeout_s = 15.0
# openapi_url = "https://registry.example.org/schema/openapi.json"

[endpoints]                   # paths under target
sync_search = "/registry/sync/search"
search = "/registry/search"
txn_status = "/registry/txn/status"
sync_txn_status = "/registry/sync/txn/status"
subscribe = "/registry/subscribe"
unsubscribe = "/registry/unsubscribe"
token = "/oauth2/client/token"
jwks = "/.well-known/jwks.json"

[identity]
sender_id = "dci-conformance.example.org"
# receiver_id = "civilregistry.example.org"
# key_file = "conformance-key.json"     # from `dci-conformance keys generate`
signature_scheme = "jws"                # "jws" | "dci-signature" | "none"

[auth]
# client_id = "conformance"
# client_secret = "..."
# token_url = "https://registry.example.org/dci/oauth2/client/token"

[target_keys]
# jwks_url = "https://registry.example.org/dci/.well-known/jwks.json"

[receiver]
host = "127.0.0.1"
port = 0
# public_url = "https://tester.example.org"   # when the target cannot reach host:port
sender_uri_mode = "exact"
callback_timeout_s = 15.0

[notify]                      # how to make a vital event happen (notify cases)
# trigger_url = "http://localhost:8001/_sim/register"   # e.g. the OpenCRVS simulator
# trigger_json = { event = "birth" }
# trigger_headers = { Authorization = "Bearer ..." }
# trigger_command = "curl -sf -X POST http://localhost:8001/_sim/register -d {}"

[data]
registry_type = "ns:org:RegistryType:Civil"
record_type = "spdci-extensions-dci:Person"
event_type = "spdci-common:RegistryEventType:LiveBirth"
# existing_identifier = { type = "BRN", value = "2024XXXX" }
missing_identifier = { type = "BRN", value = "NO-SUCH-RECORD-0000000000" }
sort_attribute = "birth_date"

[features]                    # optional parts; false skips their cases with a reason
query_graphql = false
# subscribe = false
"""
