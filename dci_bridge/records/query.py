"""The backend-neutral query model every record source answers.

A DCI `search_criteria` (idtype-value, expression, predicate) is translated once into a
`RecordQuery` (see `translate.py`); the embedded store compiles it to SQL and the OpenCRVS
source to upstream searches. Attributes are a closed list (`Attribute`), each with the
spellings clients use for it (`ATTRIBUTE_ALIASES`), so the same names work in predicates,
expressions and sort keys.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from dci_bridge.protocol.codes import EventType, ExpOperator, IdentifierType, SortOrder


class Attribute(enum.StrEnum):
    """Searchable and sortable attributes of a CRVS person."""

    IDENTIFIER = "identifier"  # compared through IdentifierLookup, never directly
    GIVEN_NAME = "given_name"
    SURNAME = "surname"
    SEX = "sex"
    BIRTH_DATE = "birth_date"
    BIRTH_YEAR = "birth_year"
    BIRTH_PLACE = "birth_place"  # a location id at any level: facility, district, province
    DEATH_DATE = "death_date"
    DEATH_YEAR = "death_year"
    DEATH_PLACE = "death_place"
    MARITAL_STATUS = "marital_status"
    MARRIAGE_DATE = "marriage_date"
    REGISTRATION_DATE = "registration_date"
    LAST_UPDATED = "last_updated"
    IS_DECEASED = "is_deceased"


class ValueKind(enum.Enum):
    TEXT = "text"
    DATE = "date"
    INTEGER = "integer"
    BOOLEAN = "boolean"


ATTRIBUTE_KINDS: dict[Attribute, ValueKind] = {
    Attribute.IDENTIFIER: ValueKind.TEXT,
    Attribute.GIVEN_NAME: ValueKind.TEXT,
    Attribute.SURNAME: ValueKind.TEXT,
    Attribute.SEX: ValueKind.TEXT,
    Attribute.BIRTH_DATE: ValueKind.DATE,
    Attribute.BIRTH_YEAR: ValueKind.INTEGER,
    Attribute.BIRTH_PLACE: ValueKind.TEXT,
    Attribute.DEATH_DATE: ValueKind.DATE,
    Attribute.DEATH_YEAR: ValueKind.INTEGER,
    Attribute.DEATH_PLACE: ValueKind.TEXT,
    Attribute.MARITAL_STATUS: ValueKind.TEXT,
    Attribute.MARRIAGE_DATE: ValueKind.DATE,
    Attribute.REGISTRATION_DATE: ValueKind.DATE,
    Attribute.LAST_UPDATED: ValueKind.DATE,
    Attribute.IS_DECEASED: ValueKind.BOOLEAN,
}

# Spellings seen in the standard's examples (YOB, DOB, birthdate), in the older person model
# (birthdate, deathdate, birthplace) and in OpenCRVS (childDoB...). Keys are lower case.
ATTRIBUTE_ALIASES: dict[str, Attribute] = {
    **{a.value: a for a in Attribute},
    "firstname": Attribute.GIVEN_NAME,
    "first_name": Attribute.GIVEN_NAME,
    "given": Attribute.GIVEN_NAME,
    "givenname": Attribute.GIVEN_NAME,
    "lastname": Attribute.SURNAME,
    "last_name": Attribute.SURNAME,
    "family_name": Attribute.SURNAME,
    "familyname": Attribute.SURNAME,
    "sur_name": Attribute.SURNAME,
    "gender": Attribute.SEX,
    "dob": Attribute.BIRTH_DATE,
    "birthdate": Attribute.BIRTH_DATE,
    "date_of_birth": Attribute.BIRTH_DATE,
    "yob": Attribute.BIRTH_YEAR,
    "year_of_birth": Attribute.BIRTH_YEAR,
    "birthplace": Attribute.BIRTH_PLACE,
    "place_of_birth": Attribute.BIRTH_PLACE,
    "dod": Attribute.DEATH_DATE,
    "deathdate": Attribute.DEATH_DATE,
    "date_of_death": Attribute.DEATH_DATE,
    "yod": Attribute.DEATH_YEAR,
    "deathplace": Attribute.DEATH_PLACE,
    "place_of_death": Attribute.DEATH_PLACE,
    "marriagedate": Attribute.MARRIAGE_DATE,
    "deceased": Attribute.IS_DECEASED,
}


def parse_attribute(name: str) -> Attribute | None:
    """Read an attribute name in any accepted spelling; None when unknown."""
    return ATTRIBUTE_ALIASES.get(name.strip().lower())


Value = str | int | bool | dt.date


@dataclass(frozen=True, slots=True)
class IdentifierLookup:
    """The person holds an identifier of this type with one of these values."""

    id_type: IdentifierType
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """`attribute op value`; for `IN` the value is a tuple. Text compares case-insensitively."""

    attribute: Attribute
    op: ExpOperator
    value: Value | tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr = IdentifierLookup | Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class SortKey:
    attribute: Attribute
    order: SortOrder = SortOrder.ASC


@dataclass(frozen=True, slots=True)
class Page:
    """1-based page number and page size, already checked against the configured maximum."""

    number: int = 1
    size: int = 10

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """What to find: a filter tree, the vital events a person must have, order and page.

    `event_types` empty means any person; otherwise the person must have a registered
    event of at least one of these types (a `Death` filter finds deceased persons).
    Results are always ordered deterministically: by `sort`, then by the person key.
    """

    where: Expr | None = None
    event_types: frozenset[EventType] = frozenset()
    sort: tuple[SortKey, ...] = ()
    page: Page = field(default_factory=Page)


def identifier_lookups(expr: Expr | None) -> Sequence[IdentifierLookup]:
    """Every identifier look-up in a tree (used to pick the fast path and for audit hashing)."""
    if expr is None:
        return ()
    if isinstance(expr, IdentifierLookup):
        return (expr,)
    if isinstance(expr, Comparison):
        return ()
    if isinstance(expr, Not):
        return identifier_lookups(expr.item)
    found: list[IdentifierLookup] = []
    for item in expr.items:
        found.extend(identifier_lookups(item))
    return found
