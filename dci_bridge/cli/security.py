"""`dci-bridge keys ...`, `sign-request`, `verify-response` and the demo client.

- `keys show | rotate [--encryption] | client-keygen`: the bridge's own keys (the key
  directory under the data directory) and new key pairs for DCI clients.
- `sign-request`: sign (and optionally encrypt) a DCI request body as a client would.
- `verify-response`: check the signature of a bridge response against its JWKS (and
  decrypt an encrypted one).
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import msgspec

from dci_bridge.cli._common import demo_step, main
from dci_bridge.cli._common import settings_from_env as _settings
from dci_bridge.settings import Settings

DEMO_CLIENT_ID = "demo.sp.example.org"


def _keystore(settings: Settings) -> Any:
    from dci_bridge.crypto import KeyStore, KeyStoreError

    sec = settings.security
    try:
        return KeyStore(
            settings.keys_dir,
            algorithm=sec.algorithm,
            overlap_s=sec.key_overlap_s,
            signing_key=sec.signing_key or None,
            next_signing_key=sec.next_signing_key or None,
            encryption_key=sec.encryption_key or None,
        )
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def keys() -> None:
    """The bridge's signing and encryption keys; key pairs for clients."""


@keys.command("show")
@click.option("--jwks", "as_jwks", is_flag=True, help="Print the public JWKS document.")
def keys_show(as_jwks: bool) -> None:
    """Show the current, next and retired key ids (creates the keys on first use)."""
    store = _keystore(_settings())
    if as_jwks:
        click.echo(json.dumps(store.public_jwks(), indent=2))
        return
    click.echo(f"key directory: {store.directory}")
    click.echo(f"signing current: {store.current.kid} ({store.current.alg})")
    if store.next is not None:
        click.echo(f"signing next:    {store.next.kid} ({store.next.alg})")
    for key in store.retired:
        click.echo(f"signing retired: {key.kid} ({key.alg}), still verifies")
    click.echo(f"encryption:      {store.encryption_key.kid} ({store.encryption_key.alg})")


@keys.command("rotate")
@click.option("--encryption", is_flag=True, help="Rotate the encryption key instead.")
def keys_rotate(encryption: bool) -> None:
    """Promote the next key to current and publish a new next key.

    Running servers pick the change up within a second (DCI_BRIDGE_SECURITY__KEYS_REFRESH_S).
    The old key stays in the JWKS for the overlap period, so signatures made with it still
    verify (DCI_BRIDGE_SECURITY__KEY_OVERLAP_S)."""
    from dci_bridge.crypto import KeyStoreError

    store = _keystore(_settings())
    try:
        key = store.rotate_encryption() if encryption else store.rotate()
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from None
    kind = "encryption" if encryption else "signing"
    click.echo(f"rotated {kind} keys; current kid {key.kid}")


@keys.command("client-keygen")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True)
@click.option(
    "--alg", type=click.Choice(["EdDSA", "ES256", "RS256"]), default="EdDSA", show_default=True
)
@click.option("--encryption-out", type=click.Path(dir_okay=False), help="Also an RSA key.")
def client_keygen(out: str, alg: str, encryption_out: str | None) -> None:
    """Create a client key pair: writes the private JWK to --out (mode 0600) and prints the
    public JWKS to register with `dci-bridge clients add --jwks`."""
    from dci_bridge.clock import SystemClock
    from dci_bridge.crypto.jwk import generate_decryption_key, generate_signing_key

    clock = SystemClock()
    signing = generate_signing_key(alg, clock=clock)
    _write_private(Path(out), signing.private_jwk())
    public = [dict(signing.public.jwk)]
    if encryption_out:
        enc = generate_decryption_key("RSA-OAEP-256", clock=clock)
        _write_private(Path(encryption_out), enc.private_jwk())
        public.append(dict(enc.public.jwk))
    click.echo(json.dumps({"keys": public}, indent=2))


def _write_private(path: Path, jwk: dict[str, Any]) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(jwk, indent=2))


def _read_input(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source}: {exc.strerror}") from None


