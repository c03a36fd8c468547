"""Hypothesis-driven fuzzing: generated valid and invalid envelopes against the target.

Every answer must be a 2xx/4xx with a body the standard allows for that endpoint (the success
envelope or Ack, an ERR Ack, an HttpErrorResponse); a 5xx, no answer, or a body matching none
of them is a finding. Findings are collected (not shrunk) so one run reports all of them.
Fuzz cases are ordinary `Check`s in their own registry, reported by the same reporters.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from conformance.checks import Check, Failure, Profile, Registry, Severity, check
from conformance.context import CaseContext
from conformance.envelopes import Builder
from conformance.evidence import Exchange

FUZZ_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "sync_search": ("SyncSearchResponse", "Ack", "HttpErrorResponse"),
    "search": ("Ack", "HttpErrorResponse"),
    "subscribe": ("Ack", "HttpErrorResponse"),
    "unsubscribe": ("Ack", "HttpErrorResponse"),
    "txn_status": ("Ack", "HttpErrorResponse"),
    "sync_txn_status": ("SyncTxnStatusResponse", "Ack", "HttpErrorResponse"),
}
"""Endpoint -> schemas an answer may match."""

MAX_FINDINGS = 20

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_json_leaf = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | _text
)
_json = st.recursive(
    _json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_text, kids, max_size=4),
    max_leaves=12,
)


def _valid(build: Builder, endpoint: str) -> st.SearchStrategy[dict[str, Any]]:
    ident = st.builds(
        lambda t, v: {"type": t, "value": v},
        st.sampled_from(["BRN", "UIN", "DRN", "MRN"]),
        st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=20),
    )
    pagination = st.none() | st.builds(
        lambda s, n: {"page_size": s, "page_number": n}, st.integers(1, 100), st.integers(1, 5)
    )
    locale = st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=3)

    def search(
        idents: list[dict[str, Any]], page: dict[str, Any] | None, loc: str
    ) -> dict[str, Any]:
        items = [
            build.search_item(build.criteria("idtype-value", q, pagination=page), locale=loc)
            for q in idents
        ]
        return build.search(items)

    if endpoint in ("sync_search", "search"):
        return st.builds(search, st.lists(ident, min_size=1, max_size=3), pagination, locale)
    if endpoint == "subscribe":
        return st.just(None).map(lambda _: build.subscribe())
    if endpoint == "unsubscribe":
        codes = st.lists(
            st.text("abcdef0123456789-", min_size=1, max_size=99), min_size=1, max_size=3
        )
        return codes.map(build.unsubscribe)
    attr = st.sampled_from(["transaction_id", "correlation_id"])
    value = st.text("abcdef0123456789-", min_size=1, max_size=99)
    return st.builds(lambda a, v: build.txn_status("search", a, v), attr, value)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(envelope: dict[str, Any], data: st.DataObject) -> dict[str, Any] | bytes:
    """One random defect: a removed or replaced field, or a broken body."""
    kind = data.draw(
        st.sampled_from(["drop", "replace", "replace", "bytes", "deep"]), label="mutation"
    )
    if kind == "bytes":
        return data.draw(st.binary(max_size=200), label="raw body")
    if kind == "deep":
        depth = data.draw(st.integers(50, 400), label="depth")
        return json.dumps(json.loads("[" * depth + "]" * depth)).encode()
    copy: dict[str, Any] = json.loads(json.dumps(envelope))
    path = data.draw(st.sampled_from(_paths(copy)), label="path")
    parent: Any = copy
    for step in path[:-1]:
        parent = parent[step]
    if kind == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_json, label="value")
    return copy


def _judge(ctx: CaseContext, endpoint: str, ex: Exchange, mode: str) -> Failure | None:
    if ex.status == 0 or ex.status >= 500:
        got = f"HTTP {ex.status}" if ex.status else f"no response ({ex.error})"
        return Failure(
            "Server error under fuzzing",
            f"Expected no 5xx, got {got}",
            severity=Severity.CRITICAL,
            exchange=ex,
        )
    if ex.status in (401, 403, 413, 415, 429):
        return None
    allowed = FUZZ_ENDPOINTS[endpoint]
    if not any(ctx.schemas.is_valid(name, ex.response_json) for name in allowed):
        problems = ctx.schemas.violations(allowed[0], ex.response_json)[:3]
        return Failure(
            "Non-standard answer",
            f"Expected a body matching one of {', '.join(allowed)}, got HTTP "
            f"{ex.status}: " + "; ".join(map(str, problems)),
            severity=Severity.HIGH,
            exchange=ex,
        )
    if mode == "valid" and 400 <= ex.status < 500:
        return Failure(
            "Valid envelope rejected",
            f"Expected acceptance of a schema-valid envelope, got HTTP {ex.status}",
            severity=Severity.MEDIUM,
            exchange=ex,
        )
    return None


def _fuzz_case(endpoint: str, mode: str, max_examples: int, seed: int | None) -> Any:
    def case(ctx: CaseContext) -> None:
        findings: list[Failure] = []

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def probe(data: st.DataObject) -> None:
            if len(findings) >= MAX_FINDINGS:
                return
            envelope = data.draw(_valid(ctx.build, endpoint), label="envelope")
            body = envelope if mode == "valid" else _mutate(envelope, data)
            if isinstance(body, bytes):
                ex = ctx.client.post(ctx.endpoint(endpoint), body, label=f"fuzz {endpoint}")
            else:
                ex = ctx.send(endpoint, body)
            ctx.exchanges.clear()  # keep only findings as evidence, not every probe
            finding = _judge(ctx, endpoint, ex, mode)
            if finding is not None:
                findings.append(finding)

        runner = hypothesis_seed(seed)(probe) if seed is not None else probe
        runner()
        if findings:
            ctx.failures.extend(findings)

    case.__doc__ = (
        f"{max_examples} generated {mode} envelopes to {endpoint}: every answer is a 2xx/4xx "
        f"with a body the standard allows (no 5xx, no non-standard body)."
    )
    return case


def fuzz_checks(
    endpoints: list[str], *, max_examples: int = 50, seed: int | None = None
) -> list[Check]:
    """One check per endpoint and mode (valid, invalid), numbered DCI-FUZZ-001 onwards."""
    registry = Registry()
    number = 0
    for endpoint in endpoints:
        for mode in ("valid", "invalid"):
            number += 1
            check(
                f"DCI-FUZZ-{number:03d}",
                f"Fuzz {endpoint} with {mode} envelopes",
                spec="§2-§12 (all message schemas)",
                group="fuzz",
                profile=Profile.REGISTRY,
                registry=registry,
            )(_fuzz_case(endpoint, mode, max_examples, seed))
    return registry.all()
