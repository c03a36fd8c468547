"""Disclosure policies: what one registered sender may ask the registry and learn from it.

A policy is a small JSON document the operator sets per sender (`dci-bridge clients policy
set`). It names, all closed lists:

- `registry_types`, `event_types`: the registry and the vital events the sender may search;
  a search without an event filter is limited to these events (a pension programme allowed
  `Death` only ever finds deceased persons);
- `query_types`, `identifier_types`, `search_attributes`: how it may search (`idtype-value`
  by `UIN`, predicates on `birth_date`...); sorting uses `search_attributes` too;
- `fields`: the CRVS_Person field paths returned (`birth_date`, `name.given_name`,
  `identifier[BRN]`, `*` for everything);
- `answers`: derived booleans returned instead of data (`is_deceased`, `age_at_least:18`);
- `max_page_size`, `requests_per_minute`; `consent`: whether consent and/or authorisation
  must accompany every search item and which purpose codes are accepted.

`compile_policy` turns a document into a `CompiledPolicy` once (when it is loaded, not per
request): the checks become set look-ups and the field selection becomes a msgspec Struct
type holding only the allowed fields, so `minimise` is one decode + encode that never builds
the rest of the record. Everything here is pure (no I/O); the store is `policy_store.py`.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

import msgspec

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import (
    EventType,
    IdentifierType,
    QueryType,
    RegistryType,
    SearchStatusReasonCode,
    SubscribeStatusReasonCode,
    canonical_identifier_type,
    parse_event_type,
    parse_registry_type,
)
from dci_bridge.protocol.crvs import CRVS_PERSON_TYPE, CrvsPerson
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    Expr,
    IdentifierLookup,
    Not,
    Or,
    RecordQuery,
    parse_attribute,
)

__all__ = [
    "UNRESTRICTED",
    "CompiledPolicy",
    "ConsentInfo",
    "Disclosure",
    "DisclosurePolicy",
    "PolicyError",
    "compile_policy",
    "field_paths",
    "parse_policy",
]

CRITERIA = SearchStatusReasonCode.SEARCH_CRITERIA_INVALID
NOTIFY_TYPES = SubscribeStatusReasonCode.NOTIFY_TYPES_INVALID
NOTIFY_DETAILS = SubscribeStatusReasonCode.NOTIFY_DETAILS_INVALID
WILDCARD: Final = "*"
MAX_PAGE_SIZE_LIMIT: Final = 1000
CONSENT_FUTURE_SKEW: Final = dt.timedelta(minutes=5)
"""A consent or authorisation `ts` may be this far in the future (clock skew), no further."""


class PolicyError(ValueError):
    """A policy document that cannot be accepted; the message names the key."""


class ConsentRules(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What a search item must carry in `search_criteria.consent` / `.authorize`."""

    require_consent: bool = False
    """Every item needs a valid `consent` object (the person's consent)."""
    require_authorize: bool = False
    """Every item needs a valid `authorize` object (the legal authority to ask)."""
    purposes: list[str] = msgspec.field(default_factory=list)
    """Accepted purpose codes (`purpose.code` of the consent or authorisation); when not
    empty, an item must name one of them."""
    max_age_days: int | None = None
    """A consent or authorisation older than this (by its `ts`) is refused."""


class DisclosurePolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The stored policy document. Unknown keys are refused so a typo never widens access."""

    description: str = ""
    registry_types: list[str] = msgspec.field(default_factory=lambda: ["Civil"])
    event_types: list[str] = msgspec.field(default_factory=lambda: [WILDCARD])
    query_types: list[str] = msgspec.field(default_factory=list)
    identifier_types: list[str] = msgspec.field(default_factory=list)
    search_attributes: list[str] = msgspec.field(default_factory=list)
    fields: list[str] = msgspec.field(default_factory=list)
    answers: list[str] = msgspec.field(default_factory=list)
    max_page_size: int = 10
    requests_per_minute: int = 60
    consent: ConsentRules = msgspec.field(default_factory=ConsentRules)


UNRESTRICTED: Final = DisclosurePolicy(
    description="Everything: the registry's own systems and tests",
    registry_types=[WILDCARD],
    event_types=[WILDCARD],
    query_types=[WILDCARD],
    identifier_types=[WILDCARD],
    search_attributes=[WILDCARD],
    fields=[WILDCARD],
    max_page_size=MAX_PAGE_SIZE_LIMIT,
    requests_per_minute=1_000_000,
)
"""A policy that allows every search and returns the whole record (`--preset unrestricted`)."""

_DECODER = msgspec.json.Decoder(DisclosurePolicy)


def parse_policy(document: bytes | str | Mapping[str, Any]) -> DisclosurePolicy:
    """Read and validate a policy document (JSON text or a mapping); raises `PolicyError`."""
    try:
        if isinstance(document, Mapping):
            policy = msgspec.convert(dict(document), DisclosurePolicy)
        else:
            policy = _DECODER.decode(document)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise PolicyError(f"invalid policy: {exc}") from None
    compile_policy("check", policy)  # every name must be known
    return policy


def encode_policy(policy: DisclosurePolicy) -> bytes:
    return msgspec.json.encode(policy)


# --- field paths --------------------------------------------------------------------------

_PERSON_FIELDS = {f.encode_name: f for f in msgspec.structs.fields(CrvsPerson)}
_ID_TYPE_PATH = re.compile(r"identifier\[([A-Za-z0-9_]{1,40})\]")


def _struct_of(tp: Any) -> tuple[type[msgspec.Struct] | None, bool]:
    """The Struct type inside `T`, `T | None`, `list[T]` or `list[T] | None`, and whether
    it is a list."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin is list and args:
        inner, _ = _struct_of(args[0])
        return inner, True
    if origin in (types.UnionType, typing.Union):  # X | None
        for arg in args:
            if arg is not type(None):
                return _struct_of(arg)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp, False
    return None, False


def field_paths() -> list[str]:
    """Every field path a policy may name (besides `*` and `identifier[<TYPE>]`)."""
    paths: list[str] = []
    for name, info in _PERSON_FIELDS.items():
        paths.append(name)
        inner, _ = _struct_of(info.type)
        if inner is not None and name not in {"identifier"}:
            paths.extend(f"{name}.{sub.encode_name}" for sub in msgspec.structs.fields(inner))
    return paths


_KNOWN_PATHS = frozenset(field_paths())

Selection = dict[str, "Selection | Literal[True]"]


def _selection(fields: Iterable[str]) -> tuple[Selection | None, frozenset[str] | None]:
    """The field tree to keep (None = everything) and the identifier types kept when only
    some are (None = all identifiers, when `identifier` is kept at all)."""
    tree: Selection = {}
    id_types: set[str] = set()
    all_ids = False
    for raw in fields:
        path = raw.strip()
        if path == WILDCARD:
            return None, None
        match = _ID_TYPE_PATH.fullmatch(path)
        if match:
            id_types.add(_identifier_type(match.group(1), "fields").value)
            tree.setdefault("identifier", True)
            continue
        if path not in _KNOWN_PATHS:
            raise PolicyError(f"fields: unknown CRVS_Person field path {path[:80]!r}")
        if path == "identifier":
            all_ids = True
        head, _, sub = path.partition(".")
        if not sub:
            tree[head] = True
            continue
        current = tree.get(head)
        if current is True:
            continue
        branch: Selection = current if isinstance(current, dict) else {}
        branch[sub] = True
        tree[head] = branch
    return tree, (None if all_ids or not id_types else frozenset(id_types))


def _identifier_type(name: str, key: str) -> IdentifierType:
    for member in IdentifierType:
        if member.value.lower() == name.strip().lower():
            return canonical_identifier_type(member)
    raise PolicyError(f"{key}: unknown identifier type {name[:40]!r}")


_counter = [0]


