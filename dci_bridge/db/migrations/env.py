"""Alembic environment.

Normally run by `dci_bridge.db.engine.migrate`, which hands in an open connection. For new
migrations from the command line:
`alembic -c dci_bridge/db/alembic.ini -x url=sqlite:///dev.db revision --autogenerate -m "..."`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from dci_bridge.db.engine import create_sync_engine
from dci_bridge.db.tables import all_metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=all_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:  # pragma: no cover - command line use
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with -x url=...")
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()
