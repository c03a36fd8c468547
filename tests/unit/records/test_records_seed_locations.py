"""Farajaland locations and the synthetic seed population."""

from __future__ import annotations

import collections
import itertools
import uuid

import msgspec

from dci_bridge.records.bulk import PopulationIndex
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.locations import LocationType, farajaland, location_uuid
from dci_bridge.records.mapped import RecordEvent
from dci_bridge.records.seed import generate_bundles, known_persons


def test_farajaland_hierarchy_from_the_csvs():
    index = farajaland()
    assert len(index.states()) == 4
    assert len(index.districts()) == 16
    assert len(index.of_type(LocationType.HEALTH_FACILITY)) == 300
    assert len(index.of_type(LocationType.CRVS_OFFICE)) == 17
    assert {s.name for s in index.states()} == {"Central", "Sulaka", "Pualula", "Chuminga"}

    keembe = index.by_code("TsWOcEzohYx")
    assert keembe is not None
    assert keembe.name == "Keembe Rural Health Centre"
    assert keembe.id == str(uuid.uuid5(uuid.NAMESPACE_URL, "farajaland:TsWOcEzohYx"))
    assert keembe.identifier_value == "HEALTH_FACILITY_TsWOcEzohYx"
    district, state = index.ancestors(keembe.id)
    assert (district.name, district.code) == ("Ibombo", "oEBf29y8JP8")
    assert (state.name, state.identifier_value) == ("Central", "ADMIN_STRUCTURE_AWn3s2RqgAN")
    assert index.district_and_state(keembe.id) == (district, state)
    assert index.ancestors(state.id) == ()
    assert index.get(location_uuid("nope")) is None


def test_same_seed_same_bundles_and_smaller_population_is_a_prefix():
    encode = msgspec.json.encode
    first = [encode(b) for b in generate_bundles(150, seed=7)]
    again = [encode(b) for b in generate_bundles(150, seed=7)]
    bigger = [encode(b) for b in itertools.islice(generate_bundles(400, seed=7), len(first))]
    other = [encode(b) for b in generate_bundles(150, seed=8)]
    assert first == again == bigger
    assert first != other


def test_population_has_every_identifier_type_deaths_and_marriages():
    index = PopulationIndex()
    records = [map_bundle(b) for b in generate_bundles(600, seed=3)]
    for record in records:
        assert record.is_registered
        assert record.registration_number
        assert record.tracking_id
        index.add(record)
    views = list(index.persons())
    assert len(views) >= 600
    assert len({v.person_key for v in views}) == len(views)
    kinds = collections.Counter(kind.value for v in views for kind, _ in v.identifiers)
    assert set(kinds) == {"UIN", "BRN", "DRN", "MRN", "OPENCRVS_RECORD_ID", "OPENCRVS_TRACKING_ID"}
    deceased = sum(v.is_deceased for v in views) / len(views)
    married = sum(v.has_marriage for v in views) / len(views)
    assert 0.01 < deceased < 0.10
    assert married > 0.2
    events = collections.Counter(r.event for r in records)
    assert events[RecordEvent.BIRTH] > events[RecordEvent.MARRIAGE] > events[RecordEvent.DEATH] > 0
    # every birth at a Farajaland facility or home district, registered at a district office
    places = farajaland()
    for record in records:
        assert record.place is not None
        assert record.place.district_id is not None
        assert places.get(record.place.district_id) is not None
        office = places.get(record.office_id or "")
        assert office is not None
        assert office.type is LocationType.CRVS_OFFICE
    # children are linked to parents by national id or BRN
    children = [v for v in views if v.has_birth and v.dci.parent1_identifier is not None]
    assert children
    assert all(v.dci.parent1_identifier.identifier_type in {"UIN", "BRN"} for v in children)


def test_known_persons_exist_in_a_small_population():
    known = known_persons(seed=3)
    ids = set()
    index = PopulationIndex()
    for bundle in generate_bundles(300, seed=3):
        index.add(map_bundle(bundle))
    for view in index.persons():
        ids.update((k.value, v) for k, v in view.identifiers)
    for kind, value in [
        ("BRN", known.child_brn),
        ("OPENCRVS_RECORD_ID", known.child_record_id),
        ("OPENCRVS_TRACKING_ID", known.child_tracking_id),
        ("UIN", known.mother_uin),
        ("DRN", known.deceased_drn),
        ("MRN", known.married_mrn),
        ("UIN", known.bride_uin),
        ("UIN", known.groom_uin),
    ]:
        assert (kind, value) in ids


def test_seeded_bundles_can_carry_location_resources():
    bundle = next(iter(generate_bundles(5, seed=1, with_locations=True)))
    kinds = collections.Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    assert kinds["Location"] >= 3  # office + district + province (+ facility)
    record = map_bundle(bundle)
    assert record.place is not None
    assert record.place.state_name is not None
