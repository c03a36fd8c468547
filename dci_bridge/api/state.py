"""What the app holds for its lifetime: settings, record source, use-case services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dci_bridge.delivery.worker import Worker
from dci_bridge.ops.readiness import Readiness
from dci_bridge.records.source import RecordSource
from dci_bridge.registry.async_ops import AsyncOperations
from dci_bridge.registry.audit import AuditTrail
from dci_bridge.registry.ingest import IngestLoop, IngestService
from dci_bridge.registry.notify import Fanout
from dci_bridge.registry.search import SearchService
from dci_bridge.registry.security import SecurityService
from dci_bridge.registry.senders import SenderRegistry
from dci_bridge.registry.subscriptions import SubscriptionService
from dci_bridge.settings import Settings


@dataclass(slots=True)
class BridgeState:
    settings: Settings
    source: RecordSource
    search: SearchService
    security: SecurityService
    """Tokens, sender admission, signatures, replay guard, JWE (registry/security.py)."""
    audit: AuditTrail | None = None
    """The audit trail (None when `audit.enabled` is off): `record_search`, `record`."""
    readiness: Readiness = field(default_factory=Readiness)
    """Checks `/ready` runs; add yours in the lifespan (see dci_bridge/ops/readiness.py)."""
    shutdown_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run in reverse order at shutdown, after in-flight requests finished and before the
    audit trail is flushed and the database closed (e.g. release delivery leases)."""
    async_ops: AsyncOperations | None = None
    """Async search and txn status (registry/async_ops.py)."""
    delivery: Worker | None = None
    """This process's outbox worker (None when `delivery.worker` is off); `kick()` it after
    enqueueing so the job goes out at once."""
    senders: SenderRegistry | None = None
    """The registered DCI clients (callback prefixes, keys, signature scheme); the same
    instance as `security.senders`."""
    """The registered DCI clients (callback prefixes, keys, signature scheme)."""
    ingest: IngestService | None = None
    ingest_loop: IngestLoop | None = None
    fanout: Fanout | None = None
    subscriptions: SubscriptionService | None = None
