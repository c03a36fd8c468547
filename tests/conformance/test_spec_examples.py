"""The standard's own examples, run through the bridge's codecs.

For every JSON request and response body of every operation in NEW, DRAFT and V1 (and the
AUTHZ and JWKS companions) the complete example message is assembled from the schema's
examples: an object-level `example` when there is one, else the properties' examples,
following `$ref` (also inside examples), taking the first branch of `oneOf`/`anyOf`, an
enum's first value or the declared default, and a placeholder for a field with neither.
The message is decoded with the bridge's structs and re-encoded; the result must equal the
example up to the normalisations of docs/decisions.md ("Wire tolerances").

Where an official example is not valid, the test asserts that the bridge rejects it with
the precise path listed in `DEFECTS`, then applies the listed fix and carries on; an
undocumented rejection fails. Examples we tolerate (`TOLERATED`) decode, but fail the
exported JSON Schema, which states the standard, at exactly the listed paths.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
import yaml

from dci_bridge.protocol import codec
from dci_bridge.protocol.auth import JwkSet, TokenResponse
from dci_bridge.protocol.codes import QueryType, TxnType
from dci_bridge.protocol.envelope import Envelope
from dci_bridge.protocol.jsonschema import export_schemas
from dci_bridge.protocol.search import ExpressionQuery, IdTypeValueQuery
from dci_bridge.protocol.txn import TxnStatusResponse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dci-spec"
SPECS = {
    "NEW": "api-standards-via-openspp/spec/crvs_api_v1.0.0.yaml",
    "DRAFT": "spdci-standards/release/yaml/registry_core_api_v1.0.0.yaml",
    "V1": "spdci-standards-tag-1.0.0/release/yaml/registry_core_api_v1.0.0.yaml",
    "AUTHZ": "spdci-standards/release/yaml/authz_core_api_v1.0.0.yaml",
    "AUTHZ-V1": "spdci-standards-tag-1.0.0/release/yaml/authz_core_api_v1.0.0.yaml",
    "JWKS": "spdci-standards/release/yaml/jwks_core_api_v1.0.0.yaml",
}
VALID_TS = "2022-12-04T17:20:07-04:00"
CALLBACK_ACTIONS = {"on-search", "notify", "txn-on-status"}
TYPO_KEYS = {
    "timesstamp": "timestamp",
    "timesatmp": "timestamp",
    "sunscription_codes": "subscription_codes",
}


class _JsonLoader(yaml.SafeLoader):
    """YAML as JSON sees it: an unquoted date stays a string, not a `datetime`."""


_JsonLoader.yaml_implicit_resolvers = {
    key: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


REBUILD = object()
"""A `Defect.fix` meaning: ignore the example there and build the value from the schema."""


@dataclass(frozen=True)
class Defect:
    """An official example the bridge rejects: why, and what the test continues with."""

    reason: str
    fix: Any


_EMPTY_TS = Defect("the DateTime example is the empty string, not a date-time", VALID_TS)
_TS_PATHS = (
    "$.header.message_ts",
    "$.message.timestamp",
    "$.message.search_request[0].timestamp",
    "$.message.search_response[0].timestamp",
    "$.message.subscribe_request[0].timestamp",
    "$.message.subscribe_request[0].subscribe_criteria.frequency.start_time",
    "$.message.subscribe_request[0].subscribe_criteria.frequency.end_time",
    "$.message.subscribe_response[0].timestamp",
    "$.message.subscribe_response[0].subscriptions[0].timestamp",
    "$.message.subscribe_response[0].subscriptions[0].frequency.start_time",
    "$.message.subscribe_response[0].subscriptions[0].frequency.end_time",
    "$.message.notify_event[0].timestamp",
    "$.message.txnstatus_response.txn_status.search_response[0].timestamp",
)
_OLD_ONLY = {
    "$.message.timesstamp": _EMPTY_TS,
    "$.message.timesatmp": _EMPTY_TS,
    "$.message.txnstatus_response": Defect(
        "the example of txnstatus_response is a SearchResponse, not {txn_type, txn_status}",
        REBUILD,
    ),
}
# Rejections of official examples, by spec and by JSON path in the assembled message: the
# bridge's error must name exactly this path.
DEFECTS: dict[str, dict[str, Defect]] = {
    "NEW": dict.fromkeys(_TS_PATHS, _EMPTY_TS),
    "DRAFT": {**dict.fromkeys(_TS_PATHS, _EMPTY_TS), **_OLD_ONLY},
    "V1": {**dict.fromkeys(_TS_PATHS, _EMPTY_TS), **_OLD_ONLY},
}
# Examples that are schemas rather than instances (the value is built from the schema).
SCHEMA_LIKE: dict[str, set[str]] = {
    "NEW": {
        "$.message.notify_event[0].data.reg_records",
        "$.message.txnstatus_response",
        "$.message.txnstatus_response.txn_status.search_response[0].data.reg_records",
    },
}
# Examples the bridge accepts although they break the standard's schema. The exported JSON
# Schema (which states the standard) must flag them, and nothing else: field name -> why.
_TOLERATED_ALL = {"locale": "two-letter locale `en`; the standard wants ISO 639-3 (`eng`)"}
TOLERATED: dict[str, dict[str, str]] = {
    "NEW": {
        **_TOLERATED_ALL,
        "reg_records": "object-valued reg_records inside txn_status (NEW's schema there)",
    },
    "DRAFT": {
        **_TOLERATED_ALL,
        "txn_type": "`on-search` spelling of txn_type in responses",
        "reg_records": "object-valued reg_records inside txn_status",
    },
    "V1": {
        **_TOLERATED_ALL,
        "txn_type": "`on-search` spelling of txn_type in responses",
        "reg_records": "object-valued reg_records inside txn_status",
    },
}


# --------------------------------------------------------------------------- assembling


@dataclass
class Spec:
    """One OpenAPI file and the example assembler over it."""

    name: str
    doc: dict[str, Any]

    def resolve(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def deref(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.resolve(schema["$ref"])
        return schema

    def merged(self, schema: dict[str, Any]) -> dict[str, Any]:
        """`allOf` folded into one schema (properties merged key by key)."""
        if "allOf" not in schema:
            return schema
        out: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self.merged(self.deref(part))
            for key, value in part.items():
                if key == "properties":
                    props = dict(out.get("properties", {}))
                    for name, prop in value.items():
                        props[name] = {**self.deref(props.get(name, {})), **self.deref(prop)}
                    out["properties"] = props
                elif key == "required":
                    out["required"] = [*out.get("required", []), *value]
                else:
                    out.setdefault(key, value)
        return out


@dataclass
class Assembly:
    """One example being assembled; `ignore` lists paths whose `example` is not used."""

    spec: Spec
    ignore: set[str] = field(default_factory=set)
    schema_like: list[str] = field(default_factory=list)

    def example(self, schema: Any, path: str = "$") -> Any:
        schema = self.spec.merged(self.spec.deref(schema))
        if "example" in schema and path not in self.ignore:
            value = schema["example"]
            if not _looks_like_schema(value):
                return self.literal(value, path)
            self.schema_like.append(path)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return self.example(schema[key][0], path)
        if "enum" in schema:
            return schema["enum"][0]
        if "default" in schema:
            return schema["default"]
        kind = schema.get("type") or ("object" if "properties" in schema else None)
        if kind == "object":
            return {
                name: self.example(prop, f"{path}.{name}")
                for name, prop in schema.get("properties", {}).items()
            }
        if kind == "array" or "items" in schema:
            return [self.example(schema.get("items", {}), f"{path}[0]")]
        if schema.get("format") == "date-time":
            return VALID_TS
        placeholders = {"string": "string", "integer": 1, "number": 1, "boolean": False}
        return placeholders.get(kind or "", {})

    def literal(self, value: Any, path: str) -> Any:
        """A literal example, with `$ref`s inside it replaced by their examples."""
        if isinstance(value, dict):
            if set(value) == {"$ref"}:
                return self.example(value, path)
            return {k: self.literal(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.literal(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


def _looks_like_schema(value: Any) -> bool:
    """An `example` that is a schema rather than an instance (seen in NEW)."""
    return (
        isinstance(value, dict)
        and value.get("type") in {"object", "array", "string"}
        and bool({"properties", "description", "items"} & value.keys())
    )


@cache
def load(name: str) -> Spec:
    text = (FIXTURES / SPECS[name]).read_text(encoding="utf-8")
    return Spec(name, yaml.load(text, Loader=_JsonLoader))  # noqa: S506 - a SafeLoader


@dataclass(frozen=True, eq=False)
class Body:
    """One JSON body of one operation."""

    spec: str
    where: str
    schema: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.spec}:{self.where}"


def bodies() -> Iterator[Body]:
    """Every JSON request and response body of every operation, once per distinct schema."""
    for name in SPECS:
        spec = load(name)
        seen: set[str] = set()
        for path, item in spec.doc["paths"].items():
            for method, op in item.items():
                candidates: list[tuple[str, Any]] = []
                content = op.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    candidates.append(("request", content["application/json"]["schema"]))
                for status, response in op.get("responses", {}).items():
                    media = spec.deref(response).get("content", {}).get("application/json")
                    if media:
                        candidates.append((f"response {status}", media["schema"]))
                for label, schema in candidates:
                    key = json.dumps(schema, sort_keys=True)
                    if key not in seen:
                        seen.add(key)
                        yield Body(name, f"{method.upper()} {path} {label}", schema)


BODIES = list(bodies())


# --------------------------------------------------------------------------- decoding


def _prefixed(exc: msgspec.ValidationError, prefix: str) -> msgspec.ValidationError:
    path = codec.error_path(exc) or "$"
    text = str(exc).split(" - at `", 1)[0]
    return msgspec.ValidationError(f"{text} - at `{prefix}{path[1:]}`")


def decode(value: dict[str, Any]) -> Any:
    """Decode a body with the bridge's types, as the bridge would read it."""
    raw = json.dumps(value).encode()
    if "header" in value:
        action = value["header"].get("action")
        envelope: Any = (
            codec.decode_callback_envelope(raw)
            if action in CALLBACK_ACTIONS
            else codec.decode_request_envelope(raw)
        )
        message: Any = msgspec.UNSET
        if not isinstance(envelope.message, msgspec.UnsetType):
            message = codec.decode_message(action, envelope.message)
        if isinstance(message, TxnStatusResponse):
            result = message.txnstatus_response
            try:
                codec.decode_txn_status(result.txn_type, result.txn_status)
            except msgspec.ValidationError as exc:
                raise _prefixed(exc, "$.message.txnstatus_response.txn_status") from None
        return Envelope(signature=envelope.signature, header=envelope.header, message=message)
    if set(value) == {"message"}:
        return codec.decode_ack(raw)
    if set(value) == {"errors"}:
        return codec.decode_http_error(raw)
    kind = JwkSet if "keys" in value else TokenResponse
    return msgspec.json.decode(raw, type=kind)


