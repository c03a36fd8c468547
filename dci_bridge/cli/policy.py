"""`dci-bridge policy set | show | list | clear` (also `dci-bridge clients policy ...`).

A sender's disclosure policy says what it may search and learn (registry/policy.py; example
files in docs/policies/). A sender without a policy is refused. The group is registered on
its own and, when the sender registry's `clients` group exists, under it as well.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from dci_bridge.cli._common import demo_step, main
from dci_bridge.cli._common import settings_from_env as _settings
from dci_bridge.settings import Settings

DEMO_SENDER = "demo.sp.example.org"
"""The sender id of the demo's example requests."""

DEMO_POLICY: dict[str, Any] = {
    "description": (
        "Demo social protection client: identifier look-ups (UIN, BRN, DRN, MRN); names, sex,"
        " vital event dates and parents' identifiers; no addresses, contacts or places"
    ),
    "registry_types": ["Civil"],
    "event_types": ["*"],
    "query_types": ["idtype-value"],
    "identifier_types": ["UIN", "BRN", "DRN", "MRN"],
    "search_attributes": [],
    "fields": [
        "identifier[UIN]",
        "identifier[BRN]",
        "identifier[DRN]",
        "identifier[MRN]",
        "name",
        "sex",
        "birth_date",
        "death_date",
        "marital_status",
        "marriage_date",
        "parent1_identifier",
        "parent2_identifier",
    ],
    "answers": ["is_deceased"],
    "max_page_size": 10,
    "requests_per_minute": 600,
    "consent": {"require_consent": False, "require_authorize": False, "purposes": []},
}
"""The demo client's policy (also docs/policies/demo.json)."""


def _presets() -> dict[str, Any]:
    from dci_bridge.registry.policy import UNRESTRICTED, encode_policy

    return {"unrestricted": json.loads(encode_policy(UNRESTRICTED)), "demo": DEMO_POLICY}


@contextmanager
def open_policies(database_url: str | None = None) -> Iterator[Any]:
    """The policy store of the configured database (migrated first: it may be new)."""
    from dci_bridge.db.engine import migrate
    from dci_bridge.registry.policy import PolicyError
    from dci_bridge.registry.policy_store import PolicyStore

    settings = _settings(database__url=database_url)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    migrate(settings.database_url)
    store = PolicyStore.from_url(settings.database_url)
    try:
        yield store
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


@click.group("policy")
def policy() -> None:
    """Disclosure policies: what each sender may search and learn (none: refused)."""


_database = click.option("--database-url", help="Store URL (DCI_BRIDGE_DATABASE__URL).")


@policy.command("set")
@click.argument("sender_id")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--preset",
    type=click.Choice(["unrestricted", "demo"]),
    help="A built-in policy instead of a file (unrestricted: the whole record).",
)
@_database
def set_policy(
    sender_id: str, file: Path | None, preset: str | None, database_url: str | None
) -> None:
    """Set SENDER_ID's policy from a JSON FILE (see docs/policies/) or a --preset."""
    from dci_bridge.registry.policy import PolicyError, parse_policy

    if (file is None) == (preset is None):
        raise click.UsageError("give a policy FILE or --preset, not both")
    try:
        if file is not None:
            try:
                document: Any = file.read_bytes()
            except OSError as exc:
                raise click.BadParameter(f"cannot read {file}: {exc.strerror}") from None
        else:
            document = _presets()[str(preset)]
        parsed = parse_policy(document)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    with open_policies(database_url) as store:
        stored = store.set(sender_id, parsed)
    click.echo(f"policy of {sender_id} set (revision {stored.revision})")


@policy.command("show")
@click.argument("sender_id")
@click.option("--json", "as_json", is_flag=True, help="Print the policy document as JSON.")
@_database
def show_policy(sender_id: str, as_json: bool, database_url: str | None) -> None:
    """Print SENDER_ID's policy."""
    from dci_bridge.registry.policy import describe, encode_policy

    with open_policies(database_url) as store:
        stored = store.get(sender_id)
    if stored is None:
        raise click.ClickException(f"{sender_id} has no policy: it is refused")
    if as_json:
        click.echo(json.dumps(json.loads(encode_policy(stored.policy)), indent=2))
        return
    click.echo(f"{sender_id} (revision {stored.revision}, {stored.updated_at.isoformat()})")
    for line in describe(stored.policy):
        click.echo(f"  {line}")


@policy.command("list")
@_database
def list_policies(database_url: str | None) -> None:
    """List the senders that have a policy."""
    with open_policies(database_url) as store:
        stored = store.list()
    if not stored:
        click.echo("no policies: every sender is refused")
    for entry in stored:
        click.echo(f"{entry.sender_id}\trevision {entry.revision}\t{entry.policy.description}")


@policy.command("clear")
@click.argument("sender_id")
@_database
def clear_policy(sender_id: str, database_url: str | None) -> None:
    """Remove SENDER_ID's policy: it is refused from then on."""
    with open_policies(database_url) as store:
        removed = store.clear(sender_id)
    if not removed:
        raise click.ClickException(f"{sender_id} has no policy")
    click.echo(f"policy of {sender_id} removed: it is refused from now on")


main.add_command(policy)
try:  # `dci-bridge clients policy ...` once the sender registry's group exists
    _clients_group = getattr(importlib.import_module("dci_bridge.cli.clients"), "clients", None)
except ImportError:
    _clients_group = None
if isinstance(_clients_group, click.Group):
    _clients_group.add_command(policy)


@demo_step(60)
def demo_policy(settings: Settings) -> list[str]:
    """Give the demo client a clear example policy."""
    from dci_bridge.registry.policy import parse_policy
    from dci_bridge.registry.policy_store import PolicyStore

    store = PolicyStore.from_url(settings.database_url)
    try:
        store.set(DEMO_SENDER, parse_policy(DEMO_POLICY))
    finally:
        store.close()
    return [
        f"# disclosure policy of {DEMO_SENDER}: identifier look-ups; names, sex, vital event",
        "#   dates, parents' identifiers and is_deceased; no addresses, contacts or places",
        f"#   (dci-bridge policy show {DEMO_SENDER}; examples in docs/policies/)",
        "",
    ]
