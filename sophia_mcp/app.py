"""The ASGI application: streamable HTTP MCP at `/mcp`, the REST shim at `/api/v4`, and the
operational endpoints `/health`, `/ready`, `/metrics`, behind one pure-ASGI `Gate` (metrics,
Host/Origin checks, API keys), which hands `/mcp` and the projects pages straight to their endpoints
and the rest to Starlette."""

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
    TransportSecuritySettings,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sophia_mcp import metrics, rest
from sophia_mcp.config import Settings
from sophia_mcp.errors import PROBLEM_BASE, MethodNotAllowed, NotFound, SophiaError, Unauthenticated
from sophia_mcp.registry import ToolSpec
from sophia_mcp.service import Service, request_principal

log = logging.getLogger("sophia_mcp")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
OPEN_PATHS = ("/health", "/ready", "/metrics")
MCP_PATH = "/mcp"


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class HostRules:
    """DNS-rebinding protection: the Host and Origin headers a request may carry. Names from
    SOPHIA_ALLOWED_HOSTS / SOPHIA_ALLOWED_ORIGINS (a host without a port allows any port), plus
    loopback when bound to loopback or when no host is configured. A missing Origin is allowed
    (same-origin and non-browser clients send none); a missing Host is not."""

    def __init__(self, settings: Settings, bind_host: str) -> None:
        hosts = [h for name in settings.allowed_hosts for h in _with_any_port(name)]
        origins = list(settings.allowed_origins)
        if is_loopback(bind_host) or not hosts:
            hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
            origins += ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
        self.hosts, self.host_prefixes = _split_patterns(hosts)
        self.origins, self.origin_prefixes = _split_patterns(origins)

    def allows_host(self, host: str | None) -> bool:
        return host is not None and (host in self.hosts or host.startswith(self.host_prefixes))

    def allows_origin(self, origin: str | None) -> bool:
        return not origin or origin in self.origins or origin.startswith(self.origin_prefixes)


def _with_any_port(host: str) -> list[str]:
    return [host] if re.search(r":(\d+|\*)$", host) and not host.endswith("]") else [host, f"{host}:*"]


