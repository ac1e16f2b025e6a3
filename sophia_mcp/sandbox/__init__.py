"""The sandbox: faithful doubles of the seven platform APIs on one loopback port.

Each platform is a module here (`linear.py`, `github.py`, ...) defining:

- `build(state) -> ASGI app`, mounted at `/<platform>`; it checks the auth header against the demo
  credentials, paginates and answers errors exactly as the platform documents;
- `demo_settings(base_url) -> dict` of `Settings` fields that point a connector at it;
- `error_response(status, retry_after) -> Response`, the platform's own error body, for faults.

`/_sandbox/faults/{platform}` (PUT a `Fault` as JSON, DELETE to clear) and `/_sandbox/calls`
(per-platform request counts) let tests and benchmarks in another process inject faults.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from types import ModuleType
from typing import Any, Literal

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sophia_mcp.config import PLATFORMS

FaultKind = Literal["latency", "status", "rate_limit", "timeout", "malformed"]


@dataclass
class Fault:
    """What to do to a platform's requests. `latency` (seconds) is added to every kind.

    kind: latency (only the delay), status (answer `status` with the platform's error body),
    rate_limit (429 with Retry-After), timeout (hold the request `timeout` seconds, then drop it),
    malformed (a 200 whose body is not JSON). `after` lets that many requests through untouched
    first; `times` limits how many requests are affected (None: until cleared).
    """

    kind: FaultKind = "latency"
    latency: float = 0.0
    status: int = 503
    retry_after: float = 1.0
    timeout: float = 30.0
    after: int = 0
    times: int | None = None
    seen: int = field(default=0, repr=False)

    def applies(self) -> bool:
        self.seen += 1
        if self.seen <= self.after:
            return False
        return self.times is None or self.seen - self.after <= self.times


@dataclass
class SandboxState:
    faults: dict[str, Fault] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    #: per-platform mutable state a module may keep (for example created objects)
    extra: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        self.faults.clear()
        self.calls.clear()


@cache
def platform_modules() -> dict[str, ModuleType]:
    return {platform: importlib.import_module(f"sophia_mcp.sandbox.{platform}") for platform in PLATFORMS}


class FaultInjection:
    """Pure ASGI wrapper around one platform's app: counts calls and applies the injected fault."""

    def __init__(self, platform: str, app: ASGIApp, module: ModuleType, state: SandboxState) -> None:
        self.platform, self.app, self.module, self.state = platform, app, module, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.state.calls[self.platform] += 1
        fault = self.state.faults.get(self.platform)
        if fault is None or not fault.applies():
            await self.app(scope, receive, send)
            return
        if fault.latency:
            await anyio.sleep(fault.latency)
        response: Response | None = None
        if fault.kind == "status":
            response = self.module.error_response(fault.status, None)
        elif fault.kind == "rate_limit":
            response = self.module.error_response(429, fault.retry_after)
        elif fault.kind == "timeout":
            await anyio.sleep(fault.timeout)
            response = Response(status_code=504)
        elif fault.kind == "malformed":
            response = Response(b'{"data": {"truncat', status_code=200, media_type="application/json")
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)


def build_app(state: SandboxState | None = None) -> Starlette:
    state = state or SandboxState()
    modules = platform_modules()

    async def put_fault(request: Request) -> Response:
        platform = request.path_params["platform"]
        if platform not in modules:
            return JSONResponse({"error": f"unknown platform {platform}"}, status_code=404)
        body = await request.json()
        state.faults[platform] = Fault(**{k: v for k, v in body.items() if k != "seen"})
        return JSONResponse(asdict(state.faults[platform]))

    async def delete_fault(request: Request) -> Response:
        state.faults.pop(request.path_params["platform"], None)
        return Response(status_code=204)

    async def calls(request: Request) -> Response:
        return JSONResponse(dict(state.calls))

    async def reset(request: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    routes: list[Route | Mount] = [
        Route("/_sandbox/faults/{platform}", put_fault, methods=["PUT"]),
        Route("/_sandbox/faults/{platform}", delete_fault, methods=["DELETE"]),
        Route("/_sandbox/calls", calls, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
    ]
    for platform, module in modules.items():
        routes.append(Mount(f"/{platform}", app=FaultInjection(platform, module.build(state), module, state)))
    app = Starlette(routes=routes)
    app.state.sandbox = state
    return app


def demo_settings(base_url: str) -> dict[str, Any]:
    """Settings that point every connector at the sandbox served at `base_url`."""
    settings: dict[str, Any] = {}
    for platform, module in platform_modules().items():
        settings.update(module.demo_settings(f"{base_url}/{platform}"))
    return settings


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process's main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def running_sandbox(host: str = "127.0.0.1", port: int = 0, state: SandboxState | None = None):  # type: ignore[no-untyped-def]
    """Serve the sandbox in this event loop on a real port; yields (base_url, state)."""
    state = state or SandboxState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(build_app(state), log_level="warning", access_log=False, lifespan="off")
    server = _QuietServer(config)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            while not server.started:
                await anyio.sleep(0.01)
            bound_port = sock.getsockname()[1]
            try:
                yield f"http://{host}:{bound_port}", state
            finally:
                server.should_exit = True
    finally:
        sock.close()


class SandboxNotStarted(RuntimeError):
    pass


@contextlib.asynccontextmanager
async def sandbox_process(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """`sophia-mcp sandbox` in a child process; yields its base URL. `serve --demo` runs it so, not in
    its own event loop: the server's process then holds what a production one holds (the sandbox's
    GraphQL schemas alone are ~450k objects) and does only its work (about 0.05 more of the bare SDK's
    tool-call throughput, bench/README.md). The child stops when this block ends, or when this
    process dies: it runs until its standard input closes."""
    argv = [sys.executable, "-m", "sophia_mcp", "sandbox", "--host", host, "--port", str(port), "--until-stdin-closes"]
    process = await anyio.open_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
    try:
        assert process.stdout is not None and process.stdin is not None
        first = b""
        with anyio.move_on_after(60):
            async for chunk in process.stdout:
                first += chunk
                if b"\n" in first:
                    break
        started = re.match(rb"sophia-mcp sandbox at (\S+)", first)
        if started is None:
            raise SandboxNotStarted(f"the demo sandbox did not start on {host}:{port} (its error is above)")
        yield started.group(1).decode()
    finally:
        if process.stdin is not None:
            await process.stdin.aclose()  # the child's signal to stop
        with anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
