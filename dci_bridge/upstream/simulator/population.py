"""The simulator's registry: the seed's synthetic population, searched and served as OpenCRVS does.

Records are the seed's FHIR bundles (`records.seed.generate_bundles`, same seed and size as
the embedded store, so both sources hold the same persons), read once with
`records.fhir_map.map_bundle`. `search` applies `searchEvents`' `advancedSearchParameters`
(digest 2.1); `registration_json` is the `fetchRegistration` projection (digest 2.2);
`search_set_json` one `searchEvents` result. New records (`add`) come from `/_sim/register`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dci_bridge.clock import isoformat_z
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.locations import LocationIndex, farajaland
from dci_bridge.records.mapped import MappedPerson, MappedRecord, RecordEvent, Role
from dci_bridge.records.seed import generate_bundles

MARITAL_TO_GRAPHQL = {
    "S": "SINGLE",
    "M": "MARRIED",
    "W": "WIDOWED",
    "D": "DIVORCED",
    "L": "SEPARATED",
    "U": "NOT_STATED",
}
_TYPENAMES = {
    RecordEvent.BIRTH: ("BirthRegistration", "BirthEventSearchSet"),
    RecordEvent.DEATH: ("DeathRegistration", "DeathEventSearchSet"),
    RecordEvent.MARRIAGE: ("MarriageRegistration", "MarriageEventSearchSet"),
}
_ROLE_FIELDS = {
    Role.CHILD: "child",
    Role.DECEASED: "deceased",
    Role.MOTHER: "mother",
    Role.FATHER: "father",
    Role.SPOUSE: "spouse",
    Role.BRIDE: "bride",
    Role.GROOM: "groom",
    Role.INFORMANT: "informant",
}
MAX_RESULT_WINDOW = 10_000
"""Elasticsearch's `index.max_result_window`: skip + count beyond it is an error."""

SEARCH_FIELDS = frozenset(
    {
        "event",
        "name",
        "registrationStatuses",
        "dateOfEvent",
        "dateOfEventStart",
        "dateOfEventEnd",
        "timePeriodFrom",
        "contactNumber",
        "contactEmail",
        "nationalId",
        "registrationNumber",
        "trackingId",
        "recordId",
        "dateOfRegistration",
        "dateOfRegistrationStart",
        "dateOfRegistrationEnd",
        "declarationLocationId",
        "declarationJurisdictionId",
        "eventLocationId",
        "eventLocationLevel1",
        "eventLocationLevel2",
        "eventLocationLevel3",
        "eventLocationLevel4",
        "eventLocationLevel5",
        "childFirstNames",
        "childLastName",
        "childDoB",
        "childDoBStart",
        "childDoBEnd",
        "childGender",
        "childIdentifier",
        "deceasedFirstNames",
        "deceasedFamilyName",
        "deceasedGender",
        "deceasedDoB",
        "deceasedDoBStart",
        "deceasedDoBEnd",
        "deceasedIdentifier",
        "motherFirstNames",
        "motherFamilyName",
        "motherDoB",
        "motherDoBStart",
        "motherDoBEnd",
        "motherIdentifier",
        "fatherFirstNames",
        "fatherFamilyName",
        "fatherDoB",
        "fatherDoBStart",
        "fatherDoBEnd",
        "fatherIdentifier",
        "informantFirstNames",
        "informantFamilyName",
        "informantDoB",
        "informantDoBStart",
        "informantDoBEnd",
        "informantIdentifier",
        "compositionType",
    }
)


class SearchInputError(ValueError):
    """A variable GraphQL would refuse (unknown input field, wrong type, bad window)."""


@dataclass(slots=True, eq=False)
class _Doc:
    record: MappedRecord
    nids: frozenset[str]
    place_ids: frozenset[str]
    office_ids: frozenset[str]
    registered: str  # ISO instant, for range filters and sorting
    event_date: str | None
    order: int