def _split_patterns(patterns: list[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Exact values, and the prefixes of `name:*` patterns (`name:` then any port)."""
    exact = frozenset(p for p in patterns if not p.endswith(":*"))
    return exact, tuple(p[:-1] for p in patterns if p.endswith(":*"))


class Gate:
    """Every HTTP request passes here once: timed into `http_request_duration_seconds{method, route,
    status}` (the matched route template, so label values stay bounded); then, for everything but
    the probes (`/health`, `/ready`, `/metrics`, which kubelets and Prometheus call by pod IP), a Host
    or Origin that is not allowed is refused (421 or 403), and with `SOPHIA_API_KEYS` set a request
    needs `Authorization: Bearer <key>` (or `X-API-Key`). The caller's identity (a digest of its key)
    is `request_principal` for the rest of the request. One pure-ASGI layer that reads the headers
    once (Starlette's BaseHTTPMiddleware measured 4x slower here). It sits inside Starlette's error
    layer (a bug answers with a problem document) and hands the two endpoints clients poll, `/mcp`
    and GET of a projects page, straight to them, past the router."""

    def __init__(
        self, app: ASGIApp, mcp: ASGIApp, projects: ASGIApp, settings: Settings, rules: HostRules
    ) -> None:
        self.app, self.mcp, self.projects = app, mcp, projects
        self.rules = rules
        self.keys = {k.get_secret_value().encode(): _key_id(k.get_secret_value()) for k in settings.api_keys}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # until a response starts; none at all means the client went away first

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        path = scope["path"]
        endpoint, route = self._direct(scope)
        try:
            refusal = None if path.startswith(OPEN_PATHS) else self._admit(scope)
            if refusal is not None:
                await refusal(scope, receive, send_with_status)
            else:
                await (endpoint or self.app)(scope, receive, send_with_status)
        except BaseException:
            status = status or 500  # what the error layer (or uvicorn, on cancellation) answers
            raise
        finally:
            route = route or getattr(scope.get("route"), "path", None) or "unmatched"
            # 499, nginx's "client closed request": a client that left is not a server error
            metrics.child(metrics.HTTP_REQUEST_DURATION, scope["method"], route, str(status or 499)).observe(
                time.perf_counter() - started
            )

    def _direct(self, scope: Scope) -> tuple[ASGIApp | None, str | None]:
        """The endpoint (and route template) that serves this request without the router, if any."""
        path = scope["path"]
        if path == MCP_PATH:
            return self.mcp, MCP_PATH
        if scope["method"] == "GET" and (platform := rest.projects_platform(path)) is not None:
            scope["path_params"] = {"platform": platform}
            return self.projects, rest.PROJECTS_PATH
        return None, None

    def _admit(self, scope: Scope) -> Response | None:
        """None when the request may go on (with its principal set), else the refusal to send."""
        host = origin = presented = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                presented = value[7:].strip()
            elif name == b"x-api-key" and presented is None:
                presented = value
        if not self.rules.allows_host(host):
            return host_refusal(scope, 421, "Host", host, "SOPHIA_ALLOWED_HOSTS")
        if not self.rules.allows_origin(origin):
            return host_refusal(scope, 403, "Origin", origin, "SOPHIA_ALLOWED_ORIGINS")
        if not self.keys:
            return None
        principal = next(
            (ident for key, ident in self.keys.items() if hmac.compare_digest(key, presented or b"")), None
        )
        if principal is None:
            error = Unauthenticated(
                "missing or unknown API key: send `Authorization: Bearer <key>` with a key from SOPHIA_API_KEYS."
            )
            response = rest.problem_response(error, scope["path"])
            response.headers["WWW-Authenticate"] = 'Bearer realm="sophia-mcp"'
            return response
        request_principal.set(principal)  # uvicorn serves each request in its own task (and context)
        return None


def host_refusal(scope: Scope, status: int, header: str, value: str | None, setting: str) -> Response:
    problem = {
        "type": PROBLEM_BASE + "host-not-allowed",
        "title": "Host or Origin not allowed",
        "status": status,
        "detail": f"{header} {value!r} is not allowed here (DNS-rebinding protection); "
        f"the operator can allow it with {setting}.",
        "instance": scope["path"],
    }
    return Response(json.dumps(problem), status_code=status, media_type="application/problem+json")


#: what a JSON-RPC request carries when it wants notifications on its own response
NOTIFICATION_MARKERS = (b'"progressToken"', b'"io.modelcontextprotocol/logLevel"')


# Stateless, the server has no stream of its own to offer: a 2025 client's GET stream would belong to no
# session and stay silent (2026-07-28 clients subscribe with `subscriptions/listen`). The transport spec's
# answer for "no SSE stream at this endpoint" is 405, which clients expect.
NO_STREAM_ON_GET = JSONResponse(
    {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": (
        "Method Not Allowed: this server is stateless and offers no server-to-client stream on GET; "
        "send each request as a POST to /mcp")}},
    status_code=405,
    headers={"Allow": "POST"},
)


class MCPEndpoint:
    """`/mcp`: stateless streamable HTTP, so any replica answers any request. Responses are JSON (an SSE
    response costs more: 15-35% fewer tools/call per second measured here, 1.5-2x in DESIGN.md) unless
    the request asks for notifications that only an SSE response can carry (progress, via
    `_meta.progressToken`; on 2026-07-28, log messages via `_meta`'s log level) and accepts
    `text/event-stream`: those requests are served with SSE. A POST body is read here, once, and
    refused (413) past `max_body_size`, as the SDK's own `RequestBodyLimitMiddleware` would."""

    def __init__(
        self,
        json_manager: StreamableHTTPSessionManager,
        sse_manager: StreamableHTTPSessionManager,
        max_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE,
    ) -> None:
        self.json_manager, self.sse_manager, self.max_body_size = json_manager, sse_manager, max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":  # the SDK would hold a stream open that nothing can ever be sent on
            await NO_STREAM_ON_GET(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.json_manager.handle_request(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_size:
                await Response("Request body too large", status_code=413)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        accept = next((value for name, value in scope["headers"] if name == b"accept"), b"")
        wants_sse = b"text/event-stream" in accept and any(marker in body for marker in NOTIFICATION_MARKERS)
        first: Message | None = {"type": "http.request", "body": body, "more_body": False}

        async def replay() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        await (self.sse_manager if wants_sse else self.json_manager).handle_request(scope, replay, send)


def _key_id(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


ENDPOINTS = ("/api/v4/mcp/{platform}/projects, /api/v4/mcp/platforms, /api/v4/mcp/tools, /mcp (MCP), "
             "/health, /ready and /metrics")


async def http_problem(request: Request, exc: HTTPException) -> Response:
    """The router's 404 and 405 as problem documents that say what is served, like every other error."""
    error: SophiaError
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error = MethodNotAllowed(f"{request.method} is not served at {request.url.path}; use {allowed}.")
    else:
        error = NotFound(f"nothing is served at {request.url.path}; this server serves {ENDPOINTS}.")
    response = rest.problem_response(error, request.url.path)
    response.headers.update(exc.headers or {})
    return response


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
    if not is_loopback(host) and not settings.allowed_hosts:
        log.warning("bound to %s with SOPHIA_ALLOWED_HOSTS unset: only requests addressed to localhost are served; "
                    "set it to the host names clients use (DNS-rebinding protection)", host)
    json_manager, sse_manager = (
        StreamableHTTPSessionManager(
            app=mcp_server._lowlevel_server,  # the SDK exposes no public accessor for the low-level server
            json_response=json_response,
            stateless=True,
            # `Gate` checks Host and Origin for every route; the SDK still checks POST content types
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            async with json_manager.run(), sse_manager.run():
                yield
        finally:
            await service.aclose()

    projects = rest.ProjectsEndpoint(service)
    app = Starlette(
        routes=[
            *rest.routes(service, specs, projects),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={404: http_problem, 405: http_problem, Exception: internal_error},
    )
    mcp = MCPEndpoint(json_manager, sse_manager)
    app.add_middleware(Gate, mcp=mcp, projects=projects, settings=settings, rules=HostRules(settings, host))
    return app
