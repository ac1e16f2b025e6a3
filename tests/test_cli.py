"""The command line as a newcomer uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2

from sophia_mcp.config import PLATFORMS
from tests.servers import free_port


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sophia_mcp", *args], capture_output=True, text=True, timeout=60, check=False)


def test_tools_prints_the_catalogue_for_a_selection() -> None:
    result = run_cli("tools", "--format", "json", "--toolsets", "linear")
    assert result.returncode == 0, result.stderr
    tools = json.loads(result.stdout)
    assert {t["toolset"] for t in tools} == {"core", "linear"}
    assert all(t["read_only"] for t in tools)


def test_sandbox_prints_working_base_urls_and_demo_credentials_for_every_platform() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sophia_mcp", "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert f"http://127.0.0.1:{port}" in lines[0]
        settings: dict[str, str] = {}
        while line := process.stdout.readline().strip():
            name, _, value = line.partition("=")
            settings[name] = value
        for platform in PLATFORMS:
            assert settings[f"SOPHIA_{platform.upper()}_BASE_URL"].startswith(f"http://127.0.0.1:{port}/{platform}")
        # the printed URL and token work as printed
        linear = httpx2.post(
            settings["SOPHIA_LINEAR_BASE_URL"] + "/graphql",
            json={"query": "{ viewer { name } }"},
            headers={"Authorization": settings["SOPHIA_LINEAR_API_KEY"]},
        )
        assert linear.json()["data"]["viewer"]["name"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


def test_a_sandbox_port_in_use_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        alone = run_cli("sandbox", "--port", port)
        env = {**os.environ, "SOPHIA_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}"}
        demo = subprocess.run(
            [sys.executable, "-m", "sophia_mcp", "serve", "--demo", "--transport", "http", "--port", "0",
             "--sandbox-port", port],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )
    assert alone.returncode == 2 and "pick another --port" in alone.stderr and "Traceback" not in alone.stderr
    assert demo.returncode == 2 and "pick another --sandbox-port" in demo.stderr and "Traceback" not in demo.stderr
