"""Group the records OpenCRVS returned into DCI persons, as the embedded store would.

OpenCRVS keeps one record per vital event; DCI answers with persons (docs/decisions.md).
Links (record, person) are joined when they share a national id or a BRN (the store's
`match_identifiers`), and each group becomes one person through the store's own
`build_person`. The person key follows the store's rule for a population loaded in the
order OpenCRVS registered it: a person registered at birth is keyed by that birth record
(`brn:`), anyone else by their national id, else their BRN, else their first record.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from dci_bridge.protocol.codes import IdentifierType
from dci_bridge.records.mapped import ROLE_CHILD, MappedRecord
from dci_bridge.records.person import (
    Link,
    PersonView,
    build_person,
    linked_persons,
    match_identifiers,
    person_identifiers,
    person_key_for,
)


def _link_order(link: Link) -> tuple[str, str]:
    return link[0].record_id, link[1].role  # StrEnum: as text


def _key(links: list[Link]) -> str:
    ordered = sorted(links, key=_link_order) if len(links) > 1 else links
    for record, person in ordered:
        if person.role is ROLE_CHILD:
            return person_key_for(record, person)
    for record, person in ordered:
        if person.national_id:
            return person_key_for(record, person)
    for record, person in ordered:
        if person.birth_registration_number:
            return person_key_for(record, person)
    return person_key_for(*ordered[0])


def group_persons(
    records: Iterable[MappedRecord],
    holding: Collection[tuple[IdentifierType, str]] | None = None,
) -> list[PersonView]:
    """The persons named by these records (registered ones only), ordered by person key.

    With `holding`, only the persons holding one of those identifiers are built (building a
    person is most of the CPU of an answer; a look-up needs only the looked-up persons).
    """
    links: list[Link] = []
    seen: set[str] = set()
    for record in records:
        if record.is_registered and record.record_id not in seen:
            seen.add(record.record_id)
            links.extend((record, person) for person in linked_persons(record))
    parent = list(range(len(links)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[IdentifierType, str], int] = {}
    for i, (_, person) in enumerate(links):
        for ident in match_identifiers(person):
            if ident in owner:
                a, b = root(i), root(owner[ident])
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[ident] = i
    groups: dict[int, list[Link]] = {}
    for i, link in enumerate(links):
        groups.setdefault(root(i), []).append(link)
    chosen: Iterable[list[Link]] = groups.values()
    if holding is not None:
        wanted = set(holding)
        chosen = [
            group
            for group in chosen
            if any(
                ident in wanted
                for rec, person in group
                for ident in person_identifiers(rec, person)
            )
        ]
    views = [build_person(_key(group), group) for group in chosen]
    views.sort(key=lambda view: view.person_key)
    return views