def _projected(struct: type[msgspec.Struct], tree: Selection) -> type[Any]:
    """A Struct type with only the selected fields of `struct` (nested as selected); every
    field optional so what the source lacks stays absent."""
    config = struct.__struct_config__
    tag_field, tag = config.tag_field, config.tag
    spec: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for info in msgspec.structs.fields(struct):
        choice = tree.get(info.encode_name)
        if choice is None:
            continue
        field_type: Any = info.type
        if isinstance(choice, dict):
            inner, is_list = _struct_of(info.type)
            assert inner is not None
            sub = _projected(inner, choice)
            field_type = list[sub] if is_list else sub  # type: ignore[valid-type]
        spec.append((info.name, field_type | None, None))
        if info.encode_name != info.name:
            rename[info.name] = info.encode_name
    _counter[0] += 1
    return msgspec.defstruct(
        f"Projected{struct.__name__}{_counter[0]}",
        spec,
        kw_only=True,
        omit_defaults=True,
        tag_field=tag_field,
        tag=tag,
        rename=rename or None,
        module=__name__,
    )


# --- answers ------------------------------------------------------------------------------

_AGE_ANSWER = re.compile(r"age_at_least:(\d{1,3})")


@dataclass(frozen=True, slots=True)
class Answer:
    """A derived boolean returned in place of data: `is_deceased` or `age_at_least_<N>`."""

    name: str
    years: int | None = None  # for age_at_least

    @property
    def wire_name(self) -> str:
        return f"age_at_least_{self.years}" if self.years is not None else self.name


def _answers(values: Iterable[str]) -> tuple[Answer, ...]:
    found: dict[str, Answer] = {}
    for raw in values:
        value = raw.strip().lower()
        if value in {"is_deceased", "is_alive"}:
            answer = Answer(value)
        else:
            match = _AGE_ANSWER.fullmatch(value)
            if match is None or not 0 < int(match.group(1)) <= 150:
                raise PolicyError(
                    f"answers: unknown answer {raw[:40]!r} "
                    "(use is_deceased, is_alive or age_at_least:<years>)"
                )
            answer = Answer("age_at_least", int(match.group(1)))
        found[answer.wire_name] = answer
    return tuple(found.values())


class _IdType(msgspec.Struct):
    identifier_type: str = ""


class _Facts(msgspec.Struct, kw_only=True, tag_field="@type", tag=CRVS_PERSON_TYPE):
    """What answers are computed from."""

    identifier: list[_IdType] = msgspec.field(default_factory=list)
    birth_date: str | None = None
    death_date: str | None = None


_FACTS = msgspec.json.Decoder(_Facts)


class _PersonId(msgspec.Struct, tag_field="@type", tag=CRVS_PERSON_TYPE):
    id: str | None = msgspec.field(default=None, name="@id")


_PERSON_ID = msgspec.json.Decoder(_PersonId)


def record_id(raw: bytes) -> str | None:
    """The `@id` of an encoded CRVS_Person (for the audit trail), or None."""
    try:
        return _PERSON_ID.decode(raw).id
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _is_deceased(facts: _Facts) -> bool:
    if facts.death_date:
        return True
    return any(i.identifier_type == IdentifierType.DRN.value for i in facts.identifier)


def _age_at_least(birth: str | None, years: int, today: dt.date) -> bool | None:
    """Whether a person born on `birth` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`) is at least
    `years` old today; None when the known part of the date cannot decide it."""
    if not birth or not birth[:4].isdigit():
        return None
    year = int(birth[:4])
    month = int(birth[5:7]) if len(birth) >= 7 and birth[5:7].isdigit() else None
    day = int(birth[8:10]) if len(birth) >= 10 and birth[8:10].isdigit() else None
    # earliest and latest possible birthdays within what is known
    earliest = (year, month or 1, day or 1)
    latest = (year, month or 12, day or 31)
    today_key = (today.month, today.day)

    def age(born: tuple[int, int, int]) -> int:
        return today.year - born[0] - (1 if today_key < (born[1], born[2]) else 0)

    oldest, youngest = age(earliest), age(latest)
    if youngest >= years:
        return True
    if oldest < years:
        return False
    return None


# --- consent ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentInfo:
    """What the audit trail keeps of an item's consent and authorisation."""

    consent: bool = False
    consent_ts: str | None = None
    authorize: bool = False
    authorize_ts: str | None = None
    purpose_code: str | None = None
    purpose_text: str | None = None


