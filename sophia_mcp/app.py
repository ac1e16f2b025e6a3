"""The ASGI application: streamable HTTP MCP at `/mcp`, the REST shim at `/api/v4`, and the
operational endpoints `/health`, `/ready`, `/metrics`. Middleware is pure ASGI (Starlette's
BaseHTTPMiddleware measured 4x slower here)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    RequestBodyLimitMiddleware,
    TransportSecurityMiddleware,
    TransportSecuritySettings,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sophia_mcp import metrics, rest
from sophia_mcp.config import Settings
from sophia_mcp.errors import PROBLEM_BASE, SophiaError, Unauthenticated
from sophia_mcp.registry import ToolSpec
from sophia_mcp.server import PRINCIPAL_HEADER
from sophia_mcp.service import Service

log = logging.getLogger("sophia_mcp")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
OPEN_PATHS = ("/health", "/ready", "/metrics")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings:
    """Host/Origin checks against DNS rebinding, on whatever the bind address: the hosts and origins
    of SOPHIA_ALLOWED_HOSTS / SOPHIA_ALLOWED_ORIGINS (a host without a port allows any port), plus
    loopback when bound to loopback or when no host is configured."""
    hosts = [h for host_name in settings.allowed_hosts for h in _with_any_port(host_name)]
    origins = list(settings.allowed_origins)
    if is_loopback(host) or not hosts:
        hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
        origins += ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _with_any_port(host: str) -> list[str]:
    return [host] if re.search(r":(\d+|\*)$", host) and not host.endswith("]") else [host, f"{host}:*"]


class HostCheck:
    """DNS-rebinding protection for everything but the probes (`/health`, `/ready`, `/metrics`, which
    kubelets and Prometheus call by pod IP): a Host or Origin that is not allowed is refused, 421 or
    403, before authentication. `/mcp` and `/api` apply the same rules."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        refusal = await self.check.validate_request(Request(scope, receive))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        header, setting = (
            ("Host", "SOPHIA_ALLOWED_HOSTS") if refusal.status_code == 421 else ("Origin", "SOPHIA_ALLOWED_ORIGINS")
        )
        problem = {
            "type": PROBLEM_BASE + "host-not-allowed",
            "title": "Host or Origin not allowed",
            "status": refusal.status_code,
            "detail": f"{header} {headers.get(header.lower())!r} is not allowed here (DNS-rebinding protection); "
            f"the operator can allow it with {setting}.",
            "instance": scope["path"],
        }
        response = Response(json.dumps(problem), status_code=refusal.status_code, media_type="application/problem+json")
        await response(scope, receive, send)


#: what a JSON-RPC request carries when it wants notifications on its own response
NOTIFICATION_MARKERS = (b'"progressToken"', b'"io.modelcontextprotocol/logLevel"')


class MCPEndpoint:
    """`/mcp`: stateless streamable HTTP, so any replica answers any request. Responses are JSON (an SSE
    response costs more: 15-35% fewer tools/call per second measured here, 1.5-2x in DESIGN.md) unless
    the request asks for notifications that only an SSE response can carry (progress, via
    `_meta.progressToken`; on 2026-07-28, log messages via `_meta`'s log level) and accepts
    `text/event-stream`: those requests are served with SSE."""

    def __init__(self, json_manager: StreamableHTTPSessionManager, sse_manager: StreamableHTTPSessionManager) -> None:
        self.json_manager, self.sse_manager = json_manager, sse_manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        accept = Headers(scope=scope).get("accept", "")
        if scope["method"] != "POST" or "text/event-stream" not in accept:
            await self.json_manager.handle_request(scope, receive, send)
            return
        first: Message | None = await receive()  # the whole body: RequestBodyLimitMiddleware buffered it
        assert first is not None
        wants_notifications = any(marker in first.get("body", b"") for marker in NOTIFICATION_MARKERS)

        async def replay() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        manager = self.sse_manager if wants_notifications else self.json_manager
        await manager.handle_request(scope, replay, send)


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


async def internal_error(request: Request, exc: Exception) -> Response:
    """A bug answers with a problem document that says what to do, never a stack trace."""
    error = SophiaError("sophia-mcp failed unexpectedly; the server log has the details. Try again, or report it.")
    return rest.problem_response(error, request.url.path)


def create_app(
    service: Service,
    mcp_server: MCPServer,
    specs: list[ToolSpec],
    *,
    host: str = "127.0.0.1",
) -> Starlette:
    settings = service.settings
    security = transport_security(settings, host)
    if not is_loopback(host) and not settings.allowed_hosts:
        log.warning("bound to %s with SOPHIA_ALLOWED_HOSTS unset: only requests addressed to localhost are served; "
                    "set it to the host names clients use (DNS-rebinding protection)", host)
    json_manager, sse_manager = (
        StreamableHTTPSessionManager(
            app=mcp_server._lowlevel_server,  # the SDK exposes no public accessor for the low-level server
            json_response=json_response,
            stateless=True,
            security_settings=security,
        )
        for json_response in (True, False)
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

    mcp_endpoint = RequestBodyLimitMiddleware(MCPEndpoint(json_manager, sse_manager), DEFAULT_MAX_REQUEST_BODY_SIZE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            async with json_manager.run(), sse_manager.run():
                yield
        finally:
            await service.aclose()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *rest.routes(service, specs),
            Route("/mcp", mcp_endpoint),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: internal_error},
    )
    app.add_middleware(APIKeyAuth, settings=settings)
    app.add_middleware(HostCheck, security=security)
    app.add_middleware(RequestMetrics)
    return app
