"""`dci-bridge deliveries list | show | replay | purge-dead`: the outbox, for operators.

Every callback and notification the bridge sends is an outbox job with its attempts
(time, HTTP status, latency, error). `replay` makes a job due again (same message id;
receivers de-duplicate) and re-enables an endpoint disabled by 410 Gone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa

from dci_bridge.cli._common import main
from dci_bridge.cli._common import settings_from_env as _settings
from dci_bridge.clock import SystemClock
from dci_bridge.delivery import outbox
from dci_bridge.delivery.views import detail_view, job_view


@contextmanager
def _engine(database_url: str | None) -> Iterator[sa.Engine]:
    from dci_bridge.db.engine import create_sync_engine, migrate

    settings = _settings(database__url=database_url)
    migrate(settings.database_url)
    engine = create_sync_engine(settings.database_url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


_DB_OPTION = click.option("--database-url", help="Store URL (default: the configured one).")


@main.group()
def deliveries() -> None:
    """Inspect and replay callback and notification deliveries (the outbox)."""


@deliveries.command("list")
@click.option("--state", type=click.Choice(outbox.STATES), help="Only this state.")
@click.option("--kind", help="Only this kind (on-search, txn-on-status, notify, search ...).")
@click.option("--sender", "sender_id", help="Only callbacks to this sender.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@_DB_OPTION
def list_command(
    state: str | None,
    kind: str | None,
    sender_id: str | None,
    limit: int,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Newest deliveries first, with their state and attempts."""
    with _engine(database_url) as engine, engine.connect() as conn:
        jobs = outbox.list_jobs(conn, state=state, kind=kind, sender_id=sender_id, limit=limit)
        counts = outbox.count_by_state(conn)
    if as_json:
        click.echo(json.dumps({"counts": counts, "jobs": [job_view(j) for j in jobs]}, indent=2))
        return
    click.echo("  ".join(f"{name}: {counts.get(name, 0)}" for name in outbox.STATES))
    for job in jobs:
        status = job.last_status if job.last_status is not None else "-"
        click.echo(
            f"{job.job_id}  {job.state:<7}  {job.kind:<13}  attempts={job.attempts}  "
            f"last={status}  {job.sender_id or '-'}  {job.message_id or '-'}"
        )


@deliveries.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@_DB_OPTION
def show(job_id: str, as_json: bool, database_url: str | None) -> None:
    """One delivery and every attempt of it."""
    with _engine(database_url) as engine, engine.connect() as conn:
        found = outbox.get_job(conn, job_id)
    if found is None:
        raise click.ClickException(f"no delivery {job_id}")
    view = detail_view(found)
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    for key, value in view.items():
        if key != "attempt_log":
            click.echo(f"{key}: {value if value is not None else '-'}")
    for attempt in view["attempt_log"]:
        click.echo(
            f"  #{attempt['number']} {attempt['started_at']} {attempt['outcome']} "
            f"status={attempt['http_status'] or '-'} {attempt['latency_ms']:.1f} ms "
            f"{attempt['error'] or ''}".rstrip()
        )


@deliveries.command()
@click.argument("job_ids", nargs=-1, required=True)
@_DB_OPTION
def replay(job_ids: tuple[str, ...], database_url: str | None) -> None:
    """Send deliveries again (dead or done ones too), with a fresh attempt budget."""
    from dci_bridge.db.engine import begin_write

    missing = []
    with _engine(database_url) as engine, begin_write(engine) as conn:
        for job_id in job_ids:
            if not outbox.replay(conn, job_id, now=SystemClock().now()):
                missing.append(job_id)
    for job_id in job_ids:
        if job_id not in missing:
            click.echo(f"{job_id}: due again")
    if missing:
        raise click.ClickException(f"no such delivery: {', '.join(missing)}")


@deliveries.command("purge-dead")
@click.option(
    "--older-than-days", type=click.FloatRange(min=0), help="Only those dead for this long."
)
@_DB_OPTION
def purge_dead(older_than_days: float | None, database_url: str | None) -> None:
    """Delete dead deliveries and their attempts."""
    from dci_bridge.db.engine import begin_write

    older = None
    if older_than_days is not None:
        older = SystemClock().now() - dt.timedelta(days=older_than_days)
    with _engine(database_url) as engine, begin_write(engine) as conn:
        count = outbox.purge_dead(conn, older_than=older)
    click.echo(f"purged {count} dead deliveries")
