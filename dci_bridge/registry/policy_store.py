"""Stored disclosure policies (`disclosure_policy` table) and the request path's view of them.

Management (`set`, `clear`, `get`, `list`) is synchronous (CLI, admin). The request path
asks `PolicyStore.lookup(sender_id)`, which returns the `CompiledPolicy` from a cache
refreshed every `cache_ttl_s` (a sender without a policy is cached as None too), so a
search costs a dict look-up, and another process changing a policy is seen within
`cache_ttl_s`. `StaticPolicies` is the same interface over a fixed mapping (tests, bench).

Subscriptions and notifications do not use the cache: `current(conn, sender_ids)` reads the
policies' revisions in the caller's transaction (one indexed query) and compiles a document
only when its revision changed, so a subscribe is checked, and a notify minimised, under the
policy as committed at that moment, in every process at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import anyio.to_thread
import sqlalchemy as sa

from dci_bridge.clock import Clock
from dci_bridge.db.engine import begin_write
from dci_bridge.db.tables_policy import DisclosurePolicyRow
from dci_bridge.registry._cache import DEFAULT_CACHE_TTL_S, CachedStore
from dci_bridge.registry.policy import (
    CompiledPolicy,
    DisclosurePolicy,
    PolicyError,
    compile_policy,
    encode_policy,
    parse_policy,
)

__all__ = ["PolicySource", "PolicyStore", "StaticPolicies", "StoredPolicy"]

_TABLE: Final[Any] = DisclosurePolicyRow.__table__  # type: ignore[attr-defined]


class PolicySource(Protocol):
    """Where the search use case gets a sender's policy from."""

    async def lookup(self, sender_id: str) -> CompiledPolicy | None: ...

    def current(
        self, conn: sa.Connection, sender_ids: Collection[str]
    ) -> dict[str, CompiledPolicy | None]:
        """Each sender's policy as committed now, read in the caller's transaction."""
        ...


class StaticPolicies:
    """Fixed policies per sender (tests, benchmarks); `default` applies to any other sender."""

    def __init__(
        self,
        policies: Mapping[str, DisclosurePolicy] | None = None,
        *,
        default: DisclosurePolicy | None = None,
    ) -> None:
        self._compiled = {s: compile_policy(s, p) for s, p in (policies or {}).items()}
        self._default = default

    async def lookup(self, sender_id: str) -> CompiledPolicy | None:
        found = self._compiled.get(sender_id)
        if found is None and self._default is not None:
            found = compile_policy(sender_id, self._default)
            self._compiled[sender_id] = found
        return found

    def current(
        self, conn: sa.Connection, sender_ids: Collection[str]
    ) -> dict[str, CompiledPolicy | None]:
        found: dict[str, CompiledPolicy | None] = {}
        for sender_id in sender_ids:
            policy = self._compiled.get(sender_id)
            if policy is None and self._default is not None:
                policy = self._compiled[sender_id] = compile_policy(sender_id, self._default)
            found[sender_id] = policy
        return found


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    sender_id: str
    policy: DisclosurePolicy
    revision: int
    updated_at: dt.datetime


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _from_row(row: sa.RowMapping) -> StoredPolicy:
    return StoredPolicy(
        sender_id=row["sender_id"],
        policy=parse_policy(row["document"]),
        revision=int(row["revision"]),
        updated_at=_aware(row["updated_at"]),
    )


