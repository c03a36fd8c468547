"""`build_person` (one pass over the links) merges exactly as the rule it implements, written
here the plain way: per field, the first link in precedence order that has a value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from dci_bridge.clock import isoformat_z
from dci_bridge.protocol.codes import IdentifierType
from dci_bridge.records.mapped import (
    BIRTH_REGISTRATION_NUMBER,
    NATIONAL_ID,
    SUBJECT_ROLES,
    EventPlace,
    MappedAddress,
    MappedPerson,
    MappedRecord,
    RecordEvent,
    Role,
)
from dci_bridge.records.person import (
    _TYPE_ORDER,
    Link,
    _address,
    _order,
    _parent,
    _place,
    build_person,
    person_identifiers,
)

_TEXT = st.sampled_from(["", "a", "b", "Zed"])
_MAYBE = st.one_of(st.none(), _TEXT)
_DATES = st.one_of(
    st.none(), st.just(""), st.sampled_from(["1990", "1990-05", "1990-05-02", "2001-12-31"])
)
_WHEN = st.one_of(
    st.none(),
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2030, 1, 1),
        timezones=st.just(dt.UTC),
    ).map(lambda moment: moment.replace(second=0, microsecond=0)),  # ties happen
)
_IDENTIFIERS = st.lists(
    st.tuples(
        st.sampled_from([NATIONAL_ID, BIRTH_REGISTRATION_NUMBER, "OTHER"]),
        st.sampled_from(["1", "2"]),
    ),
    max_size=3,
).map(tuple)
_ADDRESS = st.one_of(
    st.none(),
    st.builds(
        MappedAddress, lines=st.lists(_TEXT.filter(bool), max_size=2).map(tuple), city=_MAYBE
    ),
)
_PERSON = st.builds(
    MappedPerson,
    role=st.sampled_from(list(Role)),
    resource_id=st.none(),
    identifiers=_IDENTIFIERS,
    given_names=st.lists(_TEXT.filter(bool), max_size=3).map(tuple),
    family_name=_MAYBE,
    sex=_MAYBE,
    birth_date=_DATES,
    is_deceased=st.booleans(),
    death_date=_DATES,
    marital_status=_MAYBE,
    marriage_date=_DATES,
    address=_ADDRESS,
    phone_numbers=st.lists(_TEXT.filter(bool), max_size=2).map(tuple),
    emails=st.lists(_TEXT.filter(bool), max_size=2).map(tuple),
)
_PLACE = st.one_of(st.none(), st.builds(EventPlace, location_id=st.sampled_from(["l1", "l2"])))


@st.composite
def _links(draw: st.DrawFn) -> list[Link]:
    links: list[Link] = []
    for index in range(draw(st.integers(min_value=1, max_value=5))):
        persons = tuple(draw(st.lists(_PERSON, min_size=1, max_size=3)))
        record = MappedRecord(
            record_id=f"r{index}",
            event=draw(st.sampled_from(list(RecordEvent))),
            tracking_id=draw(st.sampled_from([None, "T1"])),
            registration_number=draw(st.sampled_from([None, "B1"])),
            status="REGISTERED",
            last_modified=draw(_WHEN),
            persons=persons,
            place=draw(_PLACE),
        )
        links.append((record, draw(st.sampled_from(persons))))
    return links


def _first(values: Iterable[str | None]) -> str | None:
    return next((v for v in values if v), None)


def _reference(links: Sequence[Link]) -> dict[str, object]:
    """The fields `build_person` derives, computed one field at a time."""
    ordered = sorted(links, key=_order)
    people = [p for _, p in ordered]
    child = next((link for link in ordered if link[1].role is Role.CHILD), None)
    deceased = next((link for link in ordered if link[1].role is Role.DECEASED), None)
    married = [link for link in ordered if link[1].role in (Role.BRIDE, Role.GROOM)]
    named = next((p for p in people if p.given_names or p.family_name), None)
    birth_date = (child[1].birth_date if child else None) or _first(p.birth_date for p in people)
    death_date = (deceased[1].death_date if deceased else None) or _first(
        p.death_date for p in people
    )
    marriage_dates = sorted({p.marriage_date for _, p in married if p.marriage_date}) or sorted(
        {p.marriage_date for p in people if p.marriage_date}
    )
    subject_times = [
        r.last_modified for r, p in ordered if p.role in SUBJECT_ROLES and r.last_modified
    ]
    all_times = [r.last_modified for r, _ in ordered if r.last_modified]
    seen: set[tuple[IdentifierType, str]] = set()
    for record, person in ordered:
        seen.update(person_identifiers(record, person))
    return {
        "given": named.given_names if named else (),
        "surname": named.family_name if named else None,
        "sex": _first(p.sex for p in people),
        "birth_date": birth_date,
        "death_date": death_date,
        "birth_place": child[0].place if child else None,
        "death_place": deceased[0].place if deceased else None,
        "dci_birth_place": _place(child[0].place if child else None),
        "marital": _first(
            p.marital_status or ("M" if p.role in (Role.BRIDE, Role.GROOM) else None)
            for p in people
        ),
        "marriage_dates": marriage_dates or None,
        "registration_date": min(subject_times) if subject_times else None,
        "last_updated": max(all_times) if all_times else None,
        "identifiers": tuple(sorted(seen, key=lambda item: (_TYPE_ORDER[item[0]], item[1]))),
        "is_deceased": deceased is not None or any(p.is_deceased for p in people),
        "phones": list(next((p.phone_numbers for p in people if p.phone_numbers), ())) or None,
        "emails": list(next((p.emails for p in people if p.emails), ())) or None,
        "parent1": _parent(child[0].mother) if child else None,
        "address": _address(ordered),
        "has_birth": child is not None,
        "has_death": deceased is not None,
        "has_marriage": bool(married),
    }


@settings(max_examples=300)
@given(_links())
def test_build_person_merges_as_the_reference(links: list[Link]) -> None:
    view = build_person("k", links)
    dci = view.dci
    expected = _reference(links)
    given_names = expected["given"]
    assert isinstance(given_names, tuple)
    actual = {
        "given": tuple(
            part
            for part in ((dci.name.given_name or ""), *(dci.name.second_name or "").split())
            if part
        )
        if dci.name
        else (),
        "surname": view.surname,
        "sex": dci.sex,
        "birth_date": dci.birth_date,
        "death_date": dci.death_date,
        "birth_place": view.birth_place,
        "death_place": view.death_place,
        "dci_birth_place": dci.birth_place,
        "marital": dci.marital_status,
        "marriage_dates": dci.marriage_date,
        "registration_date": view.registration_date,
        "last_updated": view.last_updated,
        "identifiers": view.identifiers,
        "is_deceased": view.is_deceased,
        "phones": dci.phone_number,
        "emails": dci.email,
        "parent1": dci.parent1_identifier,
        "address": dci.address,
        "has_birth": view.has_birth,
        "has_death": view.has_death,
        "has_marriage": view.has_marriage,
    }
    if dci.name is not None:  # names are split and joined on spaces: compare the parts
        expected["given"] = tuple(part for name in given_names for part in name.split())
    assert actual == expected
    registration = expected["registration_date"]
    assert dci.registration_date == (
        isoformat_z(registration) if isinstance(registration, dt.datetime) else None
    )
