"""The simulator as a plain ASGI application (`OpenCrvsSimulator`).

Plain ASGI rather than Litestar: the simulator must reproduce OpenCRVS's bytes exactly (an
empty 202, text error bodies, GraphQL errors with HTTP 200, hapi's error shape) rather than
a framework's, it stays out of the `api` layer (Litestar is only allowed there), and its own
CPU cost per call must be small next to the bridge it is used to measure.

All three OpenCRVS services share one port: auth (`/token`, `/auth/token`,
`/authenticateSystemClient`, `/.well-known`), gateway (`/graphql`, `/location[s]`,
`/events/...`) and webhooks (`/webhooks`); point the three base URLs at it. v2 mode also
serves the events API under `/api/events/` and `/events/`. Test controls live under
`/_sim/` (never faulted): `faults`, `register`, `deliveries`, `expire-tokens`, `reset`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import httpx
import msgspec

from dci_bridge.clock import isoformat_z
from dci_bridge.ops.asgi import read_body
from dci_bridge.records.seed_fhir import location_resource
from dci_bridge.upstream.simulator import v2
from dci_bridge.upstream.simulator.config import Faults, SimClient, SimulatorConfig
from dci_bridge.upstream.simulator.population import (
    Population,
    SearchInputError,
    search_set_json,
)
from dci_bridge.upstream.simulator.registrations import RegistrationMint
from dci_bridge.upstream.simulator.tokens import Claims, TokenIssuer
from dci_bridge.upstream.simulator.webhooks import WebhookHub

log = logging.getLogger("dci_bridge.simulator")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json; charset=utf-8"
TOKEN_PATHS = frozenset({"/token", "/auth/token", "/authenticateSystemClient"})
_ENCODE = msgspec.json.encode
_DECODE = msgspec.json.decode


class Request:
    """The parts of an HTTP request the handlers read."""

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        self.headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.body = body

    def json(self) -> Any:
        return _DECODE(self.body)

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def json_response(status: int, value: Any, **headers: str) -> Response:
    return Response(status, _ENCODE(value), {"content-type": JSON.decode(), **headers})


def hapi_error(status: int, error: str, message: str) -> Response:
    return json_response(status, {"statusCode": status, "error": error, "message": message})


def graphql_error(message: str, code: str, status: int = 200, **extra: Any) -> Response:
    extensions: dict[str, Any] = {"code": code, **extra}
    return json_response(status, {"errors": [{"message": message, "extensions": extensions}]})


UNAUTHORIZED = graphql_error("Unauthorized", "UNAUTHENTICATED")


class OpenCrvsSimulator:
    """An in-process OpenCRVS (v1.x, or v2 with `generation="v2"`), as an ASGI callable."""

    def __init__(
        self, config: SimulatorConfig | None = None, *, population: Population | None = None
    ) -> None:
        self.config = config or SimulatorConfig()
        self.faults: Faults = self.config.faults
        self.population = population or Population.seeded(self.config.persons, self.config.seed)
        self.tokens = TokenIssuer()
        self.clients: dict[str, SimClient] = {c.client_id: c for c in self.config.clients}
        self._by_sub = {self.system_id(c): c for c in self.config.clients}
        self._http: httpx.AsyncClient | None = None
        self._hub: WebhookHub | None = None
        self.mint = RegistrationMint(self.config.seed, self.population.locations)
        self.searches: dict[tuple[str, str], int] = {}
        """(client id, UTC day) -> searches with hits (the daily quota counts these)."""
        self.fetches = 0
        """fetchRegistration / GET event calls served (each is an audited read in OpenCRVS)."""
        self.hook_url: str = self.config.hook_url
        """v2: country-config base URL lifecycle hooks are POSTed to (`POST /_sim/hook`)."""
        self.v2_index: dict[str, tuple[Any, dict[str, Any]]] = {}

    @staticmethod
    def system_id(client: SimClient) -> str:
        if client.system_id:
            return client.system_id
        return client.client_id.replace("-", "")[:24]

    # --- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, await read_body(receive))
        try:
            response = await self.handle(request)
        except Exception:  # the simulator answers like a crashed gateway, never with a trace
            log.exception("simulator handler failed")
            response = hapi_error(500, "Internal Server Error", "An internal server error occurred")
        headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                    self._http = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    @property
    def hub(self) -> WebhookHub:
        if self._hub is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
            self._hub = WebhookHub(
                self._http,
                handshake_timeout_s=self.config.handshake_timeout_s,
                delivery_timeout_s=self.config.delivery_timeout_s,
                strict_scope=self.config.strict_webhook_scope,
            )
        return self._hub

    # --- routing -----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/_sim/"):
            return await self._control(request, path)
        faulted = await self._faults(path)
        if faulted is not None:
            return faulted
        method = request.method
        if path in TOKEN_PATHS and method == "POST":
            return self._token(request, legacy=path == "/authenticateSystemClient")
        if path == "/.well-known" and method == "GET":
            return Response(200, self.tokens.public_pem, {"content-type": "text/plain"})
        if path == "/graphql" and method == "POST" and self.config.generation == "v1":
            return self._graphql(request)
        if path == "/webhooks" and self.config.generation == "v1":
            return await self._webhooks(request)
        if path.startswith("/webhooks/") and method == "DELETE":
            return self._delete_webhook(request, path.removeprefix("/webhooks/"))
        if path.startswith(("/location", "/api/events/locations")) and method == "GET":
            return self._locations(request, path)
        if self.config.generation == "v2" and path.startswith(v2.PREFIXES):
            return self._v2(request, path)
        return hapi_error(404, "Not Found", "Not Found")

    async def _faults(self, path: str) -> Response | None:
        f = self.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        is_token = path in TOKEN_PATHS
        hit = f.scope == "all" or (f.scope == "token") == is_token
        if not hit or path == "/.well-known":
            return None
        if f.hang_next > 0:
            f.hang_next -= 1
            await asyncio.sleep(f.hang_s)
        if f.fail_next > 0:
            f.fail_next -= 1
            status = f.fail_status
            return hapi_error(status, _REASONS.get(status, "Error"), "upstream failure (simulated)")
        if f.malformed_next > 0:
            f.malformed_next -= 1
            if f.malformed_kind == "json":
                return Response(200, b'{"data": {"searchEvents": {"totalItems": 1, "res', {})
            return json_response(200, {"data": {"unexpected": [1, 2, 3]}})
        return None

    # --- auth --------------------------------------------------------------------------

    def _client(self, request: Request) -> tuple[SimClient | None, Claims | None]:
        token = request.bearer
        claims = self.tokens.verify(token) if token else None
        if claims is None:
            return None, None
        return self._by_sub.get(claims.sub), claims

    def _token(self, request: Request, *, legacy: bool) -> Response:
        params: dict[str, Any] = dict(request.query)
        if legacy or (self.config.generation == "v2" and request.body):
            try:
                body = request.json()
            except msgspec.DecodeError:
                body = {
                    k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()
                }
            if isinstance(body, dict):
                params = {**body, **params}
        client_id, secret = params.get("client_id"), params.get("client_secret")
        if legacy:
            client = self.clients.get(str(client_id))
            if client is None or client.client_secret != secret or client.status != "active":
                return hapi_error(401, "Unauthorized", "Unauthorized")
            return json_response(200, {"token": self._issue(client)})
        if not client_id or not secret:
            return json_response(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Missing client_id or client_secret",
                    "error_uri": "https://www.rfc-editor.org/rfc/rfc6749#section-5.2",
                },
            )
        if params.get("grant_type") != "client_credentials":
            return json_response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only client_credentials is supported",
                    "error_uri": "https://www.rfc-editor.org/rfc/rfc6749#section-5.2",
                },
            )
        client = self.clients.get(str(client_id))
        if client is None or client.client_secret != secret or client.status != "active":
            return json_response(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "Invalid client id or secret",
                    "error_uri": "https://www.rfc-editor.org/rfc/rfc6749#section-5.2",
                },
            )
        token = self._issue(client)
        return json_response(
            200, {"access_token": token, "token_type": "Bearer"}, **{"cache-control": "no-store"}
        )

    def _issue(self, client: SimClient) -> str:
        scopes = list(v2.V2_SCOPES) if self.config.generation == "v2" else client.scopes
        return self.tokens.issue(
            self.system_id(client),
            scopes,
            self.faults.token_ttl_s,
            health=client.type == "HEALTH",
        )

    # --- GraphQL -----------------------------------------------------------------------

    def _graphql(self, request: Request) -> Response:
        try:
            body = request.json()
        except msgspec.DecodeError:
            return graphql_error("POST body is not valid JSON", "BAD_REQUEST", 400)
        if not isinstance(body, dict):
            return graphql_error("POST body must be a JSON object", "BAD_REQUEST", 400)
        client, claims = self._client(request)
        if claims is None:
            return UNAUTHORIZED
        op = body.get("operationName")
        raw_query = body.get("query")
        query = raw_query if isinstance(raw_query, str) else ""
        if op not in ("searchEvents", "fetchRegistration"):
            op = next((n for n in ("searchEvents", "fetchRegistration") if n in query), None)
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return graphql_error("Variables must be an object", "BAD_USER_INPUT", 400)
        if op == "searchEvents":
            return self._search_events(client, claims, variables)
        if op == "fetchRegistration":
            return self._fetch_registration(claims, variables)
        return graphql_error(
            "Cannot query this operation on type Query", "GRAPHQL_VALIDATION_FAILED", 400
        )

    def _search_events(
        self, client: SimClient | None, claims: Claims, variables: dict[str, Any]
    ) -> Response:
        params = variables.get("advancedSearchParameters")
        if not isinstance(params, dict):
            return graphql_error(
                'Variable "$advancedSearchParameters" of required type '
                '"AdvancedSearchParametersInput!" was not provided.',
                "BAD_USER_INPUT",
                400,
            )
        if "recordsearch" not in claims.scope and "search" not in claims.scope:
            return json_response(
                200, {"data": {"searchEvents": {"totalItems": 0, "results": []}}}
            )  # OpenCRVS answers a token without search scope with nothing, silently
        day = dt.datetime.now(dt.UTC).date().isoformat()
        key = (client.client_id if client else claims.sub, day)
        quota = client.daily_quota if client else 0
        if self.faults.quota_exceeded or self.searches.get(key, 0) >= quota:
            return self._quota_error()
        count, skip = variables.get("count", 10), variables.get("skip", 0)
        sort_by = variables.get("sortBy") or []
        if not isinstance(count, int) or not isinstance(skip, int) or not isinstance(sort_by, list):
            return graphql_error(
                "count, skip and sortBy have the wrong type", "BAD_USER_INPUT", 400
            )
        try:
            total, page = self.population.search(params, count=count, skip=skip, sort_by=sort_by)
        except SearchInputError as exc:
            return graphql_error(str(exc), "BAD_USER_INPUT", 400)
        if total:
            self.searches[key] = self.searches.get(key, 0) + 1
        results = [search_set_json(r) for r in page]
        return json_response(
            200, {"data": {"searchEvents": {"totalItems": total, "results": results}}}
        )

    def _quota_error(self) -> Response:
        message = "Daily search quota exceeded"
        style = self.faults.quota_style
        if style == "v1.3":
            return graphql_error(message, "INTERNAL_SERVER_ERROR")
        if style == "v1.5":
            return graphql_error(message, "DAILY_QUOTA_EXCEEDED")
        return graphql_error(message, "RATE_LIMIT_EXCEEDED", 429, http={"status": 429})

    def _fetch_registration(self, claims: Claims, variables: dict[str, Any]) -> Response:
        record_id = variables.get("id")
        if not isinstance(record_id, str):
            return graphql_error(
                'Variable "$id" of required type "ID!" was not provided.', "BAD_USER_INPUT", 400
            )
        if not {"recordsearch", "nationalId", "webhook"} & set(claims.scope):
            return graphql_error("You do not have permission to perform this action", "FORBIDDEN")
        data = self.population.registration_bytes(record_id)
        if data is None:
            return json_response(
                200,
                {
                    "errors": [
                        {
                            "message": "Record not found",
                            "path": ["fetchRegistration"],
                            "extensions": {"code": "NOT_FOUND"},
                        }
                    ],
                    "data": None,
                },
            )
        self.fetches += 1
        body = b'{"data":{"fetchRegistration":' + data + b"}}"
        return Response(200, body, {"content-type": JSON.decode()})

    # --- webhooks ----------------------------------------------------------------------

    async def _webhooks(self, request: Request) -> Response:
        client, claims = self._client(request)
        if claims is None:
            return hapi_error(401, "Unauthorized", "Invalid token")
        if request.method == "GET":
            if client is None:
                return hapi_error(401, "Unauthorized", "Unauthorized")
            return json_response(200, {"entries": self.hub.entries(client)})
        if request.method != "POST":
            return hapi_error(405, "Method Not Allowed", "Method Not Allowed")
        try:
            body = request.json()
        except msgspec.DecodeError:
            return hapi_error(400, "Bad Request", "Invalid request payload JSON format")
        status, payload = await self.hub.subscribe(client, body)
        if status == 202:
            return Response(202, b"", {})
        ctype = "application/json; charset=utf-8" if payload.startswith(b"{") else "text/plain"
        return Response(status, payload, {"content-type": ctype})

    def _delete_webhook(self, request: Request, subscription_id: str) -> Response:
        client, claims = self._client(request)
        if claims is None or client is None:
            return hapi_error(401, "Unauthorized", "Invalid token")
        if not self.hub.delete(client, subscription_id):
            return hapi_error(404, "Not Found", "Subscription not found")
        return Response(204, b"", {})

    # --- locations ---------------------------------------------------------------------

    def _locations(self, request: Request, path: str) -> Response:
        index = self.population.locations
        base = self.config.base_url or f"http://{request.headers.get('host', 'localhost')}"
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] in ("location", "locations"):
            found = index.get(parts[1])
            if found is None:
                return hapi_error(404, "Not Found", "Location not found")
            return json_response(200, location_resource(found))
        wanted = list(index)
        q = request.query
        if "type" in q:
            wanted = [loc for loc in wanted if loc.type.value == q["type"]]
        if "identifier" in q:
            wanted = [loc for loc in wanted if loc.identifier_value == q["identifier"]]
        if "name" in q:
            wanted = [loc for loc in wanted if loc.name == q["name"]]
        if q.get("status", "active") != "active":
            wanted = []
        bundle = {
            "resourceType": "Bundle",
            "id": "locations",
            "meta": {"lastUpdated": isoformat_z(dt.datetime.now(dt.UTC))},
            "type": "searchset",
            "total": len(wanted),
            "link": [{"relation": "self", "url": f"{base}{path}"}],
            "entry": [
                {"fullUrl": f"{base}/location/{loc.id}", "resource": location_resource(loc)}
                for loc in wanted
            ],
        }
        return json_response(200, bundle)

    # --- v2 ----------------------------------------------------------------------------

    def _v2(self, request: Request, path: str) -> Response:
        _, claims = self._client(request)
        if claims is None:
            return hapi_error(401, "Unauthorized", "Unauthorized")
        status, body = v2.handle(self, request.method, path, request.body, claims)
        if body is None:
            return Response(status, b"", {})
        return json_response(status, body)

    # --- test controls -----------------------------------------------------------------

    async def _control(self, request: Request, path: str) -> Response:
        name = path.removeprefix("/_sim/")
        if name == "health":
            return json_response(200, {"status": "ok", "generation": self.config.generation})
        if name == "faults":
            if request.method == "POST":
                try:
                    changes = request.json()
                    self.set_faults(**changes)
                except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
                    return json_response(400, {"error": str(exc)})
            elif request.method == "DELETE":
                self.set_faults(reset=True)
            return json_response(200, msgspec.to_builtins(self.faults))
        if name == "hook" and request.method == "POST":
            try:
                self.hook_url = str(request.json().get("url") or "")
            except (msgspec.DecodeError, AttributeError):
                return json_response(400, {"error": 'body must be {"url": ...}'})
            return json_response(200, {"url": self.hook_url})
        if name == "expire-tokens" and request.method == "POST":
            self.tokens.expire_all()
            return json_response(200, {"expired": True})
        if name == "reset" and request.method == "POST":
            self.set_faults(reset=True)
            self.searches.clear()
            self.tokens.expire_all()
            return json_response(200, {"reset": True})
        if name == "deliveries":
            return json_response(200, {"deliveries": [d.summary() for d in self.hub.deliveries]})
        if name == "stats":
            return json_response(
                200, {"fetches": self.fetches, "searches": sum(self.searches.values())}
            )
        if name == "register" and request.method == "POST":
            return await self._register(request)
        return hapi_error(404, "Not Found", "Not Found")

    def set_faults(self, *, reset: bool = False, **changes: Any) -> Faults:
        """Change fault switches in place (`reset` first restores the defaults)."""
        base = msgspec.to_builtins(Faults() if reset else self.faults)
        base.update(changes)
        self.faults = msgspec.convert(base, Faults)
        return self.faults

    async def _register(self, request: Request) -> Response:
        try:
            body = request.json() if request.body else {}
        except msgspec.DecodeError:
            return json_response(400, {"error": "body is not JSON"})
        event = str(body.get("event", "birth")).lower()
        if event not in ("birth", "death"):
            return json_response(400, {"error": "event must be birth or death"})
        bundle = body.get("bundle")
        if bundle is None:
            bundle = self.mint.next(event)
        elif not isinstance(bundle, dict):
            return json_response(400, {"error": "bundle must be a FHIR Bundle object"})
        try:
            record = self.population.add(bundle)
        except ValueError as exc:  # MappingError
            return json_response(400, {"error": str(exc)})
        topic = str(body.get("topic") or f"{event.upper()}_REGISTERED")
        answer: dict[str, Any] = {
            "record_id": record.record_id,
            "tracking_id": record.tracking_id,
            "registration_number": record.registration_number,
            "topic": topic,
        }
        if self.config.generation == "v2":
            answer["hook"] = await v2.send_hook(self, record, event)
            return json_response(201, answer)
        deliveries = await self.hub.notify(topic, bundle, event, self.faults)
        answer["deliveries"] = [d.summary() for d in deliveries]
        return json_response(201, answer)


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    429: "Too Many Requests",
}
