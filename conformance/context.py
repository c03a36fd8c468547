"""What a case gets: the run's environment (keys, HTTP, receiver, schemas) and its own record.

`RunEnvironment` lives for the whole run; `CaseContext` for one case and records every HTTP
exchange the case makes, so a failure's report shows exactly what was sent and received.
"""

from __future__ import annotations

import json
import shlex
import string
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import httpx

from conformance.checks import Check, Failure, Severity, Skip
from conformance.client import DciClient, TokenError
from conformance.config import Config
from conformance.envelopes import Builder, CallbackBuilder
from conformance.evidence import Exchange
from conformance.receiver import Callback, Matcher, Receiver
from conformance.schemas import SchemaSet
from conformance.signing import JwksVerifier, TesterKeys

T = TypeVar("T")

FEATURE_ENDPOINTS = {
    "sync_search": "sync_search",
    "async_search": "search",
    "txn_status": "txn_status",
    "sync_txn_status": "sync_txn_status",
    "subscribe": "subscribe",
    "unsubscribe": "unsubscribe",
}
"""Feature -> endpoint whose absence from the target's OpenAPI makes it "not advertised"."""


class RunEnvironment:
    """Shared by every case of a run."""

    def __init__(
        self,
        config: Config,
        keys: TesterKeys,
        http: httpx.Client,
        schemas: SchemaSet,
        receiver: Receiver | None = None,
        advertised_paths: set[str] | None = None,
    ) -> None:
        self.config = config
        self.keys = keys
        self.http = http
        self.schemas = schemas
        self.receiver = receiver
        self.advertised_paths = advertised_paths
        self.shared: dict[str, Any] = {}
        self._verifier: JwksVerifier | None = None
        self._verifier_error: Failure | None = None

    def verifier(self, client: DciClient) -> JwksVerifier:
        """The target's JWKS, fetched once; a failure to fetch fails every signature case."""
        if self._verifier is not None:
            return self._verifier
        if self._verifier_error is not None:
            raise self._verifier_error
        exchange = client.get(self.config.jwks_url, label="jwks")
        body = exchange.response_json
        if exchange.status != 200 or not isinstance(body, dict):
            self._verifier_error = Failure(
                "Target JWKS unavailable",
                f"Expected HTTP 200 with a JWKS at {self.config.jwks_url}, "
                f"got {exchange.summary()}",
                severity=Severity.HIGH,
                exchange=exchange,
            )
            raise self._verifier_error
        self._verifier = JwksVerifier(body)
        return self._verifier


