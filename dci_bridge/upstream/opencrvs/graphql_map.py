"""Read a v1.x `fetchRegistration` answer (digest 2.2) into a `MappedRecord`, like a bundle.

So the OpenCRVS source builds DCI persons with the very code the embedded store uses
(`records.person.build_person`). Tolerant like the FHIR mapper: absent sections, `null`s,
`detailsExist: false` parents (skipped), empty identifier values (dropped). Anything that
is not the documented shape raises `MappingError` naming the path, never a value.

Two readers, one result: `read_registration` walks the decoded JSON (tolerant of any shape);
`read_registration_struct` maps the msgspec structs the v1 driver decodes the answer into
when it has the documented types (no dict walking: about half the CPU). The driver falls
back to the first for any answer the structs refuse; a property test holds them equal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec

from dci_bridge.records._fhir import MappingError, Resources, parse_date, parse_instant
from dci_bridge.records._fhir import resolve_place as _resolve_place
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.mapped import (
    BIRTH_REGISTRATION_NUMBER,
    DEATH_REGISTRATION_NUMBER,
    MARRIAGE_REGISTRATION_NUMBER,
    ROLE_DECEASED,
    SUBJECT_ROLES,
    EventPlace,
    MappedAddress,
    MappedPerson,
    MappedRecord,
    RecordEvent,
    Role,
)

_TYPENAMES = {
    "BirthRegistration": RecordEvent.BIRTH,
    "DeathRegistration": RecordEvent.DEATH,
    "MarriageRegistration": RecordEvent.MARRIAGE,
}
_ROLES: dict[RecordEvent, tuple[tuple[str, Role], ...]] = {
    RecordEvent.BIRTH: (("child", Role.CHILD), ("mother", Role.MOTHER), ("father", Role.FATHER)),
    RecordEvent.DEATH: (
        ("deceased", Role.DECEASED),
        ("mother", Role.MOTHER),
        ("father", Role.FATHER),
        ("spouse", Role.SPOUSE),
    ),
    RecordEvent.MARRIAGE: (("bride", Role.BRIDE), ("groom", Role.GROOM)),
}
_SUBJECT_NUMBER = {
    (RecordEvent.BIRTH, Role.CHILD): BIRTH_REGISTRATION_NUMBER,
    (RecordEvent.DEATH, Role.DECEASED): DEATH_REGISTRATION_NUMBER,
    (RecordEvent.MARRIAGE, Role.BRIDE): MARRIAGE_REGISTRATION_NUMBER,
    (RecordEvent.MARRIAGE, Role.GROOM): MARRIAGE_REGISTRATION_NUMBER,
}
MARITAL_FROM_GRAPHQL = {
    "SINGLE": "S",
    "MARRIED": "M",
    "WIDOWED": "W",
    "DIVORCED": "D",
    "SEPARATED": "L",
    "NOT_STATED": "U",
}
_INFORMANT_ROLES = {"MOTHER": Role.MOTHER, "FATHER": Role.FATHER, "SPOUSE": Role.SPOUSE}
_NO_RESOURCES = Resources.of({"resourceType": "Bundle", "entry": []})


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _map(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MappingError(path, "expected an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(path, "expected a list")
    return value


def read_registration(
    data: Mapping[str, Any], *, locations: LocationIndex, path: str = "$"
) -> MappedRecord:
    """One record out of a `fetchRegistration` value; raises `MappingError`."""
    typename = data.get("__typename")
    registration = _map(data.get("registration"), f"{path}.registration")
    event = _TYPENAMES.get(str(typename))
    if event is None:
        kind = str(registration.get("type") or "").lower()
        event = next((e for e in RecordEvent if e.value == kind), None)
    if event is None:
        raise MappingError(f"{path}.__typename", "unknown registration type")
    record_id = _text(data.get("id"))
    if record_id is None:
        raise MappingError(f"{path}.id", "registration has no id")
    statuses = _list(registration.get("status"), f"{path}.registration.status")
    current = _map(statuses[-1], f"{path}.registration.status[-1]") if statuses else {}
    status = _text(current.get("type"))
    timestamp = current.get("timestamp") or data.get("createdAt")
    last_modified: dt.datetime | None = None
    if timestamp is not None:
        last_modified = parse_instant(timestamp, f"{path}.registration.status[-1].timestamp")
    office = current.get("office")
    office_id = _text(office.get("id")) if isinstance(office, Mapping) else None
    number = _text(registration.get("registrationNumber"))

    persons: list[MappedPerson] = []
    for key, role in _ROLES[event]:
        value = data.get(key)
        if not isinstance(value, Mapping) or value.get("detailsExist") is False:
            continue
        persons.append(_person(value, role, event, number, f"{path}.{key}"))
    informant = data.get("informant")
    relationship = None
    if isinstance(informant, Mapping):
        relationship = _text(informant.get("relationship"))
        relationship = relationship.upper() if relationship else None
    if not any(p.role in SUBJECT_ROLES for p in persons):
        raise MappingError(path, f"no subject person in the {event.value} record")
    return MappedRecord(
        record_id=record_id,
        event=event,
        tracking_id=_text(registration.get("trackingId")),
        registration_number=number,
        status=status.upper() if status else None,
        last_modified=last_modified,
        persons=tuple(persons),
        place=_place(data.get("eventLocation"), locations),
        office_id=office_id,
        informant_relationship=relationship,
    )


def _person(
    value: Mapping[str, Any], role: Role, event: RecordEvent, number: str | None, path: str
) -> MappedPerson:
    names = [n for n in _list(value.get("name"), f"{path}.name") if isinstance(n, Mapping)]
    chosen = next((n for n in names if n.get("use") == "en"), names[0] if names else None)
    given: tuple[str, ...] = ()
    family = None
    if chosen is not None:
        given = tuple((_text(chosen.get("firstNames")) or "").split())
        family = _text(chosen.get("familyName"))
    identifiers: list[tuple[str, str]] = []
    for i, item in enumerate(_list(value.get("identifier"), f"{path}.identifier")):
        item = _map(item, f"{path}.identifier[{i}]")
        kind, ident = _text(item.get("type")), _text(item.get("id"))
        if kind and ident:
            identifiers.append((kind.upper(), ident))
    code = _SUBJECT_NUMBER.get((event, role))
    if code is not None and number is not None and not any(k == code for k, _ in identifiers):
        identifiers.append((code, number))
    deceased = value.get("deceased")
    deceased = deceased if isinstance(deceased, Mapping) else {}
    phones: list[str] = []
    emails: list[str] = []
    for item in _list(value.get("telecom"), f"{path}.telecom"):
        if isinstance(item, Mapping) and _text(item.get("value")):
            target = phones if item.get("system") == "phone" else emails
            if item.get("system") in ("phone", "email"):
                target.append(str(_text(item.get("value"))))
    marital = MARITAL_FROM_GRAPHQL.get(str(value.get("maritalStatus") or "").upper())
    return MappedPerson(
        role=role,
        resource_id=_text(value.get("id")),
        identifiers=tuple(identifiers),
        given_names=given,
        family_name=family,
        sex=(_text(value.get("gender")) or "").lower() or None,
        birth_date=parse_date(value.get("birthDate"), f"{path}.birthDate"),
        is_deceased=bool(deceased.get("deceased")) or role is Role.DECEASED,
        death_date=parse_date(deceased.get("deathDate"), f"{path}.deceased.deathDate"),
        marital_status=marital,
        marriage_date=parse_date(value.get("dateOfMarriage"), f"{path}.dateOfMarriage"),
        address=_address(value.get("address"), f"{path}.address"),
        phone_numbers=tuple(phones),
        emails=tuple(emails),
    )


def _address(value: Any, path: str) -> MappedAddress | None:
    items = [a for a in _list(value, path) if isinstance(a, Mapping)]
    chosen = next(
        (a for a in items if a.get("type") == "PRIMARY_ADDRESS"), items[0] if items else None
    )
    if chosen is None:
        return None
    lines = tuple(t for t in (_text(x) for x in _list(chosen.get("line"), path)) if t)
    return MappedAddress(
        lines=lines,
        city=_text(chosen.get("city")),
        district_id=_text(chosen.get("district")),
        state_id=_text(chosen.get("state")),
        postal_code=_text(chosen.get("postalCode")),
        country=_text(chosen.get("country")),
    )


def _place(value: Any, locations: LocationIndex) -> EventPlace | None:
    if not isinstance(value, Mapping):
        return None
    location_id = _text(value.get("id"))
    if location_id is None:
        return None
    # The GraphQL Location as the FHIR Location the place resolver reads.
    resource: dict[str, Any] = {"resourceType": "Location", "id": location_id}
    if _text(value.get("name")):
        resource["name"] = value["name"]
    kind = _text(value.get("type"))
    if kind:
        resource["type"] = {"coding": [{"code": kind}]}
    part_of = _text(value.get("partOf"))
    if part_of:
        resource["partOf"] = {"reference": part_of}
    address = value.get("address")
    if isinstance(address, Mapping):
        resource["address"] = dict(address)
    known = locations.get(location_id)
    return _resolve_place(
        location_id, resource if kind or known is None else None, _NO_RESOURCES, locations
    )


# --- the typed fast path -------------------------------------------------------------------
# `fetchRegistration` decoded by msgspec straight into these structs (only the selected
# fields; others are skipped while decoding) and mapped without walking dicts. Read exactly
# like `read_registration`; an answer that does not fit these types (a number where a string
# belongs, a null inside a list...) fails to decode, and the caller reads it with the
# tolerant `read_registration` instead, so both paths give the same record or MappingError.


class GqlName(msgspec.Struct):
    use: str | None = None
    firstNames: str | None = None
    familyName: str | None = None


class GqlIdentifier(msgspec.Struct):
    id: str | None = None
    type: str | None = None


class GqlAddress(msgspec.Struct):
    type: str | None = None
    line: list[str | None] | None = None
    district: str | None = None
    state: str | None = None
    city: str | None = None
    postalCode: str | None = None
    country: str | None = None


class GqlTelecom(msgspec.Struct):
    system: str | None = None
    value: str | None = None


class GqlDeceased(msgspec.Struct):
    deceased: bool | None = None
    deathDate: str | None = None


class GqlPerson(msgspec.Struct):
    id: str | None = None
    name: list[GqlName | None] | None = None
    gender: str | None = None
    birthDate: str | None = None
    maritalStatus: str | None = None
    dateOfMarriage: str | None = None
    identifier: list[GqlIdentifier] | None = None
    address: list[GqlAddress | None] | None = None
    telecom: list[GqlTelecom | None] | None = None
    detailsExist: bool | None = None
    deceased: GqlDeceased | None = None


class GqlOffice(msgspec.Struct):
    id: str | None = None


class GqlStatus(msgspec.Struct):
    type: str | None = None
    timestamp: str | None = None
    office: GqlOffice | None = None


class GqlRegistration(msgspec.Struct):
    type: str | None = None
    trackingId: str | None = None
    registrationNumber: str | None = None
    status: list[GqlStatus] | None = None


class GqlLocationAddress(msgspec.Struct):
    district: str | None = None
    state: str | None = None


class GqlLocation(msgspec.Struct):
    id: str | None = None
    name: str | None = None
    type: str | None = None
    partOf: str | None = None
    address: GqlLocationAddress | None = None


class GqlInformant(msgspec.Struct):
    relationship: str | None = None


class GqlRegistrationRecord(msgspec.Struct):
    """One `fetchRegistration` value (any union member: absent roles are None)."""

    typename: str | None = msgspec.field(default=None, name="__typename")
    id: str | None = None
    registration: GqlRegistration | None = None
    child: GqlPerson | None = None
    deceased: GqlPerson | None = None
    mother: GqlPerson | None = None
    father: GqlPerson | None = None
    spouse: GqlPerson | None = None
    bride: GqlPerson | None = None
    groom: GqlPerson | None = None
    informant: GqlInformant | None = None
    eventLocation: GqlLocation | None = None
    createdAt: str | None = None


def _stext(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


PlaceCache = dict[tuple[str | None, ...], EventPlace | None]
"""Resolved event places by location value (a few hundred facilities, districts, homes)."""
PLACE_CACHE_SIZE = 4096


def read_registration_struct(
    data: GqlRegistrationRecord,
    *,
    locations: LocationIndex,
    places: PlaceCache | None = None,
    path: str = "$",
) -> MappedRecord:
    """`read_registration` of a typed answer (the same record or `MappingError`).

    `places` remembers resolved places between calls (for one `locations` index only)."""
    registration = data.registration
    if registration is None:
        raise MappingError(f"{path}.registration", "expected an object")
    event = _TYPENAMES.get(str(data.typename))
    if event is None:
        kind = (registration.type or "").lower()
        event = next((e for e in RecordEvent if e.value == kind), None)
    if event is None:
        raise MappingError(f"{path}.__typename", "unknown registration type")
    record_id = _stext(data.id)
    if record_id is None:
        raise MappingError(f"{path}.id", "registration has no id")
    current = registration.status[-1] if registration.status else None
    status = _stext(current.type) if current is not None else None
    timestamp = (current.timestamp if current is not None else None) or data.createdAt
    last_modified: dt.datetime | None = None
    if timestamp is not None:
        last_modified = parse_instant(timestamp, f"{path}.registration.status[-1].timestamp")
    office = current.office if current is not None else None
    office_id = _stext(office.id) if office is not None else None
    number = _stext(registration.registrationNumber)

    persons: list[MappedPerson] = []
    for key, role in _ROLES[event]:
        value: GqlPerson | None = getattr(data, key)
        if value is None or value.detailsExist is False:
            continue
        persons.append(_struct_person(value, role, event, number, f"{path}.{key}"))
    relationship = None
    if data.informant is not None:
        relationship = _stext(data.informant.relationship)
        relationship = relationship.upper() if relationship else None
    if not any(p.role in SUBJECT_ROLES for p in persons):
        raise MappingError(path, f"no subject person in the {event.value} record")
    return MappedRecord(
        record_id=record_id,
        event=event,
        tracking_id=_stext(registration.trackingId),
        registration_number=number,
        status=status.upper() if status else None,
        last_modified=last_modified,
        persons=tuple(persons),
        place=_struct_place(data.eventLocation, locations, places),
        office_id=office_id,
        informant_relationship=relationship,
    )


def _struct_person(
    value: GqlPerson, role: Role, event: RecordEvent, number: str | None, path: str
) -> MappedPerson:
    # `_stext` spelled out on the fields read for every person: a call per field was a
    # tenth of the time of reading a fetched record
    names = [n for n in value.name or () if n is not None]
    chosen = next((n for n in names if n.use == "en"), names[0] if names else None)
    given: tuple[str, ...] = ()
    family = None
    if chosen is not None:
        given = tuple((chosen.firstNames or "").split())
        family = chosen.familyName.strip() or None if chosen.familyName else None
    identifiers: list[tuple[str, str]] = []
    for item in value.identifier or ():
        kind, ident = item.type, item.id
        if kind and ident:
            kind, ident = kind.strip(), ident.strip()
            if kind and ident:
                identifiers.append((kind.upper(), ident))
    code = _SUBJECT_NUMBER.get((event, role))
    if code is not None and number is not None and not any(k == code for k, _ in identifiers):
        identifiers.append((code, number))
    phones: list[str] = []
    emails: list[str] = []
    for contact in value.telecom or ():
        if contact is None or not contact.value:
            continue
        text = contact.value.strip()
        if text and contact.system == "phone":
            phones.append(text)
        elif text and contact.system == "email":
            emails.append(text)
    deceased = value.deceased
    gender = value.gender.strip().lower() if value.gender else None
    return MappedPerson(
        role=role,
        resource_id=value.id.strip() or None if value.id else None,
        identifiers=tuple(identifiers),
        given_names=given,
        family_name=family,
        sex=gender or None,
        birth_date=parse_date(value.birthDate, f"{path}.birthDate") if value.birthDate else None,
        is_deceased=bool(deceased is not None and deceased.deceased) or role is ROLE_DECEASED,
        death_date=parse_date(deceased.deathDate, f"{path}.deceased.deathDate")
        if deceased is not None and deceased.deathDate
        else None,
        marital_status=MARITAL_FROM_GRAPHQL.get((value.maritalStatus or "").upper()),
        marriage_date=parse_date(value.dateOfMarriage, f"{path}.dateOfMarriage")
        if value.dateOfMarriage
        else None,
        address=_struct_address(value.address),
        phone_numbers=tuple(phones),
        emails=tuple(emails),
    )


def _struct_address(value: list[GqlAddress | None] | None) -> MappedAddress | None:
    items = [a for a in value or () if a is not None]
    chosen = next((a for a in items if a.type == "PRIMARY_ADDRESS"), items[0] if items else None)
    if chosen is None:
        return None
    lines = tuple(t for t in (_stext(x) for x in chosen.line or ()) if t)
    return MappedAddress(
        lines=lines,
        city=_stext(chosen.city),
        district_id=_stext(chosen.district),
        state_id=_stext(chosen.state),
        postal_code=_stext(chosen.postalCode),
        country=_stext(chosen.country),
    )


def _struct_place(
    value: GqlLocation | None, locations: LocationIndex, places: PlaceCache | None
) -> EventPlace | None:
    """`_place` of a typed location, remembered in `places` (`EventPlace` is immutable)."""
    if value is None:
        return None
    address = value.address
    key = (
        value.id,
        value.name,
        value.type,
        value.partOf,
        address.district if address is not None else None,
        address.state if address is not None else None,
        "address" if address is not None else None,
    )
    if places is not None and key in places:
        return places[key]
    raw: dict[str, Any] = {
        "id": value.id,
        "name": value.name,
        "type": value.type,
        "partOf": value.partOf,
    }
    if address is not None:
        raw["address"] = {"district": address.district, "state": address.state}
    place = _place(raw, locations)
    if places is not None:
        if len(places) >= PLACE_CACHE_SIZE:
            places.clear()
        places[key] = place
    return place
