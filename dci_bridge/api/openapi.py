"""The bridge's OpenAPI document: Litestar's paths with the DCI body schemas put in.

Handlers read raw bytes on the hot path, so Litestar cannot see the bodies; each DCI route
names its request and response schemas in `opt["dci_schemas"]` (names of
`protocol.jsonschema.export_schemas`), and `build_openapi` places them under
`components/schemas`, rewriting their `$defs` references. The other routes (token, JWKS,
admin, OpenCRVS receivers, health) are described by `_OPERATIONS`: their parameters,
bodies and every status they answer. Every operation documents its error answers.
specs/openapi.json is this document, checked against the code by a test, and against the
served bridge by a schemathesis test (tests/e2e/test_e2e_openapi_contract.py).
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Litestar

from dci_bridge.crypto.tokens import SCOPES
from dci_bridge.delivery.outbox import STATES
from dci_bridge.protocol.jsonschema import export_schemas
from dci_bridge.upstream.webhook import SIGNATURE_HEADER, TOPICS

_ERROR_SCHEMA = "http_error"


def _ref(name: str) -> dict[str, str]:
    """A reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_ERROR_REF = _ref(_ERROR_SCHEMA)
_OAUTH_ERROR_REF = _ref("oauth_error")
_OAUTH_ERROR = {
    "title": "oauth_error",
    "description": "An error of the token endpoint (RFC 6749 section 5.2).",
    "type": "object",
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "unsupported_grant_type",
                "invalid_scope",
            ],
        },
        "error_description": {"type": "string"},
    },
    "required": ["error", "error_description"],
}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_JOB = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string"},
        "kind": {"type": "string"},
        "state": {"type": "string", "enum": list(STATES)},
        "sender_id": {"type": ["string", "null"]},
        "message_id": {"type": ["string", "null"]},
        "correlation_id": {"type": ["string", "null"]},
        "target_url": {"type": "string"},
        "attempts": {"type": "integer"},
        "next_attempt_at": _TIME,
        "last_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "created_at": _TIME,
        "completed_at": _TIME,
    },
    "required": ["job_id", "kind", "state", "attempts"],
}
_RECEIPT = {
    "description": "Stored; processed after the answer",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["accepted", "duplicate", "ignored"]},
                    "id": {"type": "string"},
                },
                "required": ["status"],
            }
        }
    },
}


def _json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": _json_content(schema)}


def _error(description: str, ref: dict[str, str] = _ERROR_REF) -> dict[str, Any]:
    return _json_answer(description, ref)


def _query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_OPENCRVS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object"}}},
}
_BEARER_REFUSED = {
    "401": _error("No valid bearer token"),
    "403": _error("The token lacks the `registry.admin` scope"),
}
_OPERATIONS: dict[str, dict[str, Any]] = {
    "health": {
        "responses": {
            "200": _json_answer(
                "The process serves",
                {
                    "type": "object",
                    "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
                    "required": ["status", "version"],
                },
            )
        }
    },
    "ready": {
        "responses": {
            "200": _json_answer("Every check passed", {"type": "object"}),
            "503": _json_answer("A check failed (which one: `checks`)", {"type": "object"}),
        }
    },
    "jwks": {
        "responses": {
            "200": _json_answer("The bridge's public keys", _ref("jwks")),
        }
    },
    "oauth2_client_token": {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "grant_type": {"const": "client_credentials"},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "scope": {
                                "type": "string",
                                "description": "Space-separated, of: " + ", ".join(SCOPES),
                            },
                        },
                        "required": ["grant_type"],
                    }
                }
            },
        },
        "responses": {
            "200": _json_answer("A bearer token", _ref("authz.token_response")),
            "400": _error("Not a valid client-credentials request", _OAUTH_ERROR_REF),
            "401": _error("Client authentication failed", _OAUTH_ERROR_REF),
        },
    },
    "admin_list_deliveries": {
        "parameters": [
            _query("state", {"type": "string", "enum": list(STATES)}),
            _query("kind", {"type": "string"}),
            _query("sender_id", {"type": "string"}),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
        ],
        "responses": {
            "200": _json_answer(
                "Counts per state and the newest deliveries",
                {
                    "type": "object",
                    "properties": {
                        "counts": {"type": "object"},
                        "jobs": {"type": "array", "items": _JOB},
                    },
                    "required": ["counts", "jobs"],
                },
            ),
            "400": _error("A query parameter is not valid"),
            **_BEARER_REFUSED,
        },
    },
    "admin_show_delivery": {
        "responses": {
            "200": _json_answer(
                "The delivery and its attempts",
                {
                    "allOf": [_JOB],
                    "type": "object",
                    "properties": {"attempt_log": {"type": "array", "items": {"type": "object"}}},
                    "required": ["attempt_log"],
                },
            ),
            **_BEARER_REFUSED,
            "404": _error("No such delivery"),
        },
    },
    "opencrvs_webhook_handshake": {
        "parameters": [
            _query("mode", {"const": "subscribe"}, required=True),
            _query("challenge", {"type": "string", "minLength": 1}, required=True),
            _query("topic", {"type": "string", "enum": sorted(TOPICS)}),
        ],
        "responses": {
            "200": _json_answer(
                "The challenge, echoed",
                {
                    "type": "object",
                    "properties": {"challenge": {"type": "string"}},
                    "required": ["challenge"],
                },
            ),
            "400": _error("Not a verification request"),
        },
    },
    "opencrvs_webhook": {
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "description": "`sha256=` HMAC-SHA256 of the body under the shared sha_secret",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": _OPENCRVS_BODY,
        "responses": {
            "200": {**_RECEIPT, "description": "A delivery received before"},
            "202": _RECEIPT,
            "400": _error("Not a usable OpenCRVS delivery (kept in quarantine)"),
            "401": _error(f"{SIGNATURE_HEADER} is missing or does not match the body"),
            "503": _error("The receiver is not configured (no sha_secret): retry later"),
        },
    },
    "opencrvs_v2_hook": {
        "requestBody": _OPENCRVS_BODY,
        "responses": {
            "200": {**_RECEIPT, "description": "Received before, or an action that is ignored"},
            "202": _RECEIPT,
            "400": _error("Not a usable OpenCRVS v2 event document (kept in quarantine)"),
            "401": _error("No valid bearer token"),
            "503": _error("The receiver is not configured (no v2 token): retry later"),
        },
    },
}
"""What Litestar cannot see of the routes that are not DCI messages, by operationId."""
_TS = "2026-11-23T10:00:00Z"
_SENDER = "spp.example.org"


