"""The OpenCRVS v1.x simulator on the wire: tokens, GraphQL, webhooks, locations, faults."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from dci_bridge.records.seed import known_persons
from dci_bridge.upstream.simulator import SEARCH_CLIENT, WEBHOOK_CLIENT, SimClient
from dci_bridge.upstream.webhook_signature import verify_webhook_signature
from tests.servers import free_port, serve_asgi
from tests.simulators import SEED, RunningSimulator, WebhookReceiver, running_simulator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "opencrvs"
KNOWN = known_persons(SEED)
WEBHOOK_ONLY = SimClient(
    client_id="11111111-2222-4333-8444-555555555555",
    client_secret="66666666-7777-4888-9999-000000000000",
    sha_secret="aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    type="WEBHOOK",
    name="filtered",
)
DEACTIVATED = SimClient(
    client_id="22222222-2222-4333-8444-555555555555",
    client_secret="33333333-7777-4888-9999-000000000000",
    sha_secret="44444444-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    status="active",
    name="later deactivated",
)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(
        persons=300, clients=(SEARCH_CLIENT, WEBHOOK_CLIENT, WEBHOOK_ONLY, DEACTIVATED)
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(sim: RunningSimulator) -> Iterator[None]:
    yield
    sim.app.set_faults(reset=True)
    sim.app.searches.clear()
    sim.app.hub.subscriptions.clear()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _gql(sim: RunningSimulator, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or sim.token()}"}
    return httpx.post(f"{sim.url}/graphql", json=body, headers=headers)


def _search(sim: RunningSimulator, params: dict[str, Any], **variables: Any) -> httpx.Response:
    body = {
        "operationName": "searchEvents",
        "query": "query searchEvents($advancedSearchParameters: AdvancedSearchParametersInput!)"
        " { searchEvents(advancedSearchParameters: $advancedSearchParameters) "
        "{ totalItems results { id } } }",
        "variables": {"advancedSearchParameters": params, **variables},
    }
    return _gql(sim, body)


# --- tokens --------------------------------------------------------------------------


def test_token_has_the_documented_claims_and_signature(sim: RunningSimulator) -> None:
    answer = httpx.post(
        f"{sim.url}/token",
        params={
            "grant_type": "client_credentials",
            "client_id": SEARCH_CLIENT.client_id,
            "client_secret": SEARCH_CLIENT.client_secret,
        },
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    token = body["access_token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "RS256", "typ": "JWT"}
    claims = _claims(token)
    assert claims["scope"] == ["recordsearch"]
    assert claims["iss"] == "opencrvs:auth-service"
    assert "opencrvs:gateway-user" in claims["aud"]
    assert len(claims["sub"]) == 24
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 60
    pem = httpx.get(f"{sim.url}/.well-known").content
    key = serialization.load_pem_public_key(pem)
    head, payload, sig = token.encode().split(b".")
    key.verify(  # type: ignore[union-attr]
        base64.urlsafe_b64decode(sig + b"=" * (-len(sig) % 4)),
        head + b"." + payload,
        padding.PKCS1v15(),  # type: ignore[call-arg]
        hashes.SHA256(),  # type: ignore[call-arg]
    )


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, 400, "invalid_request"),
        (
            {"grant_type": "password", "client_id": "a", "client_secret": "b"},
            400,
            "unsupported_grant_type",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"},
            401,
            "invalid_client",
        ),
    ],
)
def test_token_errors(
    sim: RunningSimulator, params: dict[str, str], status: int, error: str
) -> None:
    answer = httpx.post(f"{sim.url}/token", params=params)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert set(answer.json()) == {"error", "error_description", "error_uri"}


def test_gateway_token_path_and_legacy_call(sim: RunningSimulator) -> None:
    params = {
        "grant_type": "client_credentials",
        "client_id": SEARCH_CLIENT.client_id,
        "client_secret": SEARCH_CLIENT.client_secret,
    }
    assert httpx.post(f"{sim.url}/auth/token", params=params).status_code == 200
    legacy = httpx.post(
        f"{sim.url}/authenticateSystemClient",
        json={"client_id": SEARCH_CLIENT.client_id, "client_secret": SEARCH_CLIENT.client_secret},
    )
    assert legacy.status_code == 200
    assert set(legacy.json()) == {"token"}
    wrong = httpx.post(
        f"{sim.url}/authenticateSystemClient",
        json={"client_id": SEARCH_CLIENT.client_id, "client_secret": "nope"},
    )
    assert wrong.status_code == 401


# --- GraphQL -------------------------------------------------------------------------


def test_search_events_answers_the_fixture_shape(sim: RunningSimulator) -> None:
    answer = _search(sim, {"registrationNumber": KNOWN.child_brn})
    assert answer.status_code == 200
    fixture = json.loads((FIXTURES / "gateway-searchEvents-response.dci-crvs-api.json").read_text())
    body = answer.json()
    assert body.keys() == fixture.keys()
    assert body["data"]["searchEvents"]["totalItems"] == 1
    assert body["data"]["searchEvents"]["results"][0]["id"] == KNOWN.child_record_id


def test_search_filters_statuses_paging_and_sort(sim: RunningSimulator) -> None:
    params = {"event": "birth", "registrationStatuses": ["REGISTERED"], "childGender": "female"}
    first = _search(sim, params, count=5, skip=0).json()["data"]["searchEvents"]
    second = _search(sim, params, count=5, skip=5).json()["data"]["searchEvents"]
    assert first["totalItems"] == second["totalItems"] > 10
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 10
    none = _search(sim, {"event": "birth", "registrationStatuses": ["DECLARED"]})
    assert none.json()["data"]["searchEvents"] == {"totalItems": 0, "results": []}
    by_nid = _search(sim, {"nationalId": KNOWN.mother_uin}).json()["data"]["searchEvents"]
    assert by_nid["totalItems"] >= 2


def test_search_rejects_unknown_fields_like_graphql(sim: RunningSimulator) -> None:
    answer = _search(sim, {"favouriteColour": "blue"})
    assert answer.status_code == 400
    assert "AdvancedSearchParametersInput" in answer.json()["errors"][0]["message"]


def test_the_official_postman_query_is_accepted(sim: RunningSimulator) -> None:
    name = "postman-record-search.farajaland-v1.8.1.postman_collection.json"
    collection = json.loads((FIXTURES / name).read_text())
    body = json.loads(collection["item"][0]["request"]["body"]["raw"])
    params = body["variables"]["advancedSearchParameters"]
    params.pop("declarationJurisdictionId")
    params.pop("eventLocationId")
    answer = _gql(sim, body)
    assert answer.status_code == 200
    assert answer.json()["data"]["searchEvents"]["totalItems"] == 0


def test_fetch_registration_answers_the_fixture_shape(sim: RunningSimulator) -> None:
    body = {
        "operationName": "fetchRegistration",
        "query": "q",
        "variables": {"id": KNOWN.child_record_id},
    }
    answer = _gql(sim, body)
    assert answer.status_code == 200
    record = answer.json()["data"]["fetchRegistration"]
    fixture = json.loads(
        (FIXTURES / "gateway-fetchRegistration-response.dci-crvs-api.json").read_text()
    )["data"]["fetchRegistration"]
    assert set(fixture) <= set(record)
    assert set(fixture["registration"]) <= set(record["registration"])
    assert record["__typename"] == "BirthRegistration"
    assert record["registration"]["trackingId"] == KNOWN.child_tracking_id
    assert record["registration"]["status"][-1]["type"] == "REGISTERED"
    assert record["child"]["name"][0] == {
        "use": "en",
        "firstNames": record["child"]["name"][0]["firstNames"],
        "familyName": KNOWN.child_surname,
    }
    assert record["child"]["birthDate"] == KNOWN.child_birth_date
    assert {"id": KNOWN.child_brn, "type": "BIRTH_REGISTRATION_NUMBER"} in record["child"][
        "identifier"
    ]
    assert record["eventLocation"]["id"] == KNOWN.child_birth_facility_id
    assert record["eventLocation"]["type"] == "HEALTH_FACILITY"
    missing = _gql(
        sim, {"operationName": "fetchRegistration", "query": "q", "variables": {"id": "x"}}
    )
    assert missing.json()["errors"][0]["message"] == "Record not found"


def test_no_or_expired_token_is_unauthorized(sim: RunningSimulator) -> None:
    body = {
        "operationName": "searchEvents",
        "query": "q",
        "variables": {"advancedSearchParameters": {}},
    }
    answer = httpx.post(f"{sim.url}/graphql", json=body)
    assert answer.status_code == 200
    assert answer.json()["errors"][0]["message"] == "Unauthorized"
    token = sim.token()
    assert httpx.post(f"{sim.url}/_sim/expire-tokens").status_code == 200
    answer = _gql(sim, body, token)
    assert answer.json()["errors"][0]["message"] == "Unauthorized"


def test_short_token_lifetime(sim: RunningSimulator) -> None:
    sim.app.set_faults(token_ttl_s=1)
    token = sim.token()
    assert _claims(token)["exp"] - _claims(token)["iat"] == 1
    time.sleep(1.1)  # a real expiry, not a schedule: the simulator checks `exp` against now
    body = {
        "operationName": "searchEvents",
        "query": "q",
        "variables": {"advancedSearchParameters": {}},
    }
    assert _gql(sim, body, token).json()["errors"][0]["message"] == "Unauthorized"


def test_search_without_search_scope_is_silently_empty(sim: RunningSimulator) -> None:
    token = sim.token(WEBHOOK_CLIENT)
    body = {
        "operationName": "searchEvents",
        "query": "q",
        "variables": {"advancedSearchParameters": {"registrationNumber": KNOWN.child_brn}},
    }
    answer = _gql(sim, body, token)
    assert answer.json() == {"data": {"searchEvents": {"totalItems": 0, "results": []}}}


@pytest.mark.parametrize(
    ("style", "status", "code"),
    [
        ("v1.3", 200, "INTERNAL_SERVER_ERROR"),
        ("v1.5", 200, "DAILY_QUOTA_EXCEEDED"),
        ("v1.7", 429, "RATE_LIMIT_EXCEEDED"),
    ],
)
def test_daily_quota_errors_in_each_version(
    sim: RunningSimulator, style: str, status: int, code: str
) -> None:
    sim.app.set_faults(quota_style=style, quota_exceeded=True)
    answer = _search(sim, {"registrationNumber": KNOWN.child_brn})
    assert answer.status_code == status
    error = answer.json()["errors"][0]
    assert error["message"] == "Daily search quota exceeded"
    assert error["extensions"]["code"] == code


def test_quota_counts_only_searches_with_hits() -> None:
    client = msgspec.structs.replace(SEARCH_CLIENT, daily_quota=2)
    with running_simulator(persons=300, clients=(client,)) as sim:
        assert _search(sim, {"registrationNumber": "nothing"}).status_code == 200
        for _ in range(2):
            assert _search(sim, {"registrationNumber": KNOWN.child_brn}).status_code == 200
        assert _search(sim, {"registrationNumber": KNOWN.child_brn}).status_code == 429


# --- faults --------------------------------------------------------------------------


def test_faults_5xx_malformed_and_latency(sim: RunningSimulator) -> None:
    token = sim.token()
    httpx.post(f"{sim.url}/_sim/faults", json={"fail_next": 1, "fail_status": 502})
    body = {
        "operationName": "searchEvents",
        "query": "q",
        "variables": {"advancedSearchParameters": {}},
    }
    failed = _gql(sim, body, token)
    assert failed.status_code == 502
    assert failed.json()["error"] == "Bad Gateway"
    assert _gql(sim, body, token).status_code == 200
    sim.app.set_faults(malformed_next=1, malformed_kind="json")
    with pytest.raises(json.JSONDecodeError):
        _gql(sim, body, token).json()
    sim.app.set_faults(malformed_next=1, malformed_kind="graphql")
    assert "searchEvents" not in _gql(sim, body, token).json()["data"]
    sim.app.set_faults(latency_ms=150)
    started = time.perf_counter()
    _gql(sim, body, token)
    assert time.perf_counter() - started >= 0.15


def test_hang_makes_clients_time_out(sim: RunningSimulator) -> None:
    token = sim.token()
    sim.app.set_faults(hang_next=1, hang_s=2)
    body = {
        "operationName": "searchEvents",
        "query": "q",
        "variables": {"advancedSearchParameters": {}},
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sim.url}/graphql",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=0.3,
        )


# --- locations -----------------------------------------------------------------------


def test_location_api(sim: RunningSimulator) -> None:
    answer = httpx.get(f"{sim.url}/location", params={"type": "ADMIN_STRUCTURE", "_count": "0"})
    bundle = answer.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert "lastUpdated" in bundle["meta"]
    assert bundle["total"] == 20  # 4 provinces x 4 districts
    first = bundle["entry"][0]["resource"]
    one = httpx.get(f"{sim.url}/location/{first['id']}").json()
    assert one == first
    by_code = httpx.get(
        f"{sim.url}/locations", params={"identifier": first["identifier"][0]["value"]}
    )
    assert by_code.json()["total"] == 1


# --- webhooks ------------------------------------------------------------------------


def _subscribe(
    sim: RunningSimulator, callback: str, *, client: SimClient = WEBHOOK_CLIENT, **hub: Any
) -> httpx.Response:
    body = {
        "hub": {
            "callback": callback,
            "mode": "subscribe",
            "topic": "BIRTH_REGISTERED",
            "secret": client.sha_secret,
            **hub,
        }
    }
    return httpx.post(
        f"{sim.url}/webhooks",
        json=body,
        headers={"Authorization": f"Bearer {sim.token(client)}"},
        timeout=10,
    )


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    app = WebhookReceiver()
    with serve_asgi(app) as url:
        yield app, url


def test_subscribe_handshake_list_deliver_delete(
    sim: RunningSimulator, receiver: tuple[WebhookReceiver, str]
) -> None:
    app, url = receiver
    answer = _subscribe(sim, f"{url}/opencrvs/webhooks?ignored=1")
    assert answer.status_code == 202
    assert answer.content == b""
    handshake = app.received[0]
    assert handshake.method == "GET"
    assert handshake.path == "/opencrvs/webhooks"
    assert set(handshake.query) == {"mode", "challenge", "topic"}
    assert handshake.query["mode"] == "subscribe"
    assert handshake.query["topic"] == "BIRTH_REGISTERED"
    assert len(base64.b64decode(handshake.query["challenge"])) == 16

    token = sim.token(WEBHOOK_CLIENT)
    listed = httpx.get(f"{sim.url}/webhooks", headers={"Authorization": f"Bearer {token}"}).json()
    (entry,) = listed["entries"]
    assert entry["topic"] == "BIRTH_REGISTERED"
    assert entry["createdBy"]["client_id"] == WEBHOOK_CLIENT.client_id
    assert entry["createdBy"]["type"] == "webhook"

    registered = httpx.post(f"{sim.url}/_sim/register", json={"event": "birth"}, timeout=10)
    assert registered.status_code == 201
    result = registered.json()
    assert result["deliveries"][0]["status"] == 200
    (delivery,) = app.deliveries
    assert delivery.headers["content-type"] == "application/json"
    assert verify_webhook_signature(
        WEBHOOK_CLIENT.sha_secret, delivery.body, delivery.headers["x-hub-signature"]
    )
    assert b": " not in delivery.body  # compact JSON
    payload = json.loads(delivery.body)
    assert set(payload) == {"timestamp", "id", "event"}
    assert payload["id"] == entry["id"]
    assert payload["event"]["hub"] == {"topic": "BIRTH_REGISTERED"}
    (bundle,) = payload["event"]["context"]
    assert bundle["resourceType"] == "Bundle"
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Composition", "Task", "Patient"} <= types  # NATIONAL_ID: the whole record
    # the new record is searchable right away
    found = _search(sim, {"trackingId": result["tracking_id"]}).json()
    assert found["data"]["searchEvents"]["totalItems"] == 1

    gone = httpx.delete(
        f"{sim.url}/webhooks/{entry['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert gone.status_code == 204
    assert httpx.get(
        f"{sim.url}/webhooks", headers={"Authorization": f"Bearer {token}"}
    ).json() == {"entries": []}


@pytest.mark.parametrize(
    ("hub", "client", "reason"),
    [
        (
            {"topic": "BIRTH_DECLARED", "secret": "wrong"},
            WEBHOOK_CLIENT,
            "Unsupported topic: BIRTH_DECLARED",
        ),
        ({"secret": "wrong", "mode": "x"}, WEBHOOK_CLIENT, "hub.secret is incorrect"),
        ({"mode": "unsubscribe"}, WEBHOOK_CLIENT, "hub.mode must be set to subscribe"),
    ],
)
def test_subscription_checks_in_opencrvs_order(
    sim: RunningSimulator,
    receiver: tuple[WebhookReceiver, str],
    hub: dict[str, str],
    client: SimClient,
    reason: str,
) -> None:
    answer = _subscribe(sim, receiver[1], client=client, **hub)
    assert answer.status_code == 400
    body = answer.json()["hub"]
    assert body["mode"] == "denied"
    assert body["reason"] == reason
    assert receiver[0].received == []


def test_deactivated_system_is_refused(
    sim: RunningSimulator, receiver: tuple[WebhookReceiver, str]
) -> None:
    token = sim.token(DEACTIVATED)
    sim.app._by_sub[sim.app.system_id(DEACTIVATED)] = msgspec.structs.replace(
        DEACTIVATED, status="deactivated"
    )
    try:
        body = {
            "hub": {
                "callback": receiver[1],
                "mode": "subscribe",
                "topic": "BIRTH_REGISTERED",
                "secret": DEACTIVATED.sha_secret,
            }
        }
        answer = httpx.post(
            f"{sim.url}/webhooks", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        sim.app._by_sub[sim.app.system_id(DEACTIVATED)] = DEACTIVATED
    assert answer.status_code == 400
    assert answer.json()["hub"]["reason"].startswith("Active system details cannot be found.")


@pytest.mark.parametrize("mode", ["refuse", "wrong_challenge"])
def test_failed_handshake_stores_nothing(
    sim: RunningSimulator, receiver: tuple[WebhookReceiver, str], mode: str
) -> None:
    setattr(receiver[0], mode, True)
    answer = _subscribe(sim, receiver[1])
    assert answer.status_code == 400
    assert answer.text == "Subscription callback check failed"
    assert sim.app.hub.subscriptions == []


def test_webhook_client_gets_a_filtered_bundle(
    sim: RunningSimulator, receiver: tuple[WebhookReceiver, str]
) -> None:
    app, url = receiver
    assert _subscribe(sim, url, client=WEBHOOK_ONLY).status_code == 202
    httpx.post(f"{sim.url}/_sim/register", json={"event": "birth"}, timeout=10)
    (delivery,) = app.deliveries
    assert verify_webhook_signature(
        WEBHOOK_ONLY.sha_secret, delivery.body, delivery.headers["x-hub-signature"]
    )
    bundle = json.loads(delivery.body)["event"]["context"][0]
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Composition" not in types
    assert "Task" in types
    assert types.count("Patient") >= 2  # child and mother (father when present)


def test_delivery_switches_and_retries(
    sim: RunningSimulator, receiver: tuple[WebhookReceiver, str]
) -> None:
    app, url = receiver
    assert _subscribe(sim, url).status_code == 202
    sim.app.set_faults(webhook_duplicate=True, webhook_bad_signature=True)
    httpx.post(f"{sim.url}/_sim/register", json={"event": "death"}, timeout=10)
    assert len(app.deliveries) == 0  # death topic: nobody subscribed
    httpx.post(f"{sim.url}/_sim/register", json={"event": "birth"}, timeout=10)
    assert len(app.deliveries) == 2
    assert not verify_webhook_signature(
        WEBHOOK_CLIENT.sha_secret,
        app.deliveries[0].body,
        app.deliveries[0].headers["x-hub-signature"],
    )
    # a receiver that has gone away: three attempts, then given up
    sim.app.set_faults(reset=True)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    sim.app.hub.subscriptions[0] = dataclasses.replace(sim.app.hub.subscriptions[0], callback=dead)
    result = httpx.post(f"{sim.url}/_sim/register", json={"event": "birth"}, timeout=10).json()
    (failed,) = result["deliveries"]
    assert failed["attempts"] == 3
    assert failed["status"] is None
    # an HTTP error status is not retried
    app.status = 500
    sim.app.hub.subscriptions.clear()
    assert _subscribe(sim, url).status_code == 202
    result = httpx.post(f"{sim.url}/_sim/register", json={"event": "birth"}, timeout=10).json()
    assert result["deliveries"][0] == {**result["deliveries"][0], "attempts": 1, "status": 500}


def test_register_a_given_bundle(sim: RunningSimulator) -> None:
    bundle = json.loads((FIXTURES / "fhir-death-bundle.opencrvs-core-v1.8.3.json").read_text())
    answer = httpx.post(f"{sim.url}/_sim/register", json={"event": "death", "bundle": bundle})
    assert answer.status_code == 201
    assert answer.json()["topic"] == "DEATH_REGISTERED"
