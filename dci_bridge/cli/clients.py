"""`dci-bridge clients add | list | show | update | disable | enable | rotate-secret`.

Registers the DCI clients (senders) that may call the bridge. `add` and `rotate-secret`
print the client secret once; only its hash is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from dci_bridge.cli._common import main
from dci_bridge.cli._common import settings_from_env as _settings


@contextmanager
def open_registry(database_url: str | None = None) -> Iterator[Any]:
    """The sender registry of the configured store (migrated first: it may be new)."""
    from dci_bridge.db.engine import migrate
    from dci_bridge.registry.senders import SenderRegistry

    settings = _settings(database__url=database_url)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    migrate(settings.database_url)
    registry = SenderRegistry.from_url(settings.database_url)
    try:
        yield registry
    finally:
        registry.close()


def read_jwks(value: str | None) -> str | None:
    """A JWKS given inline (starts with `{`), as `@file` or as a file path."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("{"):
        return text
    path = Path(text[1:] if text.startswith("@") else text)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None


@contextmanager
def _registry_errors() -> Iterator[None]:
    from dci_bridge.registry.senders import SenderRegistryError

    try:
        yield
    except SenderRegistryError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def clients() -> None:
    """Register and manage DCI clients (senders) allowed to call the bridge."""


_database = click.option("--database-url", help="Store URL (DCI_BRIDGE_DATABASE__URL).")


@clients.command("add")
@click.argument("sender_id")
@click.option("--name", help="Display name (default: the sender id).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Scope to grant (repeatable; default: registry.search, registry.subscribe, "
    "registry.txn-status).",
)
@click.option("--jwks", help="The client's public JWKS: JSON, @file or a file path.")
@click.option("--jwks-url", help="URL of the client's public JWKS (fetched and cached).")
@click.option(
    "--callback-prefix",
    "callback_prefixes",
    multiple=True,
    help="URL prefix callbacks to this client may go to (repeatable).",
)
@click.option(
    "--signature-scheme",
    type=click.Choice(["jws", "jws-detached", "dci-signature"]),
    default="jws",
    show_default=True,
    help="How the bridge signs responses and callbacks to this client.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_database
def add(
    sender_id: str,
    name: str | None,
    scopes: tuple[str, ...],
    jwks: str | None,
    jwks_url: str | None,
    callback_prefixes: tuple[str, ...],
    signature_scheme: str,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Register a client; prints its client secret ONCE (store it now)."""
    from dci_bridge.registry.senders import DEFAULT_SCOPES

    with open_registry(database_url) as registry, _registry_errors():
        sender, secret = registry.register(
            sender_id,
            name=name,
            scopes=scopes or DEFAULT_SCOPES,
            callback_prefixes=callback_prefixes,
            jwks=read_jwks(jwks),
            jwks_url=jwks_url,
            signature_scheme=signature_scheme,
        )
    if as_json:
        click.echo(json.dumps({**sender.public_view(), "client_secret": secret}, indent=2))
        return
    click.echo(f"registered client {sender.sender_id} ({' '.join(sender.scopes)})")
    click.echo(f"client_id:     {sender.sender_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only now; the bridge keeps only its hash.")
    if sender.jwks is None and sender.jwks_url is None:
        click.echo(
            "warning: no keys registered; this client's signed messages cannot be verified "
            "until you give --jwks or --jwks-url (dci-bridge clients update)",
            err=True,
        )


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_database
def list_clients(as_json: bool, database_url: str | None) -> None:
    """List registered clients."""
    with open_registry(database_url) as registry:
        senders = registry.list()
    if as_json:
        click.echo(json.dumps([sender.public_view() for sender in senders], indent=2))
        return
    if not senders:
        click.echo("no clients registered")
        return
    for sender in senders:
        state = "enabled " if sender.enabled else "disabled"
        keys = "jwks-url" if sender.jwks_url else ("jwks" if sender.jwks else "no-keys")
        click.echo(f"{sender.sender_id}\t{state}\t{keys}\t{' '.join(sender.scopes)}")


@clients.command("show")
@click.argument("sender_id")
@_database
def show(sender_id: str, database_url: str | None) -> None:
    """Show one client's registration as JSON (never its secret)."""
    with open_registry(database_url) as registry, _registry_errors():
        sender = registry.require(sender_id)
    click.echo(json.dumps(sender.public_view(), indent=2))


@clients.command("update")
@click.argument("sender_id")
@click.option("--name")
@click.option("--scope", "scopes", multiple=True, help="Replace the scopes (repeatable).")
@click.option("--jwks", help="Replace the keys with this JWKS: JSON, @file or a file path.")
@click.option("--jwks-url", help="Replace the keys with this JWKS URL.")
@click.option(
    "--callback-prefix",
    "callback_prefixes",
    multiple=True,
    help="Replace the callback URL prefixes (repeatable).",
)
@click.option("--signature-scheme", type=click.Choice(["jws", "jws-detached", "dci-signature"]))
@_database
def update(
    sender_id: str,
    name: str | None,
    scopes: tuple[str, ...],
    jwks: str | None,
    jwks_url: str | None,
    callback_prefixes: tuple[str, ...],
    signature_scheme: str | None,
    database_url: str | None,
) -> None:
    """Change a client's registration (options left out stay as they are)."""
    changes: dict[str, Any] = {
        "name": name,
        "scopes": scopes or None,
        "callback_prefixes": callback_prefixes or None,
        "signature_scheme": signature_scheme,
    }
    if jwks is not None:
        changes["jwks"] = read_jwks(jwks)
    if jwks_url is not None:
        changes["jwks_url"] = jwks_url
    with open_registry(database_url) as registry, _registry_errors():
        sender = registry.update(sender_id, **changes)
    click.echo(json.dumps(sender.public_view(), indent=2))


@clients.command("disable")
@click.argument("sender_id")
@_database
def disable(sender_id: str, database_url: str | None) -> None:
    """Refuse every further request from this client (running servers: within seconds)."""
    with open_registry(database_url) as registry, _registry_errors():
        registry.disable(sender_id)
    click.echo(f"client {sender_id} disabled")


@clients.command("enable")
@click.argument("sender_id")
@_database
def enable(sender_id: str, database_url: str | None) -> None:
    """Accept requests from a disabled client again."""
    with open_registry(database_url) as registry, _registry_errors():
        registry.enable(sender_id)
    click.echo(f"client {sender_id} enabled")


@clients.command("rotate-secret")
@click.argument("sender_id")
@_database
def rotate_secret(sender_id: str, database_url: str | None) -> None:
    """Replace the client secret; prints the new one ONCE. The old one stops at once."""
    with open_registry(database_url) as registry, _registry_errors():
        secret = registry.rotate_secret(sender_id)
    click.echo(f"client_id:     {sender_id}")
    click.echo(f"client_secret: {secret}")