@dataclass(frozen=True, slots=True)
class _Grant:
    """A consent or authorize object as read: its `ts` and purpose, when given as text."""

    ts: str | None
    code: str | None
    text: str | None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _read_grant(
    value: Any, kind: Literal["Consent", "Authorize"], now: dt.datetime, rules: ConsentRules
) -> _Grant | None:
    """Read `search_criteria.consent` / `.authorize`; None when absent.

    The standard types both as `object` and shows their content in an example only
    (`@type`, `ts`, `purpose {text, code, ref_uri}`). Always checked: an object (or the
    official samples' `""` for none) whose `@type`, if given, is the right one. When the
    policy relies on them (requires them, a purpose or a maximum age), the example's fields
    become rules: `ts` a date-time with an offset, not in the future, not older than allowed,
    and the purpose strings of at most 999 characters. Raises ItemRejection.
    """
    field = "consent" if kind == "Consent" else "authorize"
    path = f"search_criteria.{field}"
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise ItemRejection(CRITERIA, f"{field} must be a {kind} object", path=path)
    type_ = value.get("@type")
    if type_ is not None and (not isinstance(type_, str) or type_.rsplit(":", 1)[-1] != kind):
        raise ItemRejection(CRITERIA, f"{field} must have @type {kind}", path=f"{path}.@type")
    purpose = value.get("purpose")
    purpose = purpose if isinstance(purpose, dict) else {}
    grant = _Grant(
        ts=_text(value.get("ts")), code=_text(purpose.get("code")), text=_text(purpose.get("text"))
    )
    strict = (
        rules.require_consent
        or rules.require_authorize
        or bool(rules.purposes)
        or rules.max_age_days is not None
    )
    if not strict:
        return grant
    if grant.ts is None:
        raise ItemRejection(CRITERIA, f"{field} needs ts (when it was given)", path=f"{path}.ts")
    moment = _instant(grant.ts)
    if moment is None:
        raise ItemRejection(
            CRITERIA, f"{field}.ts must be a date-time with an offset", path=f"{path}.ts"
        )
    if moment > now + CONSENT_FUTURE_SKEW:
        raise ItemRejection(CRITERIA, f"{field}.ts is in the future", path=f"{path}.ts")
    if rules.max_age_days is not None and moment < now - dt.timedelta(days=rules.max_age_days):
        raise ItemRejection(
            CRITERIA, f"{field} is older than {rules.max_age_days} days", path=f"{path}.ts"
        )
    if value.get("purpose") is not None and not isinstance(value.get("purpose"), dict):
        raise ItemRejection(CRITERIA, f"{field}.purpose must be an object", path=f"{path}.purpose")
    for name in ("text", "code", "ref_uri"):
        text = purpose.get(name)
        if text is not None and (not isinstance(text, str) or not 0 < len(text.strip()) <= 999):
            raise ItemRejection(
                CRITERIA,
                f"{field}.purpose.{name} must be text of 1 to 999 characters",
                path=f"{path}.purpose.{name}",
            )
    return grant


