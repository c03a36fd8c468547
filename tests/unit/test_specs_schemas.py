"""specs/schemas/ holds exactly what the structs generate, and those schemas state the standard."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dci_bridge.protocol.jsonschema import export_schemas, schema_files

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "specs" / "schemas"
REGENERATE = "specs/schemas is out of date: run `python scripts/export_schemas.py`"
TS = "2025-03-01T10:00:00Z"


def test_checked_in_schemas_are_what_the_code_generates() -> None:
    wanted = schema_files()
    present = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(present) == sorted(wanted), REGENERATE
    for name, text in wanted.items():
        assert present[name] == text, f"{name}: {REGENERATE}"


def test_export_is_stable_and_ends_with_a_newline() -> None:
    first, second = schema_files(), schema_files()
    assert first == second
    for name, text in first.items():
        assert text.endswith("}\n"), name
        assert json.loads(text) == export_schemas()[name.removesuffix(".json")]


def test_every_body_has_a_schema() -> None:
    assert set(export_schemas()) == {
        "search.request",
        "on-search.request",
        "subscribe.request",
        "on-subscribe.request",
        "notify.request",
        "unsubscribe.request",
        "on-unsubscribe.request",
        "txn-status.request",
        "txn-on-status.request",
        "search.sync_response",
        "txn-status.sync_response",
        "ack",
        "http_error",
        "authz.token_response",
        "jwks",
    }


@pytest.mark.parametrize("name", sorted(export_schemas()))
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(export_schemas()[name])


def test_the_script_check_mode_reports_no_drift() -> None:
    spec = importlib.util.spec_from_file_location(
        "export_schemas", ROOT / "scripts" / "export_schemas.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


def _search(item: dict[str, Any], header: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "header": {
            "message_id": "m",
            "message_ts": TS,
            "action": "search",
            "sender_id": "s",
            "total_count": 1,
            **(header or {}),
        },
        "message": {
            "transaction_id": "t",
            "search_request": [
                {
                    "reference_id": "r",
                    "timestamp": TS,
                    "search_criteria": {
                        "query_type": "idtype-value",
                        "query": {"type": "UIN", "value": "1"},
                    },
                    **item,
                }
            ],
        },
    }


def errors(name: str, document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(export_schemas()[name])
    return [e.message for e in validator.iter_errors(document)]


def test_a_standard_search_request_is_valid() -> None:
    assert errors("search.request", _search({"locale": "eng"})) == []


@pytest.mark.parametrize(
    ("item", "header"),
    [
        ({"locale": "en"}, None),
        ({"locale": None}, None),
        ({"timestamp": "2025-03-01T10:00:00"}, None),
        ({}, {"action": "on-search"}),
        ({}, {"total_count": "1"}),
        ({}, {"sender_uri": None}),
    ],
    ids=["two-letter-locale", "null", "no-offset", "wrong-action", "string-count", "null-uri"],
)
def test_schemas_reject_what_the_standard_rejects(
    item: dict[str, Any], header: dict[str, Any] | None
) -> None:
    assert errors("search.request", _search(item, header))


ENCRYPTED = {
    "header": {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k"},
    "ciphertext": "a",
    "encrypted_key": "b",
    "tag": "c",
    "iv": "d",
}


def test_an_encrypted_message_is_valid_when_the_header_says_so() -> None:
    document = _search({}, {"is_msg_encrypted": True})
    document["message"] = ENCRYPTED
    assert errors("search.request", document) == []
    document["header"]["is_msg_encrypted"] = False
    assert errors("search.request", document)
    plain = _search({}, {"is_msg_encrypted": True})
    assert errors("search.request", plain)


def test_message_errors_are_reported_at_their_path() -> None:
    validator = jsonschema.Draft202012Validator(export_schemas()["search.request"])
    document = _search({"timestamp": "now"})
    paths = [e.json_path for e in validator.iter_errors(document)]
    assert paths == ["$.message.search_request[0].timestamp"]


def test_txn_types_are_the_new_spelling_only() -> None:
    document: dict[str, Any] = {
        "header": {
            "message_id": "m",
            "message_ts": TS,
            "action": "txn-on-status",
            "status": "succ",
        },
        "message": {
            "transaction_id": "t",
            "correlation_id": "c",
            "txnstatus_response": {
                "txn_type": "on-search",
                "txn_status": {"transaction_id": "t", "correlation_id": "c", "search_response": []},
            },
        },
    }
    assert errors("txn-on-status.request", document)
    document["message"]["txnstatus_response"]["txn_type"] = "search"
    assert errors("txn-on-status.request", document) == []


def test_callback_bodies_may_omit_the_message_but_requests_may_not() -> None:
    callback = {
        "header": {"message_id": "m", "message_ts": TS, "action": "on-search", "status": "rjct"}
    }
    assert errors("on-search.request", callback) == []
    assert errors("search.sync_response", callback) == []
    request = _search({})
    del request["message"]
    assert errors("search.request", request)


def test_search_reg_records_must_be_an_array_of_objects() -> None:
    item = {"reference_id": "r", "timestamp": TS, "status": "succ", "data": {"reg_records": {}}}
    document: dict[str, Any] = {
        "header": {"message_id": "m", "message_ts": TS, "action": "on-search", "status": "succ"},
        "message": {"transaction_id": "t", "correlation_id": "c", "search_response": [item]},
    }
    assert errors("on-search.request", document)
    item["data"] = {"reg_records": [{"@type": "CRVS_Person"}]}
    assert errors("on-search.request", document) == []


def test_ack_schema() -> None:
    ack: dict[str, Any] = {
        "message": {
            "ack_status": "ERR",
            "timestamp": TS,
            "correlation_id": "c",
            "error": {"code": "err.request.bad", "message": "bad"},
        }
    }
    assert errors("ack", ack) == []
    ack["message"]["error"]["code"] = "err.unknown"
    assert errors("ack", ack)
