"""A small time-expiring, size-bounded look-up cache for the request path.

The sender registry and the policy store both answer a per-request question ("who is this
sender?", "what may it see?") from the database, and both may be a few seconds stale: another
process (the CLI, another replica) changing a row is seen within the TTL. `ExpiringCache`
holds those answers, misses included (a flood of unknown ids costs no database work), and
loads a missing or expired key once through the caller's `load` coroutine.

Bounded: at `max_size` entries, the oldest inserted entries go first (expired ones before
live ones), so a flood of distinct keys never grows memory without limit nor empties the
whole cache at once. Single event loop, no locks: concurrent misses on one key may both
load (each answer is as fresh as the other), the last one stays.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, Generic, Self, TypeVar

import sqlalchemy as sa

from dci_bridge.clock import Clock, SystemClock
from dci_bridge.db.engine import create_sync_engine

__all__ = ["DEFAULT_CACHE_TTL_S", "CachedStore", "ExpiringCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_SIZE: Final = 10_000
DEFAULT_CACHE_TTL_S: Final = 5.0


class ExpiringCache(Generic[K, V]):
    """Values (None included) kept for `ttl_s` seconds, at most `max_size` of them."""

    __slots__ = ("_clock", "_entries", "max_size", "ttl_s")

    def __init__(
        self,
        ttl_s: float,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._clock = clock
        self._entries: dict[K, tuple[V, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """`(True, value)` for a live entry, `(False, None)` for a missing or expired one."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if self._clock() >= entry[1]:
            del self._entries[key]
            return False, None
        return True, entry[0]

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `ttl_s` from now (a zero or negative TTL keeps nothing)."""
        if self.ttl_s <= 0:
            return
        entries = self._entries
        entries.pop(key, None)  # re-inserted last: insertion order is age order
        if len(entries) >= self.max_size:
            self._evict()
        entries[key] = (value, self._clock() + self.ttl_s)

    async def get_or_load(self, key: K, load: Callable[[K], Awaitable[V]]) -> V:
        """The live cached value, else `await load(key)`, kept for `ttl_s` and returned.
        An exception from `load` propagates and caches nothing."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry[1]:
            return entry[0]
        value = await load(key)
        self.put(key, value)
        return value

    def forget(self, key: K | None = None) -> None:
        """Drop one key's entry (every entry without a key)."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    def _evict(self) -> None:
        entries = self._entries
        now = self._clock()
        expired = [key for key, (_, expires) in entries.items() if now >= expires]
        for key in expired:
            del entries[key]
        # still full: drop the oldest tenth (at least one), amortising the scan above
        excess = len(entries) - self.max_size + 1
        if excess > 0:
            drop = max(excess, self.max_size // 10)
            for key in list(entries)[:drop]:
                del entries[key]


class CachedStore(Generic[V]):
    """A table read on the request path through an `ExpiringCache` keyed by sender id (the
    sender registry, the policy store). Built on an engine it is lent, or with `from_url` on
    an engine of its own, which `close()` disposes of."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock | None = None,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        owns_engine: bool = False,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.cache_ttl_s = cache_ttl_s
        self._owns_engine = owns_engine
        self._cache: ExpiringCache[str, V] = ExpiringCache(cache_ttl_s)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Self:
        """A store on its own engine (a migrated database is expected); `close()` it."""
        return cls(create_sync_engine(url, pool_size=2), owns_engine=True, **kwargs)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()
