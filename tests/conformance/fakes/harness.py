"""Run the suite against a fake on loopback and return its summary (shared by the tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import conformance.catalogue  # noqa: F401 - registers the cases
from conformance.checks import CATALOGUE, Check, Profile
from conformance.config import load_config
from conformance.runner import Outcome, Reporter, RunSummary, environment, run
from conformance.schemas import SchemaSet
from conformance.server import BackgroundServer
from conformance.signing import TesterKeys
from tests.conformance.fakes.registry import CLIENT_ID, CLIENT_SECRET, FakeRegistry

SENDER_ID = "conformance-tests.example.org"
KEYS = TesterKeys.generate()


def registry_config(url: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "target": url,
        "identity.sender_id": SENDER_ID,
        "auth.client_id": CLIENT_ID,
        "auth.client_secret": CLIENT_SECRET,
        "data.existing_identifier": {"type": "BRN", "value": "BRN-0001"},
        "notify.trigger_url": "/simulate/event",
        "receiver.callback_timeout_s": 3.0,
        "receiver.quiet_period_s": 0.5,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return values


@contextlib.contextmanager
def fake_registry(faults: Iterable[str] = ()) -> Iterator[tuple[FakeRegistry, str]]:
    fake = FakeRegistry(KEYS.public_jwks(), sender_id=SENDER_ID, faults=set(faults))
    with BackgroundServer(fake.app) as server:
        yield fake, server.url


def run_cases(
    url: str,
    cases: list[Check] | None = None,
    *,
    profile: str = "registry",
    reporters: Iterable[Reporter] = (),
    only: Iterable[str] = (),
    schemas: SchemaSet | None = None,
    **overrides: Any,
) -> RunSummary:
    config = load_config(None, registry_config(url, profile=profile, **overrides))
    if cases is None:
        cases = CATALOGUE.select(Profile(profile), list(only))
    with environment(config, keys=KEYS, schemas=schemas) as env:
        return run(env, cases, reporters)


def ids(summary: RunSummary, outcome: Outcome) -> set[str]:
    return {r.check.id for r in summary.results if r.outcome is outcome}


def explain(summary: RunSummary) -> str:
    """Failures and errors, for assertion messages."""
    lines = []
    for r in summary.results:
        if r.outcome in (Outcome.FAILED, Outcome.ERROR):
            detail = r.failures[0].message if r.failures else (r.error or "")
            lines.append(f"{r.check.id} {r.outcome}: {detail[:300]}")
    return "\n".join(lines)
