"""The ASGI application: streamable HTTP MCP at `/mcp`, the REST shim at `/api/v4`, and the
operational endpoints `/health`, `/ready`, `/metrics`. Middleware is pure ASGI (Starlette's
BaseHTTPMiddleware measured 4x slower here)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sophia_mcp import metrics, rest
from sophia_mcp.config import Settings
from sophia_mcp.errors import Unauthenticated
from sophia_mcp.registry import ToolSpec
from sophia_mcp.server import PRINCIPAL_HEADER
from sophia_mcp.service import Service

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
OPEN_PATHS = ("/health", "/ready", "/metrics")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings:
    """Host/Origin checks against DNS rebinding, on whatever the bind address."""
    hosts = list(settings.allowed_hosts)
    origins = list(settings.allowed_origins)
    if is_loopback(host) or not hosts:
        hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
        origins += ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class RequestMetrics:
    """Times every request into `http_request_duration_seconds{method, route, status}`; the route is
    the matched template (`/api/v4/mcp/{platform}/projects`), so label values stay bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: dict) -> None:  # type: ignore[type-arg]
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)  # type: ignore[arg-type]

        try:
            await self.app(scope, receive, send_with_status)  # type: ignore[arg-type]
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_REQUEST_DURATION.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )


class APIKeyAuth:
    """With `SOPHIA_API_KEYS` set, `/mcp` and `/api` need `Authorization: Bearer <key>` (or
    `X-API-Key`). The caller's identity (a digest of its key) travels on as the principal."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = {k.get_secret_value().encode(): _key_id(k.get_secret_value()) for k in settings.api_keys}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # whatever the client sent as a principal header is dropped: only this middleware sets it
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != PRINCIPAL_HEADER.encode()]
        if not self.keys or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        presented = headers.get("x-api-key") or ""
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        principal = next(
            (ident for key, ident in self.keys.items() if hmac.compare_digest(key, presented.encode())), None
        )
        if principal is None:
            error = Unauthenticated(
                "missing or unknown API key: send `Authorization: Bearer <key>` with a key from SOPHIA_API_KEYS."
            )
            response = rest.problem_response(error, scope["path"])
            response.headers["WWW-Authenticate"] = 'Bearer realm="sophia-mcp"'
            await response(scope, receive, send)
            return
        scope[rest.PRINCIPAL_SCOPE_KEY] = principal
        scope["headers"].append((PRINCIPAL_HEADER.encode(), principal.encode()))
        await self.app(scope, receive, send)


def _key_id(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def create_app(
    service: Service,
    mcp_server: MCPServer,
    specs: list[ToolSpec],
    *,
    host: str = "127.0.0.1",
) -> Starlette:
    settings = service.settings
    session_manager = StreamableHTTPSessionManager(
        app=mcp_server._lowlevel_server,  # the SDK exposes no public accessor for the low-level server
        json_response=True,
        stateless=True,
        security_settings=transport_security(settings, host),
    )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        problems = await service.readiness_problems()
        body = {"status": "ready" if not problems else "not ready", "problems": problems,
                "configured_platforms": service.configured_platforms()}
        return JSONResponse(body, status_code=200 if not problems else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            async with session_manager.run():
                yield
        finally:
            await service.aclose()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *rest.routes(service, specs),
            Route("/mcp", StreamableHTTPASGIApp(session_manager)),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(APIKeyAuth, settings=settings)
    app.add_middleware(RequestMetrics)
    return app
