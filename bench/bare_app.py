"""The baseline: a bare Litestar endpoint returning a fixed JSON body of similar size."""

from __future__ import annotations

from litestar import Litestar, Response, post

BODY = b'{"header":{"status":"succ"},"message":{"search_response":[]}}' + b" " * 900


@post("/registry/sync/search", status_code=200)
async def fixed() -> Response[bytes]:
    return Response(BODY, media_type="application/json")


def create() -> Litestar:
    return Litestar(route_handlers=[fixed], logging_config=None)
