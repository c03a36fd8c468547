"""A bridge over a misbehaving OpenCRVS: DCI errors within the timeout, then recovery.

The simulator is really started on loopback; faults are switched on it between requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.records.seed import known_persons
from dci_bridge.upstream.simulator import SEARCH_CLIENT
from tests.dci_assertions import assert_dci_error
from tests.e2e.conftest import envelope, item
from tests.e2e.test_upstream_source_parity import LiveBridge, opencrvs_settings, serve_bridge
from tests.simulators import SEED, RunningSimulator, running_simulator

KNOWN = known_persons(SEED)
UNLIMITED = msgspec.structs.replace(SEARCH_CLIENT, daily_quota=10**9)
BRN_SEARCH = item("idtype-value", {"type": "BRN", "value": KNOWN.child_brn})


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(persons=300, clients=(UNLIMITED,)) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(sim: RunningSimulator) -> Iterator[None]:
    sim.app.set_faults(reset=True)
    yield
    sim.app.set_faults(reset=True)


def _bridge(sim: RunningSimulator, tmp_path: Path, **upstream: Any) -> Any:
    settings = opencrvs_settings(
        sim.url,
        f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
        tmp_path,
        **{k: str(v) for k, v in upstream.items()},
    )
    return serve_bridge(settings)


def _search(bridge: LiveBridge) -> httpx.Response:
    return bridge.http.post("/registry/sync/search", json=envelope(BRN_SEARCH))


def _ok(bridge: LiveBridge) -> None:
    answer = _search(bridge)
    assert answer.status_code == 200, answer.text[:300]
    records = answer.json()["message"]["search_response"][0]["data"]["reg_records"]
    assert len(records) == 1


def test_slow_upstream_times_out_with_504_then_recovers(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    with _bridge(sim, tmp_path, timeout_s=0.5) as base:
        _ok(base)  # token cached
        sim.app.set_faults(latency_ms=6000)
        started = time.perf_counter()
        assert_dci_error(_search(base), 504, "err.request.timeout", style="sync")
        # the search deadline (3 x 0.5 s) cut it short: waiting for the upstream takes 6 s
        # (the margin is wide so that a loaded machine cannot fail it)
        assert time.perf_counter() - started < 4.0
        sim.app.set_faults(latency_ms=0)
        _ok(base)


def test_a_hanging_call_becomes_504(sim: RunningSimulator, tmp_path: Path) -> None:
    with _bridge(sim, tmp_path, timeout_s=0.5) as base:
        _ok(base)
        sim.app.set_faults(hang_next=1, hang_s=3)
        assert_dci_error(_search(base), 504, "err.request.timeout", style="sync")
        _ok(base)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_upstream_5xx_becomes_503(sim: RunningSimulator, tmp_path: Path, status: int) -> None:
    with _bridge(sim, tmp_path) as base:
        _ok(base)
        sim.app.set_faults(fail_next=1, fail_status=status)
        body = assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        assert str(status) in body["errors"][0]["message"]
        _ok(base)


@pytest.mark.parametrize("kind", ["json", "graphql"])
def test_malformed_answers_become_503(sim: RunningSimulator, tmp_path: Path, kind: str) -> None:
    with _bridge(sim, tmp_path) as base:
        _ok(base)
        sim.app.set_faults(malformed_next=1, malformed_kind=kind)
        assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        _ok(base)


def test_token_expiry_mid_run_is_renewed_once(sim: RunningSimulator, tmp_path: Path) -> None:
    with _bridge(sim, tmp_path) as base:
        _ok(base)
        httpx.post(f"{sim.url}/_sim/expire-tokens")
        _ok(base)  # "Unauthorized" -> one renewal -> the same search succeeds
        _ok(base)


def test_tokens_are_renewed_before_they_expire(sim: RunningSimulator, tmp_path: Path) -> None:
    sim.app.set_faults(token_ttl_s=30)  # less than the 60 s renewal margin: renew every call
    with _bridge(sim, tmp_path, token_refresh_margin_s=60) as base:
        before = sim.app.tokens.issued
        _ok(base)
        _ok(base)
        assert sim.app.tokens.issued - before >= 2


def test_the_token_call_failing_becomes_503(sim: RunningSimulator, tmp_path: Path) -> None:
    with _bridge(sim, tmp_path) as base:
        sim.app.set_faults(fail_next=1, scope="token")
        assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        _ok(base)


def test_wrong_credentials_are_a_503_not_a_hang(sim: RunningSimulator, tmp_path: Path) -> None:
    with _bridge(sim, tmp_path, client_secret="wrong") as base:
        body = assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        assert "credentials" in body["errors"][0]["message"]
        ready = httpx.get(f"{base.url}/ready", timeout=10)
        assert ready.status_code == 503


@pytest.mark.parametrize("style", ["v1.3", "v1.5", "v1.7"])
def test_search_quota_is_recognised_in_every_version(
    sim: RunningSimulator, tmp_path: Path, style: str
) -> None:
    with _bridge(sim, tmp_path, breaker_failures=1) as base:
        sim.app.set_faults(quota_exceeded=True, quota_style=style)
        body = assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        assert "quota" in body["errors"][0]["message"]
        sim.app.set_faults(quota_exceeded=False)
        _ok(base)  # the quota did not open the breaker (threshold 1)


def test_breaker_opens_and_fails_fast(sim: RunningSimulator, tmp_path: Path) -> None:
    with _bridge(sim, tmp_path, breaker_failures=2, breaker_reset_s=3) as base:
        _ok(base)
        sim.app.set_faults(fail_next=2)
        assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        body = assert_dci_error(_search(base), 503, "err.service.unavailable", style="sync")
        assert "circuit breaker" in body["errors"][0]["message"]
        assert httpx.get(f"{base.url}/ready", timeout=10).status_code == 503
        time.sleep(3.1)  # the breaker's reset time passes (real time: a real server)
        _ok(base)