def set_path(document: Any, path: str, value: Any) -> None:
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path.removeprefix("$"))
    node = document
    for key, index in parts[:-1]:
        node = node[int(index)] if index else node[key]
    key, index = parts[-1]
    node[int(index) if index else key] = value


@dataclass
class Outcome:
    """An official example after the documented fixes, and what the bridge made of it."""

    example: dict[str, Any]
    decoded: Any
    defects: list[str]
    schema_like: list[str]


@cache
def outcome(body: Body) -> Outcome:
    """Assemble, decode, and on each rejection check it is documented and apply its fix."""
    defects = DEFECTS.get(body.spec, {})
    hit: list[str] = []
    ignore: set[str] = set()
    for _ in range(50):
        assembly = Assembly(load(body.spec), ignore=set(ignore))
        example = assembly.example(body.schema)
        for fixed in hit:
            if defects[fixed].fix is not REBUILD:
                set_path(example, fixed, copy.deepcopy(defects[fixed].fix))
        try:
            decoded = decode(example)
        except msgspec.ValidationError as exc:
            error = str(exc)
        else:
            return Outcome(example, decoded, hit, assembly.schema_like)
        path = codec.error_path(msgspec.ValidationError(error))
        assert path in defects, f"{body.id}: undocumented rejection: {error}"
        assert path not in hit, f"{body.id}: the fix for {path} did not help: {error}"
        hit.append(path)
        if defects[path].fix is REBUILD:
            ignore.add(path)
    raise AssertionError(f"{body.id}: too many defects")