def _envelope(action: str, total: int, message: dict[str, Any]) -> dict[str, Any]:
    header = {
        "version": "1.0.0",
        "message_id": f"example-{action}-1",
        "message_ts": _TS,
        "action": action,
        "sender_id": _SENDER,
        "total_count": total,
        # where an async answer goes (under a callback prefix registered for the sender);
        # a sync search answers in the exchange and ignores it
        "sender_uri": f"https://{_SENDER}/registry/on-{action}",
    }
    return {"header": header, "message": message}


_EXAMPLES: dict[str, dict[str, Any]] = {
    "search.request": _envelope(
        "search",
        1,
        {
            "transaction_id": "example-txn-1",
            "search_request": [
                {
                    "reference_id": "example-ref-1",
                    "timestamp": _TS,
                    "search_criteria": {
                        "reg_type": "ns:org:RegistryType:Civil",
                        "query_type": "idtype-value",
                        "query": {"type": "BRN", "value": "2019BQZTRLX"},
                    },
                }
            ],
        },
    ),
    "txn-status.request": _envelope(
        "txn-status",
        1,
        {
            "transaction_id": "example-txn-2",
            "txnstatus_request": {
                "reference_id": "example-ref-2",
                "txn_type": "search",
                "attribute_type": "transaction_id",
                "attribute_value": "example-txn-1",
            },
        },
    ),
    "subscribe.request": _envelope(
        "subscribe",
        1,
        {
            "transaction_id": "example-txn-3",
            "subscribe_request": [
                {
                    "reference_id": "example-ref-3",
                    "timestamp": _TS,
                    "subscribe_criteria": {
                        "reg_type": "ns:org:RegistryType:Civil",
                        "reg_event_type": "spdci-common:RegistryEventType:Death",
                        "filter_type": "predicate",
                        "filter": [],
                        "notify_record_type": "spdci-extensions-dci:Person",
                    },
                }
            ],
        },
    ),
    "unsubscribe.request": _envelope(
        "unsubscribe",
        1,
        {
            "transaction_id": "example-txn-4",
            "timestamp": _TS,
            "subscription_codes": ["example-subscription-code"],
        },
    ),
}
"""One request body per DCI message, as an unsigned example (a deployment with message
security on wants it signed: `dci-bridge sign-request`)."""
_GENERIC_ERRORS = {
    "4XX": _error("Error (`errors`: code and message)"),
    "5XX": _error("The service could not answer (`errors`: code and message)"),
}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _component(components: dict[str, Any], name: str, schema: dict[str, Any]) -> dict[str, str]:
    for def_name, definition in schema.get("$defs", {}).items():
        components.setdefault(def_name, _rewrite_refs(definition))
    body = {k: v for k, v in schema.items() if k not in {"$defs", "$schema"}}
    components[name] = _rewrite_refs(body)
    return _ref(name)


def build_openapi(app: Litestar) -> dict[str, Any]:
    """The full OpenAPI document of `app`, DCI bodies included."""
    document: dict[str, Any] = app.openapi_schema.to_schema()
    schemas = export_schemas()
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _component(components, _ERROR_SCHEMA, schemas[_ERROR_SCHEMA])
    by_operation: dict[str, tuple[str, str]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            names = handler.opt.get("dci_schemas")
            operation_id = getattr(handler, "operation_id", None)
            if names and isinstance(operation_id, str):
                by_operation[operation_id] = names
    _component(components, "oauth_error", _OAUTH_ERROR)
    _component(components, "jwks", schemas["jwks"])
    _component(components, "authz.token_response", schemas["authz.token_response"])
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            operation_id = operation.get("operationId", "")
            names = by_operation.get(operation_id)
            if names is None:
                described = _OPERATIONS.get(operation_id, {})
                operation.update(described)
                operation["responses"] = {**described.get("responses", {}), **_GENERIC_ERRORS}
                continue
            request_name, response_name = names
            content = _json_content(_component(components, request_name, schemas[request_name]))
            content["application/json"]["example"] = _EXAMPLES[request_name]
            operation["requestBody"] = {"required": True, "content": content}
            operation["responses"] = {
                "200": {
                    "description": "The DCI answer",
                    "content": _json_content(
                        _component(components, response_name, schemas[response_name])
                    ),
                },
                "4XX": _error("DCI error"),
                "5XX": _error("DCI error"),
            }
    document["components"]["schemas"] = dict(sorted(components.items()))
    return document


def openapi_text(app: Litestar) -> str:
    """The document as stable text (sorted keys, two-space indent, final newline)."""
    return json.dumps(build_openapi(app), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
