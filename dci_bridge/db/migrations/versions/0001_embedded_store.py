"""Embedded record store: fhir_record, person, person_identifier, person_record.

Revision ID: 0001_embedded_store
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dci_bridge.db.column_types import c_text, utc

revision = "0001_embedded_store"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_record",
        sa.Column("record_id", c_text(64), primary_key=True),
        sa.Column("event_type", c_text(16), nullable=False),
        sa.Column("tracking_id", c_text(64), nullable=True),
        sa.Column("registration_number", c_text(64), nullable=True),
        sa.Column("status", c_text(32), nullable=True),
        sa.Column("is_registered", sa.Boolean(), nullable=False),
        sa.Column("bundle_json", sa.LargeBinary(), nullable=False),
        sa.Column("content_hash", c_text(64), nullable=False),
        sa.Column("last_modified", utc(), nullable=True),
        sa.Column("updated_at", utc(), nullable=False),
    )
    for column in ("event_type", "tracking_id", "registration_number"):
        op.create_index(f"ix_fhir_record_{column}", "fhir_record", [column])

    op.create_table(
        "person",
        sa.Column("person_key", c_text(36), primary_key=True),
        sa.Column("given_name", c_text(200), nullable=True),
        sa.Column("given_name_lc", c_text(200), nullable=True),
        sa.Column("surname", c_text(200), nullable=True),
        sa.Column("surname_lc", c_text(200), nullable=True),
        sa.Column("sex", c_text(16), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("birth_facility_id", c_text(64), nullable=True),
        sa.Column("birth_district_id", c_text(64), nullable=True),
        sa.Column("birth_state_id", c_text(64), nullable=True),
        sa.Column("death_date", sa.Date(), nullable=True),
        sa.Column("death_year", sa.Integer(), nullable=True),
        sa.Column("death_facility_id", c_text(64), nullable=True),
        sa.Column("death_district_id", c_text(64), nullable=True),
        sa.Column("death_state_id", c_text(64), nullable=True),
        sa.Column("is_deceased", sa.Boolean(), nullable=False),
        sa.Column("marital_status", c_text(1), nullable=True),
        sa.Column("marriage_date", sa.Date(), nullable=True),
        sa.Column("registration_date", utc(), nullable=True),
        sa.Column("last_updated", utc(), nullable=True),
        sa.Column("has_birth", sa.Boolean(), nullable=False),
        sa.Column("has_death", sa.Boolean(), nullable=False),
        sa.Column("has_marriage", sa.Boolean(), nullable=False),
        sa.Column("dci_json", sa.LargeBinary(), nullable=False),
    )
    for column in (
        "given_name_lc",
        "surname_lc",
        "birth_date",
        "birth_year",
        "birth_facility_id",
        "birth_district_id",
        "birth_state_id",
        "death_date",
        "death_year",
        "death_facility_id",
        "death_district_id",
        "death_state_id",
        "registration_date",
        "last_updated",
    ):
        op.create_index(f"ix_person_{column}", "person", [column])

    op.create_table(
        "person_identifier",
        sa.Column("id_type", c_text(32), primary_key=True),
        sa.Column("value", c_text(128), primary_key=True),
        sa.Column("person_key", c_text(36), primary_key=True),
    )
    op.create_index("ix_person_identifier_person_key", "person_identifier", ["person_key"])

    op.create_table(
        "person_record",
        sa.Column("record_id", c_text(64), primary_key=True),
        sa.Column("role", c_text(16), primary_key=True),
        sa.Column("person_key", c_text(36), nullable=False),
    )
    op.create_index("ix_person_record_person_key", "person_record", ["person_key"])


def downgrade() -> None:
    op.drop_table("person_record")
    op.drop_table("person_identifier")
    op.drop_table("person")
    op.drop_table("fhir_record")