def normalised(example: Any, path: str = "$") -> Any:
    """What the bridge writes for an example: NEW spellings, no nulls, search
    `reg_records` as an array."""
    if isinstance(example, dict):
        out = {
            TYPO_KEYS.get(key, key): normalised(value, f"{path}.{key}")
            for key, value in example.items()
            if value is not None
        }
        if re.fullmatch(r"\$\.message\.search_response\[\d+\]\.data", path) and isinstance(
            out.get("reg_records"), dict
        ):
            out["reg_records"] = [out["reg_records"]]
        return out
    if isinstance(example, list):
        return [normalised(v, f"{path}[{i}]") for i, v in enumerate(example)]
    return example


@cache
def schemas() -> dict[str, dict[str, Any]]:
    return export_schemas()


def schema_name(body: Body, document: dict[str, Any]) -> str:
    """The exported schema that describes `document`."""
    if "header" in document:
        action = document["header"]["action"]
        if body.where.endswith("response default"):
            endpoint = body.where.split()[1].removeprefix("/registry/sync/")
            return f"{endpoint.replace('txn/status', 'txn-status')}.sync_response"
        return f"{action}.request"
    if set(document) == {"message"}:
        return "ack"
    if set(document) == {"errors"}:
        return "http_error"
    return "jwks" if "keys" in document else "authz.token_response"


