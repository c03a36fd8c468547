"""`dci-bridge audit list | export`: read the audit trail (who was told what, and why)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import click

from dci_bridge.cli._common import main
from dci_bridge.cli._common import settings_from_env as _settings


def _when(value: str | None) -> dt.datetime | None:
    """An ISO date or date-time; without an offset it is UTC."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _identifier(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    id_type, sep, id_value = value.partition(":")
    if not sep or not id_type or not id_value:
        raise click.BadParameter("use TYPE:VALUE, for example UIN:1234567890")
    return id_type, id_value


def _filters(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--sender", help="Only this sender_id."),
        click.option("--action", help="Only this action (search, notify, ...)."),
        click.option("--since", help="From this UTC date or date-time (inclusive)."),
        click.option("--until", help="Before this UTC date or date-time (exclusive)."),
        click.option("--record-id", help="Only messages that returned this person id."),
        click.option("--subscription", help="Only notifications of this subscription code."),
        click.option(
            "--identifier",
            help="Only searches naming TYPE:VALUE (matched by its hash; never stored in clear).",
        ),
        click.option("--database-url", help="Store URL (DCI_BRIDGE_DATABASE__URL)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _rows(newest_first: bool, limit: int | None, **given: Any) -> Iterator[dict[str, Any]]:
    from dci_bridge.registry.audit import AuditFilter, read_events

    settings = _settings(database__url=given["database_url"])
    where = AuditFilter(
        sender_id=given["sender"],
        action=given["action"],
        since=_when(given["since"]),
        until=_when(given["until"]),
        record_id=given["record_id"],
        identifier=_identifier(given["identifier"]),
        subscription_code=given["subscription"],
        limit=limit,
        newest_first=newest_first,
    )
    return read_events(settings.database_url, where)


@main.group()
def audit() -> None:
    """Read the audit trail: every search and notification, with hashed queries."""


@audit.command("list")
@_filters
@click.option("--limit", type=int, default=50, show_default=True, help="Most rows shown.")
def list_events(limit: int, **given: Any) -> None:
    """Show the newest matching audit events, one line each."""
    click.echo(f"{'id':>6}  {'at':<24} {'action':<8} {'sender':<28} {'status':<6} records")
    for row in _rows(True, limit, **given):
        click.echo(
            f"{row['id']:>6}  {row['at']:<24} {row['action']:<8} {row['sender_id']:<28} "
            f"{row['status']:<6} {row['record_count']}"
        )


@audit.command("export")
@_filters
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "csv"]),
    default="json",
    show_default=True,
)
@click.option("--output", type=click.File("w"), default="-", help="File (default stdout).")
def export_events(fmt: str, output: TextIO, **given: Any) -> None:
    """Write every matching audit event, oldest first: a JSON array, JSON lines or CSV."""
    from dci_bridge.registry.audit import COLUMNS

    rows = _rows(False, None, **given)
    if fmt in {"json", "jsonl"}:
        separator = "\n" if fmt == "jsonl" else ",\n"
        output.write("" if fmt == "jsonl" else "[\n")
        for index, row in enumerate(rows):
            if index and fmt == "json":
                output.write(separator)
            output.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            if fmt == "jsonl":
                output.write("\n")
        output.write("" if fmt == "jsonl" else "\n]\n")
        return
    writer = csv.DictWriter(output, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row["record_ids"] = " ".join(row["record_ids"])
        row["detail"] = json.dumps(row["detail"], ensure_ascii=False, separators=(",", ":"))
        writer.writerow(row)
    if output is not sys.stdout:
        output.flush()
