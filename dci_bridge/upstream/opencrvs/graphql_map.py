"""Read a v1.x `fetchRegistration` answer (digest 2.2) into a `MappedRecord`, like a bundle.

So the OpenCRVS source builds DCI persons with the very code the embedded store uses
(`records.person.build_person`). Tolerant like the FHIR mapper: absent sections, `null`s,
`detailsExist: false` parents (skipped), empty identifier values (dropped). Anything that
is not the documented shape raises `MappingError` naming the path, never a value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from dci_bridge.records._fhir import MappingError, Resources, parse_date, parse_instant
from dci_bridge.records._fhir import resolve_place as _resolve_place
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.mapped import (
    BIRTH_REGISTRATION_NUMBER,
    DEATH_REGISTRATION_NUMBER,
    MARRIAGE_REGISTRATION_NUMBER,
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
