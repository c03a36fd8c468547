"""Read-only admin API for deliveries: `GET /admin/deliveries[/{job_id}]`.

Behind an access token with the `registry.admin` scope (from `/oauth2/client/token` for a
client registered with `--scope registry.admin`), whatever `security.enabled` says.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from dci_bridge.api.state import BridgeState
from dci_bridge.crypto import bearer_token
from dci_bridge.crypto.tokens import SCOPE_ADMIN
from dci_bridge.delivery import outbox
from dci_bridge.delivery.views import detail_view, job_view
from dci_bridge.errors import NotFoundError, RequestError
from dci_bridge.protocol.codec import encode


def _authorize(request: Request[Any, Any, Any]) -> BridgeState:
    state: BridgeState = request.app.state.bridge
    state.security.tokens.verify(bearer_token(request.headers.get("authorization")), SCOPE_ADMIN)
    return state


class AdminController(Controller):
    path = "/admin/deliveries"
    tags = ["Admin"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @get(
        "/",
        operation_id="admin_list_deliveries",
        summary="Deliveries (callbacks, notifications), newest first, with counts per state",
        opt={"dci_style": "plain"},
    )
    async def list_deliveries(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """Query parameters: `state` (pending, done, dead), `kind`, `sender_id`, `limit`
        (1..1000, default 50)."""
        bridge = _authorize(request)
        query = request.query_params
        state, kind, sender_id = query.get("state"), query.get("kind"), query.get("sender_id")
        if state is not None and state not in outbox.STATES:
            raise RequestError(f"state must be one of {', '.join(outbox.STATES)}", path="state")
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise RequestError("limit must be a number from 1 to 1000", path="limit")
        engine = bridge.async_ops.engine if bridge.async_ops is not None else None
        assert engine is not None

        def read() -> dict[str, Any]:
            with engine.connect() as conn:
                jobs = outbox.list_jobs(
                    conn, state=state, kind=kind, sender_id=sender_id, limit=limit
                )
                return {"counts": outbox.count_by_state(conn), "jobs": [job_view(j) for j in jobs]}

        body = await anyio.to_thread.run_sync(read)
        return Response(encode(body), media_type="application/json")

    @get(
        "/{job_id:str}",
        operation_id="admin_show_delivery",
        summary="One delivery and every attempt of it",
        opt={"dci_style": "plain"},
    )
    async def show_delivery(
        self, request: Request[Any, Any, Any], job_id: FromPath[str]
    ) -> Response[bytes]:
        bridge = _authorize(request)
        engine = bridge.async_ops.engine if bridge.async_ops is not None else None
        assert engine is not None

        def read() -> outbox.JobDetail | None:
            with engine.connect() as conn:
                return outbox.get_job(conn, job_id)

        found = await anyio.to_thread.run_sync(read)
        if found is None:
            raise NotFoundError("no such delivery")
        return Response(encode(detail_view(found)), media_type="application/json")
