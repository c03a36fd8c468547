"""`/ready` and `/metrics`: readiness of the bridge's dependencies and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException

from dci_bridge.db.engine import create_sync_engine, head_revision, read_revision
from dci_bridge.ops import metrics
from dci_bridge.ops.readiness import NotReadyError, ReadinessCheck


@get(
    "/ready",
    operation_id="ready",
    tags=["Operations"],
    summary="Readiness: 200 when every dependency is usable, else 503 naming the failing ones",
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    results = await request.app.state.bridge.readiness.run()
    ok = all(result.ok for result in results)
    body = {
        "status": "ready" if ok else "not_ready",
        "checks": {r.name: {"ok": r.ok, "detail": r.detail, "seconds": r.seconds} for r in results},
    }
    return Response(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    if not request.app.state.bridge.settings.metrics.enabled:
        raise NotFoundException()
    worker = request.app.state.bridge.delivery
    if worker is not None:  # outbox depth is counted when scraped, not on every change
        await asyncio.to_thread(_count_outbox, worker.engine)
    payload = await asyncio.to_thread(metrics.render)
    return Response(payload, media_type=metrics.CONTENT_TYPE_LATEST)


def _count_outbox(engine: sa.Engine) -> None:
    from dci_bridge.delivery.outbox import STATES, count_by_state

    try:
        with engine.connect() as conn:
            counts = count_by_state(conn)
    except sa.exc.SQLAlchemyError:
        return  # the database check of /ready reports this; metrics stay available
    for state in (*STATES, *counts):
        metrics.set_outbox_depth(state, counts.get(state, 0))


def database_check(url: str) -> tuple[ReadinessCheck, sa.Engine]:
    """A check that the database answers and its schema is at this code's head revision."""
    engine = create_sync_engine(url, pool_size=1)
    head = head_revision()

    def probe() -> None:
        try:
            with engine.connect() as conn:
                current = read_revision(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise NotReadyError(f"database unreachable ({type(exc).__name__})") from None
        if current != head:
            raise NotReadyError(f"schema at {current or 'nothing'}, code needs {head}")

    async def check() -> None:
        await asyncio.to_thread(probe)

    return check, engine
