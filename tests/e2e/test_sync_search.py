"""`POST /registry/sync/search` over real HTTP against a seeded store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dci_bridge.records.seed import KnownPersons
from tests.dci_assertions import assert_dci_error
from tests.e2e.conftest import envelope, item

SEARCH = "/registry/sync/search"


def search(client: httpx.Client, *items: dict[str, Any], **header: Any) -> dict[str, Any]:
    response = client.post(SEARCH, json=envelope(*items, **header))
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def records_of(body: dict[str, Any], index: int = 0) -> list[dict[str, Any]]:
    answer = body["message"]["search_response"][index]
    assert answer["status"] == "succ", answer
    records: list[dict[str, Any]] = answer["data"]["reg_records"]
    return records


def identifiers(person: dict[str, Any]) -> dict[str, str]:
    return {i["identifier_type"]: i["identifier_value"] for i in person["identifier"]}


def lookup(client: httpx.Client, id_type: str, value: str) -> list[dict[str, Any]]:
    return records_of(search(client, item("idtype-value", {"type": id_type, "value": value})))


def test_brn_lookup_returns_the_child_with_parents_and_birth(
    client: httpx.Client, known: KnownPersons
) -> None:
    body = search(client, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    header = body["header"]
    assert header["action"] == "on-search"
    assert header["status"] == "succ"
    assert header["receiver_id"] == "spp.example.org"
    assert header["total_count"] == header["completed_count"] == 1
    assert body["message"]["transaction_id"] == "txn-1"
    assert body["message"]["correlation_id"]
    answer = body["message"]["search_response"][0]
    assert answer["reference_id"] == "ref-1"
    assert answer["data"]["reg_type"] == "ns:org:RegistryType:Civil"
    assert answer["data"]["reg_record_type"] == "spdci-extensions-dci:Person"
    assert answer["pagination"] == {"page_size": 10, "page_number": 1, "total_count": 1}
    (person,) = answer["data"]["reg_records"]
    assert person["@type"] == "CRVS_Person"
    ids = identifiers(person)
    assert ids["BRN"] == known.child_brn
    assert ids["OPENCRVS_RECORD_ID"] == known.child_record_id
    assert person["name"]["given_name"] == known.child_given_name
    assert person["name"]["surname"] == known.child_surname
    assert person["birth_date"] == known.child_birth_date
    assert person["birth_place"]["@id"] == known.child_birth_facility_id
    assert person["parent1_identifier"] == {
        "identifier_type": "UIN",
        "identifier_value": known.mother_uin,
    }


def test_every_identifier_of_the_child_finds_the_same_person(
    client: httpx.Client, known: KnownPersons
) -> None:
    expected = lookup(client, "BRN", known.child_brn)
    assert lookup(client, "OPENCRVS_RECORD_ID", known.child_record_id) == expected
    assert lookup(client, "OPENCRVS_TRACKING_ID", known.child_tracking_id) == expected


def test_nid_is_an_alias_of_uin(client: httpx.Client, known: KnownPersons) -> None:
    by_uin = lookup(client, "UIN", known.mother_uin)
    assert len(by_uin) == 1
    assert identifiers(by_uin[0])["UIN"] == known.mother_uin
    assert lookup(client, "NID", known.mother_uin) == by_uin
    assert lookup(client, "uin", known.mother_uin) == by_uin


def test_drn_lookup_returns_a_deceased_person(client: httpx.Client, known: KnownPersons) -> None:
    (person,) = lookup(client, "DRN", known.deceased_drn)
    assert identifiers(person)["DRN"] == known.deceased_drn
    assert person["death_date"]


def test_mrn_lookup_returns_a_married_person(client: httpx.Client, known: KnownPersons) -> None:
    people = lookup(client, "MRN", known.married_mrn)
    assert people
    for person in people:
        assert person["marital_status"] == "M"
        assert person["marriage_date"]
    uins = {identifiers(p).get("UIN") for p in people}
    assert {known.bride_uin, known.groom_uin} & uins


def test_unknown_identifier_is_success_with_no_records(client: httpx.Client) -> None:
    body = search(client, item("idtype-value", {"type": "BRN", "value": "0000NOSUCH"}))
    answer = body["message"]["search_response"][0]
    assert answer["status"] == "succ"
    assert answer["data"]["reg_records"] == []
    assert answer["pagination"]["total_count"] == 0


def test_predicate_and_expression_find_the_same_persons(
    client: httpx.Client, known: KnownPersons
) -> None:
    year = int(known.child_birth_date[:4])
    predicate = [
        {
            "seq_num": 1,
            "expression1": {"attribute_name": "YOB", "operator": "eq", "attribute_value": year},
            "condition": "and",
            "expression2": {
                "attribute_name": "surname",
                "operator": "eq",
                "attribute_value": known.child_surname.upper(),
            },
        }
    ]
    by_predicate = records_of(
        search(client, item("predicate", predicate, pagination={"page_size": 100}))
    )
    expression = f"YOB = {year} and surname = '{known.child_surname}'"
    by_expression = records_of(
        search(
            client,
            item(
                "expression",
                {"type": "dci-bridge", "value": {"expression": expression}},
                pagination={"page_size": 100},
            ),
        )
    )
    assert by_predicate == by_expression
    assert known.child_brn in {identifiers(p).get("BRN") for p in by_predicate}
    for person in by_predicate:
        assert person["birth_date"].startswith(str(year))
        assert person["name"]["surname"].lower() == known.child_surname.lower()


def test_death_event_filter_keeps_only_deceased_persons(client: httpx.Client) -> None:
    body = search(
        client,
        item(
            "predicate",
            [{"expression1": {"attribute_name": "YOB", "operator": "ge", "attribute_value": 1900}}],
            reg_event_type="spdci-common:RegistryEventType:Death",
            pagination={"page_size": 50},
        ),
    )
    people = records_of(body)
    assert people
    assert all(p["death_date"] and "DRN" in identifiers(p) for p in people)


def test_pages_are_disjoint_and_sorting_is_applied(client: httpx.Client) -> None:
    def page(number: int) -> dict[str, Any]:
        return search(
            client,
            item(
                "expression",
                {"type": "dci-bridge", "value": {"expression": "birth_year >= 1990"}},
                sort=[{"attribute_name": "birth_date", "sort_order": "desc"}],
                pagination={"page_size": 5, "page_number": number},
            ),
        )["message"]["search_response"][0]

    first, second = page(1), page(2)
    assert first["pagination"]["total_count"] == second["pagination"]["total_count"] > 10
    ids_first = [p["@id"] for p in first["data"]["reg_records"]]
    ids_second = [p["@id"] for p in second["data"]["reg_records"]]
    assert len(ids_first) == len(ids_second) == 5
    assert not set(ids_first) & set(ids_second)
    dates = [p["birth_date"] for p in first["data"]["reg_records"] + second["data"]["reg_records"]]
    assert dates == sorted(dates, reverse=True)


def test_each_item_of_a_batch_gets_its_own_status(
    client: httpx.Client, known: KnownPersons
) -> None:
    body = search(
        client,
        item("idtype-value", {"type": "BRN", "value": known.child_brn}, reference_id="a"),
        item(
            "idtype-value",
            {"type": "BRN", "value": known.child_brn},
            reference_id="b",
            pagination={"page_size": 0},
        ),
        item("idtype-value", {"type": "PASSPORT_X", "value": "1"}, reference_id="c"),
        item("graphql", {"type": "g", "value": {"expression": "{x}"}}, reference_id="d"),
        item("idtype-value", {"type": "BRN", "value": known.child_brn}, reference_id="a"),
        item(
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "shoe_size",
                        "operator": "eq",
                        "attribute_value": 1,
                    }
                }
            ],
            reference_id="e",
        ),
        item("expression", {"type": "x", "value": {"expression": "sex = "}}, reference_id="f"),
        item(
            "idtype-value",
            {"type": "BRN", "value": known.child_brn},
            reference_id="g",
            sort=[{"attribute_name": "nope", "sort_order": "asc"}],
        ),
    )
    answers = body["message"]["search_response"]
    statuses = [(a["reference_id"], a["status"], a.get("status_reason_code")) for a in answers]
    assert statuses == [
        ("a", "succ", None),
        ("b", "rjct", "rjct.pagination.invalid"),
        ("c", "rjct", "rjct.search_criteria.invalid"),
        ("d", "rjct", "rjct.search_criteria.invalid"),
        ("a", "rjct", "rjct.reference_id.duplicate"),
        ("e", "rjct", "rjct.search_criteria.invalid"),
        ("f", "rjct", "rjct.search_criteria.invalid"),
        ("g", "rjct", "rjct.sort.invalid"),
    ]
    assert body["header"]["completed_count"] == 8
    for answer in answers[1:]:
        assert answer["status_reason_message"]
        assert known.child_brn not in answer["status_reason_message"]


def test_page_size_over_the_maximum_is_rejected_per_item(client: httpx.Client) -> None:
    body = search(
        client,
        item("idtype-value", {"type": "BRN", "value": "x"}, pagination={"page_size": 101}),
    )
    answer = body["message"]["search_response"][0]
    assert (answer["status"], answer["status_reason_code"]) == ("rjct", "rjct.pagination.invalid")


def test_pagination_on_the_item_is_tolerated(client: httpx.Client) -> None:
    request = item("expression", {"type": "x", "value": {"expression": "birth_year >= 1900"}})
    request["pagination"] = {"page_size": 3, "page_number": 2}
    answer = search(client, request)["message"]["search_response"][0]
    assert answer["pagination"]["page_size"] == 3
    assert answer["pagination"]["page_number"] == 2
    assert len(answer["data"]["reg_records"]) == 3


def _valid() -> dict[str, Any]:
    return envelope(item("idtype-value", {"type": "BRN", "value": "x"}))


def _mutate(path: str, value: Any) -> dict[str, Any]:
    body = _valid()
    node: Any = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(
    ("body", "status", "code", "reason"),
    [
        (lambda: _mutate("header.total_count", "1"), 400, "err.request.bad", None),
        (lambda: _mutate("header.message_id", KeyError), 400, "err.request.bad", None),
        (lambda: _mutate("message", KeyError), 400, "err.request.bad", None),
        (lambda: _mutate("header", KeyError), 400, "err.request.bad", None),
        (lambda: _mutate("header.message_ts", "yesterday"), 400, "err.request.bad", None),
        (
            lambda: _mutate("message.search_request.0.search_criteria.query_type", "sql"),
            400,
            "err.request.bad",
            None,
        ),
        (
            lambda: _mutate("header.version", "2.0.0"),
            400,
            "err.version.not_supported",
            "rjct.version.invalid",
        ),
        (
            lambda: _mutate("header.action", "subscribe"),
            400,
            "err.request.bad",
            "rjct.action.invalid",
        ),
        (
            lambda: _mutate("header.total_count", 2),
            400,
            "err.request.bad",
            "rjct.total_count.invalid",
        ),
        (
            lambda: _mutate("header.receiver_id", "someone.else"),
            400,
            "err.receiver_id.invalid",
            None,
        ),
        (
            lambda: envelope(total_count=0),
            400,
            "err.request.bad",
            "rjct.total_count.invalid",
        ),
        (
            lambda: envelope(
                *[item("idtype-value", {"type": "BRN", "value": "x"}, f"r{i}") for i in range(51)]
            ),
            400,
            "err.request.bad",
            "rjct.total_count.limit_exceeded",
        ),
    ],
    ids=[
        "total_count-string",
        "no-message_id",
        "no-message",
        "no-header",
        "bad-message_ts",
        "unknown-query_type",
        "version",
        "wrong-action",
        "count-mismatch",
        "receiver",
        "empty-batch",
        "batch-too-large",
    ],
)
def test_bad_envelopes_get_the_dci_error(
    client: httpx.Client,
    body: Callable[[], dict[str, Any]],
    status: int,
    code: str,
    reason: str | None,
) -> None:
    response = client.post(SEARCH, json=body())
    error = assert_dci_error(response, status, code, reason=reason, style="sync")
    assert error["header"]["sender_id"] == "crvs.dci-bridge.local"


def test_schema_errors_name_the_field(client: httpx.Client) -> None:
    response = client.post(SEARCH, json=_mutate("header.total_count", "1"))
    body = assert_dci_error(response, 400, "err.request.bad", style="sync")
    assert "$.header.total_count" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{not json", {"content-type": "application/json"}, 400),
        (b"", {"content-type": "application/json"}, 400),
        (b"[]", {"content-type": "application/json"}, 400),
        (b'{"signature":"\x80\xff","header":{}}', {"content-type": "application/json"}, 400),
        (b"{}", {"content-type": "text/plain"}, 415),
        (b"{}", {}, 415),
        (b"{" + b" " * (1024 * 1024 + 10) + b"}", {"content-type": "application/json"}, 413),
    ],
    ids=[
        "malformed",
        "empty",
        "array",
        "invalid-utf8",
        "text-plain",
        "no-content-type",
        "too-large",
    ],
)
def test_bad_bodies_get_the_dci_error(
    client: httpx.Client, content: bytes, headers: dict[str, str], status: int
) -> None:
    response = client.post(SEARCH, content=content, headers=headers)
    assert_dci_error(response, status, "err.request.bad")


def test_wrong_method_and_unknown_path(client: httpx.Client) -> None:
    assert_dci_error(client.get(SEARCH), 405, "err.request.bad")
    assert_dci_error(client.post("/registry/nothing", json={}), 404, "err.request.not_found")


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
