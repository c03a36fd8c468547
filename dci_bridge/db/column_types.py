"""Column types shared by the tables and the migrations.

Migrations import these, so what a function here returns must never change once a migration
uses it: add a new function for a new type instead.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["c_text", "utc"]


def c_text(length: int) -> sa.types.TypeEngine[str]:
    """A VARCHAR that sorts by code point on every backend ("C" collation on PostgreSQL)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def utc() -> sa.DateTime:
    """A timezone-aware timestamp (stored as UTC text on SQLite)."""
    return sa.DateTime(timezone=True)
