"""OpenCRVS v2 lifecycle hooks: an event document, read through a field map, as a FHIR bundle.

OpenCRVS v2 has no webhooks: a country's lifecycle hook forwards the event document it gets at
`/trigger/events/{eventType}/actions/{actionType}`. The document holds `actions`; the record
is the `declaration` objects of accepted actions merged in order, and an accepted `REGISTER`
action carries the registration number. Declaration field ids are per-country configuration,
so `FieldMap` names them (defaults: Farajaland v2); the setting
`DCI_BRIDGE_OPENCRVS_WEBHOOK__V2_FIELD_MAP` (a JSON object) overrides single entries.

`v2_bundle` writes the record as the FHIR document bundle an OpenCRVS v1 webhook would carry
(Composition, Task, Patients, Encounter), so one pipeline (map, index, fan out) serves both.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dci_bridge.records._fhir import MappingError
from dci_bridge.settings import Settings, SettingsError

__all__ = ["DEFAULT_FIELDS", "FieldMap", "event_document", "v2_bundle"]

DEFAULT_FIELDS: dict[str, str] = {
    "child.name": "child.name",
    "child.sex": "child.gender",
    "child.birth_date": "child.dob",
    "child.place": "child.birthLocation",
    "child.home": "child.birthLocation.privateHome",
    "child.nid": "child.nid",
    "mother.name": "mother.name",
    "mother.birth_date": "mother.dob",
    "mother.nid": "mother.nid",
    "father.name": "father.name",
    "father.birth_date": "father.dob",
    "father.nid": "father.nid",
    "deceased.name": "deceased.name",
    "deceased.sex": "deceased.gender",
    "deceased.birth_date": "deceased.dob",
    "deceased.nid": "deceased.nid",
    "deceased.death_date": "eventDetails.date",
    "deceased.place": "eventDetails.deathLocation",
    "deceased.home": "eventDetails.deathLocation.privateHome",
}
"""Our names (`role.what`) -> the country's declaration field ids."""

_EVENTS = {"birth": "birth", "death": "death", "v2.birth": "birth", "v2.death": "death"}
_ROLES = {"birth": ("child", "mother", "father"), "death": ("deceased",)}
_SECTIONS = {
    "child": "child-details",
    "mother": "mother-details",
    "father": "father-details",
    "deceased": "deceased-details",
}
_NS = uuid.UUID("6f0e2b52-3a34-4c55-9a57-0e0b1dd0c0de")


@dataclass(frozen=True, slots=True)
class FieldMap:
    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))

    @classmethod
    def from_settings(cls, settings: Settings) -> FieldMap:
        text = settings.opencrvs_webhook.v2_field_map.strip()
        if not text:
            return cls()
        try:
            extra = json.loads(text)
        except ValueError:
            raise SettingsError(
                "DCI_BRIDGE_OPENCRVS_WEBHOOK__V2_FIELD_MAP: not a JSON object"
            ) from None
        if not isinstance(extra, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
        ):
            raise SettingsError(
                "DCI_BRIDGE_OPENCRVS_WEBHOOK__V2_FIELD_MAP: must map names to field ids"
            )
        unknown = sorted(set(extra) - set(DEFAULT_FIELDS))
        if unknown:
            raise SettingsError(
                f"DCI_BRIDGE_OPENCRVS_WEBHOOK__V2_FIELD_MAP: unknown names {unknown}"
            )
        return cls({**DEFAULT_FIELDS, **extra})

    def get(self, declaration: Mapping[str, Any], name: str) -> Any:
        return declaration.get(self.fields[name])


def event_document(body: Any) -> Mapping[str, Any]:
    """The event document of a hook body (bare, or wrapped as `{"event": {...}}`)."""
    if isinstance(body, dict) and isinstance(body.get("event"), dict) and "actions" not in body:
        body = body["event"]
    if not isinstance(body, dict):
        raise MappingError("$", "the hook body is not an event document")
    if not isinstance(body.get("actions"), list):
        raise MappingError("$.actions", "the event document has no actions")
    if not isinstance(body.get("id"), str) or not body["id"]:
        raise MappingError("$.id", "the event document has no id")
    return body


def _accepted(actions: list[Any]) -> list[Mapping[str, Any]]:
    return [
        a
        for a in actions
        if isinstance(a, dict) and str(a.get("status", "Accepted")).lower() == "accepted"
    ]


