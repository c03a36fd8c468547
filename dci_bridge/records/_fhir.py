"""Small, defensive readers for FHIR JSON as OpenCRVS writes it (used by `fhir_map`).

Every reader accepts `Any` and treats a wrongly typed optional field as absent; structural
faults and unreadable dates raise `MappingError` with the JSON path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from dci_bridge.records.locations import Jurisdiction, LocationIndex
from dci_bridge.records.mapped import (
    BIRTH_REGISTRATION_NUMBER,
    DEATH_REGISTRATION_NUMBER,
    MARRIAGE_REGISTRATION_NUMBER,
    EventPlace,
    MappedAddress,
    MappedPerson,
    RecordEvent,
    Role,
)


class MappingError(ValueError):
    """A bundle that cannot be read as an OpenCRVS record. `path` points at the fault."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} at {path}")
        self.path = path
        self.message = message


_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([^/]+)(?:/_history/[^/]+)?/?$")
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_SEX = {"male", "female", "other", "unknown"}
_MARITAL = {"S", "M", "W", "A", "D", "L", "U"}
_EXT = "http://opencrvs.org/specs/extension/"
_SUBJECT_NUMBER = {
    (RecordEvent.BIRTH, Role.CHILD): BIRTH_REGISTRATION_NUMBER,
    (RecordEvent.DEATH, Role.DECEASED): DEATH_REGISTRATION_NUMBER,
    (RecordEvent.MARRIAGE, Role.BRIDE): MARRIAGE_REGISTRATION_NUMBER,
    (RecordEvent.MARRIAGE, Role.GROOM): MARRIAGE_REGISTRATION_NUMBER,
}

Found = tuple[Mapping[str, Any], str]
"""A resource and its JSON path in the bundle."""