def _instant(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


_NO_CONSENT: Final = ConsentInfo()


@dataclass(slots=True)
class Disclosure:
    """What one search item was given under its sender's policy, for the audit trail: no
    personal data (persons as their record `@id`; the audit trail hashes the query)."""

    reference_id: str
    query_type: str
    consent: ConsentInfo = _NO_CONSENT
    record_ids: tuple[str, ...] = ()
    """`@id` of every person returned (before minimisation)."""
    total_count: int | None = None
    reason_code: str | None = None
    """The item's `rjct.*` reason; None when it was answered."""


# --- the compiled policy ------------------------------------------------------------------


def _names(values: Iterable[str], parse: Any, key: str) -> frozenset[Any] | None:
    """A closed list of names, None for the wildcard."""
    result: set[Any] = set()
    for raw in values:
        if raw.strip() == WILDCARD:
            return None
        parsed = parse(raw)
        if parsed is None:
            raise PolicyError(f"{key}: unknown value {raw[:60]!r}")
        result.add(parsed)
    return frozenset(result)


def _query_type(value: str) -> QueryType | None:
    try:
        return QueryType(value.strip().lower())
    except ValueError:
        return None


def _attribute(value: str) -> Attribute | None:
    attribute = parse_attribute(value)
    return None if attribute is Attribute.IDENTIFIER else attribute


class CompiledPolicy:
    """A policy ready for the request path: set look-ups and a precomputed projection."""

    __slots__ = (
        "_decoder",
        "_encoder",
        "_id_types_out",
        "answers",
        "attributes",
        "consent",
        "event_types",
        "id_types",
        "key",
        "max_page_size",
        "passthrough",
        "policy",
        "query_types",
        "registry_types",
        "requests_per_minute",
        "revision",
        "sender_id",
    )

    def __init__(self, sender_id: str, policy: DisclosurePolicy, revision: int = 0) -> None:
        self.sender_id = sender_id
        self.policy = policy
        self.revision = revision
        self.key = encode_policy(policy)
        """The document's bytes: policies with equal keys minimise a record alike."""
        self.registry_types: frozenset[RegistryType] | None = _names(
            policy.registry_types, parse_registry_type, "registry_types"
        )
        self.event_types: frozenset[EventType] | None = _names(
            policy.event_types, parse_event_type, "event_types"
        )
        self.query_types: frozenset[QueryType] | None = _names(
            policy.query_types, _query_type, "query_types"
        )
        self.id_types: frozenset[IdentifierType] | None = _names(
            policy.identifier_types,
            lambda v: _identifier_type(v, "identifier_types"),
            "identifier_types",
        )
        self.attributes: frozenset[Attribute] | None = _names(
            policy.search_attributes, _attribute, "search_attributes"
        )
        if not 1 <= policy.max_page_size <= MAX_PAGE_SIZE_LIMIT:
            raise PolicyError(f"max_page_size must be between 1 and {MAX_PAGE_SIZE_LIMIT}")
        if policy.requests_per_minute < 1:
            raise PolicyError("requests_per_minute must be 1 or more")
        rules = policy.consent
        if rules.max_age_days is not None and rules.max_age_days < 1:
            raise PolicyError("consent.max_age_days must be 1 or more")
        if any(not code.strip() for code in rules.purposes):
            raise PolicyError("consent.purposes: a purpose code cannot be empty")
        self.consent = rules
        self.max_page_size = policy.max_page_size
        self.requests_per_minute = policy.requests_per_minute
        self.answers = _answers(policy.answers)
        tree, id_types_out = _selection(policy.fields)
        self._id_types_out = id_types_out
        self.passthrough = tree is None and not self.answers
        self._encoder = msgspec.json.Encoder()
        if tree is None:
            tree = dict.fromkeys(_PERSON_FIELDS, True)
        self._decoder = msgspec.json.Decoder(_projected(CrvsPerson, tree))

    # --- requests ---------------------------------------------------------------------------

    def page_sizes(self, default_size: int, max_size: int) -> tuple[int, int]:
        """(default, maximum) page size for this sender within the registry's limits."""
        maximum = min(max_size, self.max_page_size)
        return min(default_size, maximum), maximum

    def check_query_type(self, query_type: QueryType) -> None:
        if self.query_types is not None and query_type not in self.query_types:
            raise ItemRejection(
                CRITERIA,
                f"query_type {query_type.value} is not allowed for this sender",
                path="search_criteria.query_type",
            )

    def check_registry_type(self, value: str | None) -> None:
        if value is None or value == "" or self.registry_types is None:
            return
        if parse_registry_type(value) not in self.registry_types:
            raise ItemRejection(
                CRITERIA,
                "reg_type is not allowed for this sender",
                path="search_criteria.reg_type",
            )

    def restrict(self, query: RecordQuery) -> RecordQuery:
        """The query limited to what this sender may search; raises ItemRejection for any
        identifier type, attribute, sort key or event type outside the policy."""
        self._check_expr(query.where)
        if self.attributes is not None:
            for index, key in enumerate(query.sort):
                if key.attribute not in self.attributes:
                    raise ItemRejection(
                        SearchStatusReasonCode.SORT_INVALID,
                        "sorting by this attribute is not allowed for this sender",
                        path=f"search_criteria.sort[{index}].attribute_name",
                    )
        if self.event_types is None:
            return query
        if not query.event_types:
            return replace(query, event_types=self.event_types)
        if not query.event_types <= self.event_types:
            raise ItemRejection(
                CRITERIA,
                "this event type is not allowed for this sender",
                path="search_criteria.reg_record_type",
            )
        return query

    def _check_expr(self, expr: Expr | None) -> None:
        if expr is None:
            return
        if isinstance(expr, IdentifierLookup):
            if self.id_types is not None and expr.id_type not in self.id_types:
                raise ItemRejection(
                    CRITERIA,
                    f"searching by identifier type {expr.id_type.value} is not allowed"
                    " for this sender",
                    path="search_criteria.query",
                )
            return
        if isinstance(expr, Comparison):
            if self.attributes is not None and expr.attribute not in self.attributes:
                raise ItemRejection(
                    CRITERIA,
                    f"searching by attribute {expr.attribute.value} is not allowed for this sender",
                    path="search_criteria.query",
                )
            return
        if isinstance(expr, Not):
            self._check_expr(expr.item)
            return
        assert isinstance(expr, And | Or)
        for item in expr.items:
            self._check_expr(item)

    def check_consent(self, consent: Any, authorize: Any, now: dt.datetime) -> ConsentInfo:
        """Validate an item's consent and authorisation as the standard describes them
        (section 5.4) and as this policy requires; raises ItemRejection."""
        rules = self.consent
        given = _read_grant(consent, "Consent", now, rules)
        granted = _read_grant(authorize, "Authorize", now, rules)
        if rules.require_consent and given is None:
            raise ItemRejection(
                CRITERIA, "consent is required for this sender", path="search_criteria.consent"
            )
        if rules.require_authorize and granted is None:
            raise ItemRejection(
                CRITERIA,
                "authorize is required for this sender",
                path="search_criteria.authorize",
            )
        grants = [g for g in (given, granted) if g is not None]
        chosen = next((g for g in grants if g.code), None)
        if rules.purposes:
            chosen = next((g for g in grants if g.code in rules.purposes), None)
            if chosen is None:
                raise ItemRejection(
                    CRITERIA,
                    "purpose.code is missing or not accepted for this sender",
                    path="search_criteria.consent.purpose.code",
                )
        if not grants:
            return _NO_CONSENT
        return ConsentInfo(
            consent=given is not None,
            consent_ts=given.ts[:64] if given is not None and given.ts else None,
            authorize=granted is not None,
            authorize_ts=granted.ts[:64] if granted is not None and granted.ts else None,
            purpose_code=chosen.code[:200] if chosen is not None and chosen.code else None,
            purpose_text=chosen.text[:200] if chosen is not None and chosen.text else None,
        )

    # --- responses --------------------------------------------------------------------------

    def minimise(self, raw: bytes, today: dt.date | None = None) -> bytes:
        """The encoded CRVS_Person reduced to this policy's fields and answers.

        `raw` is the JSON of a full `CrvsPerson`. `today` (UTC date) is needed for age
        answers only. A record that is not a CRVS_Person yields `{"@type": "CRVS_Person"}`
        (nothing of it leaves the process)."""
        if self.passthrough:
            return raw
        try:
            projected = self._decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return b'{"@type":"CRVS_Person"}'
        if self._id_types_out is not None:
            kept = projected.identifier
            if kept:
                projected.identifier = [
                    i for i in kept if i.identifier_type in self._id_types_out
                ] or None
        if not self.answers:
            return self._encoder.encode(projected)
        return self._with_answers(projected, raw, today or dt.datetime.now(dt.UTC).date())

    def _with_answers(self, projected: Any, raw: bytes, today: dt.date) -> bytes:
        facts = _FACTS.decode(raw)
        body = self._encoder.encode(projected)
        extra: dict[str, bool] = {}
        for answer in self.answers:
            value: bool | None
            if answer.name == "is_deceased":
                value = _is_deceased(facts)
            elif answer.name == "is_alive":
                value = not _is_deceased(facts)
            else:
                assert answer.years is not None
                value = _age_at_least(facts.birth_date, answer.years, today)
            if value is not None:
                extra[answer.wire_name] = value
        if not extra:
            return body
        tail = self._encoder.encode(extra)
        # splice the answers into the record object: body is `{...}`, tail `{...}`
        return body[:-1] + b"," + tail[1:] if body != b"{}" else tail

    def minimise_all(self, records: Sequence[msgspec.Raw], today: dt.date) -> list[msgspec.Raw]:
        if self.passthrough:
            return list(records)
        return [msgspec.Raw(self.minimise(bytes(r), today)) for r in records]

    def allowed_record_paths(self) -> frozenset[str] | None:
        """Top-level keys a minimised record may carry (None = any): for tests and checks."""
        tree, _ = _selection(self.policy.fields)
        if tree is None:
            return None
        return frozenset({"@type", *tree, *(a.wire_name for a in self.answers)})

    def allows_subscription(
        self,
        *,
        reg_type: str | None,
        event_types: Iterable[EventType],
        filter_type: QueryType | None,
        filter_expr: Expr | None,
    ) -> None:
        """Whether this sender may subscribe with these criteria (and, at fan-out, whether a
        stored subscription is still within the current policy); raises ItemRejection with
        the subscribe reason codes: `rjct.notify_types.invalid` for a registry or event type
        outside the policy, `rjct.notify_details.invalid` for a filter type, identifier type
        or attribute outside it. Paths are relative to `subscribe_criteria`; messages name
        the type or attribute, never a filter value."""
        registries = self.registry_types
        if reg_type and registries is not None and parse_registry_type(reg_type) not in registries:
            raise ItemRejection(
                NOTIFY_TYPES, "reg_type is not allowed for this sender", path="reg_type"
            )
        events = frozenset(event_types)
        if self.event_types is not None and not events <= self.event_types:
            raise ItemRejection(
                NOTIFY_TYPES,
                "this event type is not allowed for this sender",
                path="reg_event_type",
            )
        if filter_expr is None:
            return  # no filter: every event of the allowed types, nothing searched by
        queries = self.query_types
        if filter_type is not None and queries is not None and filter_type not in queries:
            raise ItemRejection(
                NOTIFY_DETAILS,
                f"filter_type {filter_type.value} is not allowed for this sender",
                path="filter_type",
            )
        try:
            self._check_expr(filter_expr)
        except ItemRejection as exc:
            raise ItemRejection(
                NOTIFY_DETAILS, exc.message.replace("searching by", "filtering by"), path="filter"
            ) from None


def compile_policy(sender_id: str, policy: DisclosurePolicy, revision: int = 0) -> CompiledPolicy:
    """Check every name of the policy and precompute its projection; raises PolicyError."""
    return CompiledPolicy(sender_id, policy, revision)


def describe(policy: DisclosurePolicy) -> list[str]:
    """Short human-readable lines (CLI `policy show`)."""
    lines = [policy.description] if policy.description else []
    lines.append(f"searches: {', '.join(policy.query_types) or 'none'}")
    lines.append(f"by identifier: {', '.join(policy.identifier_types) or 'none'}")
    lines.append(f"by attribute: {', '.join(policy.search_attributes) or 'none'}")
    lines.append(f"events: {', '.join(policy.event_types) or 'none'}")
    lines.append(f"returns fields: {', '.join(policy.fields) or 'none'}")
    lines.append(f"returns answers: {', '.join(policy.answers) or 'none'}")
    lines.append(
        f"max page size {policy.max_page_size}, {policy.requests_per_minute} requests/minute"
    )
    rules = policy.consent
    needs = [
        n
        for n, on in (("consent", rules.require_consent), ("authorize", rules.require_authorize))
        if on
    ]
    lines.append(f"requires: {', '.join(needs) or 'nothing'}")
    if rules.purposes:
        lines.append(f"purposes: {', '.join(rules.purposes)}")
    return lines
