"""Bulk loading: many new records into an empty store, through the same mapping code.

`PopulationIndex` is the in-memory twin of `indexer.index_bundle`'s person matching (UIN,
then BRN, else a new key; merges when a record proves two keys are one person), so a bulk
load yields the same persons as indexing the bundles one by one in the same order. Rows are
inserted with executemany in batches, not one ORM object at a time.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from dci_bridge.protocol.codes import IdentifierType
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.indexer import (
    encode_bundle,
    identifier_rows,
    identifier_table,
    link_table,
    lock_writers,
    person_row,
    person_table,
    record_row,
    record_table,
)
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.mapped import MappedPerson, MappedRecord
from dci_bridge.records.person import (
    Link,
    PersonView,
    build_person,
    linked_persons,
    match_identifiers,
    person_identifiers,
    person_key_for,
)

BATCH_ROWS = 2_000


class PopulationIndex:
    """Persons of a growing set of new records, matched exactly as the store matches them."""

    def __init__(self) -> None:
        self._owners: dict[tuple[IdentifierType, str], set[str]] = {}
        self._links: dict[str, list[Link]] = {}
        self._rows: dict[str, list[tuple[str, str]]] = {}
        self.link_rows: dict[tuple[str, str], str] = {}
        """(record id, role) -> person key, for every record (registered or not)."""

    def add(self, record: MappedRecord) -> list[str]:
        """Link a new record's persons; returns their keys."""
        resolved: list[tuple[MappedPerson, str]] = []
        for person in linked_persons(record):
            key, merged = self._resolve(record, person)
            for other in merged:
                self._merge(other, key)
            resolved.append((person, key))
            self.link_rows[(record.record_id, person.role.value)] = key
            self._rows.setdefault(key, []).append((record.record_id, person.role.value))
        if record.is_registered:
            for person, key in resolved:
                self._links.setdefault(key, []).append((record, person))
                for ident in person_identifiers(record, person):
                    self._owners.setdefault(ident, set()).add(key)
        return [key for _, key in resolved]

    def _resolve(self, record: MappedRecord, person: MappedPerson) -> tuple[str, list[str]]:
        found: list[str] = []
        for ident in match_identifiers(person):
            found.extend(k for k in sorted(self._owners.get(ident, ())) if k not in found)
        if not found:
            return person_key_for(record, person), []
        return found[0], found[1:]

    def _merge(self, other: str, key: str) -> None:
        links = self._links.pop(other, [])
        for record, person in links:
            for ident in person_identifiers(record, person):
                owners = self._owners.get(ident)
                if owners is not None:
                    owners.discard(other)
                    owners.add(key)
        self._links.setdefault(key, []).extend(links)
        for row in self._rows.pop(other, []):
            self.link_rows[row] = key
            self._rows.setdefault(key, []).append(row)

    def persons(self) -> Iterator[PersonView]:
        """Every person with at least one registered record, by person key."""
        for key in sorted(self._links):
            links = self._links[key]
            if links:
                yield build_person(key, links)


def _flush(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(table.insert(), rows)
        rows.clear()


def bulk_load(
    conn: sa.Connection,
    bundles: Iterable[Mapping[str, Any]],
    *,
    now: dt.datetime,
    progress: Callable[[int], None] | None = None,
    locations: LocationIndex | None = None,
) -> int:
    """Insert new records and their persons into an empty store; returns the person count."""
    lock_writers(conn)
    index = PopulationIndex()
    pending: list[dict[str, Any]] = []
    loaded = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived dicts and no cycles: collection only costs time
    try:
        for bundle in bundles:
            record = map_bundle(bundle, locations=locations)
            data, digest = encode_bundle(bundle)
            pending.append(record_row(record, data, digest, now))
            index.add(record)
            loaded += 1
            if len(pending) >= BATCH_ROWS:
                _flush(conn, record_table, pending)
                if progress is not None:
                    progress(loaded)
        _flush(conn, record_table, pending)
        links = [
            {"record_id": rid, "role": role, "person_key": key}
            for (rid, role), key in index.link_rows.items()
        ]
        for start in range(0, len(links), BATCH_ROWS * 5):
            conn.execute(link_table.insert(), links[start : start + BATCH_ROWS * 5])
        people: list[dict[str, Any]] = []
        idents: list[dict[str, Any]] = []
        count = 0
        for view in index.persons():
            people.append(person_row(view))
            idents.extend(identifier_rows(view))
            count += 1
            if len(people) >= BATCH_ROWS:
                _flush(conn, person_table, people)
                _flush(conn, identifier_table, idents)
        _flush(conn, person_table, people)
        _flush(conn, identifier_table, idents)
    finally:
        if gc_was_enabled:
            gc.enable()
    if progress is not None:
        progress(loaded)
    return count
