"""Build OpenCRVS-shaped FHIR document bundles for synthetic records (used by `seed`).

The shapes follow the OpenCRVS v1.8 fixtures (tests/fixtures/opencrvs): a Composition with
sections pointing at `Type/<id>`, a Task with tracking id, registration number,
`REGISTERED` business status, `lastModified` and `regLastOffice`, Patients, an informant
RelatedPerson and an Encounter with the event location (a PRIVATE_HOME Location resource for
home events). Location resources of facilities and admin areas are left out unless asked
for: the receiver resolves Farajaland ids itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dci_bridge.records.locations import Location, LocationIndex

ID_TYPE_SYSTEM = "http://opencrvs.org/specs/identifier-type"
EXT = "http://opencrvs.org/specs/extension/"
NATIONALITY_URL = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
_DOC = {
    "birth": ("birth-declaration", "Birth Declaration", "BIRTH"),
    "death": ("death-declaration", "Death Declaration", "DEATH"),
    "marriage": ("marriage-declaration", "Marriage Declaration", "MARRIAGE"),
}
_SECTION_TITLES = {
    "birth-encounter": "Birth encounter",
    "death-encounter": "Death encounter",
    "marriage-encounter": "Marriage encounter",
    "informant-details": "Informant's details",
    "mother-details": "Mother's details",
    "father-details": "Father's details",
    "child-details": "Child details",
    "deceased-details": "Deceased details",
    "spouse-details": "Spouse details",
    "bride-details": "Bride details",
    "groom-details": "Groom details",
}

NewId = Callable[[], str]


def instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PatientData:
    """What a record says about one person."""

    given: tuple[str, ...]
    family: str
    sex: str | None = None
    birth_date: dt.date | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    marital: str | None = None
    marriage_date: dt.date | None = None
    death_date: dt.date | None = None
    address: tuple[str, str, Location] | None = None  # house + street, town, district
    phone: str | None = None
    occupation: str | None = None
    previous_births: int | None = None


@dataclass(frozen=True, slots=True)
class EventData:
    """The record-level facts: kind, ids, when, where, which office registered it."""

    kind: str  # birth | death | marriage
    record_id: str
    tracking_id: str
    registration_number: str
    registered_at: dt.datetime
    declared_at: dt.datetime
    location: Location  # a health facility, or the district of a home event
    at_home: bool
    office: Location
    registrar_id: str
    status: str = "REGISTERED"


class BundleBuilder:
    """Assemble one bundle; `new_id` mints resource and version ids (seeded, deterministic)."""

    def __init__(self, new_id: NewId, index: LocationIndex, *, with_locations: bool) -> None:
        self._new_id = new_id
        self._index = index
        self._with_locations = with_locations

    def _entry(self, resource: dict[str, Any], when: str) -> dict[str, Any]:
        version = self._new_id()
        resource["meta"] = {"lastUpdated": when, "versionId": version}
        kind, rid = resource["resourceType"], resource["id"]
        return {"fullUrl": f"/fhir/{kind}/{rid}/_history/{version}", "resource": resource}

    def patient(self, data: PatientData) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "active": True,
            "id": self._new_id(),
            "name": [{"use": "en", "given": list(data.given), "family": data.family}],
        }
        if data.identifiers:
            resource["identifier"] = [
                {"value": value, "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": code}]}}
                for code, value in data.identifiers
            ]
        if data.sex:
            resource["gender"] = data.sex
        if data.birth_date:
            resource["birthDate"] = data.birth_date.isoformat()
        if data.phone:
            resource["telecom"] = [{"system": "phone", "value": data.phone}]
        if data.marital:
            resource["maritalStatus"] = {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/StructureDefinition/marital-status",
                        "code": data.marital,
                    }
                ],
                "text": {"M": "MARRIED", "S": "SINGLE", "W": "WIDOWED"}.get(data.marital, ""),
            }
        extensions: list[dict[str, Any]] = []
        if data.occupation:
            extensions.append({"url": EXT + "patient-occupation", "valueString": data.occupation})
        if data.marriage_date:
            extensions.append(
                {"url": EXT + "date-of-marriage", "valueDateTime": data.marriage_date.isoformat()}
            )
        if data.address is not None:
            extensions.append(_nationality())
        if extensions:
            resource["extension"] = extensions
        if data.previous_births is not None:
            resource["multipleBirthInteger"] = data.previous_births
        if data.address is not None:
            resource["address"] = [self._address(*data.address)]
        if data.death_date is not None:
            resource["deceasedBoolean"] = True
            resource["deceasedDateTime"] = data.death_date.isoformat()
        return resource

    def _address(self, line: str, town: str, district: Location) -> dict[str, Any]:
        number, _, street = line.partition(" ")
        return {
            "type": "PRIMARY_ADDRESS",
            "line": [number, street, "", "", "", "URBAN"],
            "city": town,
            "district": district.id,
            "state": district.parent_id,
            "postalCode": "",
            "country": "FAR",
            "extension": [
                {"url": EXT + "part-of", "valueReference": {"reference": f"Location/{district.id}"}}
            ],
        }

    def bundle(
        self,
        event: EventData,
        roles: list[tuple[str, dict[str, Any]]],
        informant: tuple[str, dict[str, Any]] | None,
    ) -> dict[str, Any]:
        """A document bundle: `roles` are (section code, Patient); informant (relation, Patient)."""
        doc_code, title, task_code = _DOC[event.kind]
        declared = instant(event.declared_at)
        registered = instant(event.registered_at)
        entries: list[dict[str, Any]] = []
        sections: list[dict[str, Any]] = []

        location_id = event.location.id
        if event.at_home:
            home = self._home(event.location)
            location_id = home["id"]
            entries.append(self._entry(home, declared))
        encounter = {
            "resourceType": "Encounter",
            "status": "finished",
            "id": self._new_id(),
            "location": [{"location": {"reference": f"Location/{location_id}"}}],
        }
        entries.append(self._entry(encounter, declared))
        sections.append(_section(f"{event.kind}-encounter", f"Encounter/{encounter['id']}"))
        if informant is not None:
            relation, patient = informant
            related = {
                "resourceType": "RelatedPerson",
                "relationship": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/ValueSet/relatedperson-relationshiptype",
                            "code": relation,
                        }
                    ]
                },
                "patient": {"reference": f"Patient/{patient['id']}"},
                "id": self._new_id(),
            }
            entries.append(self._entry(related, declared))
            sections.append(_section("informant-details", f"RelatedPerson/{related['id']}"))
            if all(patient is not p for _, p in roles):
                entries.append(self._entry(patient, declared))
        for code, patient in roles:
            sections.append(_section(code, f"Patient/{patient['id']}"))
            entries.append(self._entry(patient, declared))
        composition = {
            "identifier": {"system": "urn:ietf:rfc:3986", "value": self._new_id()},
            "resourceType": "Composition",
            "status": "preliminary",
            "type": {
                "coding": [{"system": "http://opencrvs.org/doc-types", "code": doc_code}],
                "text": title,
            },
            "class": {
                "coding": [{"system": "http://opencrvs.org/doc-classes", "code": "crvs-document"}],
                "text": "CRVS Document",
            },
            "title": title,
            "section": sections,
            "subject": {},
            "date": declared,
            "author": [],
            "id": event.record_id,
        }
        entries.insert(0, self._entry(composition, declared))
        entries.append(self._entry(self._task(event, task_code, informant), registered))
        if self._with_locations:
            entries.extend(self._locations(event))
        return {"resourceType": "Bundle", "type": "document", "entry": entries}

    def _task(
        self, event: EventData, code: str, informant: tuple[str, dict[str, Any]] | None
    ) -> dict[str, Any]:
        system = "http://opencrvs.org/specs/id/"
        extensions: list[dict[str, Any]] = []
        if informant is not None:
            extensions.append({"url": EXT + "contact-person", "valueString": informant[0]})
            phone = informant[1].get("telecom", [{}])[0].get("value")
            if phone:
                extensions.append(
                    {"url": EXT + "contact-person-phone-number", "valueString": phone}
                )
        extensions += [
            {
                "url": EXT + "regLastOffice",
                "valueReference": {"reference": f"Location/{event.office.id}"},
            },
            {
                "url": EXT + "regLastUser",
                "valueReference": {"reference": f"Practitioner/{event.registrar_id}"},
            },
        ]
        return {
            "resourceType": "Task",
            "status": "ready",
            "code": {"coding": [{"system": "http://opencrvs.org/specs/types", "code": code}]},
            "focus": {"reference": f"Composition/{event.record_id}"},
            "id": self._new_id(),
            "identifier": [
                {"system": f"{system}{event.kind}-tracking-id", "value": event.tracking_id},
                {
                    "system": f"{system}{event.kind}-registration-number",
                    "value": event.registration_number,
                },
            ],
            "extension": extensions,
            "lastModified": instant(event.registered_at),
            "businessStatus": {
                "coding": [{"system": "http://opencrvs.org/specs/reg-status", "code": event.status}]
            },
        }

    def _home(self, district: Location) -> dict[str, Any]:
        return {
            "resourceType": "Location",
            "id": self._new_id(),
            "mode": "instance",
            "partOf": {"reference": f"Location/{district.id}"},
            "type": {
                "coding": [
                    {"system": "http://opencrvs.org/specs/location-type", "code": "PRIVATE_HOME"}
                ]
            },
            "address": {
                "line": ["", "", "", "", "", "URBAN"],
                "district": district.id,
                "state": district.parent_id,
                "postalCode": "",
                "country": "FAR",
            },
        }

    def _locations(self, event: EventData) -> list[dict[str, Any]]:
        wanted: list[Location] = [event.office]
        if not event.at_home:
            wanted.append(event.location)
        for item in list(wanted):
            wanted.extend(self._index.ancestors(item.id))
        seen: dict[str, Location] = {loc.id: loc for loc in wanted}
        return [
            {"fullUrl": f"/fhir/Location/{loc.id}", "resource": location_resource(loc)}
            for loc in seen.values()
        ]


def location_resource(location: Location) -> dict[str, Any]:
    """A FHIR Location as OpenCRVS serves it (without the statistics extensions)."""
    if location.jurisdiction is not None:
        identifiers = [
            {
                "system": "http://opencrvs.org/specs/id/statistical-code",
                "value": location.identifier_value,
            },
            {
                "system": "http://opencrvs.org/specs/id/jurisdiction-type",
                "value": location.jurisdiction.value,
            },
        ]
        physical = {"code": "jdn", "display": "Jurisdiction"}
    else:
        identifiers = [
            {
                "system": "http://opencrvs.org/specs/id/internal-id",
                "value": location.identifier_value,
            }
        ]
        physical = {"code": "bu", "display": "Building"}
    return {
        "resourceType": "Location",
        "id": location.id,
        "identifier": identifiers,
        "name": location.name,
        "alias": [location.name],
        "status": "active",
        "mode": "instance",
        "partOf": {"reference": f"Location/{location.parent_id or '0'}"},
        "type": {
            "coding": [
                {"system": "http://opencrvs.org/specs/location-type", "code": location.type.value}
            ]
        },
        "physicalType": {"coding": [physical]},
    }


def _section(code: str, reference: str) -> dict[str, Any]:
    system = (
        "http://opencrvs.org/specs/sections"
        if code.endswith("-encounter")
        else "http://opencrvs.org/doc-sections"
    )
    title = _SECTION_TITLES.get(code, code)
    return {
        "title": title,
        "code": {"coding": [{"system": system, "code": code}], "text": title},
        "entry": [{"reference": reference}],
    }


def _nationality() -> dict[str, Any]:
    return {
        "url": NATIONALITY_URL,
        "extension": [
            {
                "url": "code",
                "valueCodeableConcept": {
                    "coding": [{"system": "urn:iso:std:iso:3166", "code": "FAR"}]
                },
            },
            {"url": "period", "valuePeriod": {"start": "", "end": ""}},
        ],
    }