@dataclass(slots=True)
class Population:
    """Registered and other records, with the look-ups `searchEvents` needs."""

    locations: LocationIndex = field(default_factory=farajaland)
    docs: list[_Doc] = field(default_factory=list)
    by_id: dict[str, _Doc] = field(default_factory=dict)
    by_number: dict[str, list[_Doc]] = field(default_factory=dict)
    by_tracking: dict[str, list[_Doc]] = field(default_factory=dict)
    by_nid: dict[str, list[_Doc]] = field(default_factory=dict)
    bundles: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _fetch_cache: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def seeded(cls, persons: int, seed: int) -> Population:
        population = cls()
        for bundle in generate_bundles(persons, seed, locations=population.locations):
            population.add(bundle, keep_bundle=False)
        return population

    def add(self, bundle: Mapping[str, Any], *, keep_bundle: bool = True) -> MappedRecord:
        record = map_bundle(bundle, locations=self.locations)
        old = self.by_id.get(record.record_id)
        if old is not None:
            self._remove(old)
        doc = self._doc(record)
        self.docs.append(doc)
        self.by_id[record.record_id] = doc
        if record.registration_number:
            self.by_number.setdefault(record.registration_number.upper(), []).append(doc)
        if record.tracking_id:
            self.by_tracking.setdefault(record.tracking_id.upper(), []).append(doc)
        for nid in doc.nids:
            self.by_nid.setdefault(nid, []).append(doc)
        if keep_bundle:
            self.bundles[record.record_id] = bundle
        return record

    def _remove(self, doc: _Doc) -> None:
        self.docs.remove(doc)
        self._fetch_cache.pop(doc.record.record_id, None)
        for index in (self.by_number, self.by_tracking, self.by_nid):
            for found in index.values():
                if doc in found:
                    found.remove(doc)

    def _doc(self, record: MappedRecord) -> _Doc:
        nids = frozenset(p.national_id for p in record.persons if p.national_id)
        place = record.place
        place_ids = frozenset(
            i
            for i in (
                (place.location_id, place.facility_id, place.district_id, place.state_id)
                if place
                else ()
            )
            if i
        )
        offices: set[str] = set()
        if record.office_id:
            offices.add(record.office_id)
            offices.update(loc.id for loc in self.locations.ancestors(record.office_id))
        subject = record.subjects[0] if record.subjects else None
        event_date = None
        if subject is not None:
            event_date = {
                RecordEvent.BIRTH: subject.birth_date,
                RecordEvent.DEATH: subject.death_date,
                RecordEvent.MARRIAGE: subject.marriage_date,
            }[record.event]
        registered = isoformat_z(record.last_modified) if record.last_modified else ""
        return _Doc(
            record, nids, place_ids, frozenset(offices), registered, event_date, len(self.docs)
        )

    # --- searchEvents --------------------------------------------------------------------

    def search(
        self,
        params: Mapping[str, Any],
        *,
        count: int,
        skip: int,
        sort_by: Sequence[Mapping[str, Any]] = (),
    ) -> tuple[int, list[MappedRecord]]:
        """(totalItems, the page of records) for `advancedSearchParameters`."""
        unknown = sorted(set(params) - SEARCH_FIELDS)
        if unknown:
            raise SearchInputError(
                f'Field "{unknown[0]}" is not defined by type "AdvancedSearchParametersInput".'
            )
        if count < 0 or skip < 0:
            raise SearchInputError("count and skip must not be negative")
        if skip + count > MAX_RESULT_WINDOW:
            raise SearchInputError(
                f"Result window is too large, from + size must be less than or equal to: "
                f"[{MAX_RESULT_WINDOW}]"
            )
        found = [d for d in self._candidates(params) if _matches(d, params)]
        found.sort(key=_sort_key(sort_by))
        return len(found), [d.record for d in found[skip : skip + count]]

    def _candidates(self, params: Mapping[str, Any]) -> Iterable[_Doc]:
        for key, index in (
            ("recordId", None),
            ("registrationNumber", self.by_number),
            ("trackingId", self.by_tracking),
            ("nationalId", self.by_nid),
        ):
            value = params.get(key)
            if isinstance(value, str):
                if index is None:
                    doc = self.by_id.get(value)
                    return [doc] if doc else []
                lookup = value if key == "nationalId" else value.upper()
                return list(index.get(lookup, ()))
        return self.docs

    def get(self, record_id: str) -> MappedRecord | None:
        doc = self.by_id.get(record_id)
        return doc.record if doc else None

    def registration_bytes(self, record_id: str) -> bytes | None:
        """The encoded `fetchRegistration` value of a record (cached)."""
        cached = self._fetch_cache.get(record_id)
        if cached is None:
            doc = self.by_id.get(record_id)
            if doc is None:
                return None
            cached = msgspec.json.encode(registration_json(doc.record))
            self._fetch_cache[record_id] = cached
        return cached


# --- matching ------------------------------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise SearchInputError(f'Variable "{name}" got invalid value; String cannot represent it')
    return value


def _name_matches(query: Any, person: MappedPerson | None, *, given: bool, name: str) -> bool:
    """Case-insensitive: every word of the query is one of the person's names."""
    wanted = _text(query, name).lower().split()
    if person is None:
        return False
    if given:
        have = {g.lower() for g in person.given_names for g in g.split()}
    else:
        have = set((person.family_name or "").lower().split())
    return bool(wanted) and all(w in have for w in wanted)