class PolicyStore(CachedStore["CompiledPolicy | None"]):
    """Disclosure policies in the database, with a short-lived cache for the request path."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock | None = None,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        owns_engine: bool = False,
    ) -> None:
        super().__init__(engine, clock=clock, cache_ttl_s=cache_ttl_s, owns_engine=owns_engine)
        self._current: dict[str, CompiledPolicy] = {}

    # --- management ---------------------------------------------------------------------------

    def set(self, sender_id: str, policy: DisclosurePolicy) -> StoredPolicy:
        """Store (replace) the sender's policy; returns it with its new revision."""
        sender_id = sender_id.strip()
        if not 0 < len(sender_id) <= 99:
            raise PolicyError("sender_id must be 1 to 99 characters")
        compile_policy(sender_id, policy)  # refuses unknown names before anything is stored
        document = encode_policy(policy).decode()
        now = self.clock.now()
        with begin_write(self.engine) as conn:
            current = conn.execute(
                sa.select(_TABLE.c.revision).where(_TABLE.c.sender_id == sender_id)
            ).scalar()
            if current is None:
                revision = 1
                conn.execute(
                    _TABLE.insert().values(
                        sender_id=sender_id, document=document, revision=1, updated_at=now
                    )
                )
            else:
                revision = int(current) + 1
                conn.execute(
                    _TABLE.update()
                    .where(_TABLE.c.sender_id == sender_id)
                    .values(document=document, revision=revision, updated_at=now)
                )
        self._cache.forget(sender_id)
        return StoredPolicy(sender_id, policy, revision, now)

    def get(self, sender_id: str) -> StoredPolicy | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(_TABLE).where(_TABLE.c.sender_id == sender_id))
                .mappings()
                .first()
            )
        return _from_row(row) if row is not None else None

    def list(self) -> list[StoredPolicy]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_TABLE).order_by(_TABLE.c.sender_id)).mappings().all()
        return [_from_row(row) for row in rows]

    def clear(self, sender_id: str) -> bool:
        """Remove the sender's policy (it is refused from now on); False if it had none."""
        with begin_write(self.engine) as conn:
            result = conn.execute(_TABLE.delete().where(_TABLE.c.sender_id == sender_id))
        self._cache.forget(sender_id)
        return bool(result.rowcount)

    # --- request path -------------------------------------------------------------------------

    async def lookup(self, sender_id: str) -> CompiledPolicy | None:
        """The sender's compiled policy, or None: from a cache refreshed every `cache_ttl_s`."""
        if not 0 < len(sender_id) <= 99:
            return None
        return await self._cache.get_or_load(sender_id, self._aload)

    async def _aload(self, sender_id: str) -> CompiledPolicy | None:
        return await anyio.to_thread.run_sync(self._load, sender_id)

    def _load(self, sender_id: str) -> CompiledPolicy | None:
        try:
            stored = self.get(sender_id)
        except PolicyError:
            return None  # a document this version cannot read allows nothing
        if stored is None:
            return None
        return compile_policy(sender_id, stored.policy, stored.revision)

    def current(
        self, conn: sa.Connection, sender_ids: Collection[str]
    ) -> dict[str, CompiledPolicy | None]:
        """Each sender's policy as committed now (None: it has none, or one this version
        cannot read), read in the caller's transaction: the revisions in one query, a
        document only when its revision is not the one compiled last time."""
        found: dict[str, CompiledPolicy | None] = dict.fromkeys(sender_ids)
        if not found:
            return found
        revisions = conn.execute(
            sa.select(_TABLE.c.sender_id, _TABLE.c.revision).where(
                _TABLE.c.sender_id.in_(list(found))
            )
        ).all()
        for sender_id, revision in revisions:
            compiled = self._current.get(sender_id)
            if compiled is None or compiled.revision != int(revision):
                document = conn.execute(
                    sa.select(_TABLE.c.document, _TABLE.c.revision).where(
                        _TABLE.c.sender_id == sender_id
                    )
                ).first()
                if document is None:
                    continue
                try:
                    policy = parse_policy(document[0])
                except PolicyError:
                    continue  # a document this version cannot read allows nothing
                compiled = compile_policy(sender_id, policy, int(document[1]))
                if len(self._current) >= 10_000:
                    self._current.clear()
                self._current[sender_id] = compiled
            found[sender_id] = compiled
        return found

    def invalidate(self, sender_id: str | None = None) -> None:
        self._cache.forget(sender_id)
