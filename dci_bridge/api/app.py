"""`create_app(settings)`: the Litestar application, assembled in small named steps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from dci_bridge import __version__
from dci_bridge.api.controllers.admin import AdminController
from dci_bridge.api.controllers.async_ops import AsyncController
from dci_bridge.api.controllers.opencrvs import OpencrvsV2HookController, OpencrvsWebhookController
from dci_bridge.api.controllers.search import SearchController, answer_sync_search
from dci_bridge.api.controllers.subscribe import SubscribeController
from dci_bridge.api.errors import handle_dci_error, handle_http_exception, handle_unexpected
from dci_bridge.api.fastpath import FastRoute
from dci_bridge.api.fastpath import install as install_fast_routes
from dci_bridge.api.observe import install as install_observer
from dci_bridge.api.openapi import openapi_text
from dci_bridge.api.operations import database_check, metrics_endpoint, ready
from dci_bridge.api.security import JwksController, TokenController
from dci_bridge.api.state import BridgeState
from dci_bridge.clock import Clock, SystemClock
from dci_bridge.crypto import EnvelopeSigner
from dci_bridge.db.engine import begin_write, create_sync_engine, migrate
from dci_bridge.delivery.commits import GroupCommit
from dci_bridge.delivery.worker import Worker
from dci_bridge.errors import DciError
from dci_bridge.records.source import RecordSource
from dci_bridge.records.store import EmbeddedFhirStore
from dci_bridge.registry.async_ops import SEARCH_TASK, AsyncOperations
from dci_bridge.registry.audit import AuditTrail
from dci_bridge.registry.callbacks import NotifySink, OutboxSink, RecipientKeys
from dci_bridge.registry.ids import IdSource, UuidSource
from dci_bridge.registry.ingest import IngestLoop, IngestService
from dci_bridge.registry.notify import Fanout
from dci_bridge.registry.policy_store import PolicySource, PolicyStore
from dci_bridge.registry.search import SearchService
from dci_bridge.registry.security import SecurityService
from dci_bridge.registry.subscriptions import SubscriptionService, SubscriptionStore
from dci_bridge.settings import Settings
from dci_bridge.upstream.sources import open_record_source, reachability_check

_log = logging.getLogger("dci_bridge.app")


@get("/health", operation_id="health", tags=["Operations"], summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@get("/openapi.json", include_in_schema=False, media_type="application/json")
async def openapi_document(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The full OpenAPI document (Litestar's own at /schema lacks the raw-bytes bodies)."""
    cached = request.app.state.get("openapi_text")
    if not isinstance(cached, str):
        cached = openapi_text(request.app)
        request.app.state.openapi_text = cached
    return Response(cached.encode(), media_type="application/json")


def create_app(
    settings: Settings,
    *,
    source: RecordSource | None = None,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    signer: EnvelopeSigner | None = None,
    policies: PolicySource | None = None,
    sink: NotifySink | None = None,
) -> Litestar:
    """Build the bridge. Without `source`, the configured one (`upstream.source`) is used;
    without `policies`, the disclosure policies stored in the database (unless the settings
    turn policies off)."""
    clock = clock or SystemClock()
    ids = ids or UuidSource()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own_source = source is None
        if settings.database.migrate_on_start:
            migrate(settings.database_url)
        if source is None:
            record_source: RecordSource = await open_record_source(settings)
        else:
            record_source = source
        engine = create_sync_engine(settings.database_url, pool_size=settings.database.pool_size)
        http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        policy_source: PolicySource | None = policies
        if policy_source is None and settings.policy.enforce:
            policy_source = PolicyStore(
                engine, clock=clock, cache_ttl_s=settings.policy.cache_ttl_s
            )
        elif policy_source is None:
            _log.warning("disclosure policies are OFF: every sender may learn every field")
        bridge = BridgeState(
            settings=settings,
            source=record_source,
            search=SearchService(
                record_source,
                settings,
                clock,
                ids,
                policies=policy_source,
            ),
            security=SecurityService.create(settings, engine, clock=clock, http=http),
        )
        events_engine, own_events_engine = _events_engine(settings, record_source)
        app.state.bridge = bridge
        if settings.audit.enabled:
            bridge.audit = await open_audit(settings, clock)
        await _start_delivery(bridge, settings, clock, ids, signer)
        _wire_events(bridge, events_engine, clock, ids, sink, policy_source)
        db_check, db_check_engine = database_check(settings.database_url)
        bridge.readiness.add("database", db_check)
        upstream_check = reachability_check(record_source)
        if upstream_check is not None:
            bridge.readiness.add("upstream", upstream_check)
        assert bridge.ingest_loop is not None
        bridge.ingest_loop.start()
        try:
            yield
        finally:
            await bridge.ingest_loop.stop()
            for hook in reversed(bridge.shutdown_hooks):
                await hook()
            if bridge.audit is not None:
                await bridge.audit.aclose()
            await http.aclose()
            engine.dispose()
            db_check_engine.dispose()
            if own_events_engine:
                events_engine.dispose()
            if own_source:
                await record_source.aclose()

    app = Litestar(
        route_handlers=[
            health,
            ready,
            metrics_endpoint,
            openapi_document,
            *_registry_routes(settings.server.base_path),
            AdminController,
            TokenController,
            JwksController,
            OpencrvsWebhookController,
            OpencrvsV2HookController,
        ],
        lifespan=[lifespan],
        exception_handlers=_exception_handlers(),
        openapi_config=_openapi_config(),
        request_max_body_size=settings.server.max_body_bytes,
        state=_initial_state(settings),
        debug=False,
        logging_config=None,  # the process configures logging (cli), not the app
    )
    if settings.server.fast_routes:
        routes = _fast_routes(settings.server.base_path)
        install_fast_routes(app, routes, max_body=settings.server.max_body_bytes)
    install_observer(app, metrics_enabled=settings.metrics.enabled)
    return app