def _day(value: Any, name: str) -> str:
    text = _text(value, name)
    return text[:10]


def _in_range(value: str | None, start: Any, end: Any, name: str) -> bool:
    if value is None:
        return False
    if start is not None and value[: len(_text(start, name))] < _text(start, name):
        return False
    return not (end is not None and value[: len(_text(end, name))] > _text(end, name))


_PERSON_KEYS = {
    "child": Role.CHILD,
    "deceased": Role.DECEASED,
    "mother": Role.MOTHER,
    "father": Role.FATHER,
    "informant": Role.INFORMANT,
}


def _person(record: MappedRecord, prefix: str) -> MappedPerson | None:
    found = record.role(_PERSON_KEYS[prefix])
    if found is None and prefix == "informant":
        relation = (record.informant_relationship or "").upper()
        role = {"MOTHER": Role.MOTHER, "FATHER": Role.FATHER, "SPOUSE": Role.SPOUSE}.get(relation)
        found = record.role(role) if role else None
    return found


def _matches(doc: _Doc, p: Mapping[str, Any]) -> bool:
    r = doc.record
    event = p.get("event")
    if event is not None and _text(event, "event").lower() != r.event.value:
        return False
    statuses = p.get("registrationStatuses")
    if statuses is not None:
        if not isinstance(statuses, list):
            raise SearchInputError('Variable "registrationStatuses" must be a list')
        if (r.status or "") not in {str(s).upper() for s in statuses}:
            return False
    if p.get("recordId") is not None and r.record_id != p["recordId"]:
        return False
    number = p.get("registrationNumber")
    if number is not None and (r.registration_number or "").upper() != _text(number, "n").upper():
        return False
    tracking = p.get("trackingId")
    if tracking is not None and (r.tracking_id or "").upper() != _text(tracking, "t").upper():
        return False
    if p.get("nationalId") is not None and p["nationalId"] not in doc.nids:
        return False
    for prefix in _PERSON_KEYS:
        person = _person(r, prefix)
        last = "LastName" if prefix == "child" else "FamilyName"
        if p.get(f"{prefix}FirstNames") is not None and not _name_matches(
            p[f"{prefix}FirstNames"], person, given=True, name=f"{prefix}FirstNames"
        ):
            return False
        if p.get(f"{prefix}{last}") is not None and not _name_matches(
            p[f"{prefix}{last}"], person, given=False, name=f"{prefix}{last}"
        ):
            return False
        gender = p.get(f"{prefix}Gender")
        if gender is not None and (person is None or person.sex != _text(gender, "g").lower()):
            return False
        dob = p.get(f"{prefix}DoB")
        birth = person.birth_date if person else None
        if dob is not None and birth != _day(dob, f"{prefix}DoB"):
            return False
        start, end = p.get(f"{prefix}DoBStart"), p.get(f"{prefix}DoBEnd")
        if (start is not None or end is not None) and not _in_range(birth, start, end, "DoB"):
            return False
        ident = p.get(f"{prefix}Identifier")
        if ident is not None and (
            person is None or _text(ident, "id") not in {v for _, v in person.identifiers}
        ):
            return False
    if p.get("dateOfEvent") is not None and doc.event_date != _day(p["dateOfEvent"], "date"):
        return False
    start, end = p.get("dateOfEventStart"), p.get("dateOfEventEnd")
    if (start is not None or end is not None) and not _in_range(doc.event_date, start, end, "e"):
        return False
    if p.get("dateOfRegistration") is not None and doc.registered[:10] != _day(
        p["dateOfRegistration"], "dateOfRegistration"
    ):
        return False
    start, end = p.get("dateOfRegistrationStart"), p.get("dateOfRegistrationEnd")
    if (start is not None or end is not None) and not _in_range(doc.registered, start, end, "r"):
        return False
    for key in ("eventLocationId", *(f"eventLocationLevel{i}" for i in range(1, 6))):
        if p.get(key) is not None and _text(p[key], key) not in doc.place_ids:
            return False
    for key in ("declarationJurisdictionId", "declarationLocationId"):
        if p.get(key) is not None and _text(p[key], key) not in doc.office_ids:
            return False
    return True


def _sort_key(sort_by: Sequence[Mapping[str, Any]]) -> Any:
    """Newest registration first by default (OpenCRVS sorts on the registration time)."""
    column = "dateOfRegistration"
    descending = True
    if sort_by:
        first = sort_by[0]
        column = str(first.get("column") or column)
        descending = str(first.get("order") or "desc").lower() == "desc"

    def key(doc: _Doc) -> tuple[Any, ...]:
        if column in {"childDoB", "dateOfBirth", "deceasedDoB", "dateOfEvent"}:
            value = doc.event_date or ""
        else:
            value = doc.registered
        # descending text order without reversing the tie-break on record id
        rank = tuple(-ord(c) for c in value) if descending else tuple(ord(c) for c in value)
        return (rank, doc.record.record_id)

    return key


