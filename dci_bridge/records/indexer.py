"""Write path of the embedded store: store one FHIR record and re-index its persons.

`index_bundle` runs inside a caller's transaction on a SQLAlchemy `Connection`, so the
notify use case can store a webhook's record and its outbox jobs atomically (use
`dci_bridge.db.engine.begin_write`). Steps: map the bundle (a `MappingError` leaves the
database untouched), skip if the stored content hash is the same, store the bundle, resolve
each kept person of the record to a person key (by UIN, else BRN, else a new key; a record
that proves two keys are one person merges them), then rebuild every person whose links
changed from all of their registered records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa

from dci_bridge.db.tables import FhirRecord, Person, PersonIdentifier, PersonRecord
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.mapped import MappedRecord, RecordEvent
from dci_bridge.records.person import (
    PersonView,
    build_person,
    linked_persons,
    match_identifiers,
    person_key_for,
)

record_table: sa.Table = FhirRecord.__table__  # type: ignore[attr-defined]
person_table: sa.Table = Person.__table__  # type: ignore[attr-defined]
identifier_table: sa.Table = PersonIdentifier.__table__  # type: ignore[attr-defined]
link_table: sa.Table = PersonRecord.__table__  # type: ignore[attr-defined]

_SORTED = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What storing one bundle did. `person_keys`: persons created, changed or removed."""

    record_id: str
    event_type: RecordEvent
    is_registered: bool
    changed: bool
    person_keys: tuple[str, ...]


def encode_bundle(bundle: Mapping[str, Any]) -> tuple[bytes, str]:
    """The bundle's canonical bytes (keys sorted) and their SHA-256 hex digest."""
    data = _SORTED.encode(bundle)
    return data, hashlib.sha256(data).hexdigest()


def record_row(record: MappedRecord, data: bytes, digest: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "record_id": record.record_id,
        "event_type": record.event.value,
        "tracking_id": record.tracking_id,
        "registration_number": record.registration_number,
        "status": record.status,
        "is_registered": record.is_registered,
        "bundle_json": data,
        "content_hash": digest,
        "last_modified": record.last_modified,
        "updated_at": now,
    }


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def person_row(view: PersonView) -> dict[str, Any]:
    """The `person` table row of a person view."""
    birth, death = view.birth_place, view.death_place
    return {
        "person_key": view.person_key,
        "given_name": view.given_name,
        "given_name_lc": _lower(view.given_name),
        "surname": view.surname,
        "surname_lc": _lower(view.surname),
        "sex": _lower(view.sex),
        "birth_date": view.birth_date,
        "birth_year": view.birth_year,
        "birth_facility_id": _lower(birth.facility_id) if birth else None,
        "birth_district_id": _lower(birth.district_id) if birth else None,
        "birth_state_id": _lower(birth.state_id) if birth else None,
        "death_date": view.death_date,
        "death_year": view.death_year,
        "death_facility_id": _lower(death.facility_id) if death else None,
        "death_district_id": _lower(death.district_id) if death else None,
        "death_state_id": _lower(death.state_id) if death else None,
        "is_deceased": view.is_deceased,
        "marital_status": view.marital_status.upper() if view.marital_status else None,
        "marriage_date": view.marriage_date,
        "registration_date": view.registration_date,
        "last_updated": view.last_updated,
        "has_birth": view.has_birth,
        "has_death": view.has_death,
        "has_marriage": view.has_marriage,
        "dci_json": view.dci_json,
    }


def identifier_rows(view: PersonView) -> list[dict[str, Any]]:
    return [
        {"id_type": kind.value, "value": value, "person_key": view.person_key}
        for kind, value in view.identifiers
    ]