def _load_jwks(source: str) -> Any:
    """A KeySet from a JWKS URL (http/https) or a JWKS file."""
    from dci_bridge.crypto import KeyFormatError, KeySet

    if source.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(source, timeout=10, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot fetch {source}: {exc}") from None
        if response.status_code != 200:
            raise click.ClickException(f"{source} answered HTTP {response.status_code}")
        text: bytes = response.content
    else:
        text = _read_input(source)
    try:
        return KeySet.from_jwks(text)
    except KeyFormatError as exc:
        raise click.ClickException(f"{source}: {exc}") from None


def sign_body(
    envelope: dict[str, Any],
    key: Any,
    *,
    scheme: str = "jws",
    fresh: bool = False,
    encrypt_to: Any = None,
) -> bytes:
    """A signed envelope `{signature, header, message}` for a request (what clients send)."""
    from dci_bridge.clock import SystemClock, isoformat_z
    from dci_bridge.crypto import encrypt_message, sign_envelope

    header, message = dict(envelope["header"]), envelope.get("message")
    if fresh:
        header["message_id"] = str(uuid.uuid4())
        header["message_ts"] = isoformat_z(dt.datetime.now(dt.UTC))
    if encrypt_to is not None:
        message = encrypt_message(msgspec.json.encode(message), encrypt_to)
        header["is_msg_encrypted"] = True
    header_json, message_json = msgspec.json.encode(header), msgspec.json.encode(message)
    signature = sign_envelope(
        header_json,
        message_json,
        key,
        scheme,  # type: ignore[arg-type]
        sender_id=str(header.get("sender_id", "")),
        clock=SystemClock(),
    )
    return (
        b'{"signature":'
        + msgspec.json.encode(signature)
        + b',"header":'
        + header_json
        + b',"message":'
        + message_json
        + b"}"
    )


@main.command("sign-request")
@click.argument("body", default="-")
@click.option("--key", "key_file", required=True, help="The client's private key (JWK or PEM).")
@click.option(
    "--scheme",
    type=click.Choice(["jws", "jws-detached", "dci-signature"]),
    default="jws",
    show_default=True,
)
@click.option("--fresh", is_flag=True, help="Set a new message_id and message_ts = now.")
@click.option(
    "--encrypt-to",
    help="JWKS (URL or file) of the receiver: encrypt the message to its `use: enc` key.",
)
def sign_request(
    body: str, key_file: str, scheme: str, fresh: bool, encrypt_to: str | None
) -> None:
    """Sign a DCI request body (file or `-` for stdin) and print the signed envelope."""
    from dci_bridge.crypto import KeyFormatError, load_signing_key

    try:
        key = load_signing_key(_read_input(key_file))
    except KeyFormatError as exc:
        raise click.ClickException(f"{key_file}: {exc}") from None
    try:
        envelope = json.loads(_read_input(body))
    except ValueError:
        raise click.ClickException("the body is not JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("header"), dict):
        raise click.ClickException("the body is not a DCI envelope with a header")
    encrypt_key = None
    if encrypt_to:
        encrypt_key = _load_jwks(encrypt_to).encryption_key()
        if encrypt_key is None:
            raise click.ClickException(f"{encrypt_to} has no encryption key (use: enc)")
    signed = sign_body(envelope, key, scheme=scheme, fresh=fresh, encrypt_to=encrypt_key)
    click.echo(signed.decode())


@main.command("verify-response")
@click.argument("response", default="-")
@click.option("--jwks", "jwks_source", required=True, help="The bridge's JWKS: URL or file.")
@click.option("--decrypt-key", help="The client's private RSA key, for encrypted responses.")
def verify_response(response: str, jwks_source: str, decrypt_key: str | None) -> None:
    """Verify the signature of a DCI response (file or `-`) and print its message."""
    from dci_bridge.clock import SystemClock
    from dci_bridge.crypto import decrypt_message, load_decryption_key, verify_envelope
    from dci_bridge.errors import DciError
    from dci_bridge.protocol.codec import decode_raw_envelope

    data = _read_input(response)
    keyset = _load_jwks(jwks_source)
    try:
        raw = decode_raw_envelope(data)
        verified = verify_envelope(
            raw.signature, raw.header, raw.message, keyset, clock=SystemClock()
        )
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise click.ClickException(f"not a DCI envelope: {exc}") from None
    except DciError as exc:
        raise click.ClickException(f"signature NOT valid: {exc.code}: {exc}") from None
    click.echo(
        f"signature valid ({verified.scheme}, kid {verified.key_id}, {verified.algorithm})",
        err=True,
    )
    header = msgspec.json.decode(raw.header)
    message: Any = msgspec.json.decode(raw.message) if raw.message is not msgspec.UNSET else None
    if isinstance(header, dict) and header.get("is_msg_encrypted") and decrypt_key:
        try:
            key = load_decryption_key(_read_input(decrypt_key))
            message = msgspec.json.decode(decrypt_message(raw.message, {key.kid: key}))
        except (DciError, ValueError) as exc:
            raise click.ClickException(f"cannot decrypt: {exc}") from None
    click.echo(json.dumps({"header": header, "message": message}, indent=2))


@demo_step(10)
def demo_client(settings: Settings) -> list[str]:
    """Register (or refresh) the demo client and print how to call the bridge as it."""
    from dci_bridge.clock import SystemClock
    from dci_bridge.crypto import load_signing_key
    from dci_bridge.crypto.jwk import generate_signing_key
    from dci_bridge.registry.senders import SenderRegistry

    folder = Path(settings.data_dir).resolve() / "demo-client"
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "signing-key.json"
    if key_file.exists():
        key = load_signing_key(key_file.read_bytes())
    else:
        key = generate_signing_key("EdDSA", clock=SystemClock())
        _write_private(key_file, key.private_jwk())
    jwks = {"keys": [dict(key.public.jwk)]}
    registry = SenderRegistry.from_url(settings.database_url)
    try:
        if registry.get(DEMO_CLIENT_ID) is None:
            _, secret = registry.register(DEMO_CLIENT_ID, name="Demo client", jwks=jwks)
        else:
            registry.update(DEMO_CLIENT_ID, jwks=jwks, enabled=True)
            secret = registry.rotate_secret(DEMO_CLIENT_ID)
    finally:
        registry.close()
    _keystore(settings)  # the bridge's keys exist before the server prints anything
    base = f"http://{settings.server.host}:{settings.server.port}"
    request = Path(settings.data_dir).resolve() / "demo-requests" / "search-brn.json"
    ready: list[str] = []
    if request.exists():
        envelope = json.loads(request.read_text(encoding="utf-8"))
        signed = sign_body(envelope, key, fresh=True).decode()
        ready = [
            "# or this ready-made signed request (valid once, for 5 minutes):",
            f"curl -s {base}/registry/sync/search -H 'Content-Type: application/json' "
            f'-H "Authorization: Bearer $TOKEN" -d {shlex.quote(signed)}',
        ]
    q = shlex.quote
    return [
        "",
        f"# demo client {DEMO_CLIENT_ID} (key {key_file}), secret for this run:",
        f"export DCI_CLIENT_SECRET={q(secret)}",
        "# 1. a bearer token (client credentials, form-encoded):",
        f"TOKEN=$(curl -s {base}/oauth2/client/token -d grant_type=client_credentials "
        f"-d client_id={DEMO_CLIENT_ID} -d client_secret=$DCI_CLIENT_SECRET "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        "# 2. sign a request (fresh message_id and message_ts: each may be used once):",
        f"dci-bridge sign-request --key {q(str(key_file))} --fresh {q(str(request))} > signed.json",
        "# 3. send it:",
        f"curl -s {base}/registry/sync/search -H 'Content-Type: application/json' "
        '-H "Authorization: Bearer $TOKEN" --data-binary @signed.json > response.json',
        *ready,
        "# 4. verify the bridge's signature and read the answer:",
        f"dci-bridge verify-response --jwks {base}/.well-known/jwks.json response.json",
        "",
    ]