def _registry_routes(base_path: str) -> list[Any]:
    """The DCI registry endpoints, under `server.base_path` when one is set."""
    controllers = [SearchController, AsyncController, SubscribeController]
    if not base_path:
        return controllers
    return [Router(path=base_path, route_handlers=controllers)]


def _fast_routes(base_path: str) -> dict[str, FastRoute]:
    """The routes answered before Litestar's router (api/fastpath.py), by path."""
    search = FastRoute(f"{base_path}/registry/sync/search", answer_sync_search, style="sync")
    return {search.path: search}


async def _start_delivery(
    bridge: BridgeState,
    settings: Settings,
    clock: Clock,
    ids: IdSource,
    signer: EnvelopeSigner | None,
) -> None:
    """Async operations, the sender registry and this process's outbox worker."""
    engine = create_sync_engine(settings.database_url, pool_size=settings.database.pool_size)
    if signer is None:
        signer = bridge.security.signer  # the bridge's key store: rotation applies to callbacks
    commits = GroupCommit(engine)  # accepts and worker ticks share transactions
    operations = AsyncOperations(
        engine,
        bridge.search,
        settings,
        clock,
        ids,
        commits=commits,
        answer_inline=isinstance(bridge.source, EmbeddedFhirStore),  # cheap: answer at once
    )
    operations.audit = bridge.audit
    bridge.async_ops = operations
    bridge.senders = bridge.security.senders
    worker = Worker(
        engine,
        settings.delivery,
        clock=clock,
        signer=signer,
        commits=commits,
        encryption_keys=RecipientKeys(bridge.security),
    )
    worker.register(SEARCH_TASK, operations.run_search)
    if settings.delivery.worker:
        worker.start()
        bridge.delivery = worker

    async def stop() -> None:
        await worker.aclose()
        engine.dispose()

    bridge.shutdown_hooks.append(stop)


async def open_audit(settings: Settings, clock: Clock) -> AuditTrail | None:
    """The audit trail, or None (logged) when the database lacks its tables: `/ready` then
    reports the schema as behind, so an operator sees it."""
    try:
        return await AuditTrail.open(settings.database_url, clock, settings.audit)
    except sa.exc.SQLAlchemyError as exc:
        _log.error("audit trail unavailable", extra={"fields": {"error": type(exc).__name__}})
        return None


def _events_engine(settings: Settings, source: RecordSource) -> tuple[sa.Engine, bool]:
    """The engine of the event tables: the embedded store's, or one of our own."""
    if isinstance(source, EmbeddedFhirStore):
        return source.engine, False
    return create_sync_engine(settings.database_url, pool_size=settings.database.pool_size), True


def _wire_events(
    state: BridgeState,
    engine: sa.Engine,
    clock: Clock,
    ids: IdSource,
    sink: NotifySink | None,
    policies: PolicySource | None,
) -> None:
    """Subscriptions, webhook ingest and notify fan-out over one engine, under the senders'
    disclosure policies; callbacks go to the delivery outbox unless a test passes its own
    sink."""
    settings = state.settings
    callbacks: NotifySink = sink if sink is not None else OutboxSink()
    store = SubscriptionStore()
    fanout = Fanout(store, callbacks, settings, clock, ids, policies=policies)
    ingest = IngestService(engine, settings, clock, ids, fanout)

    def flush() -> int:
        with begin_write(engine) as conn:
            return fanout.flush_batches(conn, clock.now())

    def kick() -> None:
        if state.delivery is not None:
            state.delivery.kick()

    state.fanout = fanout
    state.ingest = ingest
    state.ingest_loop = IngestLoop(ingest, on_tick=flush, after_pass=kick)
    state.subscriptions = SubscriptionService(
        engine, store, settings, clock, ids, callbacks, policies=policies
    )


def _exception_handlers() -> dict[Any, Any]:
    return {
        DciError: handle_dci_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="dci-bridge",
        version=__version__,
        description="DCI CRVS registry API in front of an OpenCRVS civil registry.",
        path="/schema",
        render_plugins=[ScalarRenderPlugin()],
    )


def _initial_state(settings: Settings) -> State:
    return State({"registry_id": settings.registry.registry_id})
