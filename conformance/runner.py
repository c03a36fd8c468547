"""Runs the selected cases in order and emits events; reporters consume them independently.

Events: RunStarted -> (CaseStarted -> CaseFinished)* -> RunFinished. A case passes when it
returns, fails on `Failure`, is skipped on an unmet precondition or `Skip`, and is an error
when the case itself crashed (a bug in the suite or an unusable target, reported as such).
"""

from __future__ import annotations

import contextlib
import enum
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from conformance.checks import Check, Failure, Severity, Skip
from conformance.config import Config
from conformance.context import CaseContext, RunEnvironment
from conformance.evidence import Exchange
from conformance.receiver import Receiver
from conformance.schemas import SchemaSet, default_directory
from conformance.signing import TesterKeys


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass
class CaseResult:
    check: Check
    outcome: Outcome
    duration_s: float
    failures: list[Failure] = field(default_factory=list)
    skip_reason: str | None = None
    error: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def severity(self) -> Severity | None:
        order = list(Severity)
        if not self.failures:
            return Severity.CRITICAL if self.outcome is Outcome.ERROR else None
        return min((f.severity for f in self.failures), key=order.index)


@dataclass
class RunSummary:
    run_id: str
    target: str
    profile: str
    started_at: str
    duration_s: float
    results: list[CaseResult]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (Outcome.FAILED, Outcome.ERROR) for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    target: str
    profile: str
    started_at: str
    cases: list[Check]
    schema_source: str


@dataclass(frozen=True)
class CaseStarted:
    check: Check
    index: int
    total: int


@dataclass(frozen=True)
class CaseFinished:
    result: CaseResult
    index: int
    total: int


@dataclass(frozen=True)
class RunFinished:
    summary: RunSummary


Event = RunStarted | CaseStarted | CaseFinished | RunFinished


class Reporter(Protocol):
    """Consumes run events; called synchronously, in order, on the runner's thread."""

    def handle(self, event: Event) -> None: ...


def run_case(env: RunEnvironment, case: Check) -> CaseResult:
    ctx = CaseContext(env, case)
    started = time.perf_counter()

    def result(outcome: Outcome, **kw: Any) -> CaseResult:
        return CaseResult(
            case,
            outcome,
            time.perf_counter() - started,
            exchanges=ctx.exchanges,
            warnings=ctx.warnings,
            **kw,
        )

    try:
        for pre in case.preconditions:
            reason = pre(ctx)
            if reason:
                return result(Outcome.SKIPPED, skip_reason=reason)
        case(ctx)
    except Skip as exc:
        return result(Outcome.SKIPPED, skip_reason=exc.reason)
    except Failure as exc:
        return result(Outcome.FAILED, failures=[*ctx.failures, exc])
    except Exception as exc:
        tb = traceback.format_exc(limit=6)
        return result(Outcome.ERROR, error=f"{type(exc).__name__}: {exc}\n{tb}")
    if ctx.failures:
        return result(Outcome.FAILED, failures=list(ctx.failures))
    return result(Outcome.PASSED)


def run(
    env: RunEnvironment,
    cases: Iterable[Check],
    reporters: Iterable[Reporter] = (),
) -> RunSummary:
    """Run `cases` against the environment's target, feeding every reporter."""
    cases = list(cases)
    handlers = list(reporters)
    run_id = uuid.uuid4().hex[:12]
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    started = time.perf_counter()

    def emit(event: Event) -> None:
        for handler in handlers:
            handler.handle(event)

    config = env.config
    emit(RunStarted(run_id, config.target, config.profile, started_at, cases, env.schemas.source))
    results: list[CaseResult] = []
    for index, case in enumerate(cases, 1):
        emit(CaseStarted(case, index, len(cases)))
        outcome = run_case(env, case)
        results.append(outcome)
        emit(CaseFinished(outcome, index, len(cases)))
    summary = RunSummary(
        run_id, config.target, config.profile, started_at, time.perf_counter() - started, results
    )
    emit(RunFinished(summary))
    return summary


def _advertised_paths(http: httpx.Client, url: str) -> set[str] | None:
    try:
        response = http.get(url)
        document = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    paths = document.get("paths") if isinstance(document, dict) else None
    return set(paths) if isinstance(paths, dict) else None


@contextlib.contextmanager
def environment(
    config: Config,
    *,
    keys: TesterKeys | None = None,
    schemas: SchemaSet | None = None,
) -> Iterator[RunEnvironment]:
    """Open the HTTP client and, when needed, the callback receiver for one run."""
    if keys is None:
        keys = (
            TesterKeys.from_file(config.identity.key_file)
            if config.identity.key_file
            else TesterKeys.generate()
        )
    schemas = schemas or SchemaSet.load(default_directory())
    timeout = httpx.Timeout(config.timeout_s)
    with httpx.Client(timeout=timeout, verify=config.verify_tls, follow_redirects=False) as http:
        receiver: Receiver | None = None
        if config.profile == "registry" and config.features.callbacks:
            receiver = Receiver(
                keys.public_jwks(),
                host=config.receiver.host,
                port=config.receiver.port,
                public_url=config.receiver.public_url,
                sender_uri_mode=config.receiver.sender_uri_mode,
            ).start()
        openapi = config.url(config.openapi_url) if config.openapi_url else None
        advertised = _advertised_paths(http, openapi) if openapi else None
        try:
            yield RunEnvironment(config, keys, http, schemas, receiver, advertised)
        finally:
            if receiver is not None:
                receiver.stop()
