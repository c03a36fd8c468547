"""The bridge's own keys: persisted, published, rotated without downtime.

Layout of the key directory (normally `<data_dir>/keys`, mode 0700; every file 0600, written
atomically):

```
signing-current.json      the key that signs now          {"kid","alg","use","created","jwk"}
signing-next.json         published, signs after rotate() (same shape)
signing-retired.json      {"keys": [... + "retired"]}     still verify for `overlap_s`
encryption-current.json   RSA-OAEP-256 key senders encrypt to (JWE)
encryption-next.json      published ahead of its use
encryption-retired.json   still decrypt for `overlap_s`
```
Keys are generated when their file is missing and never regenerated while it exists. A
`next` key whose algorithm differs from the configured one is replaced (it never signed
anything), so changing the algorithm takes one `rotate()`. Several processes may share the
directory: creation and rotation hold an exclusive `flock` on `.lock`, and `refresh()`
reloads when another process rotated.

A private key given in configuration (JWK or PEM) replaces the directory for that ring: it is
`current`, there is no `next`, and `rotate()` refuses (rotate it where it is configured).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import msgspec

from dci_bridge.clock import Clock, SystemClock, isoformat_z
from dci_bridge.crypto.jwk import (
    SIGNING_ALGORITHMS,
    DecryptionKey,
    KeyFormatError,
    KeySet,
    SigningKey,
    generate_decryption_key,
    generate_signing_key,
    load_decryption_key,
    load_signing_key,
)

__all__ = ["DEFAULT_OVERLAP_S", "KeyStore", "KeyStoreError"]

logger = logging.getLogger(__name__)

DEFAULT_ALGORITHM: Final = "EdDSA"
DEFAULT_OVERLAP_S: Final = 2 * 86400.0
"""How long a retired key still verifies (and decrypts) after `rotate()`."""

K = TypeVar("K", SigningKey, DecryptionKey)


class KeyStoreError(Exception):
    """The key directory or configured key cannot be used; raised at start, never per request."""


class _Stored(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    kid: str
    alg: str
    use: str
    created: str
    jwk: dict[str, Any]
    retired: str | None = None


class _Retired(msgspec.Struct, frozen=True):
    keys: list[_Stored] = msgspec.field(default_factory=list)


class _Ring(Generic[K]):
    """current / next / retired keys of one use, in `<prefix>-*.json` files."""

    def __init__(self, store: KeyStore, prefix: str, use: str, alg: str) -> None:
        self._store = store
        self._prefix = prefix
        self._use = use
        self.alg = alg
        self.current: K | None = None
        self.next: K | None = None
        self.retired: list[tuple[K, dt.datetime]] = []
        self.configured = False
        self._stamp: tuple[float, ...] = ()

    def path(self, role: str) -> Path:
        return self._store.directory / f"{self._prefix}-{role}.json"

    def configure(self, current: K, next_key: K | None) -> None:
        self.current, self.next, self.retired, self.configured = current, next_key, [], True

    def stamp(self) -> tuple[float, ...]:
        stamps = []
        for role in ("current", "next", "retired"):
            try:
                stamps.append(self.path(role).stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(-1)
        return tuple(stamps)

    def load_or_create(self) -> None:
        """Read the files; create what is missing (caller holds the lock)."""
        current = self._read_key(self.path("current"))
        next_key = self._read_key(self.path("next"))
        retired = self._read_retired()
        if current is None:
            if next_key is not None and next_key.alg == self.alg:
                current, next_key = next_key, None
            else:
                current = self._generate()
            self._write_key(self.path("current"), current)
            logger.info("created %s key %s", self._prefix, current.kid)
        if next_key is None or next_key.kid == current.kid or next_key.alg != self.alg:
            # a half-finished rotation leaves next == current; a changed algorithm setting
            # replaces next. Neither has signed anything as next.
            next_key = self._generate()
            self._write_key(self.path("next"), next_key)
        self.current, self.next = current, next_key
        self.retired = [(key, at) for key, at in retired if key.kid != current.kid]
        self._stamp = self.stamp()

    def rotate(self, now: dt.datetime) -> K:
        assert self.current is not None
        assert self.next is not None
        # Order matters for crash safety: retired first, then current, then a fresh next.
        kept: list[tuple[K, dt.datetime]] = [
            (key, at) for key, at in self.retired if self._in_overlap(at, now)
        ]
        old: K = self.current
        promoted: K = self.next
        retired: list[tuple[K, dt.datetime]] = [(old, now)]
        retired.extend(kept)
        self._write_retired(retired)
        self._write_key(self.path("current"), promoted)
        fresh = self._generate()
        self._write_key(self.path("next"), fresh)
        self.current, self.next, self.retired = promoted, fresh, retired
        self._stamp = self.stamp()
        return promoted

    def live_retired(self, now: dt.datetime) -> list[K]:
        return [key for key, at in self.retired if self._in_overlap(at, now)]

    def retired_until(self) -> dt.datetime | None:
        """When the next retired key drops out of the overlap."""
        ends = [at + dt.timedelta(seconds=self._store.overlap_s) for _, at in self.retired]
        return min(ends, default=None)

    def _in_overlap(self, retired_at: dt.datetime, now: dt.datetime) -> bool:
        return now < retired_at + dt.timedelta(seconds=self._store.overlap_s)

    def _generate(self) -> K:
        if self._use == "sig":
            return generate_signing_key(self.alg, clock=self._store.clock)  # type: ignore[return-value]
        return generate_decryption_key(self.alg, clock=self._store.clock)  # type: ignore[return-value]

    def _from_stored(self, stored: _Stored, path: Path) -> K:
        text = msgspec.json.encode(stored.jwk)
        created = _parse_time(stored.created, path)
        try:
            key: K
            if self._use == "sig":
                key = load_signing_key(text, created=created)  # type: ignore[assignment]
            else:
                key = load_decryption_key(text, created=created)  # type: ignore[assignment]
        except KeyFormatError as exc:
            raise KeyStoreError(f"{path}: {exc}") from None
        if key.kid != stored.kid:
            raise KeyStoreError(f"{path}: kid does not match the key's thumbprint")
        return key

    def _read_key(self, path: Path) -> K | None:
        data = _read(path)
        if data is None:
            return None
        try:
            stored = msgspec.json.decode(data, type=_Stored)
        except msgspec.DecodeError as exc:
            raise KeyStoreError(f"{path}: not a key file ({exc})") from None
        return self._from_stored(stored, path)

    def _read_retired(self) -> list[tuple[K, dt.datetime]]:
        path = self.path("retired")
        data = _read(path)
        if data is None:
            return []
        try:
            stored = msgspec.json.decode(data, type=_Retired)
        except msgspec.DecodeError as exc:
            raise KeyStoreError(f"{path}: not a retired-keys file ({exc})") from None
        return [
            (self._from_stored(entry, path), _parse_time(entry.retired or entry.created, path))
            for entry in stored.keys
        ]

    def _record(self, key: K, retired: dt.datetime | None = None) -> _Stored:
        return _Stored(
            kid=key.kid,
            alg=key.alg,
            use=self._use,
            created=isoformat_z(key.created),
            jwk=key.private_jwk(),
            retired=isoformat_z(retired) if retired else None,
        )

    def _write_key(self, path: Path, key: K) -> None:
        _write_private(path, msgspec.json.encode(self._record(key)))

    def _write_retired(self, retired: list[tuple[K, dt.datetime]]) -> None:
        records = _Retired([self._record(key, at) for key, at in retired])
        _write_private(self.path("retired"), msgspec.json.encode(records))


class KeyStore:
    """Signing and encryption keys of the bridge, loaded from (or created in) `directory`.

    Args:
        directory: the key directory, created with mode 0700 when missing.
        algorithm: algorithm of generated signing keys: EdDSA (default), ES256 or RS256.
        clock: source of `created`/`retired` times and of the overlap window.
        overlap_s: how long retired keys still verify and decrypt after a rotation.
        signing_key / next_signing_key: a configured private JWK or PEM (settings/env);
            replaces the directory's signing keys.
        encryption_key: a configured private RSA JWK or PEM for JWE.
    Raises `KeyStoreError` for unusable files or configured keys.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        algorithm: str = DEFAULT_ALGORITHM,
        clock: Clock | None = None,
        overlap_s: float = DEFAULT_OVERLAP_S,
        signing_key: str | None = None,
        next_signing_key: str | None = None,
        encryption_key: str | None = None,
    ) -> None:
        if algorithm not in SIGNING_ALGORITHMS:
            raise KeyStoreError(
                f"unsupported signing algorithm {algorithm!r}; use one of {SIGNING_ALGORITHMS}"
            )
        self.directory = Path(directory)
        self.algorithm = algorithm
        self.clock: Clock = clock or SystemClock()
        self.overlap_s = overlap_s
        self._signing: _Ring[SigningKey] = _Ring(self, "signing", "sig", algorithm)
        self._encryption: _Ring[DecryptionKey] = _Ring(self, "encryption", "enc", "RSA-OAEP-256")
        self._configure(signing_key, next_signing_key, encryption_key)
        self._cache: tuple[KeySet, bytes, dt.datetime | None] | None = None
        rings = [ring for ring in (self._signing, self._encryption) if not ring.configured]
        if rings:
            try:
                self._prepare_directory()
                with self._locked():
                    for ring in rings:
                        ring.load_or_create()
            except OSError as exc:
                raise KeyStoreError(f"key directory {self.directory}: {exc.strerror}") from None

    # --- the keys -------------------------------------------------------------------------

    @property
    def current(self) -> SigningKey:
        """The key that signs now."""
        assert self._signing.current is not None
        return self._signing.current

    @property
    def next(self) -> SigningKey | None:
        """The published key that `rotate()` promotes."""
        return self._signing.next

    @property
    def retired(self) -> tuple[SigningKey, ...]:
        """Retired signing keys still inside the overlap period."""
        return tuple(self._signing.live_retired(self.clock.now()))

    @property
    def encryption_key(self) -> DecryptionKey:
        """The key senders should encrypt to."""
        assert self._encryption.current is not None
        return self._encryption.current

    def signing_key(self) -> SigningKey:
        """The current signing key (what `EnvelopeSigner` asks for on every signature)."""
        assert self._signing.current is not None
        return self._signing.current

    def decryption_keys(self) -> dict[str, DecryptionKey]:
        """Every key a JWE sent to us may use: current, next and retired within the overlap."""
        ring = self._encryption
        keys = [ring.current, ring.next, *ring.live_retired(self.clock.now())]
        return {key.kid: key for key in keys if key is not None}

    # --- publishing -----------------------------------------------------------------------

    def verification_keys(self) -> KeySet:
        """Our public keys as a KeySet (cached; rebuilt on rotation or when a key ages out)."""
        return self._published()[0]

    def public_jwks(self) -> dict[str, Any]:
        """`GET /.well-known/jwks.json`: current, next and live retired signing keys, then
        the current and next encryption keys (current first: clients pick the first `enc`)."""
        return {"keys": [dict(key.jwk) for key in self._published()[0]]}

    def public_jwks_json(self) -> bytes:
        """`public_jwks()` encoded once per key change, for the endpoint's hot path."""
        return self._published()[1]

    # --- rotation ---------------------------------------------------------------------------

    def rotate(self) -> SigningKey:
        """Promote next to current, retire the old current (still verifies for `overlap_s`),
        create a new next. Returns the new current key."""
        return self._rotate(self._signing)

    def rotate_encryption(self) -> DecryptionKey:
        """The same for the encryption keys; retired ones still decrypt for `overlap_s`."""
        return self._rotate(self._encryption)

    def refresh(self) -> bool:
        """Reload when another process changed the files; returns whether anything changed.

        Costs a few `stat` calls; call it now and then (for example once a second).
        """
        changed = False
        for ring in (self._signing, self._encryption):
            if not ring.configured and ring.stamp() != ring._stamp:
                with self._locked():
                    ring.load_or_create()
                changed = True
        if changed:
            self._cache = None
        return changed

    # --- internals --------------------------------------------------------------------------

    def _rotate(self, ring: _Ring[K]) -> K:
        if ring.configured:
            raise KeyStoreError("this key comes from configuration; rotate it there")
        try:
            with self._locked():
                ring.load_or_create()  # another process may have rotated meanwhile
                key = ring.rotate(self.clock.now())
        except OSError as exc:
            raise KeyStoreError(f"key directory {self.directory}: {exc.strerror}") from None
        self._cache = None
        logger.info("rotated keys; current kid %s", key.kid)
        return key

    def _published(self) -> tuple[KeySet, bytes, dt.datetime | None]:
        now = self.clock.now()
        cache = self._cache
        if cache is not None and (cache[2] is None or now < cache[2]):
            return cache
        sig, enc = self._signing, self._encryption
        keys = [sig.current, sig.next, *sig.live_retired(now), enc.current, enc.next]
        public = [key.public for key in keys if key is not None]
        keyset = KeySet(public)
        body = msgspec.json.encode({"keys": [dict(key.jwk) for key in public]})
        ends = [t for t in (sig.retired_until(), enc.retired_until()) if t and t > now]
        self._cache = (keyset, body, min(ends, default=None))
        return self._cache

    def _configure(
        self, signing: str | None, next_signing: str | None, encryption: str | None
    ) -> None:
        now = self.clock.now()
        try:
            if signing:
                current = load_signing_key(signing, created=now)
                upcoming = load_signing_key(next_signing, created=now) if next_signing else None
                self._signing.configure(current, upcoming)
            elif next_signing:
                raise KeyStoreError("a next signing key needs a configured current signing key")
            if encryption:
                self._encryption.configure(load_decryption_key(encryption, created=now), None)
        except KeyFormatError as exc:
            raise KeyStoreError(f"configured key: {exc}") from None

    def _prepare_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.stat().st_mode & 0o077:
            logger.warning("key directory %s was readable by others; fixing", self.directory)
            self.directory.chmod(0o700)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __repr__(self) -> str:
        return f"KeyStore({str(self.directory)!r}, current={self.current.kid!r})"


def _read(path: Path) -> bytes | None:
    try:
        if path.stat().st_mode & 0o077:
            logger.warning("key file %s was readable by others; fixing", path)
            path.chmod(0o600)
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _parse_time(text: str, path: Path) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise KeyStoreError(f"{path}: bad timestamp") from None
    if moment.tzinfo is None:
        raise KeyStoreError(f"{path}: timestamp without timezone")
    return moment
