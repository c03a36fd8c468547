"""JSON Schemas (draft 2020-12) of every DCI body, generated from the structs.

One schema per body: the envelope POSTed with each action (`<action>.request`), the sync
answers (`<action>.sync_response`), the Ack, the HTTP error body and the companion APIs'
answers. Each is self-contained (`$defs`). The schemas state the standard (NEW), not our
tolerances: where the decoder reads more (a two-letter locale, `on-*` txn types, a
misplaced `pagination`, an object for search `reg_records`, null for an absent field), the
schema keeps the standard's rule, so it can judge what a registry writes.
`scripts/export_schemas.py` writes them to specs/schemas/.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any, Final

import msgspec

from dci_bridge.protocol.ack import Ack, HttpErrorResponse
from dci_bridge.protocol.auth import JwkSet, TokenResponse
from dci_bridge.protocol.codec import MESSAGE_TYPES
from dci_bridge.protocol.codes import Action, TxnType
from dci_bridge.protocol.encrypted import EncryptedMessage
from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.protocol.primitives import LOCALE_PATTERN, LOCALE_TOLERANT_PATTERN
from dci_bridge.protocol.search import ExpressionQuery, IdTypeValueQuery, PredicateItem

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_REF: Final = "#/$defs/{name}"

# Header type per action, as the standard pairs them (on-subscribe and on-unsubscribe use
# the request header, sic).
_HEADERS: Final[dict[Action, type]] = {
    Action.SEARCH: MsgHeader,
    Action.ON_SEARCH: MsgCallbackHeader,
    Action.SUBSCRIBE: MsgHeader,
    Action.ON_SUBSCRIBE: MsgHeader,
    Action.NOTIFY: MsgCallbackHeader,
    Action.UNSUBSCRIBE: MsgHeader,
    Action.ON_UNSUBSCRIBE: MsgHeader,
    Action.TXN_STATUS: MsgHeader,
    Action.TXN_ON_STATUS: MsgCallbackHeader,
}
# Sync endpoints: request action -> action of the answer's header.
_SYNC: Final[dict[Action, Action]] = {
    Action.SEARCH: Action.ON_SEARCH,
    Action.TXN_STATUS: Action.TXN_ON_STATUS,
}

_SIGNATURE_DEF: Final[dict[str, Any]] = {
    "title": "MsgSignature",
    "type": "string",
    "description": (
        "Signature of {header}+{message}: a compact JWS or the standard's `Signature:` "
        "string (docs/decisions.md)"
    ),
}

# Where the decoder tolerates more than the standard, the schema states the standard.
_STANDARD_PROPERTIES: Final[dict[tuple[str, str], dict[str, Any] | None]] = {
    ("SearchRequestItem", "pagination"): None,
    ("SearchResponseData", "reg_records"): {"type": "array", "items": {"type": "object"}},
    ("NotifyEventData", "reg_records"): {
        "anyOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]
    },
}
_STANDARD_ENUMS: Final[dict[str, list[str]]] = {
    "TxnType": [TxnType.SEARCH.value, TxnType.SUBSCRIBE.value, TxnType.UNSUBSCRIBE.value],
}


def export_schemas() -> dict[str, dict[str, Any]]:
    """Every body's schema by name (`search.request`, `ack`, ...), ready to dump as JSON."""
    defs = _definitions()
    out: dict[str, dict[str, Any]] = {}
    for action, message in MESSAGE_TYPES.items():
        out[f"{action.value}.request"] = _envelope(
            defs,
            title=f"{action.value}.request",
            description=f"Body POSTed to the `{action.value}` endpoint",
            header=_HEADERS[action].__name__,
            action=action,
            message=message.__name__,
            message_required=_HEADERS[action] is MsgHeader,
        )
    for action, answer in _SYNC.items():
        out[f"{action.value}.sync_response"] = _envelope(
            defs,
            title=f"{action.value}.sync_response",
            description=f"Answer of the sync `{action.value}` endpoint",
            header=MsgCallbackHeader.__name__,
            action=answer,
            message=MESSAGE_TYPES[answer].__name__,
            message_required=False,
        )
    out["ack"] = _document(defs, "ack", "Ack", "HTTP answer to an async request")
    out["http_error"] = _document(defs, "http_error", "HttpErrorResponse", "HTTP-layer error body")
    out["authz.token_response"] = _document(
        defs, "authz.token_response", "TokenResponse", "Answer of POST /oauth2/client/token"
    )
    out["jwks"] = _document(defs, "jwks", "JwkSet", "Body of GET /.well-known/jwks.json")
    return out