# --- projections ---------------------------------------------------------------------------


def _person_json(person: MappedPerson) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": person.resource_id,
        "name": [
            {
                "use": "en",
                "firstNames": " ".join(person.given_names),
                "familyName": person.family_name,
            }
        ],
        "gender": person.sex,
        "birthDate": person.birth_date,
        "identifier": [{"id": value, "type": code} for code, value in person.identifiers],
        "maritalStatus": MARITAL_TO_GRAPHQL.get(person.marital_status or ""),
        "detailsExist": True,
        "deceased": {"deceased": person.is_deceased, "deathDate": person.death_date},
    }
    if person.marriage_date:
        out["dateOfMarriage"] = person.marriage_date
    a = person.address
    out["address"] = (
        [
            {
                "type": "PRIMARY_ADDRESS",
                "line": list(a.lines),
                "city": a.city,
                "district": a.district_id,
                "state": a.state_id,
                "postalCode": a.postal_code,
                "country": a.country,
            }
        ]
        if a is not None
        else []
    )
    out["telecom"] = [{"system": "phone", "value": v} for v in person.phone_numbers] + [
        {"system": "email", "value": v} for v in person.emails
    ]
    return out


def _location_json(record: MappedRecord, index: LocationIndex) -> dict[str, Any] | None:
    place = record.place
    if place is None:
        return None
    known = index.get(place.location_id)
    kind = place.kind or (known.type.value if known else None)
    parent = known.parent_id if known else None
    return {
        "id": place.location_id,
        "name": place.name or (known.name if known else None),
        "alias": [place.name] if place.name else [],
        "type": kind,
        "partOf": f"Location/{parent or place.district_id or '0'}",
        "status": "active",
        "address": {"district": place.district_id, "state": place.state_id, "country": "FAR"}
        if kind in {"PRIVATE_HOME", "OTHER"}
        else None,
    }


def registration_json(record: MappedRecord, index: LocationIndex | None = None) -> dict[str, Any]:
    """`fetchRegistration`'s answer for one record (the union member's fields of digest 2.2)."""
    index = index or farajaland()
    timestamp = isoformat_z(record.last_modified) if record.last_modified else None
    out: dict[str, Any] = {
        "__typename": _TYPENAMES[record.event][0],
        "id": record.record_id,
        "registration": {
            "id": record.record_id[::-1],
            "type": record.event.value.upper(),
            "trackingId": record.tracking_id,
            "registrationNumber": record.registration_number,
            "status": [
                {
                    "type": record.status,
                    "timestamp": timestamp,
                    "office": {"id": record.office_id} if record.office_id else None,
                }
            ],
            "duplicates": None,
            "assignment": None,
        },
        "eventLocation": _location_json(record, index),
        "createdAt": timestamp,
    }
    for person in record.persons:
        out[_ROLE_FIELDS[person.role]] = _person_json(person)
    if record.event is RecordEvent.BIRTH and "father" not in out:
        out["father"] = {"detailsExist": False}
    if record.informant_relationship:
        informant = out.setdefault("informant", {})
        informant["relationship"] = record.informant_relationship
    return out


def search_set_json(record: MappedRecord) -> dict[str, Any]:
    """One `searchEvents` result (a rich selection; the client asks for `id` only)."""
    timestamp = isoformat_z(record.last_modified) if record.last_modified else None
    subject = record.subjects[0] if record.subjects else None
    names = (
        [
            {
                "use": "en",
                "firstNames": " ".join(subject.given_names),
                "familyName": subject.family_name,
            }
        ]
        if subject
        else []
    )
    out: dict[str, Any] = {
        "__typename": _TYPENAMES[record.event][1],
        "id": record.record_id,
        "type": record.event.value.capitalize(),
        "registration": {
            "status": record.status,
            "trackingId": record.tracking_id,
            "registrationNumber": record.registration_number,
            "registeredLocationId": record.office_id,
            "duplicates": None,
            "assignment": None,
            "createdAt": timestamp,
            "modifiedAt": timestamp,
        },
        "operationHistories": [],
    }
    if record.event is RecordEvent.BIRTH:
        out.update(
            dateOfBirth=subject.birth_date if subject else None,
            childName=names,
            childGender=subject.sex if subject else None,
        )
    elif record.event is RecordEvent.DEATH:
        out.update(
            dateOfDeath=subject.death_date if subject else None,
            deceasedName=names,
            deceasedGender=subject.sex if subject else None,
        )
    return out