def v2_bundle(event_type: str, body: bytes, fields: FieldMap) -> dict[str, Any]:
    """The FHIR document bundle for a v2 event document; raises `MappingError`."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MappingError("$", "body is not valid JSON") from None
    doc = event_document(raw)
    kind = _EVENTS.get(str(doc.get("type") or event_type).lower())
    if kind is None:
        raise MappingError("$.type", "unsupported event type (birth and death are)")
    actions = _accepted(doc["actions"])
    declaration: dict[str, Any] = {}
    registration_number: str | None = None
    registered_at: str | None = None
    office: str | None = None
    for action in actions:
        if isinstance(action.get("declaration"), dict):
            declaration.update(action["declaration"])
        if action.get("type") == "REGISTER":
            registration_number = action.get("registrationNumber") or registration_number
            registered_at = action.get("createdAt") or registered_at
            office = action.get("createdAtLocation") or office
    record_id = str(doc["id"])
    status = "REGISTERED" if registration_number else "DECLARED"
    when = registered_at or doc.get("updatedAt") or doc.get("createdAt")

    def rid(name: str) -> str:
        return str(uuid.uuid5(_NS, f"{record_id}:{name}"))

    entries: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    for role in _ROLES[kind]:
        patient = _patient(role, declaration, fields, kind, registration_number, rid(role))
        if patient is None:
            continue
        entries.append({"fullUrl": f"urn:uuid:{patient['id']}", "resource": patient})
        sections.append(_section(_SECTIONS[role], f"Patient/{patient['id']}"))
    subject = "child" if kind == "birth" else "deceased"
    place = fields.get(declaration, f"{subject}.place")
    home = fields.get(declaration, f"{subject}.home")
    location_id = place if isinstance(place, str) and place else None
    if location_id is None and isinstance(home, dict):
        district = home.get("district")
        location_id = district if isinstance(district, str) and district else None
    if location_id is not None:
        encounter = {
            "resourceType": "Encounter",
            "id": rid("encounter"),
            "location": [{"location": {"reference": f"Location/{location_id}"}}],
        }
        entries.append({"fullUrl": f"urn:uuid:{encounter['id']}", "resource": encounter})
        sections.append(_section(f"{kind}-encounter", f"Encounter/{encounter['id']}"))
    composition = {
        "resourceType": "Composition",
        "id": record_id,
        "type": {
            "coding": [{"system": "http://opencrvs.org/doc-types", "code": f"{kind}-declaration"}]
        },
        "section": sections,
        "date": when,
    }
    identifiers = []
    if isinstance(doc.get("trackingId"), str):
        identifiers.append(
            {
                "system": f"http://opencrvs.org/specs/id/{kind}-tracking-id",
                "value": doc["trackingId"],
            }
        )
    if registration_number:
        identifiers.append(
            {
                "system": f"http://opencrvs.org/specs/id/{kind}-registration-number",
                "value": registration_number,
            }
        )
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": rid("task"),
        "code": {"coding": [{"system": "http://opencrvs.org/specs/types", "code": kind.upper()}]},
        "focus": {"reference": f"Composition/{record_id}"},
        "identifier": identifiers,
        "businessStatus": {
            "coding": [{"system": "http://opencrvs.org/specs/reg-status", "code": status}]
        },
    }
    if when:
        task["lastModified"] = when
    if isinstance(office, str) and office:
        task["extension"] = [
            {
                "url": "http://opencrvs.org/specs/extension/regLastOffice",
                "valueReference": {"reference": f"Location/{office}"},
            }
        ]
    entries.insert(0, {"fullUrl": f"urn:uuid:{record_id}", "resource": composition})
    entries.append({"fullUrl": f"urn:uuid:{task['id']}", "resource": task})
    return {"resourceType": "Bundle", "type": "document", "entry": entries}


def _section(code: str, reference: str) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": "http://opencrvs.org/specs/sections", "code": code}]},
        "entry": [{"reference": reference}],
    }


def _patient(
    role: str,
    declaration: Mapping[str, Any],
    fields: FieldMap,
    kind: str,
    registration_number: str | None,
    resource_id: str,
) -> dict[str, Any] | None:
    name = fields.get(declaration, f"{role}.name")
    if not isinstance(name, dict):
        return None
    given = str(name.get("firstname") or "").split()
    family = name.get("surname")
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id,
        "name": [
            {"use": "en", "given": given, "family": family if isinstance(family, str) else ""}
        ],
    }
    sex = fields.fields.get(f"{role}.sex") and fields.get(declaration, f"{role}.sex")
    if isinstance(sex, str) and sex:
        patient["gender"] = sex.lower()
    dob = fields.get(declaration, f"{role}.birth_date")
    if isinstance(dob, str) and dob:
        patient["birthDate"] = dob
    ids: list[tuple[str, str]] = []
    nid = fields.get(declaration, f"{role}.nid")
    if isinstance(nid, str) and nid:
        ids.append(("NATIONAL_ID", nid))
    if registration_number and role in ("child", "deceased"):
        code = "BIRTH_REGISTRATION_NUMBER" if kind == "birth" else "DEATH_REGISTRATION_NUMBER"
        ids.append((code, registration_number))
    if ids:
        patient["identifier"] = [
            {
                "value": value,
                "type": {
                    "coding": [
                        {"system": "http://opencrvs.org/specs/identifier-type", "code": code}
                    ]
                },
            }
            for code, value in ids
        ]
    if role == "deceased":
        patient["deceasedBoolean"] = True
        death = fields.get(declaration, "deceased.death_date")
        if isinstance(death, str) and death:
            patient["deceasedDateTime"] = death
    return patient
