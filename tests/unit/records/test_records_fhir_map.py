"""FHIR bundle -> MappedRecord on the real OpenCRVS fixtures and their variants."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from dci_bridge.records.fhir_map import MappingError, map_bundle
from dci_bridge.records.mapped import RecordEvent, Role


def _resource(bundle: dict[str, Any], kind: str, rid: str | None = None) -> dict[str, Any]:
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == kind and (rid is None or res.get("id") == rid):
            return res
    raise KeyError(kind)


def test_birth_fixture_maps_child_parents_place_and_task(birth_bundle):
    record = map_bundle(birth_bundle)

    assert record.record_id == "09f39e17-ca23-4905-9ab3-f3649c4e3162"
    assert record.event is RecordEvent.BIRTH
    assert record.tracking_id == "B3VUXES"
    assert record.registration_number == "2023B3VUXES"
    assert record.status == "WAITING_VALIDATION"
    assert not record.is_registered
    assert record.last_modified == dt.datetime(2023, 10, 2, 13, 51, 55, 410000, tzinfo=dt.UTC)
    assert record.office_id == "e9e1b362-27c9-4ce1-82ad-57fe9d5650e4"
    assert record.informant_relationship == "MOTHER"

    child = record.child
    assert child is not None
    assert child.resource_id == "dfac3127-963e-4ef2-b875-3123e08da3d9"
    assert child.given_names == ("Isadore",)
    assert child.family_name == "Baumbach"
    assert child.sex == "female"
    assert child.birth_date == "2023-07-11"
    # the three empty BIRTH_CONFIGURABLE_IDENTIFIER_* values are dropped
    assert child.identifiers == (("BIRTH_REGISTRATION_NUMBER", "2023B3VUXES"),)

    mother, father = record.mother, record.father
    assert mother is not None
    assert father is not None
    assert mother.national_id == "2253499797"
    assert mother.given_names == ("Sophia",)
    assert mother.marital_status == "M"
    assert mother.marriage_date == "2021-07-11"
    assert mother.phone_numbers == ("+260711384538",)
    assert mother.address is not None
    assert mother.address.district_id == "e66643ac-9ea9-4314-b842-f4fb3ad9e83a"
    assert father.national_id == "8762475961"
    assert (father.given_names, father.family_name) == (("Baumbach",), "Neil")

    place = record.place
    assert place is not None
    assert place.facility_id == "565d957a-109a-4bf3-a3af-f0ad52c719cd"
    assert place.name == "Keembe Rural Health Centre"
    assert place.kind == "HEALTH_FACILITY"
    assert (place.district_id, place.district_name) == (
        "e66643ac-9ea9-4314-b842-f4fb3ad9e83a",
        "Ibombo",
    )
    assert (place.state_id, place.state_name) == ("1cfe40fa-7b43-4c1e-aa05-4281e5122d9b", "Central")


def test_death_fixture_maps_deceased_and_spouse_informant(death_bundle):
    record = map_bundle(death_bundle)

    assert record.record_id == "a959c616-934a-4139-a123-37bb4a1be39e"
    assert record.event is RecordEvent.DEATH
    assert (record.tracking_id, record.registration_number) == ("DL1W8FV", "2023DL1W8FV")
    assert record.is_registered
    deceased = record.deceased
    assert deceased is not None
    assert deceased.national_id == "8360781537"
    assert deceased.identifier("DEATH_REGISTRATION_NUMBER") == "2023DL1W8FV"
    assert deceased.identifier("SOCIAL_SECURITY_NO") == "565195261"
    assert (deceased.birth_date, deceased.death_date) == ("1948-07-24", "2023-07-24")
    assert deceased.is_deceased
    assert deceased.given_names == ("Zack",)
    # the informant is the spouse, only reachable through the RelatedPerson
    spouse = record.spouse
    assert spouse is not None
    assert spouse.national_id == "2464716794"
    assert spouse.given_names == ("Frank",)
    # parents with an empty given name and no identifier are still read, without a given name
    assert record.mother is not None
    assert record.mother.given_names == ()
    assert record.mother.family_name == "Pacocha"
    assert record.place is not None
    assert record.place.name == "Golden Valley Rural Health Centre"
    assert record.place.district_name == "Ibombo"


def test_legacy_2019_bundle_with_urn_references_and_bare_identifier_types(legacy_bundle):
    record = map_bundle(legacy_bundle)

    assert record.record_id == "80433e78-7042-4837-b888-a79c0181bf4e"
    assert record.event is RecordEvent.BIRTH
    assert record.registration_number == "2019333494BALYJMQ8"
    assert record.tracking_id == "BALYJMQ"
    assert record.status == "REGISTERED"
    child = record.child
    assert child is not None
    assert child.family_name == "sdfffaaffdfsdf"  # the "en" name, family given as a list
    assert child.birth_date == "1994-11-11"
    assert child.birth_registration_number == "2019333494BALYJMQ8"  # from the Task
    assert record.mother is not None
    assert record.mother.national_id == "1111111111111"  # type given as a bare string
    place = record.place
    assert place is not None
    assert place.kind == "PRIVATE_HOME"
    assert place.facility_id is None
    assert place.district_id == "af707770-4a89-46bd-8030-692059cd919b"
    assert place.state_id == "7dfc8cda-7eb7-4625-acfa-6c7408e5653d"


def _webhook_filtered(bundle: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """What a WEBHOOK client receives: the Composition dropped, only allowed sections + Task."""
    composition = _resource(bundle, "Composition")
    refs: set[str] = set()
    for section in composition["section"]:
        if section["code"]["coding"][0]["code"] in keep:
            refs.update(e["reference"] for e in section["entry"])
    entries = [
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Task"
        or f"{e['resource']['resourceType']}/{e['resource'].get('id')}" in refs
    ]
    return {"resourceType": "Bundle", "type": "document", "entry": entries}


def test_webhook_filtered_birth_without_composition_infers_roles(birth_bundle):
    filtered = _webhook_filtered(
        birth_bundle, {"child-details", "mother-details", "father-details", "birth-encounter"}
    )
    assert all(e["resource"]["resourceType"] != "Composition" for e in filtered["entry"])

    record = map_bundle(filtered)

    assert record.record_id == "09f39e17-ca23-4905-9ab3-f3649c4e3162"  # the Task's focus
    assert record.event is RecordEvent.BIRTH
    assert record.child is not None
    assert record.child.given_names == ("Isadore",)
    # the mother is recognised by multipleBirthInteger; the father has no gender: not guessed
    assert record.mother is not None
    assert record.mother.national_id == "2253499797"
    assert record.place is not None
    assert record.place.facility_id == "565d957a-109a-4bf3-a3af-f0ad52c719cd"
    assert record.place.name is None or record.place.name == "Keembe Rural Health Centre"


def test_webhook_filtered_death_finds_deceased_and_informant_spouse(death_bundle):
    filtered = _webhook_filtered(death_bundle, {"deceased-details", "informant-details"})
    # the informant's Patient is referenced from the RelatedPerson, not from a section
    filtered["entry"].extend(
        e
        for e in death_bundle["entry"]
        if e["resource"].get("id") == "9fbbb561-dd3c-4b9f-8765-829a4c75493e"
    )

    record = map_bundle(filtered)

    assert record.deceased is not None
    assert record.deceased.national_id == "8360781537"
    assert record.spouse is not None
    assert record.spouse.national_id == "2464716794"
    assert record.place is None  # the encounter section was not allowed


def test_entry_order_is_irrelevant(birth_bundle):
    expected = map_bundle(birth_bundle)
    for seed in range(5):
        random.Random(seed).shuffle(birth_bundle["entry"])
        assert map_bundle(birth_bundle) == expected


def test_urn_uuid_references_resolve_like_type_id_references(birth_bundle):
    expected = map_bundle(birth_bundle)
    aliases = {}
    for entry in birth_bundle["entry"]:
        res = entry["resource"]
        alias = f"urn:uuid:{res['id']}"
        aliases[f"{res['resourceType']}/{res['id']}"] = alias
        entry["fullUrl"] = alias

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference" and value in aliases:
                    node[key] = aliases[value]
                else:
                    rewrite(value)
        elif isinstance(node, list):
            for item in node:
                rewrite(item)

    rewrite(birth_bundle)
    assert map_bundle(birth_bundle) == expected


def test_marriage_bundle_from_the_seed_has_bride_groom_and_mrn():
    from dci_bridge.records.seed import generate_bundles

    record = next(
        r for r in map(map_bundle, generate_bundles(200)) if r.event is RecordEvent.MARRIAGE
    )
    assert record.bride is not None
    assert record.groom is not None
    assert record.bride.identifier("MARRIAGE_REGISTRATION_NUMBER") == record.registration_number
    assert record.bride.marriage_date is not None
    assert {p.role for p in record.subjects} == {Role.BRIDE, Role.GROOM}


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b.update(resourceType="Patient"), "$.resourceType"),
        (lambda b: b.update(entry={}), "$.entry"),
        (lambda b: b["entry"].append({"fullUrl": "x"}), "$.entry[16].resource"),
        (
            lambda b: b["entry"][3]["resource"].pop("resourceType"),
            "$.entry[3].resource.resourceType",
        ),
        (
            lambda b: b.update(
                entry=[
                    e
                    for e in b["entry"]
                    if e["resource"]["resourceType"] not in {"Composition", "Task"}
                ]
            ),
            "$.entry",
        ),
        (lambda b: _resource(b, "Composition").pop("id"), "$.entry[0].resource.id"),
        (
            lambda b: _resource(b, "Patient", "dfac3127-963e-4ef2-b875-3123e08da3d9").update(
                birthDate="11/07/2023"
            ),
            "$.entry[5].resource.birthDate",
        ),
        (
            lambda b: _resource(b, "Task").update(lastModified="yesterday"),
            "$.entry[6].resource.lastModified",
        ),
        (lambda b: _resource(b, "Composition")["type"]["coding"][0].update(code="x"), None),
    ],
)
def test_malformed_bundles_raise_mapping_error_with_path(birth_bundle, mutate, path):
    mutate(birth_bundle)
    if path is None:  # unknown doc type: the Task code still says BIRTH
        assert map_bundle(birth_bundle).event is RecordEvent.BIRTH
        return
    with pytest.raises(MappingError) as caught:
        map_bundle(birth_bundle)
    assert caught.value.path == path
    # messages name fields, never values
    assert "Isadore" not in str(caught.value)
    assert "2023" not in caught.value.message


def test_record_without_subject_is_rejected(birth_bundle):
    composition = _resource(birth_bundle, "Composition")
    composition["section"] = [
        s for s in composition["section"] if s["code"]["coding"][0]["code"] != "child-details"
    ]
    with pytest.raises(MappingError, match="no subject"):
        map_bundle(birth_bundle)
