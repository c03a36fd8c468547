"""specs/openapi.json is what the code produces, and it is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from dci_bridge.api.app import create_app
from dci_bridge.api.openapi import build_openapi, openapi_text
from dci_bridge.settings import Settings

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.json"


def _app_text() -> str:
    return openapi_text(create_app(Settings.from_env({})))


def test_checked_in_openapi_matches_the_code() -> None:
    assert SPEC.read_text(encoding="utf-8") == _app_text(), (
        "specs/openapi.json is stale: run `python scripts/export_openapi.py`"
    )


def test_openapi_is_valid_and_describes_the_dci_bodies() -> None:
    document = build_openapi(create_app(Settings.from_env({})))
    validate(json.loads(json.dumps(document)))
    operation = document["paths"]["/registry/sync/search"]["post"]
    assert operation["operationId"] == "sync_search"
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/search.request"
    }
    text = json.dumps(document)
    assert "#/$defs/" not in text
    for name in ("search.request", "search.sync_response", "http_error", "MsgHeader"):
        assert name in document["components"]["schemas"]


def test_every_request_example_is_valid_against_its_schema() -> None:
    """The examples a reader copies from the document (and schemathesis sends) are valid
    messages of the schema they illustrate; every DCI operation has one."""
    from jsonschema import Draft202012Validator

    document = json.loads(SPEC.read_text(encoding="utf-8"))
    components = document["components"]["schemas"]
    checked = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None or "$ref" not in body.get("schema", {}):
                continue
            assert "example" in body, f"{method.upper()} {path} has no example"
            # the components' `#/components/schemas/...` references resolve in this root
            schema = {"$ref": body["schema"]["$ref"], "components": {"schemas": components}}
            errors = list(Draft202012Validator(schema).iter_errors(body["example"]))
            assert not errors, (path, [e.message for e in errors])
            checked.append(path)
    assert len(checked) == 6, checked
