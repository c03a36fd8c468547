"""The disclosure policy store on SQLite and PostgreSQL: revisions, clearing, the cache."""

from __future__ import annotations

import datetime as dt

import pytest

from dci_bridge.clock import FixedClock
from dci_bridge.db.engine import migrate
from dci_bridge.registry.policy import UNRESTRICTED, DisclosurePolicy, PolicyError
from dci_bridge.registry.policy_store import PolicyStore

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
PENSION = DisclosurePolicy(
    description="pension",
    query_types=["idtype-value"],
    identifier_types=["UIN"],
    fields=["death_date"],
    event_types=["Death"],
)


@pytest.fixture
def store(database_url):
    migrate(database_url)
    policies = PolicyStore.from_url(database_url, clock=FixedClock(NOW), cache_ttl_s=60)
    yield policies
    policies.close()


async def test_set_get_list_clear(store: PolicyStore):
    assert store.get("pension.example.org") is None
    assert await store.lookup("pension.example.org") is None
    first = store.set("pension.example.org", PENSION)
    assert first.revision == 1
    second = store.set("pension.example.org", PENSION)
    assert second.revision == 2
    stored = store.get("pension.example.org")
    assert stored is not None
    assert (stored.policy, stored.revision, stored.updated_at) == (PENSION, 2, NOW)
    compiled = await store.lookup("pension.example.org")
    assert compiled is not None
    assert compiled.revision == 2
    store.set("all.example.org", UNRESTRICTED)
    assert [p.sender_id for p in store.list()] == ["all.example.org", "pension.example.org"]
    assert store.clear("pension.example.org") is True
    assert store.clear("pension.example.org") is False
    assert await store.lookup("pension.example.org") is None


async def test_lookup_is_cached_until_the_ttl(database_url):
    migrate(database_url)
    reader = PolicyStore.from_url(database_url, cache_ttl_s=60)
    writer = PolicyStore.from_url(database_url)
    try:
        assert await reader.lookup("sp") is None  # "no policy" is cached too
        writer.set("sp", PENSION)
        assert await reader.lookup("sp") is None
        reader.invalidate("sp")
        assert await reader.lookup("sp") is not None
    finally:
        reader.close()
        writer.close()


def test_set_refuses_a_bad_policy(store: PolicyStore):
    with pytest.raises(PolicyError):
        store.set("sp", DisclosurePolicy(fields=["shoe_size"]))
    with pytest.raises(PolicyError):
        store.set("", PENSION)
    assert store.list() == []