def _leaves(error: jsonschema.ValidationError) -> Iterator[str]:
    """The innermost failures under an error; for `oneOf`/`anyOf`, those of the branch that
    came closest to matching."""
    if not error.context:
        yield error.json_path
        return
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    depth = len(error.absolute_path)

    def distance(errors: list[jsonschema.ValidationError]) -> tuple[bool, int]:
        # A branch failing at the object itself (wrong type, missing field) is farther
        # than one failing only somewhere inside it.
        return (any(len(e.absolute_path) == depth for e in errors), len(errors))

    closest = min(branches.values(), key=distance)
    for sub in closest:
        yield from _leaves(sub)


def schema_violations(body: Body, document: dict[str, Any]) -> list[str]:
    """Paths where `document` breaks the exported schema (which states the standard)."""
    validator = jsonschema.Draft202012Validator(schemas()[schema_name(body, document)])
    return [path for error in validator.iter_errors(document) for path in _leaves(error)]


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.id)
def test_official_example_round_trips(body: Body) -> None:
    result = outcome(body)
    encoded = json.loads(codec.encode(result.decoded))
    assert encoded == normalised(result.example)


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.id)
def test_exported_schema_flags_only_the_tolerated_deviations(body: Body) -> None:
    result = outcome(body)
    encoded = json.loads(codec.encode(result.decoded))
    tolerated = TOLERATED.get(body.spec, {})
    for path in schema_violations(body, encoded):
        field_name = re.split(r"[.\[]", path)[-1]
        assert field_name in tolerated, f"{body.id}: {path} breaks the exported schema"


