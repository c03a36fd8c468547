"""Migrations upgrade one revision at a time from 0001 to head, keep existing data (a row
in every table of every earlier release), and each step can be undone and redone; on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dci_bridge.db.engine import (
    MIGRATIONS_DIR,
    alembic_head,
    begin_write,
    create_sync_engine,
    head_revision,
    migrate,
    read_revision,
)
from dci_bridge.db.tables import all_metadata


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _revisions() -> list[str]:
    """Every revision, oldest first (the chain must be linear: one head, one base)."""
    script = ScriptDirectory.from_config(_config())
    assert len(script.get_heads()) == 1, "migrations must form one chain"
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _current(engine: sa.Engine) -> str | None:
    """The revision as Alembic reads it, checked against the bridge's own one-query read."""
    with engine.connect() as conn:
        alembic_says = MigrationContext.configure(conn).get_current_revision()
        assert read_revision(conn) == alembic_says
        return alembic_says


def _to(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    with begin_write(engine) as conn:
        if down:
            command.downgrade(_config(conn), revision)
        else:
            command.upgrade(_config(conn), revision)


def test_the_chain_starts_at_0001_and_ends_at_head() -> None:
    revisions = _revisions()
    assert revisions[0] == "0001_embedded_store"
    assert revisions[-1] == head_revision() == alembic_head()
    assert [r[:4] for r in revisions] == [f"{n:04d}" for n in range(1, len(revisions) + 1)]


def test_upgrade_step_by_step_keeps_data_and_each_step_reverts(database_url: str) -> None:
    revisions = _revisions()
    engine = create_sync_engine(database_url, pool_size=1)
    try:
        previous = "base"
        for revision in revisions:
            _to(engine, revision)
            assert _current(engine) == revision
            _to(engine, previous, down=True)  # every step can be undone ...
            assert _current(engine) == (None if previous == "base" else previous)
            _to(engine, revision)  # ... and redone
            if revision == revisions[0]:  # data written by the first release
                with begin_write(engine) as conn:
                    conn.execute(
                        sa.text(
                            "INSERT INTO person_identifier (id_type, value, person_key)"
                            " VALUES ('BRN', 'B-0001', 'p-1')"
                        )
                    )
            previous = revision
        assert _current(engine) == head_revision()
        with engine.connect() as conn:
            kept = conn.execute(sa.text("SELECT person_key FROM person_identifier")).all()
            diff = compare_metadata(MigrationContext.configure(conn), all_metadata())
        assert kept == [("p-1",)]
        assert diff == []
    finally:
        engine.dispose()


def _dummy(column: dict[str, Any]) -> Any:
    """A value of the column's type (one row per table: unique constraints hold)."""
    try:
        kind = column["type"].python_type
    except NotImplementedError:
        kind = str
    if kind is bool:
        return True
    if kind is int:
        return 1
    if kind is float or kind is decimal.Decimal:
        return 1
    if kind is dt.datetime:
        return dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    if kind is dt.date:
        return dt.date(2026, 1, 2)
    if kind is bytes:
        return b"{}"
    if kind in (dict, list):
        return kind()
    return "x"


def test_every_release_upgrades_with_rows_in_every_table(database_url: str) -> None:
    """After each revision (a release's schema), one row goes into each table it created;
    the later migrations up to head must apply over those rows and keep all of them (a new
    NOT NULL column without a default, or a table rebuilt without its data, fails here)."""
    engine = create_sync_engine(database_url, pool_size=1)
    filled: dict[str, str] = {}  # table -> revision that created it
    try:
        for revision in _revisions():
            _to(engine, revision)
            inspector = sa.inspect(engine)
            new = [
                t for t in inspector.get_table_names() if t not in filled and t != "alembic_version"
            ]
            with begin_write(engine) as conn:
                for table in new:
                    columns = inspector.get_columns(table)
                    row = {c["name"]: _dummy(c) for c in columns}
                    target = sa.table(table, *(sa.column(c["name"]) for c in columns))
                    conn.execute(target.insert().values(**row))
                    filled[table] = revision
        assert _current(engine) == head_revision()
        with engine.connect() as conn:
            counts = {
                table: conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar()  # noqa: S608 (reflected names)
                for table in filled
            }
    finally:
        engine.dispose()
    lost = {table: filled[table] for table, count in counts.items() if count != 1}
    assert not lost, f"rows lost by an upgrade (table: revision that created it): {lost}"
    assert len(filled) > 10


def test_migrate_at_head_leaves_the_database_alone_and_a_behind_one_is_upgraded(
    database_url: str,
) -> None:
    """One revision behind, `migrate` upgrades to head; at head it does not even load Alembic
    (a fresh interpreter: this one has Alembic loaded by the test itself)."""
    engine = create_sync_engine(database_url, pool_size=1)
    try:
        _to(engine, _revisions()[-2])
        migrate(database_url)
        assert _current(engine) == head_revision()
    finally:
        engine.dispose()
    script = (
        "import sys\n"
        "from dci_bridge.db.engine import migrate\n"
        f"migrate({database_url!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'alembic', 'mako'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
