"""The fast route for `POST /registry/sync/search` answers as the Litestar route does.

Two bridges on one seeded SQLite store, one with `server.fast_routes` on (the default), one
with it off, get the same requests over real HTTP: successes, every kind of refusal, and a
client that goes away mid-body. Status, headers and body must agree; only per-message
values (ids, timestamps, signatures) may differ.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.api.fastpath import FastRoutes
from dci_bridge.records.seed import KnownPersons
from dci_bridge.settings import Settings
from tests.e2e.conftest import envelope, item, sender_for
from tests.security_support import DciTestClient
from tests.servers import serve_asgi

SEARCH = "/registry/sync/search"
MAX_BODY = 8192
VOLATILE = {"message_id", "message_ts", "correlation_id", "timestamp", "signature"}


def _bridge(url: str, data_dir: Path, *, fast: bool) -> Any:
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": url,
            "DCI_BRIDGE_DATA_DIR": str(data_dir),
            "DCI_BRIDGE_SERVER__FAST_ROUTES": "true" if fast else "false",
            "DCI_BRIDGE_SERVER__MAX_BODY_BYTES": str(MAX_BODY),
        }
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def bridges(
    seeded_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, DciTestClient]]:
    """(fast bridge URL, Litestar-routed bridge URL, the registered client)."""
    sender = sender_for(seeded_sqlite_url)
    fast_dir, slow_dir = tmp_path_factory.mktemp("fast"), tmp_path_factory.mktemp("slow")
    fast_app = _bridge(seeded_sqlite_url, fast_dir, fast=True)
    slow_app = _bridge(seeded_sqlite_url, slow_dir, fast=False)
    assert isinstance(fast_app.asgi_handler.app, FastRoutes)  # inside the request observer
    assert not isinstance(slow_app.asgi_handler.app, FastRoutes)
    with serve_asgi(fast_app) as fast, serve_asgi(slow_app) as slow:
        yield fast, slow, sender


def _stable(node: Any) -> Any:
    """The answer without per-message values."""
    if isinstance(node, dict):
        return {k: _stable(v) for k, v in node.items() if k not in VOLATILE}
    if isinstance(node, list):
        return [_stable(v) for v in node]
    return node


def _both(
    bridges: tuple[str, str, DciTestClient], send: Any
) -> tuple[httpx.Response, httpx.Response]:
    fast, slow, sender = bridges
    answers = []
    for base in (fast, slow):
        with (
            sender.authenticated(base, timeout=10) as signed,
            httpx.Client(base_url=base, timeout=10) as plain,
        ):
            answers.append(send(signed, plain))
    return answers[0], answers[1]


def _assert_same(fast: httpx.Response, slow: httpx.Response) -> dict[str, Any]:
    assert fast.status_code == slow.status_code, (fast.text[:300], slow.text[:300])
    for name in ("content-type", "www-authenticate"):
        assert fast.headers.get(name) == slow.headers.get(name), name
    assert int(fast.headers["content-length"]) == len(fast.content)
    body: dict[str, Any] = fast.json()
    assert _stable(body) == _stable(slow.json())
    return body


def test_a_search_is_answered_the_same(
    bridges: tuple[str, str, DciTestClient], known: KnownPersons
) -> None:
    query = item("idtype-value", {"type": "BRN", "value": known.child_brn})
    fast, slow = _both(bridges, lambda signed, plain: signed.post(SEARCH, json=envelope(query)))
    body = _assert_same(fast, slow)
    assert fast.status_code == 200
    assert "signature" in body
    assert body["header"]["status"] == "succ"
    (person,) = body["message"]["search_response"][0]["data"]["reg_records"]
    assert {"identifier_type": "BRN", "identifier_value": known.child_brn} in person["identifier"]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no token", 401, "err.request.unauthorized"),
        ("not json content type", 415, "err.request.bad"),
        ("body too large", 413, "err.request.bad"),
        ("body too large, declared", 413, "err.request.bad"),
        ("malformed json", 400, "err.request.bad"),
        ("unsigned", 401, "err.signature.missing"),
        ("wrong action", 400, "err.request.bad"),
        ("schema error", 400, "err.request.bad"),
    ],
)
def test_refusals_are_the_same(
    bridges: tuple[str, str, DciTestClient], case: str, status: int, code: str
) -> None:
    sender = bridges[2]

    def send(signed: httpx.Client, plain: httpx.Client) -> httpx.Response:
        token = {"Authorization": "Bearer " + sender.token(str(plain.base_url).rstrip("/"))}
        json_type = {"Content-Type": "application/json"}
        if case == "no token":
            return plain.post(
                SEARCH, json=envelope(item("idtype-value", {"type": "BRN", "value": "x"}))
            )
        if case == "not json content type":
            return plain.post(
                SEARCH, content=b"{}", headers={**token, "Content-Type": "text/plain"}
            )
        if case == "body too large":  # chunked: no Content-Length to refuse it by
            return plain.post(
                SEARCH, content=iter([b"{" + b" " * MAX_BODY, b"}"]), headers={**token, **json_type}
            )
        if case == "body too large, declared":
            return plain.post(SEARCH, content=b" " * (MAX_BODY + 1), headers={**token, **json_type})
        if case == "malformed json":
            return plain.post(SEARCH, content=b'{"header": ', headers={**token, **json_type})
        if case == "unsigned":
            body = envelope(item("idtype-value", {"type": "BRN", "value": "x"}))
            return plain.post(SEARCH, json=body, headers=token)
        if case == "wrong action":
            return signed.post(
                SEARCH,
                json=envelope(
                    item("idtype-value", {"type": "BRN", "value": "x"}), action="subscribe"
                ),
            )
        body = envelope(item("idtype-value", {"type": "BRN", "value": "x"}))
        body["message"]["search_request"][0]["search_criteria"]["query_type"] = "no-such-type"
        return signed.post(SEARCH, json=body)

    fast, slow = _both(bridges, send)
    body = _assert_same(fast, slow)
    assert fast.status_code == status, fast.text[:300]
    assert body["errors"][0]["code"] == code
    assert body["header"]["status"] == "rjct"


def test_other_methods_still_reach_the_router(bridges: tuple[str, str, DciTestClient]) -> None:
    fast, slow = _both(bridges, lambda signed, plain: plain.get(SEARCH))
    _assert_same(fast, slow)
    assert fast.status_code == 405


def test_a_client_leaving_mid_body_gets_no_answer_and_breaks_nothing(
    bridges: tuple[str, str, DciTestClient],
    known: KnownPersons,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fast_url, _, sender = bridges
    host, port = fast_url.removeprefix("http://").split(":")
    with caplog.at_level(logging.INFO, logger="dci_bridge.api"):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                b"POST " + SEARCH.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"header":'
            )
        with sender.authenticated(fast_url, timeout=10) as signed:
            after = signed.post(
                SEARCH,
                json=envelope(item("idtype-value", {"type": "BRN", "value": known.child_brn})),
            )
    assert after.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records


@pytest.mark.parametrize("fast", [True, False])
def test_base_path_prefixes_the_registry_endpoints(
    seeded_sqlite_url: str,
    tmp_path: Path,
    known: KnownPersons,
    fast: bool,
) -> None:
    sender = sender_for(seeded_sqlite_url)
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
            "DCI_BRIDGE_DATA_DIR": str(tmp_path),
            "DCI_BRIDGE_SERVER__BASE_PATH": "/dci/v1",
            "DCI_BRIDGE_SERVER__FAST_ROUTES": str(fast).lower(),
        }
    )
    query = item("idtype-value", {"type": "BRN", "value": known.child_brn})
    with serve_asgi(create_app(settings)) as base, httpx.Client(base_url=base, timeout=10) as http:
        headers = {
            "Authorization": "Bearer " + sender.token(base),
            "Content-Type": "application/json",
        }

        def post(path: str) -> httpx.Response:  # signed by hand: the prefix is ours
            return http.post(path, content=sender.sign(envelope(query)), headers=headers)

        found = post("/dci/v1" + SEARCH)
        assert found.status_code == 200, found.text[:300]
        assert found.json()["message"]["search_response"][0]["status"] == "succ"
        assert post(SEARCH).status_code == 404
        txn = http.post("/dci/v1/registry/txn/status", content=b"{}", headers=headers)
        assert txn.status_code == 400, txn.text[:300]  # routed (a bad body), not 404
        assert http.get("/.well-known/jwks.json").status_code == 200  # keeps its path


@pytest.mark.parametrize("value", ["dci", "/dci/", "/d ci", "//dci"])
def test_a_malformed_base_path_stops_the_start(value: str) -> None:
    with pytest.raises(ValueError, match="BASE_PATH"):
        Settings.from_env({"DCI_BRIDGE_SERVER__BASE_PATH": value})