def test_documented_defects_tolerances_and_schema_like_examples_all_occur() -> None:
    defects: dict[str, set[str]] = {}
    schema_like: dict[str, set[str]] = {}
    tolerated: dict[str, set[str]] = {}
    for body in BODIES:
        result = outcome(body)
        defects.setdefault(body.spec, set()).update(result.defects)
        schema_like.setdefault(body.spec, set()).update(result.schema_like)
        encoded = json.loads(codec.encode(result.decoded))
        tolerated.setdefault(body.spec, set()).update(
            re.split(r"[.\[]", p)[-1] for p in schema_violations(body, encoded)
        )
    for spec in SPECS:
        assert defects.get(spec, set()) == set(DEFECTS.get(spec, {})), spec
        assert schema_like.get(spec, set()) == SCHEMA_LIKE.get(spec, set()), spec
        assert tolerated.get(spec, set()) == set(TOLERATED.get(spec, {})), spec


def test_the_examples_cover_every_message_type() -> None:
    covered: dict[str, set[str]] = {}
    for body in BODIES:
        decoded = outcome(body).decoded
        message = getattr(decoded, "message", decoded)
        covered.setdefault(body.spec, set()).add(type(message).__name__)
    expected = {t.__name__ for t in codec.MESSAGE_TYPES.values()} | {"AckMessage"}
    for spec in ("NEW", "DRAFT", "V1"):
        assert expected <= covered[spec], spec


# The query shapes of the standard: NEW inlines them, DRAFT and V1 name them.
QUERY_SCHEMAS = {
    "NEW": [
        "#/components/schemas/SearchRequest/properties/search_request/items/properties/"
        "search_criteria/properties/query",
        "#/components/schemas/SubscribeRequest/properties/subscribe_request/items/properties/"
        "subscribe_criteria/properties/filter",
    ],
    "DRAFT": ["#/components/schemas/RegistryQueries"],
    "V1": ["#/components/schemas/RegistryQueries"],
}


def _query_branches() -> Iterator[Any]:
    for spec_name, refs in QUERY_SCHEMAS.items():
        spec = load(spec_name)
        for ref in refs:
            schema = spec.resolve(ref)
            branches = schema.get("anyOf") or schema["oneOf"]
            for index, branch in enumerate(branches):
                yield pytest.param(
                    spec_name, branch, id=f"{spec_name}:{ref.rsplit('/', 1)[-1]}:{index}"
                )


@pytest.mark.parametrize(("spec_name", "branch"), list(_query_branches()))
def test_every_official_query_shape_decodes_for_its_query_type(
    spec_name: str, branch: dict[str, Any]
) -> None:
    example = Assembly(load(spec_name)).example(branch)
    if isinstance(example, list):
        query_types = [QueryType.PREDICATE]
    elif isinstance(example.get("value"), dict) and "expression" in example["value"]:
        query_types = [QueryType.EXPRESSION, QueryType.GRAPHQL]
    else:
        query_types = [QueryType.IDTYPE_VALUE]
    for query_type in query_types:
        query = codec.decode_query(query_type, example)
        assert json.loads(codec.encode(query)) == normalised(example)
        if query_type is QueryType.IDTYPE_VALUE:
            assert isinstance(query, IdTypeValueQuery)
        elif query_type is not QueryType.PREDICATE:
            assert isinstance(query, ExpressionQuery)


@pytest.mark.parametrize("spec_name", ["NEW", "DRAFT", "V1"])
def test_official_encrypted_message_shape_decodes(spec_name: str) -> None:
    spec = load(spec_name)
    example = Assembly(spec).example({"$ref": "#/components/schemas/EncryptedMessage"})
    decoded = codec.decode_encrypted(json.dumps(example).encode())
    assert json.loads(codec.encode(decoded)) == example


def test_every_txn_type_of_every_version_is_read() -> None:
    pointer = "#/components/schemas/TxnStatusResponse/properties/txnstatus_response"
    for spec_name in ("NEW", "DRAFT", "V1"):
        for value in load(spec_name).resolve(pointer)["properties"]["txn_type"]["enum"]:
            assert TxnType(value).value == value
