"""The sender registry: the DCI clients allowed to call the bridge.

A sender's `sender_id` is also its OAuth2 `client_id`. The operator registers it once
(`dci-bridge clients add`) with its public keys (an inline JWKS or a JWKS URL), the callback
URL prefixes its callbacks may go to, its scopes and the signature scheme we answer it with;
the client secret is generated, shown once and stored as a salted hash.

The request path looks senders up through `SenderRegistry.lookup` (async, cached for
`cache_ttl_s`, unknown ids too, so a flood of unknown ids costs no database work);
management (`register`, `disable`, `rotate_secret`...) is synchronous and invalidates this
process's cache. Another process (the CLI) changing a sender is seen after at most
`cache_ttl_s`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import urlsplit

import anyio.to_thread
import msgspec
import sqlalchemy as sa

from dci_bridge.crypto import KeyFormatError, KeySet, generate_secret, hash_secret, verify_secret
from dci_bridge.crypto.tokens import SCOPE_SEARCH, SCOPE_SUBSCRIBE, SCOPE_TXN_STATUS, SCOPES
from dci_bridge.db.engine import begin_write
from dci_bridge.db.tables_security import Sender as SenderRow
from dci_bridge.registry._cache import CachedStore

__all__ = [
    "DEFAULT_SCOPES",
    "SIGNATURE_SCHEMES",
    "Sender",
    "SenderRegistry",
    "SenderRegistryError",
    "allows_callback",
]

DEFAULT_SCOPES: Final[tuple[str, ...]] = (SCOPE_SEARCH, SCOPE_SUBSCRIBE, SCOPE_TXN_STATUS)
"""Scopes of a client registered without `--scope`: every registry operation, no admin."""
SIGNATURE_SCHEMES: Final[tuple[str, ...]] = ("jws", "jws-detached", "dci-signature")
"""How the bridge signs what it sends to a sender (responses, callbacks)."""
MAX_SENDER_ID: Final = 99
_SENDER_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]*")
_dummy_hash: list[str] = []  # equalises timing for unknown ids; computed on first use

_TABLE = SenderRow.__table__  # type: ignore[attr-defined]


class SenderRegistryError(ValueError):
    """A registration that cannot be accepted, or an unknown sender id (management calls)."""


@dataclass(frozen=True, slots=True)
class Sender:
    """A registered DCI client, as the request path and the delivery worker see it."""

    sender_id: str
    name: str
    scopes: tuple[str, ...]
    callback_prefixes: tuple[str, ...]
    jwks: str | None
    """The inline JWKS (JSON text), or None when the keys come from `jwks_url`."""
    jwks_url: str | None
    signature_scheme: str
    """`jws` (default), `jws-detached` or `dci-signature`: how we sign what we send it."""
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    secret_hash: str = field(repr=False)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def public_view(self) -> dict[str, Any]:
        """Everything but the secret hash, JSON-ready (`clients show`)."""
        return {
            "sender_id": self.sender_id,
            "name": self.name,
            "enabled": self.enabled,
            "scopes": list(self.scopes),
            "callback_prefixes": list(self.callback_prefixes),
            "jwks_url": self.jwks_url,
            "jwks": msgspec.json.decode(self.jwks) if self.jwks else None,
            "signature_scheme": self.signature_scheme,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def allows_callback(sender: Sender, url: str) -> bool:
    """Whether `url` is under one of the sender's registered callback URL prefixes.

    Scheme and host compare without case, the port must be the same (default ports made
    explicit), and the path must continue the prefix's path at a `/` boundary: prefix
    `https://sp.example.org/dci` allows `https://sp.example.org/dci/on-search` but neither
    `https://sp.example.org/dci-evil` nor `https://sp.example.org.evil.net/dci`. URLs with
    user info or a fragment are never allowed. This is the registration check only; the
    delivery worker still checks the resolved address (DESIGN.md, "Callback safety").
    """
    target = _split_url(url)
    if target is None:
        return False
    return any(_under(target, prefix) for prefix in sender.callback_prefixes)


def _split_url(url: str) -> tuple[str, str, int, str] | None:
    if not isinstance(url, str) or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname or parts.fragment:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    if "\\" in url:
        return None
    port = port or (443 if scheme == "https" else 80)
    return scheme, parts.hostname.lower().rstrip("."), port, parts.path or "/"


def _under(target: tuple[str, str, int, str], prefix: str) -> bool:
    base = _split_url(prefix)
    if base is None or target[:3] != base[:3]:
        return False
    path, prefix_path = target[3], base[3]
    if "/../" in path + "/" or "/./" in path + "/" or "%2f" in path.lower():
        return False
    if prefix_path.endswith("/"):
        return path.startswith(prefix_path)
    return path == prefix_path or path.startswith(prefix_path + "/")


def _check_sender_id(sender_id: str) -> str:
    if not (0 < len(sender_id) <= MAX_SENDER_ID) or not _SENDER_ID.fullmatch(sender_id):
        raise SenderRegistryError(
            "sender_id must be 1-99 characters: letters, digits and . _ : @ / + -"
        )
    return sender_id


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    result = tuple(dict.fromkeys(scope.strip() for scope in scopes if scope.strip()))
    unknown = [scope for scope in result if scope not in SCOPES]
    if unknown:
        raise SenderRegistryError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    if not result:
        raise SenderRegistryError("a client needs at least one scope")
    return result


def _check_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    result = tuple(dict.fromkeys(prefix.strip() for prefix in prefixes if prefix.strip()))
    for prefix in result:
        parts = _split_url(prefix)
        if parts is None or urlsplit(prefix).query:
            raise SenderRegistryError(
                f"callback prefix {prefix!r} is not an http(s) URL without user info, "
                "query or fragment"
            )
    return result


def _check_jwks(jwks: str | bytes | Mapping[str, Any] | None, sender_id: str) -> str | None:
    if jwks is None:
        return None
    if isinstance(jwks, Mapping):
        text = msgspec.json.encode(jwks).decode()
    else:
        text = jwks.decode() if isinstance(jwks, bytes) else jwks
    try:
        keys = KeySet.from_jwks(text, sender_id=sender_id)
    except KeyFormatError as exc:
        raise SenderRegistryError(f"the JWKS is not usable: {exc}") from None
    if not any(key.use == "sig" for key in keys):
        raise SenderRegistryError("the JWKS has no supported signing key (use: sig)")
    # stored compactly, in the client's own key order
    return msgspec.json.encode(msgspec.json.decode(text)).decode()


def _check_jwks_url(url: str | None) -> str | None:
    if url is None or not url.strip():
        return None
    url = url.strip()
    if _split_url(url) is None:
        raise SenderRegistryError("the JWKS URL must be an http(s) URL without user info")
    return url


def _check_scheme(scheme: str) -> str:
    if scheme not in SIGNATURE_SCHEMES:
        raise SenderRegistryError(
            f"unknown signature scheme {scheme!r}; use one of {', '.join(SIGNATURE_SCHEMES)}"
        )
    return scheme


def _from_row(row: sa.RowMapping) -> Sender:
    prefixes = msgspec.json.decode(row["callback_prefixes"], type=list[str])
    return Sender(
        sender_id=row["sender_id"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        callback_prefixes=tuple(prefixes),
        jwks=row["jwks_json"],
        jwks_url=row["jwks_url"],
        signature_scheme=row["signature_scheme"],
        enabled=bool(row["enabled"]),
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
        secret_hash=row["secret_hash"],
    )


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _to_row(sender: Sender) -> dict[str, Any]:
    return {
        "sender_id": sender.sender_id,
        "name": sender.name,
        "secret_hash": sender.secret_hash,
        "scopes": " ".join(sender.scopes),
        "jwks_json": sender.jwks,
        "jwks_url": sender.jwks_url,
        "callback_prefixes": msgspec.json.encode(list(sender.callback_prefixes)).decode(),
        "signature_scheme": sender.signature_scheme,
        "enabled": sender.enabled,
        "created_at": sender.created_at,
        "updated_at": sender.updated_at,
    }


_UNSET: Final[Any] = object()


class SenderRegistry(CachedStore["Sender | None"]):
    """Registered senders in the database, with a short-lived cache for the request path."""

    # --- management (CLI, admin) ----------------------------------------------------------

    def register(
        self,
        sender_id: str,
        *,
        name: str | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        callback_prefixes: Iterable[str] = (),
        jwks: str | bytes | Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        signature_scheme: str = "jws",
        secret: str | None = None,
    ) -> tuple[Sender, str]:
        """Register a new sender; returns it and its client secret (shown once, then only
        its hash exists). Raises `SenderRegistryError` for bad values or a taken id."""
        sender_id = _check_sender_id(sender_id)
        name = (name or sender_id).strip()
        if not name or len(name) > 200:
            raise SenderRegistryError("name must be 1-200 characters")
        inline = _check_jwks(jwks, sender_id)
        url = _check_jwks_url(jwks_url)
        if inline is not None and url is not None:
            raise SenderRegistryError("give the sender's keys inline or as a URL, not both")
        secret = secret or generate_secret()
        if len(secret) < 16:
            raise SenderRegistryError("a client secret needs at least 16 characters")
        now = self.clock.now()
        sender = Sender(
            sender_id=sender_id,
            name=name,
            scopes=_check_scopes(scopes),
            callback_prefixes=_check_prefixes(callback_prefixes),
            jwks=inline,
            jwks_url=url,
            signature_scheme=_check_scheme(signature_scheme),
            enabled=True,
            created_at=now,
            updated_at=now,
            secret_hash=hash_secret(secret),
        )
        with begin_write(self.engine) as conn:
            exists = conn.execute(
                sa.select(_TABLE.c.sender_id).where(_TABLE.c.sender_id == sender_id)
            ).first()
            if exists is not None:
                raise SenderRegistryError(f"sender {sender_id} is already registered")
            conn.execute(_TABLE.insert().values(**_to_row(sender)))
        self._cache.forget(sender_id)
        return sender, secret

    def get(self, sender_id: str) -> Sender | None:
        """The sender as stored now (no cache)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(_TABLE).where(_TABLE.c.sender_id == sender_id))
                .mappings()
                .first()
            )
        return _from_row(row) if row is not None else None

    def require(self, sender_id: str) -> Sender:
        sender = self.get(sender_id)
        if sender is None:
            raise SenderRegistryError(f"no sender {sender_id} is registered")
        return sender

    def list(self) -> list[Sender]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_TABLE).order_by(_TABLE.c.sender_id)).mappings().all()
        return [_from_row(row) for row in rows]

    def update(
        self,
        sender_id: str,
        *,
        name: str | None = None,
        scopes: Iterable[str] | None = None,
        callback_prefixes: Iterable[str] | None = None,
        jwks: str | bytes | Mapping[str, Any] | None = _UNSET,
        jwks_url: str | None = _UNSET,
        signature_scheme: str | None = None,
        enabled: bool | None = None,
    ) -> Sender:
        """Change a sender's registration; arguments left out stay as they are. Giving
        `jwks` clears `jwks_url` and the other way round."""
        current = self.require(sender_id)
        changes: dict[str, Any] = {}
        if name is not None:
            if not name.strip() or len(name) > 200:
                raise SenderRegistryError("name must be 1-200 characters")
            changes["name"] = name.strip()
        if scopes is not None:
            changes["scopes"] = _check_scopes(scopes)
        if callback_prefixes is not None:
            changes["callback_prefixes"] = _check_prefixes(callback_prefixes)
        if jwks is not _UNSET:
            changes["jwks"] = _check_jwks(jwks, sender_id)
            if changes["jwks"] is not None:
                changes["jwks_url"] = None
        if jwks_url is not _UNSET:
            changes["jwks_url"] = _check_jwks_url(jwks_url)
            if changes["jwks_url"] is not None:
                if "jwks" in changes and changes["jwks"] is not None:
                    raise SenderRegistryError("give the keys inline or as a URL, not both")
                changes["jwks"] = None
        if signature_scheme is not None:
            changes["signature_scheme"] = _check_scheme(signature_scheme)
        if enabled is not None:
            changes["enabled"] = enabled
        return self._store(replace(current, **changes, updated_at=self.clock.now()))

    def disable(self, sender_id: str) -> Sender:
        """Refuse every further request and callback of this sender (kept for the record)."""
        return self.update(sender_id, enabled=False)

    def enable(self, sender_id: str) -> Sender:
        return self.update(sender_id, enabled=True)

    def rotate_secret(self, sender_id: str) -> str:
        """A new client secret (returned once); the old one stops working at once. Tokens
        already issued stay valid until they expire (short-lived)."""
        current = self.require(sender_id)
        secret = generate_secret()
        self._store(replace(current, secret_hash=hash_secret(secret), updated_at=self.clock.now()))
        return secret

    def _store(self, sender: Sender) -> Sender:
        row = _to_row(sender)
        with begin_write(self.engine) as conn:
            conn.execute(
                _TABLE.update().where(_TABLE.c.sender_id == sender.sender_id).values(**row)
            )
        self._cache.forget(sender.sender_id)
        return sender

    # --- request path -----------------------------------------------------------------------

    def authenticate(self, client_id: str, secret: str) -> Sender | None:
        """The enabled sender with this client id and secret, else None (slow on purpose:
        scrypt; call it from a worker thread, see `aauthenticate`)."""
        sender = self.get(client_id) if _SENDER_ID.fullmatch(client_id or "") else None
        if sender is not None:
            hashed = sender.secret_hash
        else:
            if not _dummy_hash:
                _dummy_hash.append(hash_secret(generate_secret()))
            hashed = _dummy_hash[0]
        matches = verify_secret(secret, hashed)
        if sender is None or not matches or not sender.enabled:
            return None
        return sender

    async def aauthenticate(self, client_id: str, secret: str) -> Sender | None:
        return await anyio.to_thread.run_sync(self.authenticate, client_id, secret)

    async def lookup(self, sender_id: str) -> Sender | None:
        """The sender, from a cache refreshed every `cache_ttl_s` (disabled ones too: the
        caller decides). Unknown ids are cached as None for the same time."""
        if not _SENDER_ID.fullmatch(sender_id) or len(sender_id) > MAX_SENDER_ID:
            return None
        return await self._cache.get_or_load(sender_id, self._aget)

    async def _aget(self, sender_id: str) -> Sender | None:
        return await anyio.to_thread.run_sync(self.get, sender_id)

    def invalidate(self, sender_id: str | None = None) -> None:
        """Forget cached senders (all of them without an id)."""
        self._cache.forget(sender_id)
