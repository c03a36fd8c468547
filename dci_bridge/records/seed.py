"""A synthetic, deterministic Farajaland population as OpenCRVS FHIR record bundles.

`generate_bundles(persons, seed)` simulates families one after the other: parents (most with
a national id, some with their own late birth registration), the parents' marriage, 1-4
children (BRN on their birth records, Farajaland health facilities or home births), some
grown children marrying a spouse from outside, and a few deaths. It stops after the family
that brings the number of distinct persons to at least `persons`. The same seed gives the
same bundles, and a smaller population is a prefix of a larger one, so examples found in
the first families (`known_persons`) exist in every population of that seed. The synthetic
"today" is `TODAY`. `seed_store` bulk-loads a population into the embedded store.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import sqlalchemy as sa

from dci_bridge.db.engine import begin_write, create_sync_engine, migrate
from dci_bridge.records import seed_names as names
from dci_bridge.records.bulk import bulk_load
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.indexer import delete_all, person_table
from dci_bridge.records.locations import Location, LocationIndex, LocationType, farajaland
from dci_bridge.records.seed_fhir import BundleBuilder, EventData, PatientData

DEFAULT_PERSONS = 50_000
DEFAULT_SEED = 20261123
TODAY = dt.date(2025, 12, 31)
_TRACKING_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(slots=True)
class _Human:
    given: tuple[str, ...]
    family: str
    sex: str
    birth: dt.date
    district: Location
    line: str
    town: str
    nid: str | None = None
    brn: str | None = None
    phone: str | None = None
    occupation: str | None = None
    marital: str | None = None
    marriage_date: dt.date | None = None
    death: dt.date | None = None
    children: list[_Human] = field(default_factory=list)

    def age_on(self, day: dt.date) -> int:
        return (
            day.year - self.birth.year - ((day.month, day.day) < (self.birth.month, self.birth.day))
        )


@functools.cache
def _registrar_id(office_code: str) -> str:
    """The (invented) registrar Practitioner of an office."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"farajaland:registrar:{office_code}"))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class _Planner:
    """Families, one at a time, from one PRNG; counts the distinct persons made so far."""

    def __init__(self, seed: int, index: LocationIndex, *, with_locations: bool) -> None:
        self.rng = random.Random(seed)
        self.index = index
        self.builder = BundleBuilder(self._uuid, index, with_locations=with_locations)
        self.persons = 0
        self._tracking: set[str] = set()
        self._nids: set[str] = set()
        self.districts = sorted(index.districts(), key=lambda loc: loc.code)
        self.facilities = {
            d.id: [c for c in index.children(d.id) if c.type is LocationType.HEALTH_FACILITY]
            for d in self.districts
        }
        offices = {
            d.id: [c for c in index.children(d.id) if c.type is LocationType.CRVS_OFFICE]
            for d in self.districts
        }
        self.offices = {
            key: next((o for o in found if o.name.endswith("District Office")), found[0])
            for key, found in offices.items()
        }

    # --- random values -----------------------------------------------------------------

    def _uuid(self) -> str:
        """A random (version 4) uuid from the seeded PRNG, formatted without uuid.UUID."""
        h = f"{self.rng.getrandbits(128):032x}"
        variant = "89ab"[int(h[16], 16) & 3]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"

    def _day(self, start: dt.date, end: dt.date) -> dt.date:
        span = max((end - start).days, 0)
        return start + dt.timedelta(days=self.rng.randint(0, span))

    def _moment(self, day: dt.date, delay_days: tuple[int, int]) -> dt.datetime:
        base = dt.datetime.combine(day, dt.time(8), dt.UTC)
        return base + dt.timedelta(
            days=self.rng.randint(*delay_days), seconds=self.rng.randint(0, 9 * 3600)
        )

    def _tracking_id(self, prefix: str) -> str:
        while True:
            value = prefix + "".join(self.rng.choices(_TRACKING_ALPHABET, k=6))
            if value not in self._tracking:
                self._tracking.add(value)
                return value

    def _nid(self) -> str:
        while True:
            value = str(self.rng.randint(1_000_000_000, 9_999_999_999))
            if value not in self._nids:
                self._nids.add(value)
                return value

    def _given(self, sex: str) -> tuple[str, ...]:
        pool = names.FEMALE_GIVEN if sex == "female" else names.MALE_GIVEN
        first = self.rng.choice(pool)
        if self.rng.random() < 0.2:
            second = self.rng.choice(pool)
            if second != first:
                return (first, second)
        return (first,)

    def _adult(self, sex: str, born: dt.date, district: Location, family: str | None) -> _Human:
        rng = self.rng
        return _Human(
            given=self._given(sex),
            family=family or rng.choice(names.SURNAMES),
            sex=sex,
            birth=born,
            district=district,
            line=f"{rng.randint(1, 999)} {rng.choice(names.STREETS)}",
            town=rng.choice(names.TOWNS),
            nid=self._nid() if rng.random() < 0.92 else None,
            phone=f"+2607{rng.randint(10_000_000, 99_999_999)}",
            occupation=rng.choice(names.OCCUPATIONS),
        )

    # --- records -----------------------------------------------------------------------

    def _event(
        self, kind: str, day: dt.date, district: Location, delay: tuple[int, int]
    ) -> EventData:
        registered = self._moment(day, delay)
        tracking = self._tracking_id(kind[0].upper())
        at_home = self.rng.random() < 0.18
        location = district if at_home else self.rng.choice(self.facilities[district.id])
        office = self.offices[district.id]
        return EventData(
            kind=kind,
            record_id=self._uuid(),
            tracking_id=tracking,
            registration_number=f"{registered.year}{tracking}",
            registered_at=registered,
            declared_at=registered - dt.timedelta(hours=self.rng.randint(1, 72)),
            location=location,
            at_home=at_home,
            office=office,
            registrar_id=_registrar_id(office.code),
        )

    def _patient(
        self, h: _Human, *, role: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> dict[str, Any]:
        ids: list[tuple[str, str]] = []
        if h.nid and role != "child":
            ids.append(("NATIONAL_ID", h.nid))
        if h.brn:
            ids.append(("BIRTH_REGISTRATION_NUMBER", h.brn))
        ids.extend(extra)
        adult = role != "child"
        return self.builder.patient(
            PatientData(
                given=h.given,
                family=h.family,
                sex=h.sex if role not in ("mother", "father") else None,
                birth_date=h.birth,
                identifiers=tuple(ids),
                marital=h.marital if adult else None,
                marriage_date=h.marriage_date if role in ("bride", "groom") else None,
                death_date=h.death if role == "deceased" else None,
                address=(h.line, h.town, h.district) if adult else None,
                phone=h.phone if role in ("mother", "spouse", "bride") else None,
                occupation=h.occupation if adult else None,
                previous_births=len(h.children) if role == "mother" else None,
            )
        )

    def _birth(
        self, child: _Human, mother: _Human | None, father: _Human | None, late: bool
    ) -> dict[str, Any]:
        if late:  # a grown-up whose birth was registered years afterwards
            last = min(_add_years(child.birth, 25), TODAY - dt.timedelta(days=30))
            day = self._day(_add_years(child.birth, 1), last)
            event = self._event("birth", day, child.district, (0, 0))
        else:
            event = self._event("birth", child.birth, child.district, (3, 60))
        child.brn = event.registration_number
        roles = [("child-details", self._patient(child, role="child"))]
        informant = None
        if mother is not None:
            patient = self._patient(mother, role="mother")
            roles.append(("mother-details", patient))
            informant = ("MOTHER", patient)
            mother.children.append(child)
        if father is not None:
            roles.append(("father-details", self._patient(father, role="father")))
        return self.builder.bundle(event, roles, informant)

    def _marriage(self, bride: _Human, groom: _Human, day: dt.date) -> dict[str, Any]:
        for h in (bride, groom):
            h.marital, h.marriage_date = "M", day
        event = self._event("marriage", day, groom.district, (1, 30))
        roles = [
            ("bride-details", self._patient(bride, role="bride")),
            ("groom-details", self._patient(groom, role="groom")),
        ]
        return self.builder.bundle(event, roles, None)

    def _death(
        self, h: _Human, day: dt.date, spouse: _Human | None, mother: _Human | None
    ) -> dict[str, Any]:
        h.death = day
        event = self._event("death", day, h.district, (2, 45))
        deceased = self._patient(
            h, role="deceased", extra=(("DEATH_REGISTRATION_NUMBER", event.registration_number),)
        )
        roles = [("deceased-details", deceased)]
        informant = None
        if spouse is not None and spouse.death is None:
            patient = self._patient(spouse, role="spouse")
            roles.append(("spouse-details", patient))
            informant = ("SPOUSE", patient)
        elif mother is not None:
            patient = self._patient(mother, role="mother")
            roles.append(("mother-details", patient))
            informant = ("MOTHER", patient)
        return self.builder.bundle(event, roles, informant)

    # --- a family ----------------------------------------------------------------------

    def family(self) -> list[dict[str, Any]]:
        rng = self.rng
        district = rng.choice(self.districts)
        father_born = self._day(dt.date(1952, 1, 1), dt.date(2000, 12, 31))
        father = None if rng.random() < 0.12 else self._adult("male", father_born, district, None)
        mother_born = min(
            max(father_born + dt.timedelta(days=rng.randint(-1500, 3000)), dt.date(1955, 1, 1)),
            dt.date(2003, 12, 31),
        )
        mother = self._adult("female", mother_born, district, None)
        parents = [p for p in (father, mother) if p is not None]
        bundles: list[dict[str, Any]] = []
        for adult in parents:
            if rng.random() < 0.35 or adult.nid is None:
                bundles.append(self._birth(adult, None, None, late=True))
        married_on: dt.date | None = None
        if father is not None and rng.random() < 0.75:
            earliest = max(_add_years(father.birth, 18), _add_years(mother.birth, 18))
            latest = min(
                _add_years(earliest, 12), _add_years(mother.birth, 30), dt.date(2024, 12, 31)
            )
            married_on = self._day(earliest, max(earliest, latest))
            if rng.random() < 0.7:
                mother.family = father.family
            bundles.append(self._marriage(mother, father, married_on))
        start = max(_add_years(mother.birth, 18), married_on or dt.date.min)
        end = min(_add_years(mother.birth, 44), TODAY - dt.timedelta(days=60))
        count = rng.choices((1, 2, 3, 4), weights=(30, 35, 22, 13))[0]
        births = sorted(self._day(start, max(start, end)) for _ in range(count))
        children: list[_Human] = []
        for born in births:
            sex = "female" if rng.random() < 0.5 else "male"
            surname = father.family if father is not None else mother.family
            child = _Human(
                given=self._given(sex),
                family=surname,
                sex=sex,
                birth=born,
                district=district,
                line=mother.line,
                town=mother.town,
            )
            bundles.append(self._birth(child, mother, father, late=False))
            if child.age_on(TODAY) >= 18 and rng.random() < 0.85:
                child.nid = self._nid()
                child.phone = f"+2609{rng.randint(10_000_000, 99_999_999)}"
                child.occupation = rng.choice(names.OCCUPATIONS)
            children.append(child)
        outsiders = 0
        for child in children:
            if child.age_on(TODAY) >= 21 and child.nid and rng.random() < 0.45:
                other_sex = "male" if child.sex == "female" else "female"
                spouse = self._adult(
                    other_sex,
                    child.birth + dt.timedelta(days=rng.randint(-1800, 1800)),
                    district,
                    None,
                )
                spouse.nid = spouse.nid or self._nid()
                outsiders += 1
                day = self._day(
                    _add_years(child.birth, 20),
                    min(_add_years(child.birth, 32), dt.date(2025, 6, 30)),
                )
                bride, groom = (child, spouse) if child.sex == "female" else (spouse, child)
                bundles.append(self._marriage(bride, groom, day))
        last_birth = births[-1]
        last_day = TODAY - dt.timedelta(days=50)
        for adult in parents:
            if rng.random() < 0.06 and last_birth + dt.timedelta(days=30) < last_day:
                partner = (mother if adult is father else father) if married_on else None
                day = self._day(last_birth + dt.timedelta(days=30), last_day)
                bundles.append(self._death(adult, day, partner, None))
        for child in children:
            first_day = max(child.birth, child.marriage_date or child.birth) + dt.timedelta(days=1)
            if rng.random() < 0.012 and first_day < last_day:
                informant = mother if mother.death is None else None
                bundles.append(self._death(child, self._day(first_day, last_day), None, informant))
        self.persons += len(parents) + len(children) + outsiders
        return bundles


def generate_bundles(
    persons: int = DEFAULT_PERSONS,
    seed: int = DEFAULT_SEED,
    *,
    with_locations: bool = False,
    locations: LocationIndex | None = None,
) -> Iterator[dict[str, Any]]:
    """Registered birth, death and marriage bundles for at least `persons` distinct persons.

    `with_locations` adds the Location resources of facilities, offices and admin areas to
    each bundle, as OpenCRVS's stored bundles carry them.
    """
    planner = _Planner(seed, locations or farajaland(), with_locations=with_locations)
    while planner.persons < persons:
        yield from planner.family()


ProgressCallback = Callable[[int], None]


async def seed_store(
    url: str,
    persons: int = DEFAULT_PERSONS,
    seed: int = DEFAULT_SEED,
    *,
    progress: ProgressCallback | None = None,
    replace: bool = False,
    with_locations: bool = False,
) -> int:
    """Migrate the store at `url` if needed and bulk-load a synthetic population.

    A store that already holds persons is left alone (returns their count) unless `replace`
    is set, which empties it first. `progress` is called from a worker thread with the number
    of records loaded so far. Returns the number of persons in the store.
    """

    def load() -> int:
        migrate(url)
        engine = create_sync_engine(url, pool_size=1)
        try:
            with begin_write(engine) as conn:
                count = sa.select(sa.func.count()).select_from(person_table)
                existing = int(conn.execute(count).scalar_one())
                if existing and not replace:
                    return existing
                delete_all(conn)
                bundles = generate_bundles(persons, seed, with_locations=with_locations)
                return bulk_load(conn, bundles, now=dt.datetime.now(dt.UTC), progress=progress)
        finally:
            engine.dispose()

    return await anyio.to_thread.run_sync(load)


@dataclass(frozen=True, slots=True)
class KnownPersons:
    """Identifiers of example persons of a seeded population (for tests, demo and docs)."""

    child_brn: str
    child_record_id: str
    child_tracking_id: str
    child_given_name: str
    child_surname: str
    child_birth_date: str
    child_birth_facility_id: str
    mother_uin: str
    deceased_drn: str
    married_mrn: str
    bride_uin: str
    groom_uin: str


def known_persons(seed: int = DEFAULT_SEED) -> KnownPersons:
    """Example identifiers from the first families of the population of `seed`.

    The child has a birth record only (no later marriage or death), so its identifiers are
    exactly BRN, record id and tracking id. All examples lie within the first 150 persons,
    so they exist in every population of that seed with at least that many persons.
    """
    found: dict[str, str] = {}
    children: list[dict[str, str]] = []
    later: set[str] = set()  # BRNs of persons with a marriage or death record
    for count, bundle in enumerate(generate_bundles(10**9, seed)):
        record = map_bundle(bundle)
        child, mother = record.child, record.mother
        for subject in (record.deceased, record.bride, record.groom):
            if subject is not None and subject.birth_registration_number:
                later.add(subject.birth_registration_number)
        if (
            len(children) < 20
            and child is not None
            and mother is not None
            and mother.national_id
            and record.father is not None
            and child.given_names
            and child.birth_date
            and record.place is not None
            and record.place.facility_id
        ):
            children.append(
                {
                    "child_brn": record.registration_number or "",
                    "child_record_id": record.record_id,
                    "child_tracking_id": record.tracking_id or "",
                    "child_given_name": child.given_names[0],
                    "child_surname": child.family_name or "",
                    "child_birth_date": child.birth_date,
                    "child_birth_facility_id": record.place.facility_id,
                    "mother_uin": mother.national_id,
                }
            )
        if "deceased_drn" not in found and record.deceased is not None:
            found["deceased_drn"] = record.registration_number or ""
        bride, groom = record.bride, record.groom
        if (
            "married_mrn" not in found
            and bride is not None
            and groom is not None
            and bride.national_id
            and groom.national_id
        ):
            found.update(
                married_mrn=record.registration_number or "",
                bride_uin=bride.national_id,
                groom_uin=groom.national_id,
            )
        # a family's records come together: 60 bundles on, the first candidates are complete
        if len(found) == 4 and len(children) == 20 and count > 60:
            child_example = next((c for c in children if c["child_brn"] not in later), None)
            if child_example is not None:
                return KnownPersons(**found, **child_example)
    raise AssertionError("unreachable: the population is unbounded")
