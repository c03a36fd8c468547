"""`/ready`, `/metrics` and the access log over real HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from dci_bridge.api.app import create_app
from dci_bridge.api.operations import database_check
from dci_bridge.ops.logs import ACCESS_LOGGER, JsonFormatter
from dci_bridge.ops.readiness import NotReadyError
from dci_bridge.records.seed import KnownPersons
from dci_bridge.settings import Settings
from tests.e2e.conftest import envelope, item, sender_for
from tests.security_support import DciTestClient
from tests.servers import serve_asgi


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Litestar, DciTestClient]]:
    url = request.getfixturevalue(
        "seeded_sqlite_url" if request.param == "sqlite" else "seeded_pg_url"
    )
    sender = sender_for(url)
    data_dir = str(tmp_path_factory.mktemp("ops-data"))
    app = create_app(
        Settings.from_env({"DCI_BRIDGE_DATABASE__URL": url, "DCI_BRIDGE_DATA_DIR": data_dir})
    )
    with serve_asgi(app) as base:
        yield base, app, sender


@pytest.fixture
def http(served: tuple[str, Litestar, DciTestClient]) -> Iterator[httpx.Client]:
    """Authenticates and signs like the registered client `spp.example.org`."""
    with served[2].authenticated(served[0], timeout=10) as client:
        yield client


def test_ready_checks_the_database(http: httpx.Client) -> None:
    response = http.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert response.headers["cache-control"] == "no-store"


def test_a_failing_registered_check_makes_ready_503(
    http: httpx.Client, served: tuple[str, Litestar, DciTestClient]
) -> None:
    readiness = served[1].state.bridge.readiness

    async def upstream() -> None:
        raise NotReadyError("OpenCRVS gateway refused the connection")

    readiness.add("upstream", upstream)
    try:
        response = http.get("/ready")
    finally:
        readiness.remove("upstream")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["upstream"] == {
        "ok": False,
        "detail": "OpenCRVS gateway refused the connection",
        "seconds": body["checks"]["upstream"]["seconds"],
    }
    assert http.get("/ready").status_code == 200


@pytest.mark.anyio
async def test_database_check_fails_until_migrations_are_applied(database_url: str) -> None:
    from dci_bridge.db.engine import migrate

    check, engine = database_check(database_url)
    try:
        with pytest.raises(NotReadyError, match="schema at nothing"):
            await check()
        migrate(database_url)
        await check()
    finally:
        engine.dispose()


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return 0.0


def test_metrics_count_requests_by_route_template_and_status(
    http: httpx.Client, known: KnownPersons
) -> None:
    before = http.get("/metrics").text
    body = envelope(item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    assert http.post("/registry/sync/search", json=body).status_code == 200
    assert http.post("/registry/sync/search", content=b"{", headers=_json()).status_code == 400
    assert http.get(f"/no/such/{known.child_brn}").status_code == 404
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert known.child_brn not in after

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    route = "/registry/sync/search"
    total = "dci_bridge_http_requests_total"
    assert delta(total, method="POST", route=route, status="200") == 1
    assert delta(total, method="POST", route=route, status="400") == 1
    assert delta(total, method="GET", route="unmatched", status="404") == 1
    histogram = "dci_bridge_http_request_duration_seconds_count"
    assert delta(histogram, method="POST", route=route, status="200") == 1
    assert delta("dci_bridge_search_items_total", status="succ") == 1
    assert delta("dci_bridge_search_records_returned_total") == 1


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The server thread logs right after the last response byte: wait for the line."""
    deadline = time.monotonic() + 5
    while True:
        records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
        if records or time.monotonic() > deadline:
            return records
        time.sleep(0.01)


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_access_log_has_one_line_per_request_with_ids_and_no_body(
    http: httpx.Client, known: KnownPersons, caplog: pytest.LogCaptureFixture
) -> None:
    body = envelope(item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        assert http.post("/registry/sync/search", json=body).status_code == 200
        records = _access_records(caplog)
    assert len(records) == 1
    line: dict[str, Any] = json.loads(JsonFormatter().format(records[0]))
    assert line["msg"] == "request"
    assert line["route"] == "/registry/sync/search"
    assert line["status"] == 200
    assert line["message_id"] == body["header"]["message_id"]
    assert line["sender_id"] == "spp.example.org"
    assert line["action"] == "search"
    assert line["latency_ms"] > 0
    assert known.child_brn not in json.dumps(line)
