"""ExpiringCache: TTL, misses cached, bounded size, forget; a model-based property test."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dci_bridge.registry._cache import ExpiringCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts loads; answers `f"v{key}#{n}"` so a reload is visible."""

    def __init__(self, missing: frozenset[int] = frozenset()) -> None:
        self.calls: list[int] = []
        self.missing = missing

    async def __call__(self, key: int) -> str | None:
        self.calls.append(key)
        return None if key in self.missing else f"v{key}#{len(self.calls)}"


@pytest.mark.anyio
async def test_loads_once_within_ttl_and_again_after_it() -> None:
    clock, load = FakeClock(), Loader()
    cache: ExpiringCache[int, str | None] = ExpiringCache(5.0, clock=clock)
    assert await cache.get_or_load(1, load) == "v1#1"
    clock.now += 4.999
    assert await cache.get_or_load(1, load) == "v1#1"
    clock.now += 0.001  # exactly at expiry: stale
    assert await cache.get_or_load(1, load) == "v1#2"
    assert load.calls == [1, 1]


@pytest.mark.anyio
async def test_none_is_cached_like_any_value() -> None:
    clock, load = FakeClock(), Loader(missing=frozenset({7}))
    cache: ExpiringCache[int, str | None] = ExpiringCache(5.0, clock=clock)
    assert await cache.get_or_load(7, load) is None
    assert await cache.get_or_load(7, load) is None
    assert load.calls == [7]
    assert cache.get(7) == (True, None)
    assert cache.get(8) == (False, None)


@pytest.mark.anyio
async def test_forget_one_key_or_all() -> None:
    load = Loader()
    cache: ExpiringCache[int, str | None] = ExpiringCache(5.0, clock=FakeClock())
    for key in (1, 2, 3):
        await cache.get_or_load(key, load)
    cache.forget(2)
    cache.forget(99)  # unknown: no error
    assert len(cache) == 2
    assert await cache.get_or_load(2, load) == "v2#4"
    assert await cache.get_or_load(1, load) == "v1#1"
    cache.forget()
    assert len(cache) == 0
    assert await cache.get_or_load(1, load) == "v1#5"


@pytest.mark.anyio
async def test_a_failing_load_caches_nothing() -> None:
    calls = 0

    async def flaky(key: int) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return "ok"

    cache: ExpiringCache[int, str] = ExpiringCache(5.0, clock=FakeClock())
    with pytest.raises(ConnectionError):
        await cache.get_or_load(1, flaky)
    assert len(cache) == 0
    assert await cache.get_or_load(1, flaky) == "ok"
    assert await cache.get_or_load(1, flaky) == "ok"
    assert calls == 2


@pytest.mark.anyio
async def test_zero_ttl_always_loads() -> None:
    load = Loader()
    cache: ExpiringCache[int, str | None] = ExpiringCache(0.0, clock=FakeClock())
    await cache.get_or_load(1, load)
    await cache.get_or_load(1, load)
    assert load.calls == [1, 1]
    assert len(cache) == 0


def test_bounded_drops_expired_then_oldest_not_everything() -> None:
    clock = FakeClock()
    cache: ExpiringCache[int, int] = ExpiringCache(10.0, max_size=100, clock=clock)
    for key in range(50):
        cache.put(key, key)
    clock.now += 5
    for key in range(50, 100):
        cache.put(key, key)
    clock.now += 5  # the first 50 have expired, the last 50 are live
    cache.put(100, 100)
    assert len(cache) == 51
    assert all(cache.get(key) == (True, key) for key in range(50, 101))
    for key in range(101, 150):
        cache.put(key, key)
    assert len(cache) == 100
    cache.put(150, 150)  # full of live entries: the oldest tenth goes, the newest stay
    assert len(cache) == 91
    assert cache.get(50) == (False, None)
    assert cache.get(150) == (True, 150)
    assert cache.get(149) == (True, 149)


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size"):
        ExpiringCache[int, int](1.0, max_size=0)


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("load"), st.integers(0, 12)),
        st.tuples(st.just("forget"), st.one_of(st.none(), st.integers(0, 12))),
        st.tuples(st.just("tick"), st.floats(0, 4, allow_nan=False)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops=_OPS, max_size=st.integers(1, 8))
def test_matches_a_simple_model(ops: list[tuple[str, object]], max_size: int) -> None:
    """Never serves a value older than the TTL or one forgotten since; never exceeds its
    bound; a live, not-evicted entry is served without a load."""
    ttl = 3.0
    clock = FakeClock()
    cache: ExpiringCache[int, tuple[int, float]] = ExpiringCache(
        ttl, max_size=max_size, clock=clock
    )
    forgotten_at: dict[int, float] = {}  # a value loaded before this must not be served
    loads = 0

    async def load(key: int) -> tuple[int, float]:
        nonlocal loads
        loads += 1
        return key, clock.now

    async def run() -> None:
        nonlocal loads
        for op, arg in ops:
            if op == "tick":
                assert isinstance(arg, float)
                clock.now += arg
            elif op == "forget":
                assert arg is None or isinstance(arg, int)
                cache.forget(arg)
                for key in range(13) if arg is None else (arg,):
                    forgotten_at[key] = clock.now
            else:
                assert isinstance(arg, int)
                present, _ = cache.get(arg)
                before = loads
                key, loaded_at = await cache.get_or_load(arg, load)
                assert key == arg
                assert clock.now - loaded_at < ttl
                assert loaded_at >= forgotten_at.get(arg, float("-inf"))
                assert (loads == before) == present
            assert len(cache) <= max_size

    anyio.run(run)
