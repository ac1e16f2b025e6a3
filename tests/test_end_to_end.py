"""The real server in a subprocess, driven by the SDK's own clients: stdio and streamable HTTP."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from connectors import load_connector_modules
from tests.servers import clean_env, free_port, server_process

pytestmark = pytest.mark.anyio

PLATFORMS_WITH_PROJECTS = {m.CONNECTOR.platform for m in load_connector_modules()}


def server_env(tmp_path: Path) -> dict[str, str]:
    return clean_env(XDG_DATA_HOME=str(tmp_path / "data"), SOPHIA_STORE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "server.log"
    with server_process(["serve", "--demo", "--transport", "http"], server_env(tmp_path), log) as (process, base):
        yield base
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal: -15 is the clean exit
    assert process.returncode in (0, -15), log.read_text()
    assert "Traceback" not in log.read_text()


def assert_projects_from(result_content: dict, platforms: set[str]) -> None:  # type: ignore[type-arg]
    projects = result_content["projects"]
    seen = {p["platform"] for p in projects}
    assert platforms <= seen, result_content["platforms"]
    for project in projects:
        assert project["url"].startswith("https://"), project
        assert project["status"] in {"planned", "active", "paused", "completed", "canceled", "unknown"}


async def test_stdio_demo_lists_tools_and_projects_from_every_platform(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "sophia_mcp", "serve", "--demo"], env=server_env(tmp_path)
    )
    async with Client(params, read_timeout_seconds=60) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"list_projects", "search", "platform_status", "linear_list_issues"} <= tools
        result = await client.call_tool("list_projects", {"limit": 100})
        assert not result.is_error
        assert_projects_from(result.structured_content, PLATFORMS_WITH_PROJECTS)  # type: ignore[arg-type]
        # the text the model reads is compact JSON of the same data
        assert json.loads(result.content[0].text)["projects"][0]["id"]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_streamable_http_serves_old_and_new_protocol_clients(http_server: str, mode: str) -> None:
    async with Client(f"{http_server}/mcp", mode=mode) as client:
        assert "list_projects" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("list_projects", {"platforms": ["linear"], "limit": 5})
        assert not result.is_error
        assert_projects_from(result.structured_content, {"linear"})  # type: ignore[arg-type]


async def test_rest_shim_serves_projects_errors_and_metrics(http_server: str) -> None:
    async with httpx2.AsyncClient(base_url=http_server) as http:
        for platform in sorted(PLATFORMS_WITH_PROJECTS):
            response = await http.get(f"/api/v4/mcp/{platform}/projects", params={"limit": 5})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["platform"] == platform and body["source"] in {"live", "cache"}
            assert body["projects"] and "next_cursor" in body and body["fetched_at"]

        nope = await http.get("/api/v4/mcp/nope/projects")
        assert nope.status_code == 404
        assert nope.headers["content-type"] == "application/problem+json"
        assert nope.json()["type"].endswith("/unknown-platform")

        bad = await http.get("/api/v4/mcp/linear/projects", params={"limit": "many"})
        assert bad.status_code == 400 and "limit" in bad.json()["detail"]
        typo = await http.get("/api/v4/mcp/linear/projects", params={"statsu": "active"})
        assert typo.status_code == 400 and "statsu" in typo.json()["detail"]
        # GET goes from the Gate straight to the page; other methods through the router, as before
        assert (await http.head("/api/v4/mcp/linear/projects")).status_code == 200
        wrong_method = await http.post("/api/v4/mcp/linear/projects")
        assert wrong_method.status_code == 405 and set(wrong_method.headers["allow"].split(", ")) == {"GET", "HEAD"}
        assert wrong_method.headers["content-type"] == "application/problem+json"
        assert "GET" in wrong_method.json()["detail"]
        for path in ("/api/v4/mcp/linear/nothing", "/api/v4/nothing", "/nothing"):
            unknown = await http.get(path)
            assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
            assert "/api/v4/mcp/{platform}/projects" in unknown.json()["detail"], path
        assert (await http.get("/api/v4/mcp/linear/projects/")).status_code == 307  # the router redirects

        metrics = (await http.get("/metrics")).text
        assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v4/mcp/{platform}/projects",status="200"}' in metrics
        assert "sophia_tool_calls_total" in metrics

        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get("/ready")).status_code == 200


@pytest.mark.parametrize("version", [None, "2025-11-25", "2025-06-18", "2026-07-28"])
async def test_get_on_mcp_is_refused_at_once_as_a_stateless_server_has_no_stream_to_offer(http_server: str, version: str | None) -> None:
    headers = {"accept": "text/event-stream"} | ({"mcp-protocol-version": version} if version else {})
    async with httpx2.AsyncClient(base_url=http_server, timeout=10) as http:
        response = await http.get("/mcp", headers=headers)  # the SDK alone holds this open with nothing to send
        assert response.status_code == 405 and response.headers["allow"] == "POST"


async def test_a_client_that_leaves_mid_request_is_counted_as_499_not_as_a_server_error(http_server: str) -> None:
    def count(metrics: str, status: str) -> float:
        line = f'http_request_duration_seconds_count{{method="POST",route="/mcp",status="{status}"}} '
        return next((float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(line)), 0.0)

    async with httpx2.AsyncClient(base_url=http_server) as http:
        before = (await http.get("/metrics")).text
        host, port = http_server.removeprefix("http://").split(":")
        stream = await anyio.connect_tcp(host, int(port))
        head = f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        await stream.send(head.encode() + b'{"jsonrpc": "2.0", ')  # and never the rest
        await stream.aclose()
        with anyio.fail_after(10):
            while count(after := (await http.get("/metrics")).text, "499") == count(before, "499"):
                await anyio.sleep(0.05)
    assert count(after, "499") == count(before, "499") + 1 and count(after, "500") == count(before, "500")


async def test_malformed_json_rpc_gets_an_error_and_the_server_keeps_serving(http_server: str) -> None:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(base_url=http_server, headers=headers) as http:
        garbage = await http.post("/mcp", content=b"{not json")
        assert garbage.status_code == 400
        assert garbage.json()["error"]["code"] == -32700

        unknown = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "tools/nope"})
        assert unknown.json()["error"]["code"] == -32601

        call = {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "list_projects", "arguments": {"limit": "x"}}}
        wrong_type = (await http.post("/mcp", json=call)).json()
        assert wrong_type["result"]["isError"] is True
        message = wrong_type["result"]["content"][0]["text"]
        assert "invalid arguments: limit: Input should be a valid integer" in message and "(got 'x')" in message
        assert "errors.pydantic.dev" not in message and "type=" not in message and "validation error for" not in message
        call["params"]["arguments"] = {"limti": 5}
        typo = (await http.post("/mcp", json=call)).json()["result"]["content"][0]["text"]
        assert "limti: no such argument (this tool takes" in typo and "limit" in typo

        from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

        async def chunks():  # type: ignore[no-untyped-def]  # streamed: no content-length to refuse early
            for _ in range(DEFAULT_MAX_REQUEST_BODY_SIZE // 65536 + 2):
                yield b" " * 65536

        too_large = await http.post("/mcp", content=chunks())
        assert too_large.status_code == 413

    async with Client(f"{http_server}/mcp") as client:
        assert not (await client.call_tool("platform_status", {})).is_error


async def test_a_bug_answers_with_a_problem_document_not_a_stack_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    from sophia_mcp.app import create_app
    from sophia_mcp.config import Settings
    from sophia_mcp.registry import all_tools
    from sophia_mcp.server import build_mcp_server
    from sophia_mcp.service import Service

    service = Service(Settings(_env_file=None, linear_api_key="lin_api_x", store_url="memory://"))  # type: ignore[call-arg]

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "platform_status", broken)
    app = create_app(service, build_mcp_server(service, all_tools()), all_tools())
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/api/v4/mcp/platforms")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text and "Traceback" not in response.text


async def test_the_demo_sandbox_is_a_child_process_that_stops_with_the_server_even_on_sigkill(tmp_path: Path) -> None:
    import signal
    import time

    sandbox = f"http://127.0.0.1:{free_port()}"
    args = ["serve", "--demo", "--transport", "http", "--sandbox-port", sandbox.rsplit(":", 1)[1]]
    with server_process(args, server_env(tmp_path), tmp_path / "server.log") as (process, base):
        async with httpx2.AsyncClient() as http:
            assert (await http.get(f"{base}/api/v4/mcp/linear/projects")).status_code == 200
            assert (await http.get(f"{sandbox}/_sandbox/calls")).json()["linear"] >= 1  # the server read it
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    async with httpx2.AsyncClient() as http:
        while time.monotonic() < deadline:  # the child sees its standard input close and stops
            try:
                await http.get(f"{sandbox}/_sandbox/calls", timeout=1)
            except httpx2.TransportError:
                return
            await anyio.sleep(0.1)
    pytest.fail("the demo sandbox outlived its server")