def is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object (dicts take the fast path; any Mapping is accepted)."""
    return type(value) is dict or isinstance(value, Mapping)


def as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else ()


def dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if type(value) is not dict and not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def text(value: Any) -> str | None:
    """A non-empty string, trimmed, without NUL characters (no database stores those)."""
    if type(value) is str or isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        value = value.strip()
        return value or None
    return None


def codes(concept: Any) -> list[str]:
    """The `code`s of a CodeableConcept (or a bare code string, as 2019 data has)."""
    if isinstance(concept, str):
        code = text(concept)
        return [code] if code is not None else []
    found: list[str] = []
    for item in as_list(dig(concept, "coding")):
        code = text(dig(item, "code"))
        if code is not None:
            found.append(code)
    return found


def ref_id(reference: Any) -> str | None:
    """The id part of `Type/<id>`, `/fhir/Type/<id>/_history/<v>` or `urn:uuid:<id>`."""
    if not isinstance(reference, str) or not reference.strip():
        return None
    reference = reference.strip()
    if reference.startswith("urn:uuid:"):
        return text(reference[len("urn:uuid:") :])
    match = _REF.search(reference)
    return text(match.group(2)) if match else None


@dataclass(frozen=True, slots=True)
class Resources:
    """The resources of one bundle, indexed by fullUrl and by `Type/<id>`."""

    entries: tuple[Found, ...]
    by_url: Mapping[str, Found]
    by_type_id: Mapping[tuple[str, str], Found]

    @classmethod
    def of(cls, bundle: Any) -> Resources:
        if not is_map(bundle):
            raise MappingError("$", "the bundle is not a JSON object")
        if bundle.get("resourceType") != "Bundle":
            raise MappingError("$.resourceType", "not a FHIR Bundle")
        raw = bundle.get("entry")
        if not isinstance(raw, list):
            raise MappingError("$.entry", "the bundle has no entry list")
        entries: list[Found] = []
        by_url: dict[str, Found] = {}
        by_type_id: dict[tuple[str, str], Found] = {}
        for i, entry in enumerate(raw):
            path = f"$.entry[{i}]"
            resource = entry.get("resource") if is_map(entry) else None
            if not is_map(resource):
                raise MappingError(f"{path}.resource", "entry without a resource object")
            kind = resource.get("resourceType")
            if not isinstance(kind, str) or not kind:
                raise MappingError(f"{path}.resource.resourceType", "resource without a type")
            found = (resource, f"{path}.resource")
            entries.append(found)
            url = text(entry.get("fullUrl"))
            if url is not None:
                by_url.setdefault(url, found)
            rid = text(resource.get("id"))
            if rid is not None:
                by_type_id.setdefault((kind, rid), found)
            elif url is not None and (match := _REF.search(url)):
                by_type_id.setdefault((match.group(1), match.group(2)), found)
        return cls(tuple(entries), by_url, by_type_id)

    def of_type(self, kind: str) -> list[Found]:
        return [found for found in self.entries if found[0].get("resourceType") == kind]

    def resolve(self, reference: Any) -> Found | None:
        if not isinstance(reference, str) or not reference.strip():
            return None
        reference = reference.strip()
        if reference in self.by_url:
            return self.by_url[reference]
        match = _REF.search(reference)
        if match:
            return self.by_type_id.get((match.group(1), match.group(2)))
        return None


# --- dates -----------------------------------------------------------------------------


def parse_date(value: Any, path: str) -> str | None:
    """A FHIR date or dateTime as `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (time dropped)."""
    if type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:  # the usual full date, accepted by the calendar alone (a third of the time)
            dt.date.fromisoformat(value)
        except ValueError:
            pass  # the checks below say what is wrong with it
        else:
            return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise MappingError(path, "date is not a string")
    day = value.strip()[:10]
    match = _PARTIAL_DATE.match(day)
    if not match:
        raise MappingError(path, "not a FHIR date")
    try:
        if match.group(3):
            dt.date.fromisoformat(day)
        elif match.group(2) and not 1 <= int(match.group(2)) <= 12:
            raise ValueError(day)
    except ValueError:
        raise MappingError(path, "not a calendar date") from None
    if len(value.strip()) > 10:
        parse_instant(value, path)
    return day


def parse_instant(value: Any, path: str) -> dt.datetime:
    """An ISO 8601 instant (or date, read as midnight) as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise MappingError(path, "instant is not a string")
    raw = value.strip()
    try:
        if len(raw) == 10:
            parsed = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
        else:
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(path, "not an ISO 8601 instant") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


# --- persons ---------------------------------------------------------------------------


def identifiers(patient: Mapping[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for item in as_list(patient.get("identifier")):
        value = text(dig(item, "value"))
        kinds = codes(dig(item, "type"))
        if value is None or not kinds:
            continue
        pair = (kinds[0].upper(), value)
        if pair not in found:
            found.append(pair)
    return found


def gender(patient: Mapping[str, Any]) -> str | None:
    value = text(patient.get("gender"))
    return value.lower() if value is not None and value.lower() in _SEX else None


def is_deceased(patient: Mapping[str, Any]) -> bool:
    return (
        patient.get("deceasedBoolean") is True or text(patient.get("deceasedDateTime")) is not None
    )


def _extension(resource: Mapping[str, Any], name: str) -> tuple[Any, int] | None:
    for i, ext in enumerate(as_list(resource.get("extension"))):
        if is_map(ext) and ext.get("url") == _EXT + name:
            return ext, i
    return None


def has_marriage_date(patient: Mapping[str, Any]) -> bool:
    return _extension(patient, "date-of-marriage") is not None


def _name(patient: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    names = [n for n in as_list(patient.get("name")) if is_map(n)]
    chosen = next((n for n in names if n.get("use") == "en"), names[0] if names else None)
    if chosen is None:
        return (), None
    raw_given = chosen.get("given")
    given_items = [raw_given] if isinstance(raw_given, str) else as_list(raw_given)
    given = tuple(g for g in (text(item) for item in given_items) if g is not None)
    raw_family = chosen.get("family")
    family_items = [raw_family] if isinstance(raw_family, str) else as_list(raw_family)
    family = " ".join(f for f in (text(item) for item in family_items) if f is not None)
    return given, family or None


def _address(patient: Mapping[str, Any]) -> MappedAddress | None:
    items = [a for a in as_list(patient.get("address")) if is_map(a)]
    chosen = next(
        (a for a in items if a.get("type") == "PRIMARY_ADDRESS"), items[0] if items else None
    )
    if chosen is None:
        return None
    lines = tuple(t for t in (text(x) for x in as_list(chosen.get("line"))) if t is not None)
    return MappedAddress(
        lines=lines,
        city=text(chosen.get("city")),
        district_id=text(chosen.get("district")),
        state_id=text(chosen.get("state")),
        postal_code=text(chosen.get("postalCode")),
        country=text(chosen.get("country")),
    )


def read_patient(
    role: Role,
    patient: Mapping[str, Any],
    path: str,
    event: RecordEvent,
    registration_number: str | None,
) -> MappedPerson:
    """One Patient in one role; a subject also holds the record's registration number."""
    ids = identifiers(patient)
    number_code = _SUBJECT_NUMBER.get((event, role))
    if (
        number_code is not None
        and registration_number is not None
        and not any(kind == number_code for kind, _ in ids)
    ):
        ids.append((number_code, registration_number))
    given, family = _name(patient)
    marital = next((c.upper() for c in codes(patient.get("maritalStatus"))), None)
    marriage = _extension(patient, "date-of-marriage")
    marriage_date = None
    if marriage is not None:
        ext, i = marriage
        value = ext.get("valueDateTime", ext.get("valueDate"))
        marriage_date = parse_date(value, f"{path}.extension[{i}].valueDateTime")
    phones: list[str] = []
    emails: list[str] = []
    for item in as_list(patient.get("telecom")):
        value = text(dig(item, "value"))
        system = dig(item, "system")
        if value is not None and system == "phone":
            phones.append(value)
        elif value is not None and system == "email":
            emails.append(value)
    return MappedPerson(
        role=role,
        resource_id=text(patient.get("id")),
        identifiers=tuple(ids),
        given_names=given,
        family_name=family,
        sex=gender(patient),
        birth_date=parse_date(patient.get("birthDate"), f"{path}.birthDate"),
        is_deceased=is_deceased(patient),
        death_date=parse_date(patient.get("deceasedDateTime"), f"{path}.deceasedDateTime"),
        marital_status=marital if marital in _MARITAL else None,
        marriage_date=marriage_date,
        address=_address(patient),
        phone_numbers=tuple(phones),
        emails=tuple(emails),
    )


# --- places ----------------------------------------------------------------------------


def _location_kind(resource: Mapping[str, Any] | None) -> str | None:
    if resource is None:
        return None
    return next((c.upper() for c in codes(resource.get("type"))), None)


def _jurisdiction(resource: Mapping[str, Any] | None) -> str | None:
    if resource is None:
        return None
    for item in as_list(resource.get("identifier")):
        if dig(item, "system") == "http://opencrvs.org/specs/id/jurisdiction-type":
            return text(dig(item, "value"))
    return None


def resolve_place(
    location_id: str,
    resource: Mapping[str, Any] | None,
    resources: Resources,
    index: LocationIndex,
) -> EventPlace:
    """Facility, district and province of an event location, from the bundle then the index."""
    known = index.get(location_id)
    kind = _location_kind(resource) or (known.type.value if known else None)
    name = text(resource.get("name")) if resource is not None else None
    name = name or (known.name if known else None)

    def info(loc_id: str | None) -> tuple[str | None, str | None, str | None, str | None]:
        """(id, name, jurisdiction, parent id) of a location, bundle first."""
        if not loc_id or loc_id == "0":
            return None, None, None, None
        found = resources.by_type_id.get(("Location", loc_id))
        res = found[0] if found else None
        entry = index.get(loc_id)
        loc_name = (text(res.get("name")) if res is not None else None) or (
            entry.name if entry else None
        )
        juris = _jurisdiction(res) or (
            entry.jurisdiction.value if entry and entry.jurisdiction else None
        )
        parent = ref_id(dig(res, "partOf", "reference")) if res is not None else None
        parent = parent or (entry.parent_id if entry else None)
        return loc_id, loc_name, juris, parent

    levels: dict[str, tuple[str, str | None]] = {}
    facility_id: str | None = None
    if kind in {"PRIVATE_HOME", "OTHER"} and resource is not None:
        address = resource.get("address")
        for key, level in (("district", Jurisdiction.DISTRICT), ("state", Jurisdiction.STATE)):
            loc_id, loc_name, _, _ = info(text(dig(address, key)))
            if loc_id is not None:
                levels[level.value] = (loc_id, loc_name)
        start = None if levels else ref_id(dig(resource, "partOf", "reference"))
    else:
        _, _, own_juris, parent = info(location_id)
        if own_juris in {Jurisdiction.DISTRICT.value, Jurisdiction.STATE.value}:
            levels[own_juris] = (location_id, name)
        else:
            facility_id = location_id
        start = parent
    current, depth = start, 0
    while current and depth < 6:
        loc_id, loc_name, juris, parent = info(current)
        if loc_id is None:
            break
        if juris is None:  # unknown shape: nearest level first
            juris = Jurisdiction.DISTRICT.value if not levels else Jurisdiction.STATE.value
        levels.setdefault(juris, (loc_id, loc_name))
        current, depth = parent, depth + 1
    district = levels.get(Jurisdiction.DISTRICT.value, (None, None))
    state = levels.get(Jurisdiction.STATE.value, (None, None))
    return EventPlace(
        location_id=location_id,
        kind=kind,
        name=name if facility_id else None,
        facility_id=facility_id,
        district_id=district[0],
        district_name=district[1],
        state_id=state[0],
        state_name=state[1],
    )
