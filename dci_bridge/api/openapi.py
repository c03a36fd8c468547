"""The bridge's OpenAPI document: Litestar's paths with the DCI body schemas put in.

Handlers read raw bytes on the hot path, so Litestar cannot see the bodies; each DCI route
names its request and response schemas in `opt["dci_schemas"]` (names of
`protocol.jsonschema.export_schemas`), and `build_openapi` places them under
`components/schemas`, rewriting their `$defs` references. specs/openapi.json is this
document, checked against the code by a test.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Litestar

from dci_bridge.protocol.jsonschema import export_schemas

_ERROR_SCHEMA = "http_error"


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
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(ref: dict[str, str]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def build_openapi(app: Litestar) -> dict[str, Any]:
    """The full OpenAPI document of `app`, DCI bodies included."""
    document: dict[str, Any] = app.openapi_schema.to_schema()
    schemas = export_schemas()
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    error_ref = _component(components, _ERROR_SCHEMA, schemas[_ERROR_SCHEMA])
    by_operation: dict[str, tuple[str, str]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            names = handler.opt.get("dci_schemas")
            operation_id = getattr(handler, "operation_id", None)
            if names and isinstance(operation_id, str):
                by_operation[operation_id] = names
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            names = by_operation.get(operation.get("operationId", ""))
            if names is None:
                continue
            request_name, response_name = names
            operation["requestBody"] = {
                "required": True,
                "content": _json_content(
                    _component(components, request_name, schemas[request_name])
                ),
            }
            operation["responses"] = {
                "200": {
                    "description": "The DCI answer",
                    "content": _json_content(
                        _component(components, response_name, schemas[response_name])
                    ),
                },
                "4XX": {"description": "DCI error", "content": _json_content(error_ref)},
                "5XX": {"description": "DCI error", "content": _json_content(error_ref)},
            }
    document["components"]["schemas"] = dict(sorted(components.items()))
    return document


def openapi_text(app: Litestar) -> str:
    """The document as stable text (sorted keys, two-space indent, final newline)."""
    return json.dumps(build_openapi(app), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
