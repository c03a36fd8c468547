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
from pathlib import Path
from typing import Any, TypeVar

import click

from dci_bridge.cli._common import demo_step, main
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


# --- the demo: OpenCRVS registration -> webhook -> bridge -> signed notify -------------------

DEMO_SIMULATOR_PERSONS = 300
"""Population of the simulator the embedded demo starts (only fired registrations matter)."""


def _demo_receiver(settings: Settings) -> str:
    """The demo subscriber's base URL: the first configured callback prefix, else `dci-bridge
    receiver`'s default address (which the async example allows as a callback prefix)."""
    from dci_bridge.cli.receiver import DEMO_RECEIVER

    prefixes = [p.strip() for p in settings.delivery.callback_prefixes.split(",") if p.strip()]
    base = prefixes[0] if prefixes else DEMO_RECEIVER
    return base if base.endswith("/") else base + "/"


def _subscribe_request(settings: Settings, receiver: str) -> Path:
    """A DCI subscribe request for every registered birth, notified to the demo receiver."""
    import json

    from dci_bridge.cli.security import DEMO_CLIENT_ID
    from dci_bridge.clock import SystemClock, isoformat_z

    now = isoformat_z(SystemClock().now())
    body = {
        "header": {
            "version": "1.0.0",
            "message_id": "demo-subscribe-1",
            "message_ts": now,
            "action": "subscribe",
            "sender_id": DEMO_CLIENT_ID,
            "sender_uri": receiver + "registry/notify",
            "total_count": 1,
        },
        "message": {
            "transaction_id": "demo-subscribe-txn-1",
            "subscribe_request": [
                {
                    "reference_id": "demo-subscribe-ref-1",
                    "timestamp": now,
                    "subscribe_criteria": {
                        "reg_type": "ns:org:RegistryType:Civil",
                        "reg_event_type": "spdci-common:RegistryEventType:LiveBirth",
                        "filter_type": "predicate",
                        "filter": [],
                        "notify_record_type": "spdci-extensions-dci:Person",
                    },
                }
            ],
        },
    }
    folder = Path(settings.data_dir).resolve() / "demo-requests"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "subscribe-births.json"
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def _register_when_serving(settings: Settings, base: str, sim: str, callback: str) -> None:
    """Once the bridge answers, subscribe its webhook at the simulator (in the background:
    OpenCRVS' handshake needs the bridge to be serving)."""
    import threading
    import time

    import httpx

    from dci_bridge.upstream.simulator.config import WEBHOOK_CLIENT

    demo = _demo_settings(
        settings,
        sim,
        client_id=WEBHOOK_CLIENT.client_id,
        client_secret=WEBHOOK_CLIENT.client_secret,
    )
    topics = ("BIRTH_REGISTERED", "DEATH_REGISTERED")

    def run() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        try:
            outcomes = _run(
                demo, 10.0, lambda r: r.ensure(callback, topics, WEBHOOK_CLIENT.sha_secret)
            )
        except click.ClickException as exc:
            click.echo(f"# notify demo: could not subscribe the webhook: {exc.message}")
            return
        done = ", ".join(f"{o.topic} {o.status}" for o in outcomes)
        click.echo(f"# notify demo: the simulated OpenCRVS sends registrations here ({done})")

    threading.Thread(target=run, name="demo-webhook-subscribe", daemon=True).start()


def _demo_settings(settings: Settings, sim: str, *, client_id: str, client_secret: str) -> Settings:
    """`settings` pointing the webhook registration at the simulator's WEBHOOK integration."""
    import msgspec

    return msgspec.structs.replace(
        settings,
        upstream=msgspec.structs.replace(
            settings.upstream, auth_url=sim, webhooks_url=sim, legacy_auth=False
        ),
        opencrvs_webhook=msgspec.structs.replace(
            settings.opencrvs_webhook, client_id=client_id, client_secret=client_secret
        ),
    )


@demo_step(70)
def demo_notify(settings: Settings) -> list[str]:
    """The notify loop: a simulated OpenCRVS, its webhook to the bridge, a DCI subscriber."""
    import os
    import shlex

    from dci_bridge.settings import ENV_PREFIX
    from dci_bridge.upstream.simulator.config import WEBHOOK_CLIENT

    if settings.upstream.source == "opencrvs" and settings.upstream.generation == "v1":
        sim = settings.upstream.webhooks_url.rstrip("/")  # the demo's simulator
    elif settings.upstream.source == "embedded":
        from dci_bridge.cli.simulator import start_simulator_process

        port = settings.server.port + 1
        try:
            start_simulator_process(port, DEMO_SIMULATOR_PERSONS)
        except click.ClickException:
            return [f"# (notify demo skipped: no OpenCRVS simulator could start on port {port})"]
        sim = f"http://127.0.0.1:{port}"
    else:
        return []
    sha_secret = settings.opencrvs_webhook.sha_secret
    if not sha_secret:  # the serving bridge reads the environment
        sha_secret = WEBHOOK_CLIENT.sha_secret
        os.environ[ENV_PREFIX + "OPENCRVS_WEBHOOK__SHA_SECRET"] = sha_secret
    elif sha_secret != WEBHOOK_CLIENT.sha_secret:
        return ["# (notify demo skipped: a sha_secret is configured, the simulator has its own)"]
    base = f"http://{settings.server.host}:{settings.server.port}"
    callback = f"{base}{WEBHOOK_PATH}"
    _register_when_serving(settings, base, sim, callback)
    receiver = _demo_receiver(settings)
    request = _subscribe_request(settings, receiver)
    key_file = Path(settings.data_dir).resolve() / "demo-client" / "signing-key.json"
    receiver_port = receiver.rstrip("/").rsplit(":", 1)[-1]
    q = shlex.quote
    return [
        f"# notifications: OpenCRVS (simulated on {sim}) -> {callback} -> DCI notify",
        "# 1. the bridge subscribes its webhook at the simulated OpenCRVS once it serves; by hand",
        "#    (it lists first, so topics already there are not subscribed twice):",
        f"dci-bridge opencrvs subscribe --auth-url {sim} --webhooks-url {sim}"
        f" --client-id {WEBHOOK_CLIENT.client_id} --client-secret {WEBHOOK_CLIENT.client_secret}"
        f" --sha-secret {sha_secret} --callback {callback}",
        f"# 2. a subscriber (as above): dci-bridge receiver --port {receiver_port}",
        "# 3. subscribe the demo client to every registered birth (with $TOKEN from step 1);",
        "#    the receiver gets on-subscribe with the subscription code:",
        f"dci-bridge sign-request --key {q(str(key_file))} --fresh {q(str(request))}"
        " > signed-subscribe.json",
        f"curl -s {base}/registry/subscribe -H 'Content-Type: application/json' "
        '-H "Authorization: Bearer $TOKEN" --data-binary @signed-subscribe.json',
        "# 4. register a birth in the simulated OpenCRVS: it calls the bridge's webhook, and the",
        "#    receiver prints the signed notify (action=notify ... signature valid):",
        f"curl -s -X POST {sim}/_sim/register -H 'Content-Type: application/json'"
        """ -d '{"event": "birth"}'""",
        "",
    ]
