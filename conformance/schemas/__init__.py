"""Named JSON Schemas of the wire messages and a validator with readable messages.

`SchemaSet.load()` starts from the suite's bundled schemas (`bundled.py`) and, when a
directory of generated schemas is given (the repository's `specs/schemas/`), uses those for
every name they define. Violations read "Expected X, got Y at $.path".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from conformance.schemas.bundled import DATE_TIME, bundled_schemas

MAX_VIOLATIONS = 8


@dataclass(frozen=True)
class Violation:
    path: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"Expected {self.expected}, got {self.got} at {self.path}"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: ValidationError) -> Violation:
    path = error.json_path
    kind, inst = error.validator, error.instance
    want: Any = error.validator_value
    if kind == "required":
        missing = [p for p in want if isinstance(inst, dict) and p not in inst]
        name = missing[0] if missing else want
        return Violation(path, f"required property {name!r}", "an object without it")
    if kind == "type":
        return Violation(path, f"type {want}", f"{type(inst).__name__} {_short(inst)}")
    if kind == "const":
        return Violation(path, _short(want), _short(inst))
    if kind == "enum":
        return Violation(path, f"one of {', '.join(map(str, want))}", _short(inst))
    if kind == "pattern" and want == DATE_TIME:
        return Violation(path, "an RFC 3339 date-time with a UTC offset", _short(inst))
    if kind == "pattern":
        return Violation(path, f"a string matching {want}", _short(inst))
    if kind in {"maxLength", "minLength"}:
        size = len(inst) if isinstance(inst, str) else "?"
        return Violation(path, f"{kind} {want}", f"a string of {size} characters")
    if kind in {"minItems", "maxItems"}:
        size = len(inst) if isinstance(inst, list) else "?"
        return Violation(path, f"{kind} {want}", f"{size} items")
    return Violation(path, f"{kind} {_short(want)}", _short(inst))


def _leaves(errors: list[ValidationError]) -> list[ValidationError]:
    """Descend into anyOf/oneOf contexts to the most specific errors."""
    out: list[ValidationError] = []
    for error in errors:
        if error.context:
            deepest = max(len(e.absolute_path) for e in error.context)
            out.extend(_leaves([e for e in error.context if len(e.absolute_path) == deepest]))
        else:
            out.append(error)
    return out


class SchemaSet:
    """Validators by schema name, built once."""

    def __init__(self, schemas: dict[str, dict[str, Any]], source: str) -> None:
        self.source = source
        self._schemas = schemas
        self._validators = {n: Draft202012Validator(s) for n, s in schemas.items()}

    @classmethod
    def load(cls, directory: str | Path | None = None) -> SchemaSet:
        schemas = bundled_schemas()
        source = "bundled"
        if directory is not None:
            found = _load_directory(Path(directory))
            schemas.update(found)
            source = f"{directory} ({len(found)} schemas) + bundled"
        return cls(schemas, source)

    @property
    def names(self) -> list[str]:
        return sorted(self._schemas)

    def schema(self, name: str) -> dict[str, Any]:
        return self._schemas[name]

    def violations(self, name: str, instance: Any) -> list[Violation]:
        validator = self._validators[name]
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        leaves = _leaves(errors)
        seen: set[str] = set()
        out: list[Violation] = []
        for error in leaves:
            violation = _describe(error)
            if str(violation) not in seen:
                seen.add(str(violation))
                out.append(violation)
        return out[:MAX_VIOLATIONS]

    def is_valid(self, name: str, instance: Any) -> bool:
        return bool(self._validators[name].is_valid(instance))


SPEC_FILES = {
    "ack": "Ack",
    "http_error": "HttpErrorResponse",
    "jwks": "JWKS",
    "authz.token_response": "TokenResponse",
    "search.request": "SearchRequestEnvelope",
    "subscribe.request": "SubscribeRequestEnvelope",
    "unsubscribe.request": "UnsubscribeRequestEnvelope",
    "txn-status.request": "TxnStatusRequestEnvelope",
    "search.sync_response": "SyncSearchResponse",
    "txn-status.sync_response": "SyncTxnStatusResponse",
    "on-search.request": "OnSearchCallback",
    "on-subscribe.request": "OnSubscribeCallback",
    "on-unsubscribe.request": "OnUnsubscribeCallback",
    "txn-on-status.request": "TxnOnStatusCallback",
    "notify.request": "NotifyCallback",
}
"""File stem in the repository's `specs/schemas/` -> the suite's schema name."""


def default_directory() -> Path | None:
    """`specs/schemas/` of the repository this package sits in, when there is one."""
    candidate = Path(__file__).resolve().parents[2] / "specs" / "schemas"
    return candidate if (candidate / "ack.json").is_file() else None


def _load_directory(directory: Path) -> dict[str, dict[str, Any]]:
    """Schemas from `specs/schemas/` file names (SPEC_FILES) or `<SuiteName>.json` files."""
    known = set(bundled_schemas())
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        stem = path.name.removesuffix(".json")
        name = SPEC_FILES.get(stem, stem.removesuffix(".schema"))
        if name in known:
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the `--json` report."""
    path = Path(__file__).with_name("report.schema.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
