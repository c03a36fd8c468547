"""The DCI CRVS person record (`CRVS_Person`, extending core `Person`), as carried in
`reg_records` of search responses and notifications.

Field names are the schema's (spdci-schemas `extensions/crvs/v1/data/CRVSPerson.jsonld` and
`core/v1/data/*.jsonld`). Dates without a time (OpenCRVS stores birth dates as days) are
emitted as `YYYY-MM-DD`; instants as RFC 3339 with an offset. Absent fields are omitted.
"""

from __future__ import annotations

import msgspec

CRVS_PERSON_CONTEXT = "https://schema.spdci.org/extensions/crvs/v1/data/CRVSPerson.jsonld"
CRVS_PERSON_TYPE = "CRVS_Person"


class Identifier(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """core Identifier: `{identifier_type, identifier_value}`."""

    identifier_type: str
    identifier_value: str


class Name(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """core Name."""

    surname: str | None = None
    given_name: str | None = None
    second_name: str | None = None
    maiden_name: str | None = None
    prefix: str | None = None
    suffix: str | None = None


class GeoCoordinates(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    latitude: float
    longitude: float


class Place(
    msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True, tag_field="@type", tag="Place"
):
    """core Place. `contained_in_place` names the enclosing admin area (district, province)."""

    name: str | None = None
    address_line: str | None = None
    geo: GeoCoordinates | None = None
    contained_in_place: str | None = None
    id: str | None = msgspec.field(default=None, name="@id")
    """The place's registry id (OpenCRVS Location uuid), as a JSON-LD node id."""


class Address(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """core Address."""

    address_line_1: str | None = None
    address_line_2: str | None = None
    locality: str | None = None
    sub_region_code: str | None = None
    region_code: str | None = None
    postal_code: str | None = None
    country_code: str | None = None


class CrvsPerson(
    msgspec.Struct,
    kw_only=True,
    omit_defaults=True,
    frozen=True,
    tag_field="@type",
    tag=CRVS_PERSON_TYPE,
):
    """One person as the CRVS registry knows them, with the vital events registered so far.

    `@type` is always written (a struct tag, so `omit_defaults` cannot drop it).
    """

    id: str | None = msgspec.field(default=None, name="@id")
    identifier: list[Identifier] = msgspec.field(default_factory=list)
    name: Name | None = None
    sex: str | None = None
    birth_date: str | None = None
    birth_place: Place | None = None
    death_date: str | None = None
    death_place: Place | None = None
    marital_status: str | None = None
    marriage_date: list[str] | None = None
    divorce_date: list[str] | None = None
    parent1_identifier: Identifier | None = None
    parent2_identifier: Identifier | None = None
    address: list[Address] | None = None
    phone_number: list[str] | None = None
    email: list[str] | None = None
    registration_date: str | None = None
    last_updated: str | None = None