class CaseContext:
    """One case's view of the run, with helpers to send, wait and fail."""

    def __init__(self, env: RunEnvironment, case: Check) -> None:
        self.env = env
        self.case = case
        self.config = env.config
        self.exchanges: list[Exchange] = []
        self.warnings: list[str] = []
        self.failures: list[Failure] = []
        """Soft failures recorded without stopping the case (fuzzing collects many)."""
        self.client = DciClient(env.config, env.keys, env.http, self.exchanges.append)
        self.receiver = env.receiver
        self.schemas = env.schemas
        self.build = Builder(env.config, self._sender_uri)
        self.callbacks = CallbackBuilder(env.config)

    def _sender_uri(self, action: str) -> str | None:
        return self.receiver.sender_uri(action) if self.receiver else None

    # -- preconditions --------------------------------------------------------------------
    def feature_unavailable(self, name: str) -> str | None:
        """Why a feature cannot be tested here, or None."""
        features = self.config.features
        if name == "credentials":
            if not self.config.has_credentials:
                return "no credentials configured ([auth] client_id/client_secret or token)"
            return None
        if name == "token_endpoint":
            if not (self.config.auth.client_id and self.config.auth.client_secret):
                return "no client credentials configured for the token endpoint"
            return None
        if name == "notify_trigger":
            if not (self.config.notify.trigger_command or self.config.notify.trigger_url):
                return "no event trigger configured ([notify] trigger_command or trigger_url)"
            return None
        if name == "dci_signature_scheme":
            if self.config.identity.signature_scheme != "dci-signature":
                return "identity.signature_scheme is not dci-signature"
            return None
        if not hasattr(features, name):
            raise KeyError(f"unknown feature {name!r}")
        if not getattr(features, name):
            return f"feature `{name}` is disabled in the configuration"
        endpoint = FEATURE_ENDPOINTS.get(name)
        paths = self.env.advertised_paths
        if endpoint and paths is not None:
            path = getattr(self.config.endpoints, endpoint)
            if not any(p.endswith(path) for p in paths):
                return f"the target's OpenAPI does not advertise {path}"
        return None

    def has_data(self, name: str) -> bool:
        return getattr(self.config.data, name, None) not in (None, "", [], {})

    # -- outcomes -------------------------------------------------------------------------
    def fail(
        self,
        title: str,
        message: str,
        *,
        severity: Severity = Severity.HIGH,
        exchange: Exchange | None = None,
        expected: str | None = None,
    ) -> NoReturn:
        raise Failure(title, message, severity=severity, exchange=exchange, expected=expected)

    def skip(self, reason: str) -> NoReturn:
        raise Skip(reason)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """A value computed once per run (e.g. a completed async search) and reused."""
        if key not in self.env.shared:
            self.env.shared[key] = factory()
        value: T = self.env.shared[key]
        return value

    # -- sending --------------------------------------------------------------------------
    def endpoint(self, name: str) -> str:
        path: str = getattr(self.config.endpoints, name)
        return path

    def send(self, endpoint: str, envelope: Any, **kwargs: Any) -> Exchange:
        """Send to a named endpoint (`sync_search`, `search`, ...)."""
        kwargs.setdefault("label", endpoint.replace("_", " "))
        try:
            return self.client.send(self.endpoint(endpoint), envelope, **kwargs)
        except TokenError as exc:
            self.fail(
                "No access token", str(exc), severity=Severity.CRITICAL, exchange=exc.exchange
            )

    def verifier(self) -> JwksVerifier:
        return self.env.verifier(self.client)

    def wait_callback(
        self, match: Matcher, what: str, *, after: Exchange | None = None
    ) -> Callback:
        """The first callback matching, or a failure after the configured timeout."""
        if self.receiver is None:
            self.skip("the callback receiver is disabled")
        timeout = self.config.receiver.callback_timeout_s
        found = self.receiver.wait_for(match, timeout)
        if found is None:
            self.fail(
                "No callback",
                f"Expected {what} at {self.receiver.base_url} within {timeout:g} s, got "
                + self._other_callbacks(after),
                severity=Severity.HIGH,
                exchange=after,
            )
        self.exchanges.append(found.as_exchange(self.receiver.base_url))
        return found

    def _other_callbacks(self, after: Exchange | None) -> str:
        """What did arrive meanwhile, so a mismatch reads as one (e.g. wrong transaction_id)."""
        assert self.receiver is not None
        seen = self.receiver.matching(lambda cb: True)
        if after is not None:
            started = time.monotonic() - self.config.receiver.callback_timeout_s - 1
            seen = [cb for cb in seen if cb.received_at >= started]
        if not seen:
            return "none"
        sample = ", ".join(
            f"{cb.header.get('action')!r} for transaction_id {cb.message.get('transaction_id')!r}"
            for cb in seen[-3:]
        )
        return f"none matching; the latest of {len(seen)} callbacks were {sample}"

    def trigger_event(self) -> None:
        """Make the registry see a new vital event (the configured trigger)."""
        notify = self.config.notify
        values = _template_values()
        if notify.trigger_command:
            try:
                done = subprocess.run(  # noqa: S603 - the operator's own configured command
                    [_fill(arg, values) for arg in shlex.split(notify.trigger_command)],
                    capture_output=True,
                    timeout=notify.timeout_s,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.fail(
                    "Event trigger failed",
                    f"Expected the trigger command to run, got {type(exc).__name__}: {exc}",
                    severity=Severity.LOW,
                )
            if done.returncode != 0:
                self.fail(
                    "Event trigger failed",
                    f"Expected exit 0 from the trigger command, got {done.returncode}: "
                    f"{done.stderr.decode('utf-8', 'replace')[:300]}",
                    severity=Severity.LOW,
                )
        elif notify.trigger_url:
            body = json.dumps(_fill_json(notify.trigger_json or {}, values)).encode()
            headers = {"Content-Type": "application/json"}
            headers |= {k: _fill(v, values) for k, v in notify.trigger_headers.items()}
            exchange = self.client.raw(
                notify.trigger_method,
                self.config.url(_fill(notify.trigger_url, values)),
                content=body,
                headers=headers,
                label="event trigger",
            )
            if not 200 <= exchange.status < 300:
                self.fail(
                    "Event trigger failed",
                    f"Expected a 2xx from the trigger URL, got {exchange.summary()}",
                    severity=Severity.LOW,
                    exchange=exchange,
                )
        else:
            self.skip("no event trigger configured")


def _template_values() -> dict[str, str]:
    """Placeholders of the notify trigger: `${uuid}`, `${now}`, `${today}`."""
    now = datetime.now(UTC)
    return {
        "uuid": str(uuid.uuid4()),
        "now": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "today": now.date().isoformat(),
    }


def _fill(text: str, values: dict[str, str]) -> str:
    return string.Template(text).safe_substitute(values)


def _fill_json(value: Any, values: dict[str, str]) -> Any:
    """`value` with the placeholders replaced in every string (keys stay as written)."""
    if isinstance(value, str):
        return _fill(value, values)
    if isinstance(value, dict):
        return {k: _fill_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, values) for v in value]
    return value
