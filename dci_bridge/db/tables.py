"""The database schema: SQLModel tables on one shared metadata (`SQLModel.metadata`).

Alembic migrations in `migrations/versions/` create these tables; a test checks the two
agree. Conventions: times are timezone-aware UTC (`DateTime(timezone=True)`; on SQLite stored
as UTC text), text that is compared or sorted uses the byte-order "C" collation on
PostgreSQL so both databases order rows the same way, and large JSON documents are stored as
the exact bytes we received or encoded (`LargeBinary`).

Embedded record store (records/):
- `fhir_record`: one row per OpenCRVS record (Composition id), with its FHIR bundle.
- `person`: one row per CRVS person visible to DCI searches, with the indexed search
  columns and `dci_json`, the pre-encoded `CrvsPerson`.
- `person_identifier`: every identifier a person is found by (UIN, BRN, DRN, MRN,
  OPENCRVS_RECORD_ID, OPENCRVS_TRACKING_ID). A marriage's MRN belongs to both spouses, so the
  key is (id_type, value, person_key).
- `person_record`: which person each role of each record resolved to.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from dci_bridge.db.column_types import c_text, utc

__all__ = ["FhirRecord", "Person", "PersonIdentifier", "PersonRecord", "SQLModel", "metadata"]

metadata = SQLModel.metadata


class FhirRecord(SQLModel, table=True):
    """One OpenCRVS record as received: the source of every person row."""

    __tablename__ = "fhir_record"

    record_id: str = Field(sa_type=c_text(64), primary_key=True)
    event_type: str = Field(sa_type=c_text(16), index=True)
    tracking_id: str | None = Field(default=None, sa_type=c_text(64), index=True)
    registration_number: str | None = Field(default=None, sa_type=c_text(64), index=True)
    status: str | None = Field(default=None, sa_type=c_text(32))
    is_registered: bool = Field(default=False)
    bundle_json: bytes = Field(sa_type=sa.LargeBinary)
    content_hash: str = Field(sa_type=c_text(64))
    last_modified: dt.datetime | None = Field(default=None, sa_type=utc())
    updated_at: dt.datetime = Field(sa_type=utc())


class Person(SQLModel, table=True):
    """A CRVS person: search columns (text lower-cased in `*_lc`) and the DCI JSON."""

    __tablename__ = "person"

    person_key: str = Field(sa_type=c_text(36), primary_key=True)
    given_name: str | None = Field(default=None, sa_type=c_text(200))
    given_name_lc: str | None = Field(default=None, sa_type=c_text(200), index=True)
    surname: str | None = Field(default=None, sa_type=c_text(200))
    surname_lc: str | None = Field(default=None, sa_type=c_text(200), index=True)
    sex: str | None = Field(default=None, sa_type=c_text(16))
    birth_date: dt.date | None = Field(default=None, index=True)
    birth_year: int | None = Field(default=None, index=True)
    birth_facility_id: str | None = Field(default=None, sa_type=c_text(64), index=True)
    birth_district_id: str | None = Field(default=None, sa_type=c_text(64), index=True)
    birth_state_id: str | None = Field(default=None, sa_type=c_text(64), index=True)
    death_date: dt.date | None = Field(default=None, index=True)
    death_year: int | None = Field(default=None, index=True)
    death_facility_id: str | None = Field(default=None, sa_type=c_text(64), index=True)
    death_district_id: str | None = Field(default=None, sa_type=c_text(64), index=True)
    death_state_id: str | None = Field(default=None, sa_type=c_text(64), index=True)
    is_deceased: bool = Field(default=False)
    marital_status: str | None = Field(default=None, sa_type=c_text(1))
    marriage_date: dt.date | None = Field(default=None)
    registration_date: dt.datetime | None = Field(default=None, sa_type=utc(), index=True)
    last_updated: dt.datetime | None = Field(default=None, sa_type=utc(), index=True)
    has_birth: bool = Field(default=False)
    has_death: bool = Field(default=False)
    has_marriage: bool = Field(default=False)
    dci_json: bytes = Field(sa_type=sa.LargeBinary)


class PersonIdentifier(SQLModel, table=True):
    """(id_type, value) -> person. NID is stored as UIN (searching NID looks up UIN)."""

    __tablename__ = "person_identifier"

    id_type: str = Field(sa_type=c_text(32), primary_key=True)
    value: str = Field(sa_type=c_text(128), primary_key=True)
    person_key: str = Field(sa_type=c_text(36), primary_key=True, index=True)


class PersonRecord(SQLModel, table=True):
    """Which person each (record, role) resolved to; kept for unregistered records too."""

    __tablename__ = "person_record"

    record_id: str = Field(sa_type=c_text(64), primary_key=True)
    role: str = Field(sa_type=c_text(16), primary_key=True)
    person_key: str = Field(sa_type=c_text(36), index=True)


def all_metadata() -> sa.MetaData:
    """The shared metadata with every table module loaded.

    Tables of later features live in sibling modules named `tables_<area>.py`; importing them
    registers their tables on `metadata`.
    """
    import importlib
    import pkgutil

    import dci_bridge.db as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("tables_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return metadata
