"""`JwksCache`: senders' (and receivers') public keys, inline or fetched from a JWKS URL.

A fetched JWKS is kept for `ttl_s`. A signature naming a kid the cached set lacks triggers
one refetch, at most once per `refetch_cooldown_s` per sender, so a stream of forged kids
cannot turn into a stream of fetches. Fetches are bounded: `timeout_s` for the whole
exchange (a server that trickles bytes is cut off too), `max_bytes` of body read raw (no
decompression), no redirects. When a refetch fails, the previous keys keep serving for up
to `max_stale_s`; with nothing usable the caller gets a `JwksError` (a `SignatureError`:
the signature cannot be verified) that says why, and the failure is remembered for the
cool-down so a hanging server costs one timeout, not one per request.

The URL comes from the sender's registration (operator-controlled), not from messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import msgspec

from dci_bridge.clock import Clock
from dci_bridge.crypto.jwk import KeyFormatError, KeySet
from dci_bridge.errors import SignatureError

__all__ = ["JwksCache", "JwksError"]

logger = logging.getLogger(__name__)

DEFAULT_TTL_S: Final = 300.0
DEFAULT_TIMEOUT_S: Final = 2.0
DEFAULT_MAX_BYTES: Final = 65_536
DEFAULT_REFETCH_COOLDOWN_S: Final = 30.0
DEFAULT_MAX_STALE_S: Final = 86_400.0


class JwksError(SignatureError):
    """A sender's JWKS could not be fetched or is not a JSON Web Key Set."""


@dataclass(slots=True)
class _Entry:
    source: str  # the URL, or the inline JWKS' JSON
    keys: KeySet | None = None
    fetched_at: float = float("-inf")
    failed_at: float = float("-inf")
    kid_refetch_at: float = float("-inf")
    error: JwksError | None = None


class JwksCache:
    """Public keys per sender id, from an inline JWKS or a JWKS URL, cached."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        clock: Clock,
        ttl_s: float = DEFAULT_TTL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        refetch_cooldown_s: float = DEFAULT_REFETCH_COOLDOWN_S,
        max_stale_s: float = DEFAULT_MAX_STALE_S,
    ) -> None:
        self._client = client
        self._clock = clock
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.refetch_cooldown_s = refetch_cooldown_s
        self.max_stale_s = max_stale_s
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def keys(
        self,
        sender_id: str,
        *,
        url: str | None = None,
        inline: Mapping[str, Any] | str | bytes | None = None,
        kid: str | None = None,
    ) -> KeySet:
        """The sender's keys. Pass `kid` (see `signature_key_id`) to refetch once when the
        cached set does not have it. Raises `JwksError`."""
        if inline is not None:
            return self._inline(sender_id, inline)
        if url is None:
            raise JwksError("the sender has no registered keys")
        entry = self._entries.get(sender_id)
        if entry is not None and entry.source == url:
            usable = self._usable(entry, kid)
            if usable is not None:
                return usable
        async with self._lock(sender_id):
            entry = self._entries.get(sender_id)
            if entry is None or entry.source != url:
                entry = self._entries[sender_id] = _Entry(url)
            else:
                usable = self._usable(entry, kid)  # another task may have fetched meanwhile
                if usable is not None:
                    return usable
            if kid is not None and entry.keys is not None and kid not in entry.keys:
                entry.kid_refetch_at = self._now()
            return await self._refresh(sender_id, entry)

    def invalidate(self, sender_id: str) -> None:
        """Forget a sender's keys (after its registration changed)."""
        self._entries.pop(sender_id, None)

    def _usable(self, entry: _Entry, kid: str | None) -> KeySet | None:
        """Cached keys that may be returned without fetching; raises a remembered failure."""
        now = self._now()
        failed_recently = now < entry.failed_at + self.refetch_cooldown_s
        if entry.keys is None:
            if failed_recently and entry.error is not None:
                raise entry.error
            return None
        if failed_recently:
            return entry.keys  # stale, but the source is down: do not hammer it
        if now >= entry.fetched_at + self.ttl_s:
            return None
        lacks_kid = kid is not None and kid not in entry.keys
        if lacks_kid and now >= entry.kid_refetch_at + self.refetch_cooldown_s:
            return None
        return entry.keys

    async def _refresh(self, sender_id: str, entry: _Entry) -> KeySet:
        try:
            keys = await self._fetch(entry.source, sender_id)
        except JwksError as exc:
            entry.error, entry.failed_at = exc, self._now()
            stale = entry.keys is not None and self._now() < entry.fetched_at + self.max_stale_s
            if stale and entry.keys is not None:
                logger.warning("JWKS refresh failed (%s); serving cached keys", exc.message)
                return entry.keys
            entry.keys = None
            raise
        entry.keys, entry.fetched_at, entry.error = keys, self._now(), None
        return keys

    async def _fetch(self, url: str, sender_id: str) -> KeySet:
        body = bytearray()
        try:
            with anyio.fail_after(self.timeout_s):
                async with self._client.stream(
                    "GET",
                    url,
                    headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                    timeout=self.timeout_s,
                    follow_redirects=False,
                ) as response:
                    if response.status_code != 200:
                        raise JwksError(f"JWKS URL answered HTTP {response.status_code}")
                    if response.headers.get("content-encoding", "identity") != "identity":
                        raise JwksError("JWKS URL answered with a compressed body")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.max_bytes:
                        raise JwksError(f"JWKS is larger than {self.max_bytes} bytes")
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise JwksError(f"JWKS is larger than {self.max_bytes} bytes")
        except TimeoutError:
            raise JwksError(f"JWKS URL did not answer within {self.timeout_s} s") from None
        except httpx.HTTPError as exc:
            raise JwksError(f"JWKS URL could not be fetched ({type(exc).__name__})") from None
        try:
            return KeySet.from_jwks(bytes(body), sender_id=sender_id)
        except KeyFormatError as exc:
            raise JwksError(f"JWKS URL did not return a JSON Web Key Set: {exc}") from None

    def _inline(self, sender_id: str, inline: Mapping[str, Any] | str | bytes) -> KeySet:
        if isinstance(inline, str):
            source = inline
        elif isinstance(inline, bytes):
            source = inline.decode("utf-8", "replace")
        else:
            source = msgspec.json.encode(inline).decode()
        entry = self._entries.get(sender_id)
        if entry is not None and entry.source == source and entry.keys is not None:
            return entry.keys
        try:
            keys = KeySet.from_jwks(source, sender_id=sender_id)
        except KeyFormatError as exc:
            raise JwksError(f"the sender's registered JWKS is not usable: {exc}") from None
        self._entries[sender_id] = _Entry(source, keys, self._now())
        return keys

    def _lock(self, sender_id: str) -> anyio.Lock:
        lock = self._locks.get(sender_id)
        if lock is None:
            lock = self._locks[sender_id] = anyio.Lock()
        return lock

    def _now(self) -> float:
        return self._clock.now().timestamp()