def schema_files() -> dict[str, str]:
    """File name -> text for specs/schemas/: sorted keys, two-space indent, final newline."""
    return {
        f"{name}.json": json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, schema in sorted(export_schemas().items())
    }


def _definitions() -> dict[str, Any]:
    types: list[Any] = [
        MsgHeader,
        MsgCallbackHeader,
        EncryptedMessage,
        Ack,
        HttpErrorResponse,
        TokenResponse,
        JwkSet,
        IdTypeValueQuery,
        ExpressionQuery,
        PredicateItem,
        *MESSAGE_TYPES.values(),
    ]
    _, defs = msgspec.json.schema_components(types, ref_template=_REF)
    for name, schema in defs.items():
        if "description" in schema:
            # Docstrings wrap; a schema description is one line.
            schema["description"] = " ".join(schema["description"].split())
        if name in _STANDARD_ENUMS:
            schema["enum"] = _STANDARD_ENUMS[name]
        properties: dict[str, Any] = schema.get("properties", {})
        for prop in list(properties):
            key = (name, prop)
            if key in _STANDARD_PROPERTIES:
                replacement = _STANDARD_PROPERTIES[key]
                if replacement is None:
                    del properties[prop]
                else:
                    properties[prop] = replacement
                continue
            properties[prop] = _without_null(properties[prop])
    for node in _walk(defs):
        if node.get("pattern") == LOCALE_TOLERANT_PATTERN:
            node["pattern"] = LOCALE_PATTERN
    defs["MsgSignature"] = dict(_SIGNATURE_DEF)
    return defs


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional field's schema without msgspec's `null` branch and `default: null`:
    the standard has no nullable fields and we never write null for an absent one."""
    if "default" in prop and prop["default"] is None:
        prop = {k: v for k, v in prop.items() if k != "default"}
    branches = prop.get("anyOf")
    if branches is None or {"type": "null"} not in branches:
        return prop
    rest = [b for b in branches if b != {"type": "null"}]
    prop = {k: v for k, v in prop.items() if k != "anyOf"}
    if len(rest) == 1:
        return {**rest[0], **prop}
    return {**prop, "anyOf": rest}


def _envelope(
    defs: dict[str, Any],
    *,
    title: str,
    description: str,
    header: str,
    action: Action,
    message: str,
    message_required: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "$schema": DIALECT,
        "title": title,
        "description": description,
        "type": "object",
        "properties": {
            "signature": {"$ref": _REF.format(name="MsgSignature")},
            "header": {
                "allOf": [
                    {"$ref": _REF.format(name=header)},
                    {"properties": {"action": {"const": action.value}}},
                ]
            },
            "message": {"type": "object"},
        },
        "required": ["header", "message"] if message_required else ["header"],
        # The standard's `oneOf: [<message>, EncryptedMessage]`, decided as the receiver
        # decides it: by `header.is_msg_encrypted`.
        "if": {
            "required": ["header"],
            "properties": {
                "header": {
                    "required": ["is_msg_encrypted"],
                    "properties": {"is_msg_encrypted": {"const": True}},
                }
            },
        },
        "then": {"properties": {"message": {"$ref": _REF.format(name="EncryptedMessage")}}},
        "else": {"properties": {"message": {"$ref": _REF.format(name=message)}}},
    }
    body["$defs"] = _reachable(defs, body)
    return body


def _document(defs: dict[str, Any], title: str, name: str, description: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "$schema": DIALECT,
        "title": title,
        "description": description,
        "$ref": _REF.format(name=name),
    }
    body["$defs"] = _reachable(defs, body)
    return body


def _reachable(defs: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The definitions `root` refers to, directly or through other definitions."""
    prefix = _REF.format(name="")
    found: dict[str, Any] = {}
    pending = [root]
    while pending:
        for node in _walk(pending.pop()):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                name = ref[len(prefix) :]
                if name not in found:
                    found[name] = copy.deepcopy(defs[name])
                    pending.append(found[name])
    return dict(sorted(found.items()))


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside `node`, `node` included."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
