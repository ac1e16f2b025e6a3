"""Shared fixtures: the sandbox as an in-process ASGI app, a service wired to it, an MCP client.

Tests never reach the network: connectors talk to the sandbox through `httpx2.ASGITransport`,
which also records every request so contract tests can check what a connector sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from sophia_mcp.config import PLATFORMS, Settings
from sophia_mcp.registry import all_tools
from sophia_mcp.sandbox import SandboxState, build_app, demo_settings
from sophia_mcp.server import build_mcp_server
from sophia_mcp.service import Service

SANDBOX_URL = "http://sandbox.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class RecordingTransport(httpx2.AsyncBaseTransport):
    """Sends to an inner transport and keeps every request (with its body read) and response."""

    inner: httpx2.AsyncBaseTransport
    exchanges: list[tuple[httpx2.Request, httpx2.Response]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.exchanges.append((request, response))
        return response

    def requests(self, platform: str) -> list[httpx2.Request]:
        return [r for r, _ in self.exchanges if r.url.path.startswith(f"/{platform}/")]


@dataclass
class Sandbox:
    state: SandboxState
    transport: RecordingTransport

    def settings(self, **overrides: object) -> Settings:
        values = {**demo_settings(SANDBOX_URL), "http_max_retries": 0, **overrides}
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def service(self, **overrides: object) -> Service:
        return Service(self.settings(**overrides), transports=dict.fromkeys(PLATFORMS, self.transport))


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    for name in list(__import__("os").environ):
        if name.startswith("SOPHIA_"):
            monkeypatch.delenv(name)
    state = SandboxState()
    yield Sandbox(state, RecordingTransport(httpx2.ASGITransport(app=build_app(state))))


@pytest.fixture
async def service(sandbox: Sandbox) -> AsyncIterator[Service]:
    svc = sandbox.service()
    await svc.start()
    yield svc
    await svc.aclose()


@pytest.fixture
def mcp_server(service: Service):  # type: ignore[no-untyped-def]
    return build_mcp_server(service, all_tools())


@pytest.fixture
async def mcp_client(mcp_server) -> AsyncIterator[Client]:  # type: ignore[no-untyped-def]
    async with Client(mcp_server) as client:
        yield client


SPECS = Path(__file__).resolve().parents[1].parent / "shared" / "specs"


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    if not SPECS.is_dir():
        pytest.fail(f"platform API contracts not found at {SPECS}: the repository expects ../shared/specs beside it")
    return SPECS
