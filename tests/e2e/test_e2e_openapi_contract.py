"""The served bridge keeps the contract of specs/openapi.json, for generated requests.

schemathesis generates requests for every operation of the document (valid ones and ones
that break it) and sends them over real HTTP to a bridge on a seeded SQLite store. Every
answer must:
- not be a server error (no 5xx: a bad input is a 4xx DCI error);
- carry a status the document lists for that operation;
- have the documented content type, headers and body schema (errors included).

Two bridges take the requests. One runs with message security and disclosure policies off,
so that generated DCI bodies reach the search, subscription and status code instead of
stopping at the signature check. The other runs as shipped (tokens, signatures, policies),
so that every refusal of the security layer is held to the document too. Their OpenCRVS
receivers are configured (a v2 hook token the requests carry, a webhook secret they cannot
match), so that they answer as in production. Two checks are left out on purpose:
- "schema-valid request accepted": the bridge refuses some schema-valid messages by rules
  a schema cannot state (`total_count` must equal the number of items; a message needs at
  least one item), each with a documented 400;
- "schema-invalid request rejected": the bridge tolerates harmless deviations from the
  standard's schemas, as the official examples need (DESIGN.md section 7).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dci_bridge.api.app import create_app
from dci_bridge.settings import Settings
from tests.servers import serve_asgi

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.json"
V2_TOKEN = "contract-test-v2-hook-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(SPEC)


@pytest.fixture(scope="module", params=["security-off", "as-shipped"])
def contract_bridge(
    request: pytest.FixtureRequest,
    seeded_sqlite_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    env = {
        "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
        "DCI_BRIDGE_DATA_DIR": str(tmp_path_factory.mktemp("contract")),
        "DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET": "contract-test-sha-secret",
        "DCI_BRIDGE_OPENCRVS_WEBHOOK__V2_TOKEN": V2_TOKEN,
        # the document's examples call back to spp.example.org: accepted, never sent
        "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": "https://spp.example.org/registry/",
        "DCI_BRIDGE_DELIVERY__WORKER": "false",
    }
    if request.param == "security-off":
        env["DCI_BRIDGE_SECURITY__ENABLED"] = "false"
        env["DCI_BRIDGE_POLICY__ENFORCE"] = "false"
    with serve_asgi(create_app(Settings.from_env(env))) as url:
        yield url


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_keeps_the_documented_contract(
    case: schemathesis.Case, contract_bridge: str
) -> None:
    case.call_and_validate(
        base_url=contract_bridge,
        headers={"Authorization": f"Bearer {V2_TOKEN}"},
        checks=CHECKS,
        timeout=30,
    )


def test_options_names_every_method_of_a_path(contract_bridge: str) -> None:
    """`OPTIONS` on each documented path answers `Allow` with exactly its methods."""
    paths = json.loads(SPEC.read_text())["paths"]
    for path, item in paths.items():
        methods = {m.upper() for m in item if m in {"get", "post", "put", "patch", "delete"}}
        concrete = path.replace("{job_id}", "j-1").replace("{event_type}", "birth")
        answer = httpx.options(contract_bridge + concrete.replace("{action}", "REGISTER"))
        assert answer.status_code == 204, (path, answer.status_code)
        allowed = {m.strip() for m in answer.headers["allow"].split(",")}
        assert allowed == methods | {"OPTIONS"}, path
