"""Read an OpenCRVS FHIR document bundle (one birth, death or marriage record).

`map_bundle` is a pure function over the decoded JSON. It follows references both as
`Type/<id>` and as `urn:uuid:` fullUrls, ignores entry order, drops empty identifier values,
accepts the 2019 shapes (bare-string identifier types, `family` as a list) and works without
a Composition (a WEBHOOK client's filtered bundle), inferring roles from the Task and the
resources themselves. Anything it cannot read raises `MappingError` with a JSON path and a
message that names fields, never their values. `person_to_dci` turns a record's person into
the DCI `CrvsPerson`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dci_bridge.protocol.crvs import CrvsPerson
from dci_bridge.records import _fhir
from dci_bridge.records._fhir import MappingError, Resources
from dci_bridge.records.locations import LocationIndex, farajaland
from dci_bridge.records.mapped import (
    BIRTH_REGISTRATION_NUMBER,
    DEATH_REGISTRATION_NUMBER,
    MARRIAGE_REGISTRATION_NUMBER,
    SUBJECT_ROLES,
    EventPlace,
    MappedPerson,
    MappedRecord,
    RecordEvent,
    Role,
)
from dci_bridge.records.person import build_person, person_key_for

__all__ = ["MappingError", "map_bundle", "person_to_dci"]

_DOC_TYPES = {
    "birth-declaration": RecordEvent.BIRTH,
    "death-declaration": RecordEvent.DEATH,
    "marriage-declaration": RecordEvent.MARRIAGE,
}
_TASK_CODES = {
    "BIRTH": RecordEvent.BIRTH,
    "DEATH": RecordEvent.DEATH,
    "MARRIAGE": RecordEvent.MARRIAGE,
}
_SECTION_ROLES = {
    "child-details": Role.CHILD,
    "mother-details": Role.MOTHER,
    "father-details": Role.FATHER,
    "deceased-details": Role.DECEASED,
    "spouse-details": Role.SPOUSE,
    "bride-details": Role.BRIDE,
    "groom-details": Role.GROOM,
    "informant-details": Role.INFORMANT,
}
_ENCOUNTER_SECTIONS = {"birth-encounter", "death-encounter", "marriage-encounter"}
_INFORMANT_ROLES = {"MOTHER": Role.MOTHER, "FATHER": Role.FATHER, "SPOUSE": Role.SPOUSE}
_REG_NUMBER_CODES = {
    RecordEvent.BIRTH: BIRTH_REGISTRATION_NUMBER,
    RecordEvent.DEATH: DEATH_REGISTRATION_NUMBER,
    RecordEvent.MARRIAGE: MARRIAGE_REGISTRATION_NUMBER,
}
_SUBJECT_ROLE = {RecordEvent.BIRTH: Role.CHILD, RecordEvent.DEATH: Role.DECEASED}
_ID_SYSTEM = re.compile(r"/specs/id/(birth|death|marriage)-(tracking-id|registration-number)$")
_EXT = "http://opencrvs.org/specs/extension/"


def map_bundle(
    bundle: Mapping[str, Any], *, locations: LocationIndex | None = None
) -> MappedRecord:
    """Read one record out of a FHIR document bundle; raises `MappingError`."""
    index = locations if locations is not None else farajaland()
    resources = Resources.of(bundle)
    compositions = resources.of_type("Composition")
    tasks = resources.of_type("Task")
    if len(compositions) > 1:
        raise MappingError("$.entry", "more than one Composition in the bundle")
    composition = compositions[0] if compositions else None
    task = _pick_task(tasks, composition)
    if composition is None and task is None:
        raise MappingError("$.entry", "neither a Composition nor a Task in the bundle")

    event = _event_type(composition, task)
    record_id = _record_id(composition, task)
    tracking_id, registration_number = _task_ids(task, event)
    roles, encounter = _roles(resources, composition, event, registration_number)

    persons = tuple(
        _fhir.read_patient(role, res, path, event, registration_number)
        for role, (res, path) in roles.items()
    )
    if not any(p.role in SUBJECT_ROLES for p in persons):
        raise MappingError("$.entry", f"no subject person in the {event.value} record")
    return MappedRecord(
        record_id=record_id,
        event=event,
        tracking_id=tracking_id,
        registration_number=registration_number,
        status=_status(task),
        last_modified=_last_modified(task, composition),
        persons=persons,
        place=_event_place(resources, encounter, index),
        office_id=_office_id(task),
        informant_relationship=_informant_relationship(resources),
    )


# --- record-level fields ---------------------------------------------------------------


def _pick_task(
    tasks: Sequence[tuple[Mapping[str, Any], str]],
    composition: tuple[Mapping[str, Any], str] | None,
) -> tuple[Mapping[str, Any], str] | None:
    if not tasks:
        return None
    if len(tasks) == 1 or composition is None:
        return tasks[0]
    wanted = composition[0].get("id")
    for task, path in tasks:
        if _fhir.ref_id(_fhir.dig(task, "focus", "reference")) == wanted:
            return task, path
    return tasks[0]


def _event_type(
    composition: tuple[Mapping[str, Any], str] | None, task: tuple[Mapping[str, Any], str] | None
) -> RecordEvent:
    if composition is not None:
        for code in _fhir.codes(composition[0].get("type")):
            if code in _DOC_TYPES:
                return _DOC_TYPES[code]
    if task is not None:
        for code in _fhir.codes(task[0].get("code")):
            if code.upper() in _TASK_CODES:
                return _TASK_CODES[code.upper()]
    path = f"{composition[1]}.type" if composition is not None else "$.entry"
    raise MappingError(path, "unknown record event type")


def _record_id(
    composition: tuple[Mapping[str, Any], str] | None, task: tuple[Mapping[str, Any], str] | None
) -> str:
    if composition is not None:
        value = _fhir.text(composition[0].get("id"))
        if value is not None:
            return value
        raise MappingError(f"{composition[1]}.id", "Composition has no id")
    assert task is not None
    focus = _fhir.ref_id(_fhir.dig(task[0], "focus", "reference"))
    if focus:
        return focus
    raise MappingError(f"{task[1]}.focus.reference", "Task has no focus reference")


def _task_ids(
    task: tuple[Mapping[str, Any], str] | None, event: RecordEvent
) -> tuple[str | None, str | None]:
    found: dict[tuple[str, str], str] = {}
    if task is not None:
        for item in _fhir.as_list(task[0].get("identifier")):
            if not _fhir.is_map(item):
                continue
            system, value = item.get("system"), _fhir.text(item.get("value"))
            if not isinstance(system, str) or value is None:
                continue
            match = _ID_SYSTEM.search(system)
            if match:
                found.setdefault((match.group(1), match.group(2)), value)

    def pick(kind: str) -> str | None:
        own = found.get((event.value, kind))
        if own is not None:
            return own
        return next((v for (_, k), v in sorted(found.items()) if k == kind), None)

    return pick("tracking-id"), pick("registration-number")


def _status(task: tuple[Mapping[str, Any], str] | None) -> str | None:
    if task is None:
        return None
    coding = _fhir.as_list(_fhir.dig(task[0], "businessStatus", "coding"))
    chosen: str | None = None
    for item in coding:
        code = _fhir.text(item.get("code")) if _fhir.is_map(item) else None
        if code is not None:
            if item.get("system") == "http://opencrvs.org/specs/reg-status":
                return code.upper()
            chosen = chosen or code.upper()
    return chosen


def _last_modified(
    task: tuple[Mapping[str, Any], str] | None, composition: tuple[Mapping[str, Any], str] | None
) -> dt.datetime | None:
    candidates: list[tuple[Any, str]] = []
    if task is not None:
        candidates.append((task[0].get("lastModified"), f"{task[1]}.lastModified"))
        candidates.append(
            (_fhir.dig(task[0], "meta", "lastUpdated"), f"{task[1]}.meta.lastUpdated")
        )
    if composition is not None:
        candidates.append((composition[0].get("date"), f"{composition[1]}.date"))
    for value, path in candidates:
        if value is not None:
            return _fhir.parse_instant(value, path)
    return None


def _office_id(task: tuple[Mapping[str, Any], str] | None) -> str | None:
    if task is None:
        return None
    for ext in _fhir.as_list(task[0].get("extension")):
        if _fhir.is_map(ext) and ext.get("url") == _EXT + "regLastOffice":
            return _fhir.ref_id(_fhir.dig(ext, "valueReference", "reference"))
    return None


def _informant_relationship(resources: Resources) -> str | None:
    for related, _ in resources.of_type("RelatedPerson"):
        for code in _fhir.codes(related.get("relationship")):
            return code.upper()
    return None


# --- roles -----------------------------------------------------------------------------

RoleMap = dict[Role, tuple[Mapping[str, Any], str]]


def _roles(
    resources: Resources,
    composition: tuple[Mapping[str, Any], str] | None,
    event: RecordEvent,
    registration_number: str | None,
) -> tuple[RoleMap, tuple[Mapping[str, Any], str] | None]:
    roles: RoleMap = {}
    encounter: tuple[Mapping[str, Any], str] | None = None
    if composition is not None:
        for section in _fhir.as_list(composition[0].get("section")):
            if not _fhir.is_map(section):
                continue
            codes = _fhir.codes(section.get("code"))
            for entry in _fhir.as_list(section.get("entry")):
                ref = entry.get("reference") if _fhir.is_map(entry) else None
                target = resources.resolve(ref)
                if target is None:
                    continue  # filtered out of the bundle, or a dangling reference
                if any(c in _ENCOUNTER_SECTIONS for c in codes):
                    if target[0].get("resourceType") == "Encounter" and encounter is None:
                        encounter = target
                    continue
                role = next((_SECTION_ROLES[c] for c in codes if c in _SECTION_ROLES), None)
                if role is None or role in roles:
                    continue
                if role is Role.INFORMANT:
                    _add_informant(resources, target, roles)
                elif target[0].get("resourceType") == "Patient":
                    roles[role] = target
                elif target[0].get("resourceType") == "RelatedPerson":
                    patient = resources.resolve(_fhir.dig(target[0], "patient", "reference"))
                    if patient is not None:
                        roles[role] = patient
    else:
        _infer_roles(resources, event, registration_number, roles)
    for related in resources.of_type("RelatedPerson"):
        _add_informant(resources, related, roles)
    if encounter is None:
        encounters = resources.of_type("Encounter")
        encounter = encounters[0] if encounters else None
    return roles, encounter


def _add_informant(
    resources: Resources, related: tuple[Mapping[str, Any], str], roles: RoleMap
) -> None:
    """An informant who is the mother/father/spouse fills that role when it is empty."""
    if related[0].get("resourceType") == "Patient":
        roles.setdefault(Role.INFORMANT, related)
        return
    if related[0].get("resourceType") != "RelatedPerson":
        return
    patient = resources.resolve(_fhir.dig(related[0], "patient", "reference"))
    if patient is None or patient[0].get("resourceType") != "Patient":
        return
    taken = {id(res) for res, _ in roles.values()}
    relation = next(iter(_fhir.codes(related[0].get("relationship"))), "").upper()
    role = _INFORMANT_ROLES.get(relation)
    if id(patient[0]) in taken:
        return
    if role is not None and role not in roles:
        roles[role] = patient
    else:
        roles.setdefault(Role.INFORMANT, patient)


def _infer_roles(
    resources: Resources, event: RecordEvent, registration_number: str | None, roles: RoleMap
) -> None:
    """Roles without a Composition: from identifiers, death and marriage marks, relationships."""
    patients = list(resources.of_type("Patient"))
    for related, _ in resources.of_type("RelatedPerson"):
        relation = next(iter(_fhir.codes(related.get("relationship"))), "").upper()
        target = resources.resolve(_fhir.dig(related, "patient", "reference"))
        if target is not None and relation in _INFORMANT_ROLES:
            roles.setdefault(_INFORMANT_ROLES[relation], target)
    assigned = {id(res) for res, _ in roles.values()}
    free = [p for p in patients if id(p[0]) not in assigned]
    reg_code = _REG_NUMBER_CODES[event]

    def holds_reg_number(p: tuple[Mapping[str, Any], str]) -> bool:
        ids = _fhir.identifiers(p[0])
        return registration_number is not None and (reg_code, registration_number) in ids

    if event is RecordEvent.MARRIAGE:
        subjects = [p for p in free if holds_reg_number(p) or _fhir.has_marriage_date(p[0])]
        for patient in subjects:
            sex = _fhir.gender(patient[0])
            role = Role.BRIDE if sex == "female" else Role.GROOM if sex == "male" else None
            if role is None or role in roles:
                role = Role.BRIDE if Role.BRIDE not in roles else Role.GROOM
            if role not in roles:
                roles[role] = patient
        return
    subject_role = _SUBJECT_ROLE[event]
    if event is RecordEvent.DEATH:
        ranked = [p for p in free if holds_reg_number(p)] or [
            p for p in free if _fhir.is_deceased(p[0])
        ]
    else:
        ranked = [p for p in free if holds_reg_number(p)] or (free if len(free) == 1 else [])
    if ranked:
        roles.setdefault(subject_role, ranked[0])
    assigned = {id(res) for res, _ in roles.values()}
    for patient in (p for p in free if id(p[0]) not in assigned):
        sex = _fhir.gender(patient[0])
        if event is RecordEvent.BIRTH and (
            sex == "female" or patient[0].get("multipleBirthInteger") is not None
        ):
            roles.setdefault(Role.MOTHER, patient)
        elif event is RecordEvent.BIRTH and sex == "male":
            roles.setdefault(Role.FATHER, patient)


# --- place -----------------------------------------------------------------------------


def _event_place(
    resources: Resources,
    encounter: tuple[Mapping[str, Any], str] | None,
    index: LocationIndex,
) -> EventPlace | None:
    if encounter is None:
        return None
    first = next(iter(_fhir.as_list(encounter[0].get("location"))), None)
    ref = _fhir.dig(first, "location", "reference") if _fhir.is_map(first) else None
    location_id = _fhir.ref_id(ref)
    resolved = resources.resolve(ref)
    if resolved is not None and _fhir.text(resolved[0].get("id")) is not None:
        location_id = _fhir.text(resolved[0].get("id"))
    if not location_id:
        return None
    return _fhir.resolve_place(location_id, resolved[0] if resolved else None, resources, index)


# --- DCI -------------------------------------------------------------------------------


def person_to_dci(record: MappedRecord, person: MappedPerson | None = None) -> CrvsPerson:
    """The DCI view of one person of one record (default: its first subject).

    The store aggregates several records per person (`records.person.build_person`); this is
    the same mapping for a single record, for sources that hold no other records.
    """
    chosen = person if person is not None else record.subjects[0]
    return build_person(person_key_for(record, chosen), [(record, chosen)]).dci
