"""Persons: the DCI JSON of fixture records and the merge rules across records."""

from __future__ import annotations

import datetime as dt
import json

import msgspec

from dci_bridge.protocol.crvs import CrvsPerson
from dci_bridge.records.fhir_map import map_bundle, person_to_dci
from dci_bridge.records.mapped import Role
from dci_bridge.records.person import build_person, linked_persons, person_key_for


def _registered(bundle):
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Task":
            res["businessStatus"]["coding"][0]["code"] = "REGISTERED"
    return bundle


def test_birth_child_as_dci_json(birth_bundle):
    record = map_bundle(_registered(birth_bundle))
    data = msgspec.json.encode(person_to_dci(record))
    assert json.loads(data) == {
        "@type": "CRVS_Person",
        "@id": "urn:uuid:d4fb328a-a21f-5abc-b777-b3126999c3e1",
        "identifier": [
            {"identifier_type": "BRN", "identifier_value": "2023B3VUXES"},
            {
                "identifier_type": "OPENCRVS_RECORD_ID",
                "identifier_value": "09f39e17-ca23-4905-9ab3-f3649c4e3162",
            },
            {"identifier_type": "OPENCRVS_TRACKING_ID", "identifier_value": "B3VUXES"},
        ],
        "name": {"surname": "Baumbach", "given_name": "Isadore"},
        "sex": "female",
        "birth_date": "2023-07-11",
        "birth_place": {
            "@type": "Place",
            "@id": "565d957a-109a-4bf3-a3af-f0ad52c719cd",
            "name": "Keembe Rural Health Centre",
            "contained_in_place": "Ibombo",
        },
        "parent1_identifier": {"identifier_type": "UIN", "identifier_value": "2253499797"},
        "parent2_identifier": {"identifier_type": "UIN", "identifier_value": "8762475961"},
        "registration_date": "2023-10-02T13:51:55.410Z",
        "last_updated": "2023-10-02T13:51:55.410Z",
    }
    assert msgspec.json.decode(data, type=CrvsPerson).birth_date == "2023-07-11"


def test_deceased_as_dci_person(death_bundle):
    record = map_bundle(death_bundle)
    person = person_to_dci(record)
    ids = {(i.identifier_type, i.identifier_value) for i in person.identifier}
    assert ids == {
        ("UIN", "8360781537"),
        ("DRN", "2023DL1W8FV"),
        ("OPENCRVS_RECORD_ID", "a959c616-934a-4139-a123-37bb4a1be39e"),
        ("OPENCRVS_TRACKING_ID", "DL1W8FV"),
    }
    assert person.death_date == "2023-07-24"
    assert person.death_place is not None
    assert person.death_place.id == "4ba43b39-547b-41a8-8af1-c515786f36e5"
    assert person.death_place.contained_in_place == "Ibombo"
    assert person.marital_status == "M"
    assert person.address is not None
    assert person.address[0].locality == "Rudyboro"


def test_linked_persons_keep_subjects_and_identified_relatives(death_bundle, birth_bundle):
    death = map_bundle(death_bundle)
    # the parents of the deceased carry no identifier: they are not persons of their own
    assert [p.role for p in linked_persons(death)] == [Role.SPOUSE, Role.DECEASED]
    birth = map_bundle(birth_bundle)
    assert sorted(p.role for p in linked_persons(birth)) == [Role.CHILD, Role.FATHER, Role.MOTHER]


def test_person_key_prefers_national_id_then_brn(death_bundle, birth_bundle):
    death, birth = map_bundle(death_bundle), map_bundle(birth_bundle)
    deceased, child = death.deceased, birth.child
    assert deceased is not None
    assert child is not None
    without_nid = msgspec.structs.replace(
        deceased, identifiers=(("DEATH_REGISTRATION_NUMBER", "x"),)
    )
    keys = {
        person_key_for(death, deceased),
        person_key_for(birth, child),
        person_key_for(death, without_nid),
    }
    assert len(keys) == 3
    # the same national id in another record gives the same key
    assert person_key_for(birth, deceased) == person_key_for(death, deceased)


def test_build_person_merges_birth_and_death_with_subject_precedence(birth_bundle, death_bundle):
    birth = map_bundle(_registered(birth_bundle))
    death = map_bundle(death_bundle)
    child = birth.child
    assert child is not None
    later = msgspec.structs.replace(
        death,
        last_modified=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        persons=tuple(
            msgspec.structs.replace(
                p, identifiers=(*p.identifiers, ("BIRTH_REGISTRATION_NUMBER", "2023B3VUXES"))
            )
            if p.role is Role.DECEASED
            else p
            for p in death.persons
        ),
    )
    deceased = later.deceased
    assert deceased is not None
    view = build_person("k", [(birth, child), (later, deceased)])

    assert view.has_birth
    assert view.has_death
    assert not view.has_marriage
    assert view.is_deceased
    # the newest subject record names the person; the birth date comes from the birth record
    assert view.given_name == "Zack"
    assert view.birth_date == dt.date(2023, 7, 11)
    assert view.death_date == dt.date(2023, 7, 24)
    assert view.birth_place is not None
    assert view.birth_place.name == "Keembe Rural Health Centre"
    assert view.registration_date == birth.last_modified
    assert view.last_updated == later.last_modified
    kinds = [kind.value for kind, _ in view.identifiers]
    assert kinds == ["UIN", "BRN", "DRN", "OPENCRVS_RECORD_ID", "OPENCRVS_RECORD_ID",
                     "OPENCRVS_TRACKING_ID", "OPENCRVS_TRACKING_ID"]  # fmt: skip
    assert view.dci.parent1_identifier is not None


def test_mother_mentioned_only_gets_no_events(birth_bundle):
    record = map_bundle(_registered(birth_bundle))
    mother = record.mother
    assert mother is not None
    view = build_person("m", [(record, mother)])
    assert not (view.has_birth)
    assert not (view.has_death)
    assert not (view.has_marriage)
    assert view.registration_date is None
    assert view.marital_status == "M"
    assert view.marriage_date == dt.date(2021, 7, 11)
    assert [(k.value, v) for k, v in view.identifiers] == [("UIN", "2253499797")]
