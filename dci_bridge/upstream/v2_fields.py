"""OpenCRVS v2 (events API) declarations <-> records, for Farajaland's v2 form field ids.

In v2 a record is an event whose current data is the merge of its accepted actions'
`declaration` maps, keyed by per-country form field ids. This module holds the one mapping
between those maps and `MappedRecord` (births and deaths; Farajaland v2 has no marriage
event), used by the simulator (`to_declaration`) and by the v2 driver (`from_event`). Field
ids follow the digest (section 6) and the v1.9 Postman example: `child.name {firstname,
surname}`, `child.dob`, `child.gender`, `child.placeOfBirth`, `child.birthLocation`,
`child.birthLocation.privateHome {country, province, district, ...}`, `mother.*` /
`father.*` / `spouse.*` (`name`, `dob`, `nid`, `brn`, `idType`, `address`,
`maritalStatus`, `phoneNo`), `deceased.*`, `eventDetails.date` and `eventDetails.deathLocation`
/ `eventDetails.deathLocationOther` for deaths, `informant.relation`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from dci_bridge.records._fhir import MappingError, parse_instant
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.mapped import (
    BIRTH_REGISTRATION_NUMBER,
    DEATH_REGISTRATION_NUMBER,
    NATIONAL_ID,
    EventPlace,
    MappedAddress,
    MappedPerson,
    MappedRecord,
    RecordEvent,
    Role,
)

ROLES: dict[RecordEvent, tuple[tuple[str, Role], ...]] = {
    RecordEvent.BIRTH: (("child", Role.CHILD), ("mother", Role.MOTHER), ("father", Role.FATHER)),
    RecordEvent.DEATH: (
        ("deceased", Role.DECEASED),
        ("mother", Role.MOTHER),
        ("father", Role.FATHER),
        ("spouse", Role.SPOUSE),
    ),
}
MARITAL = {"S": "SINGLE", "M": "MARRIED", "W": "WIDOWED", "D": "DIVORCED", "L": "SEPARATED"}
MARITAL_BACK = {v: k for k, v in MARITAL.items()}
_SUBJECT_NUMBER = {
    (RecordEvent.BIRTH, Role.CHILD): BIRTH_REGISTRATION_NUMBER,
    (RecordEvent.DEATH, Role.DECEASED): DEATH_REGISTRATION_NUMBER,
}


def _address(a: MappedAddress) -> dict[str, Any]:
    lines = list(a.lines)
    number = lines.pop(0) if lines and lines[0].isdigit() else None
    rural = lines.pop() if lines and lines[-1] in ("URBAN", "RURAL") else None
    return {
        "country": a.country or "FAR",
        "province": a.state_id,
        "district": a.district_id,
        "urbanOrRural": rural,
        "town": a.city,
        "number": number,
        "street": " ".join(lines) or None,
        "zipCode": a.postal_code,
        "addressType": "DOMESTIC",
    }


def _person(p: MappedPerson, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        f"{prefix}.name": {"firstname": " ".join(p.given_names), "surname": p.family_name},
    }
    if p.sex:
        out[f"{prefix}.gender"] = p.sex
    if p.birth_date:
        out[f"{prefix}.dob"] = p.birth_date
    nid, brn = p.national_id, p.birth_registration_number
    if nid:
        out[f"{prefix}.nid"] = nid
    if brn and prefix != "child":
        out[f"{prefix}.brn"] = brn
    out[f"{prefix}.idType"] = (
        "NATIONAL_ID" if nid else "BIRTH_REGISTRATION_NUMBER" if brn else "NONE"
    )
    if p.marital_status in MARITAL:
        out[f"{prefix}.maritalStatus"] = MARITAL[p.marital_status or ""]
    if p.address is not None:
        out[f"{prefix}.address"] = _address(p.address)
    if p.phone_numbers:
        out[f"{prefix}.phoneNo"] = p.phone_numbers[0]
    if p.emails:
        out[f"{prefix}.email"] = p.emails[0]
    return out


def to_declaration(record: MappedRecord) -> dict[str, Any]:
    """The merged v2 declaration of a birth or death record."""
    out: dict[str, Any] = {}
    for prefix, role in ROLES[record.event]:
        person = record.role(role)
        if person is not None:
            out.update(_person(person, prefix))
        elif prefix == "father":
            out["father.detailsNotAvailable"] = True
    deceased = record.deceased
    if deceased is not None and deceased.death_date:
        out["eventDetails.date"] = deceased.death_date
    place = record.place
    if place is not None:
        home = place.kind in ("PRIVATE_HOME", "OTHER")
        if record.event is RecordEvent.BIRTH:
            out["child.placeOfBirth"] = "PRIVATE_HOME" if home else "HEALTH_FACILITY"
            key = "child.birthLocation.privateHome" if home else "child.birthLocation"
        else:
            out["eventDetails.placeOfDeath"] = "OTHER" if home else "HEALTH_FACILITY"
            key = "eventDetails.deathLocationOther" if home else "eventDetails.deathLocation"
        out[key] = (
            {"country": "FAR", "province": place.state_id, "district": place.district_id}
            if home
            else place.location_id
        )
    if record.informant_relationship:
        out["informant.relation"] = record.informant_relationship
    return out


# --- back: an event document to a record -------------------------------------------------


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _read_person(
    decl: Mapping[str, Any], prefix: str, role: Role, event: RecordEvent, number: str | None
) -> MappedPerson | None:
    name = decl.get(f"{prefix}.name")
    if not isinstance(name, Mapping) or decl.get(f"{prefix}.detailsNotAvailable") is True:
        return None
    identifiers: list[tuple[str, str]] = []
    nid, brn = _text(decl.get(f"{prefix}.nid")), _text(decl.get(f"{prefix}.brn"))
    if nid:
        identifiers.append((NATIONAL_ID, nid))
    if brn:
        identifiers.append((BIRTH_REGISTRATION_NUMBER, brn))
    code = _SUBJECT_NUMBER.get((event, role))
    if code is not None and number and not any(k == code for k, _ in identifiers):
        identifiers.append((code, number))
    if role is Role.DECEASED and brn:  # the FHIR order: own identifiers, then the DRN
        identifiers.sort(key=lambda item: item[0] == DEATH_REGISTRATION_NUMBER)
    address = decl.get(f"{prefix}.address")
    mapped_address = None
    if isinstance(address, Mapping):
        lines = tuple(
            t
            for t in (
                _text(address.get("number")),
                _text(address.get("street")),
                _text(address.get("urbanOrRural")),
            )
            if t
        )
        mapped_address = MappedAddress(
            lines=lines,
            city=_text(address.get("town")),
            district_id=_text(address.get("district")),
            state_id=_text(address.get("province")),
            postal_code=_text(address.get("zipCode")),
            country=_text(address.get("country")),
        )
    phone, email = _text(decl.get(f"{prefix}.phoneNo")), _text(decl.get(f"{prefix}.email"))
    death = _text(decl.get("eventDetails.date")) if role is Role.DECEASED else None
    return MappedPerson(
        role=role,
        resource_id=None,
        identifiers=tuple(identifiers),
        given_names=tuple((_text(name.get("firstname")) or "").split()),
        family_name=_text(name.get("surname")),
        sex=_text(decl.get(f"{prefix}.gender")),
        birth_date=_text(decl.get(f"{prefix}.dob")),
        is_deceased=role is Role.DECEASED,
        death_date=death,
        marital_status=MARITAL_BACK.get(str(decl.get(f"{prefix}.maritalStatus"))),
        address=mapped_address,
        phone_numbers=(phone,) if phone else (),
        emails=(email,) if email else (),
    )


def _place(decl: Mapping[str, Any], event: RecordEvent, index: LocationIndex) -> EventPlace | None:
    if event is RecordEvent.BIRTH:
        facility, home = (
            decl.get("child.birthLocation"),
            decl.get("child.birthLocation.privateHome"),
        )
    else:
        facility = decl.get("eventDetails.deathLocation")
        home = decl.get("eventDetails.deathLocationOther")
    if isinstance(facility, str) and facility:
        known = index.get(facility)
        district, state = index.district_and_state(facility)
        return EventPlace(
            location_id=facility,
            kind=known.type.value if known else "HEALTH_FACILITY",
            name=known.name if known else None,
            facility_id=facility,
            district_id=district.id if district else None,
            district_name=district.name if district else None,
            state_id=state.id if state else None,
            state_name=state.name if state else None,
        )
    if isinstance(home, Mapping):
        district_id, state_id = _text(home.get("district")), _text(home.get("province"))
        district = index.get(district_id) if district_id else None
        state = index.get(state_id) if state_id else None
        return EventPlace(
            location_id=district_id or state_id or "",
            kind="PRIVATE_HOME",
            district_id=district_id,
            district_name=district.name if district else None,
            state_id=state_id,
            state_name=state.name if state else None,
        )
    return None


def from_event(document: Mapping[str, Any], index: LocationIndex) -> MappedRecord:
    """A v2 event (`GET /events/{id}`) as a record: accepted actions' declarations merged."""
    kind = str(document.get("type") or "").lower()
    event = next((e for e in ROLES if e.value == kind), None)
    if event is None:
        raise MappingError("$.type", "unsupported event type")
    record_id = _text(document.get("id"))
    if record_id is None:
        raise MappingError("$.id", "event has no id")
    actions = document.get("actions")
    if not isinstance(actions, list):
        raise MappingError("$.actions", "expected a list")
    declaration: dict[str, Any] = {}
    number: str | None = None
    registered_at: dt.datetime | None = None
    office: str | None = None
    for i, action in enumerate(actions):
        if not isinstance(action, Mapping) or action.get("status") != "Accepted":
            continue
        decl = action.get("declaration")
        if isinstance(decl, Mapping):
            declaration.update(decl)
        if action.get("type") == "REGISTER":
            number = _text(action.get("registrationNumber")) or number
            registered_at = parse_instant(action.get("createdAt"), f"$.actions[{i}].createdAt")
            office = _text(action.get("createdAtLocation"))
    persons = [
        p
        for prefix, role in ROLES[event]
        if (p := _read_person(declaration, prefix, role, event, number)) is not None
    ]
    if not persons or persons[0].role not in (Role.CHILD, Role.DECEASED):
        raise MappingError("$.actions", f"no subject person in the {event.value} event")
    relation = _text(declaration.get("informant.relation"))
    return MappedRecord(
        record_id=record_id,
        event=event,
        tracking_id=_text(document.get("trackingId")),
        registration_number=number,
        status="REGISTERED" if number else "DECLARED",
        last_modified=registered_at,
        persons=tuple(persons),
        place=_place(declaration, event, index),
        office_id=office,
        informant_relationship=relation.upper() if relation else None,
    )
