"""`dci-bridge opencrvs subscribe | webhooks | unsubscribe`: the bridge's webhook at OpenCRVS.

An OpenCRVS v1.x sends registrations to the bridge only after the bridge's WEBHOOK (or
NATIONAL_ID) integration subscribed `<bridge>/opencrvs/webhooks` to the topics. `subscribe`
obtains the integration's system token (client credentials), lists the integration's
subscriptions and subscribes only the topics not yet present for that callback (OpenCRVS
would store duplicates and deliver every event twice). OpenCRVS verifies the callback with a
handshake GET, so the bridge must be serving (with the same sha_secret) while this runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from dci_bridge.cli._common import main
from dci_bridge.cli._common import settings_from_env as _settings
from dci_bridge.errors import UpstreamError
from dci_bridge.settings import Settings

T = TypeVar("T")
WEBHOOK_PATH = "/opencrvs/webhooks"


@main.group()
def opencrvs() -> None:
    """Manage the bridge's webhook subscriptions at an OpenCRVS v1.x."""


def _connection(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options naming the OpenCRVS services and the WEBHOOK integration (defaults: settings)."""
    options = [
        click.option("--auth-url", help="OpenCRVS auth service [DCI_BRIDGE_UPSTREAM__AUTH_URL]."),
        click.option(
            "--webhooks-url",
            help="OpenCRVS webhooks service [DCI_BRIDGE_UPSTREAM__WEBHOOKS_URL].",
        ),
        click.option(
            "--client-id",
            help="The WEBHOOK integration's client id [DCI_BRIDGE_OPENCRVS_WEBHOOK__CLIENT_ID].",
        ),
        click.option(
            "--client-secret",
            help="Its client secret [DCI_BRIDGE_OPENCRVS_WEBHOOK__CLIENT_SECRET].",
        ),
        click.option(
            "--legacy-auth",
            is_flag=True,
            default=None,
            help="OpenCRVS v1.2 and older: POST /authenticateSystemClient.",
        ),
        click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _overrides(**values: Any) -> dict[str, Any]:
    names = {
        "auth_url": "upstream__auth_url",
        "webhooks_url": "upstream__webhooks_url",
        "client_id": "opencrvs_webhook__client_id",
        "client_secret": "opencrvs_webhook__client_secret",
        "legacy_auth": "upstream__legacy_auth",
        "sha_secret": "opencrvs_webhook__sha_secret",
        "callback": "opencrvs_webhook__callback_url",
    }
    return {names[k]: v for k, v in values.items() if k in names and v is not None}


def _run(settings: Settings, timeout_s: float, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(registry)` with a token provider and HTTP session; errors become messages."""
    from dci_bridge.upstream.opencrvs.auth import TokenProvider
    from dci_bridge.upstream.opencrvs.http import UpstreamHttp
    from dci_bridge.upstream.opencrvs.webhook_registry import WebhookRegistry

    hook = settings.opencrvs_webhook
    if not hook.client_id or not hook.client_secret:
        raise click.UsageError(
            "the WEBHOOK integration's credentials are needed: --client-id and --client-secret"
            " (or DCI_BRIDGE_OPENCRVS_WEBHOOK__CLIENT_ID / __CLIENT_SECRET)"
        )

    async def go() -> T:
        http = UpstreamHttp(max_connections=2, timeout_s=timeout_s)
        tokens = TokenProvider(
            http,
            auth_url=settings.upstream.auth_url,
            client_id=hook.client_id,
            client_secret=hook.client_secret,
            legacy=settings.upstream.legacy_auth,
            timeout_s=timeout_s,
        )
        registry = WebhookRegistry(
            http, tokens, webhooks_url=settings.upstream.webhooks_url, timeout_s=timeout_s
        )
        try:
            return await work(registry)
        finally:
            await http.aclose()

    try:
        return asyncio.run(go())
    except UpstreamError as exc:
        raise click.ClickException(str(exc)) from None


def callback_url(settings: Settings) -> str:
    """Where OpenCRVS should send registrations: configured, or this bridge's listen address."""
    if settings.opencrvs_webhook.callback_url:
        return settings.opencrvs_webhook.callback_url
    host = settings.server.host
    if host in ("0.0.0.0", "::"):  # noqa: S104  (a listen-all address is not reachable as such)
        host = "127.0.0.1"
    return f"http://{host}:{settings.server.port}{WEBHOOK_PATH}"


@opencrvs.command()
@_connection
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Topic to subscribe (repeatable) [BIRTH_REGISTERED and DEATH_REGISTERED].",
)
@click.option(
    "--callback",
    help="The bridge's webhook URL as OpenCRVS reaches it"
    " [DCI_BRIDGE_OPENCRVS_WEBHOOK__CALLBACK_URL,"
    " else http://<server host:port>/opencrvs/webhooks].",
)
@click.option(
    "--sha-secret",
    help="The integration's sha_secret (the bridge verifies deliveries with it)"
    " [DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET].",
)
def subscribe(topics: tuple[str, ...], timeout_s: float, **options: Any) -> None:
    """Subscribe the bridge's webhook to OpenCRVS registrations (skips topics already there)."""
    from dci_bridge.upstream.opencrvs.webhook_registry import REGISTERED_TOPICS

    settings = _settings(**_overrides(**options))
    sha_secret = settings.opencrvs_webhook.sha_secret
    if not sha_secret:
        raise click.UsageError(
            "the integration's sha_secret is needed: --sha-secret"
            " (or DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET, which the bridge also needs)"
        )
    callback = callback_url(settings)
    wanted = tuple(t.strip().upper() for t in topics) or REGISTERED_TOPICS
    outcomes = _run(settings, timeout_s, lambda r: r.ensure(callback, wanted, sha_secret))
    click.echo(f"callback {callback}")
    for outcome in outcomes:
        click.echo(f"{outcome.topic}\t{outcome.status}\t{outcome.subscription_id or '-'}")


@opencrvs.command()
@_connection
def webhooks(timeout_s: float, **options: Any) -> None:
    """List the integration's webhook subscriptions at OpenCRVS."""
    settings = _settings(**_overrides(**options))
    found = _run(settings, timeout_s, lambda r: r.subscriptions())
    if not found:
        click.echo("no webhook subscriptions")
    for sub in found:
        click.echo(f"{sub.id}\t{sub.topic}\t{sub.callback}\t{sub.created_at or '-'}")


@opencrvs.command()
@_connection
@click.argument("subscription_id")
def unsubscribe(subscription_id: str, timeout_s: float, **options: Any) -> None:
    """Delete one webhook subscription (an id from `dci-bridge opencrvs webhooks`)."""
    settings = _settings(**_overrides(**options))
    _run(settings, timeout_s, lambda r: r.delete(subscription_id))
    click.echo(f"webhook subscription {subscription_id} deleted")
