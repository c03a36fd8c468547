"""`dci-bridge receiver`: a loopback callback receiver for trying the async flow.

It accepts POSTs on any path (`/registry/on-search`, `/registry/txn/on-status`,
`/registry/notify` ...), checks each envelope's signature against the bridge's JWKS (fetched
from `--jwks-url`, refetched on an unknown key id, or read from the local key directory),
prints one line per callback and answers with an ACK (or `--status` to try retries).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import httpx
import msgspec

from dci_bridge.cli._common import demo_step, main
from dci_bridge.cli._common import settings_from_env as _settings
from dci_bridge.clock import SystemClock, isoformat_z
from dci_bridge.crypto import KeySet, KeyStore, signature_key_id, verify_envelope
from dci_bridge.errors import DciError
from dci_bridge.ops.asgi import read_body
from dci_bridge.protocol.codec import decode_raw_envelope
from dci_bridge.settings import ENV_PREFIX, Settings

DEMO_RECEIVER = "http://127.0.0.1:9000/"


class KeySource:
    """The bridge's public keys: from a JWKS URL (refetched on an unknown kid) or a key
    directory."""

    def __init__(self, jwks_url: str | None, keys_dir: Path | None) -> None:
        self.jwks_url = jwks_url
        self.keys_dir = keys_dir
        self._keys: KeySet | None = None

    def keys(self, kid: str | None) -> KeySet | None:
        if self._keys is not None and (kid is None or kid in self._kids(self._keys)):
            return self._keys
        self._keys = self._load()
        return self._keys

    @staticmethod
    def _kids(keys: KeySet) -> set[str]:
        return {key.kid for key in keys.keys}

    def _load(self) -> KeySet | None:
        if self.jwks_url:
            try:
                response = httpx.get(self.jwks_url, timeout=5.0)
                response.raise_for_status()
                return KeySet.from_jwks(response.content)
            except (httpx.HTTPError, DciError, ValueError):
                pass
        if self.keys_dir is not None and (self.keys_dir / "signing-current.json").exists():
            return KeyStore(self.keys_dir).verification_keys()
        return None


def describe(path: str, body: bytes, source: KeySource) -> tuple[str, dict[str, Any]]:
    """One line about a received callback, and the decoded body (empty if not JSON)."""
    try:
        decoded = msgspec.json.decode(body)
        raw = decode_raw_envelope(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return f"POST {path}  not a DCI envelope ({len(body)} bytes)", {}
    header = decoded.get("header") or {}
    message = decoded.get("message") or {}
    keys = source.keys(signature_key_id(raw.signature))
    if keys is None:
        verdict = "signature not checked (no bridge keys)"
    else:
        try:
            verify_envelope(raw.signature, raw.header, raw.message, keys, clock=SystemClock())
            verdict = "signature valid"
        except DciError as exc:
            verdict = f"SIGNATURE INVALID ({exc.code})"
    items = (
        next((value for key, value in message.items() if isinstance(value, list)), None)
        if isinstance(message, dict)
        else None
    )
    fields = [
        f"POST {path}",
        f"action={header.get('action')}",
        f"status={header.get('status')}",
        f"message_id={header.get('message_id')}",
        f"transaction_id={message.get('transaction_id') if isinstance(message, dict) else None}",
        f"correlation_id={message.get('correlation_id') if isinstance(message, dict) else None}",
    ]
    if header.get("total_count") is not None:
        fields.append(f"completed={header.get('completed_count')}/{header.get('total_count')}")
    if isinstance(items, list):
        fields.append(f"items={len(items)}")
    fields.append(verdict)
    return "  ".join(fields), decoded


class ReceiverApp:
    """The ASGI app: records, prints, answers."""

    def __init__(self, source: KeySource, *, status: int, show_body: bool) -> None:
        self.source = source
        self.status = status
        self.show_body = show_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                kind = event["type"].split(".")[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        body = await read_body(receive, limit=16 * 1024 * 1024)
        line, decoded = describe(scope["path"], body, self.source)
        click.echo(line)
        if self.show_body and decoded:
            click.echo(json.dumps(decoded, indent=2, ensure_ascii=False))
        sys.stdout.flush()
        message = decoded.get("message") if isinstance(decoded, dict) else None
        correlation = message.get("correlation_id") if isinstance(message, dict) else None
        ack = {
            "message": {
                "ack_status": "ACK",
                "timestamp": isoformat_z(SystemClock().now()),
                "correlation_id": correlation or str(uuid.uuid4()),
            }
        }
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(ack).encode()})


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True)
@click.option(
    "--jwks-url",
    default="http://127.0.0.1:8000/.well-known/jwks.json",
    show_default=True,
    help="The bridge's JWKS, to check callback signatures.",
)
@click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The bridge's key directory, when its JWKS cannot be fetched (default: <data dir>/keys).",
)
@click.option(
    "--status",
    type=click.IntRange(100, 599),
    default=200,
    show_default=True,
    help="HTTP status to answer with (e.g. 503 to watch the bridge retry).",
)
@click.option("--body", "show_body", is_flag=True, help="Also print each callback's JSON.")
def receiver(
    host: str, port: int, jwks_url: str, keys_dir: Path | None, status: int, show_body: bool
) -> None:
    """Receive DCI callbacks on loopback, print them and check their signatures."""
    import uvicorn

    if keys_dir is None:
        keys_dir = Path(_settings().data_dir) / "keys"
    app = ReceiverApp(KeySource(jwks_url or None, keys_dir), status=status, show_body=show_body)
    click.echo(f"receiving callbacks on http://{host}:{port}/ (any path)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")


@demo_step(50)
def async_demo(settings: Settings) -> list[str]:
    """Let the demo call back a local `dci-bridge receiver` and show the async flow."""
    if not settings.delivery.callback_prefixes:
        # the demo server reads the environment: allow callbacks to the local receiver
        os.environ[ENV_PREFIX + "DELIVERY__CALLBACK_PREFIXES"] = DEMO_RECEIVER
        os.environ[ENV_PREFIX + "DELIVERY__ALLOW_PRIVATE_ADDRESSES"] = "true"
    base = f"http://{settings.server.host}:{settings.server.port}"
    requests = Path(settings.data_dir).resolve() / "demo-requests"
    sync_request = requests / "search-brn.json"
    if not sync_request.exists():
        return []
    # the sync BRN look-up, sent asynchronously: same query, a callback address added
    body = json.loads(sync_request.read_text(encoding="utf-8"))
    body["header"].update(
        message_id="demo-async-1",
        message_ts=isoformat_z(SystemClock().now()),
        sender_uri=DEMO_RECEIVER + "registry/on-search",
    )
    body["message"]["transaction_id"] = "demo-async-txn-1"
    async_request = requests / "async-search-brn.json"
    async_request.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    key_file = Path(settings.data_dir).resolve() / "demo-client" / "signing-key.json"
    q = shlex.quote
    return [
        "# async search: start a callback receiver in another terminal",
        "dci-bridge receiver --port 9000",
        "# then sign and send (with $TOKEN from step 1); the Ack comes at once,",
        "# the signed on-search arrives at the receiver",
        f"dci-bridge sign-request --key {q(str(key_file))} --fresh {q(str(async_request))}"
        " > signed-async.json",
        f"curl -s {base}/registry/search -H 'Content-Type: application/json' "
        '-H "Authorization: Bearer $TOKEN" --data-binary @signed-async.json',
        "# every callback and its attempts: dci-bridge deliveries list",
        "",
    ]
