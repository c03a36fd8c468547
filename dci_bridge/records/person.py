"""One CRVS person aggregated from every registered record that names them.

The store is person-centric: a DCI search returns persons, each carrying the vital events
registered for them (birth: BRN, birth date and place, parents; death: DRN, death date and
place; marriage: MRN, marital status, marriage dates). `build_person` is the one pure
function that merges a person's (record, role) links into the indexed search columns and the
pre-encoded DCI `CrvsPerson`; the store, the bulk seeder and `fhir_map.person_to_dci` all
use it. Precedence: links where the person is the record's subject beat mentions (mother,
father, spouse), and newer records beat older ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence

import msgspec

from dci_bridge.clock import isoformat_z
from dci_bridge.protocol.codes import IdentifierType
from dci_bridge.protocol.crvs import Address, CrvsPerson, Identifier, Name, Place
from dci_bridge.records.mapped import (
    BIRTH_REGISTRATION_NUMBER,
    DEATH_REGISTRATION_NUMBER,
    MARRIAGE_REGISTRATION_NUMBER,
    NATIONAL_ID,
    ROLE_BRIDE,
    ROLE_CHILD,
    ROLE_DECEASED,
    ROLE_GROOM,
    SUBJECT_ROLES,
    EventPlace,
    MappedPerson,
    MappedRecord,
    Role,
)

PERSON_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "dci-bridge:person")
"""uuid5 namespace of person keys: `uuid5(ns, "uin:<nid>" | "brn:<brn>" | "record:<id>:<role>")`."""

IDENTIFIER_TYPES: dict[str, IdentifierType] = {
    NATIONAL_ID: IdentifierType.UIN,
    BIRTH_REGISTRATION_NUMBER: IdentifierType.BRN,
    DEATH_REGISTRATION_NUMBER: IdentifierType.DRN,
    MARRIAGE_REGISTRATION_NUMBER: IdentifierType.MRN,
}
"""OpenCRVS identifier type code -> DCI identifier type, for the types a person is indexed by."""

_TYPE_ORDER = {
    t: i
    for i, t in enumerate(
        [
            IdentifierType.UIN,
            IdentifierType.BRN,
            IdentifierType.DRN,
            IdentifierType.MRN,
            IdentifierType.OPENCRVS_RECORD_ID,
            IdentifierType.OPENCRVS_TRACKING_ID,
        ]
    )
}
_WIRE_TYPE = {kind: kind.value for kind in IdentifierType}
"""Identifier type -> its text on the wire (an enum's `.value` is a property: slow, per use)."""
_UIN_TYPE, _BRN_TYPE = IdentifierType.UIN, IdentifierType.BRN  # slow enum reads: records.mapped
_RECORD_ID_TYPE = IdentifierType.OPENCRVS_RECORD_ID
_TRACKING_ID_TYPE = IdentifierType.OPENCRVS_TRACKING_ID
_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
_ENCODER = msgspec.json.Encoder()

Link = tuple[MappedRecord, MappedPerson]


def person_key_for(record: MappedRecord, person: MappedPerson) -> str:
    """The key a new person gets: from the national id, else the BRN, else record + role."""
    if person.national_id:
        name = f"uin:{person.national_id}"
    elif person.birth_registration_number:
        name = f"brn:{person.birth_registration_number}"
    else:
        name = f"record:{record.record_id}:{person.role.value}"
    return uuid5_text(PERSON_NAMESPACE, name)


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))` in a third of the time (no UUID object; a lookup
    through OpenCRVS keys each person it answers with)."""
    data = namespace.bytes + name.encode()
    digest = bytearray(hashlib.sha1(data, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


LINKED_MENTIONS = frozenset({Role.MOTHER, Role.FATHER, Role.SPOUSE})
"""Mentioned roles that become persons when the record gives them a national id or a BRN."""


def linked_persons(record: MappedRecord) -> list[MappedPerson]:
    """The persons of a record the store keeps: its subjects, and identified relatives."""
    return [
        p
        for p in record.persons
        if p.role in SUBJECT_ROLES
        or (p.role in LINKED_MENTIONS and (p.national_id or p.birth_registration_number))
    ]


def match_identifiers(person: MappedPerson) -> list[tuple[IdentifierType, str]]:
    """Identifiers that say two records name the same person, strongest first (UIN, BRN)."""
    found: list[tuple[IdentifierType, str]] = []
    national_id = person.national_id
    if national_id:
        found.append((_UIN_TYPE, national_id))
    number = person.birth_registration_number
    if number:
        found.append((_BRN_TYPE, number))
    return found


def person_identifiers(
    record: MappedRecord, person: MappedPerson
) -> list[tuple[IdentifierType, str]]:
    """The DCI identifiers one link gives its person (record ids only for the subject)."""
    found: list[tuple[IdentifierType, str]] = []
    for code, value in person.identifiers:
        kind = IDENTIFIER_TYPES.get(code)
        if kind is not None:
            found.append((kind, value))
    if person.role in SUBJECT_ROLES:
        found.append((_RECORD_ID_TYPE, record.record_id))
        if record.tracking_id:
            found.append((_TRACKING_ID_TYPE, record.tracking_id))
    return found


class PersonView(msgspec.Struct, frozen=True):
    """A person's search columns, identifiers and DCI record."""

    person_key: str
    given_name: str | None
    surname: str | None
    sex: str | None
    birth_date: dt.date | None
    birth_year: int | None
    birth_place: EventPlace | None
    death_date: dt.date | None
    death_year: int | None
    death_place: EventPlace | None
    is_deceased: bool
    marital_status: str | None
    marriage_date: dt.date | None
    registration_date: dt.datetime | None
    last_updated: dt.datetime | None
    has_birth: bool
    has_death: bool
    has_marriage: bool
    identifiers: tuple[tuple[IdentifierType, str], ...]
    dci: CrvsPerson

    @property
    def dci_json(self) -> bytes:
        return _ENCODER.encode(self.dci)


def _order(link: Link) -> tuple[int, float]:
    record, person = link
    when = record.last_modified or _EPOCH
    return (0 if person.role in SUBJECT_ROLES else 1, -when.timestamp())


def _identifier_order(item: tuple[IdentifierType, str]) -> tuple[int, str]:
    return _TYPE_ORDER[item[0]], item[1]


def _full_date(value: str | None) -> dt.date | None:
    if value is None or len(value) != 10:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _year(value: str | None) -> int | None:
    return int(value[:4]) if value and value[:4].isdigit() else None


def _place(place: EventPlace | None) -> Place | None:
    if place is None:
        return None
    if place.facility_id:
        return Place(id=place.facility_id, name=place.name, contained_in_place=place.district_name)
    if place.district_id:
        return Place(
            id=place.district_id, name=place.district_name, contained_in_place=place.state_name
        )
    if place.state_id:
        return Place(id=place.state_id, name=place.state_name)
    return Place(id=place.location_id, name=place.name)


def _parent(person: MappedPerson | None) -> Identifier | None:
    if person is None:
        return None
    national_id = person.national_id
    if national_id:
        return Identifier(identifier_type=_WIRE_TYPE[_UIN_TYPE], identifier_value=national_id)
    number = person.birth_registration_number
    if number:
        return Identifier(identifier_type=_WIRE_TYPE[_BRN_TYPE], identifier_value=number)
    return None


def _address(links: Sequence[Link]) -> list[Address] | None:
    for _, person in links:
        a = person.address
        if a is not None and (a.lines or a.city or a.district_id or a.state_id):
            return [
                Address(
                    address_line_1=", ".join(a.lines) or None,
                    locality=a.city,
                    sub_region_code=a.district_id,
                    region_code=a.state_id,
                    postal_code=a.postal_code,
                    country_code=a.country,
                )
            ]
    return None


def build_person(person_key: str, links: Sequence[Link]) -> PersonView:
    """Merge a person's links (registered records only) into one view; `links` must be non-empty.

    Links are taken in precedence order (`_order`); for each field the first link that has a
    value gives it. One pass over the links: a look-up through OpenCRVS builds a person per
    answer, and a pass per field (a generator each) cost twice the time."""
    if not links:
        raise ValueError("a person needs at least one record")
    ordered = sorted(links, key=_order) if len(links) > 1 else links
    child: Link | None = None
    deceased: Link | None = None
    named: MappedPerson | None = None
    sex = birth_any = death_any = marital = None
    has_marriage = is_deceased = False
    married_dates: set[str] = set()
    any_dates: set[str] = set()
    registration_date: dt.datetime | None = None
    last_updated: dt.datetime | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    seen: set[tuple[IdentifierType, str]] = set()
    for link in ordered:
        record, person = link
        role = person.role
        spouse = role is ROLE_BRIDE or role is ROLE_GROOM
        if role is ROLE_CHILD:
            if child is None:
                child = link
        elif role is ROLE_DECEASED:
            if deceased is None:
                deceased = link
        elif spouse:
            has_marriage = True
            if person.marriage_date:
                married_dates.add(person.marriage_date)
        if person.marriage_date:
            any_dates.add(person.marriage_date)
        if named is None and (person.given_names or person.family_name):
            named = person
        if sex is None and person.sex:
            sex = person.sex
        if birth_any is None and person.birth_date:
            birth_any = person.birth_date
        if death_any is None and person.death_date:
            death_any = person.death_date
        if marital is None:
            marital = person.marital_status or ("M" if spouse else None)
        is_deceased = is_deceased or person.is_deceased
        if not phones:
            phones = person.phone_numbers
        if not emails:
            emails = person.emails
        when = record.last_modified
        if when is not None:
            if last_updated is None or when > last_updated:
                last_updated = when
            if role in SUBJECT_ROLES and (registration_date is None or when < registration_date):
                registration_date = when
        seen.update(person_identifiers(record, person))
    identifiers = tuple(sorted(seen, key=_identifier_order))
    given = named.given_names if named else ()
    surname = named.family_name if named else None
    birth_date = (child[1].birth_date if child else None) or birth_any
    death_date = (deceased[1].death_date if deceased else None) or death_any
    marriage_dates = sorted(married_dates) or sorted(any_dates)
    birth_place = child[0].place if child else None
    death_place = deceased[0].place if deceased else None
    is_deceased = deceased is not None or is_deceased
    dci = CrvsPerson(
        id=f"urn:uuid:{person_key}",
        identifier=[
            Identifier(identifier_type=_WIRE_TYPE[t], identifier_value=v) for t, v in identifiers
        ],
        name=Name(
            given_name=given[0] if given else None,
            second_name=" ".join(given[1:]) or None,
            surname=surname,
        )
        if named
        else None,
        sex=sex,
        birth_date=birth_date,
        birth_place=_place(birth_place),
        death_date=death_date,
        death_place=_place(death_place),
        marital_status=marital,
        marriage_date=marriage_dates or None,
        parent1_identifier=_parent(child[0].mother) if child else None,
        parent2_identifier=_parent(child[0].father) if child else None,
        address=_address(ordered),
        phone_number=list(phones) or None,
        email=list(emails) or None,
        registration_date=isoformat_z(registration_date) if registration_date else None,
        last_updated=isoformat_z(last_updated) if last_updated else None,
    )
    return PersonView(
        person_key=person_key,
        given_name=given[0] if given else None,
        surname=surname,
        sex=dci.sex,
        birth_date=_full_date(birth_date),
        birth_year=_year(birth_date),
        birth_place=birth_place,
        death_date=_full_date(death_date),
        death_year=_year(death_date),
        death_place=death_place,
        is_deceased=is_deceased,
        marital_status=marital,
        marriage_date=_full_date(marriage_dates[-1]) if marriage_dates else None,
        registration_date=registration_date,
        last_updated=last_updated,
        has_birth=child is not None,
        has_death=deceased is not None,
        has_marriage=has_marriage,
        identifiers=identifiers,
        dci=dci,
    )