def index_bundle(
    conn: sa.Connection,
    bundle: Mapping[str, Any],
    *,
    now: dt.datetime,
    locations: LocationIndex | None = None,
) -> UpsertResult:
    """Store one record and re-index the persons it touches, in the caller's transaction."""
    record = map_bundle(bundle, locations=locations)
    data, digest = encode_bundle(bundle)
    lock_writers(conn)
    stored = conn.execute(
        sa.select(record_table.c.content_hash).where(record_table.c.record_id == record.record_id)
    ).scalar_one_or_none()
    if stored == digest:
        keys = conn.execute(
            sa.select(link_table.c.person_key).where(link_table.c.record_id == record.record_id)
        ).scalars()
        return UpsertResult(
            record.record_id, record.event, record.is_registered, False, tuple(sorted(set(keys)))
        )
    row = record_row(record, data, digest, now)
    if stored is None:
        conn.execute(record_table.insert(), row)
    else:
        conn.execute(record_table.update().where(record_table.c.record_id == record.record_id), row)
    old_keys = set(
        conn.execute(
            sa.select(link_table.c.person_key).where(link_table.c.record_id == record.record_id)
        ).scalars()
    )
    conn.execute(link_table.delete().where(link_table.c.record_id == record.record_id))
    touched = set(old_keys)
    links: list[dict[str, str]] = []
    for person in linked_persons(record):
        key, merged = _resolve(conn, record, person)
        for other in merged:
            conn.execute(
                link_table.update().where(link_table.c.person_key == other).values(person_key=key)
            )
        touched.update(merged)
        touched.add(key)
        links.append({"record_id": record.record_id, "role": person.role.value, "person_key": key})
    if links:
        conn.execute(link_table.insert(), links)
    cache = {record.record_id: record}
    for key in sorted(touched):
        rebuild_person(conn, key, cache=cache, locations=locations)
    return UpsertResult(
        record.record_id, record.event, record.is_registered, True, tuple(sorted(touched))
    )


WRITER_LOCK = 72611232
"""PostgreSQL advisory lock id held by every store write transaction."""


def lock_writers(conn: sa.Connection) -> None:
    """Serialise store writers for the rest of the transaction.

    Two records naming the same person (twins, a mother's second child) rebuild the same
    person rows; concurrent rebuilds would read stale links or collide on insert. SQLite
    writers are already serialised by `BEGIN IMMEDIATE`; PostgreSQL takes an advisory lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITER_LOCK})


def _resolve(conn: sa.Connection, record: MappedRecord, person: Any) -> tuple[str, list[str]]:
    """The person key for a record's person, and other keys proven to be the same person."""
    found: list[str] = []
    for kind, value in match_identifiers(person):
        rows = conn.execute(
            sa.select(identifier_table.c.person_key)
            .where(identifier_table.c.id_type == kind.value, identifier_table.c.value == value)
            .order_by(identifier_table.c.person_key)
        ).scalars()
        found.extend(k for k in rows if k not in found)
    if not found:
        return person_key_for(record, person), []
    return found[0], found[1:]


def rebuild_person(
    conn: sa.Connection,
    key: str,
    *,
    cache: dict[str, MappedRecord] | None = None,
    locations: LocationIndex | None = None,
) -> PersonView | None:
    """Recompute one person from their registered records; delete them if none is left."""
    cache = cache if cache is not None else {}
    rows = conn.execute(
        sa.select(link_table.c.role, record_table.c.record_id, record_table.c.bundle_json)
        .join(record_table, record_table.c.record_id == link_table.c.record_id)
        .where(link_table.c.person_key == key, record_table.c.is_registered.is_(True))
        .order_by(record_table.c.record_id, link_table.c.role)
    ).all()
    links = []
    for role, record_id, data in rows:
        record = cache.get(record_id)
        if record is None:
            record = map_bundle(_DECODER.decode(data), locations=locations)
            cache[record_id] = record
        person = next((p for p in record.persons if p.role.value == role), None)
        if person is not None:
            links.append((record, person))
    conn.execute(identifier_table.delete().where(identifier_table.c.person_key == key))
    conn.execute(person_table.delete().where(person_table.c.person_key == key))
    if not links:
        return None
    view = build_person(key, links)
    conn.execute(person_table.insert(), person_row(view))
    ids = identifier_rows(view)
    if ids:
        conn.execute(identifier_table.insert(), ids)
    return view


def delete_all(conn: sa.Connection, tables: Iterable[sa.Table] | None = None) -> None:
    """Empty the store's tables (tests and `seed --replace`)."""
    for table in tables or (link_table, identifier_table, person_table, record_table):
        conn.execute(table.delete())
