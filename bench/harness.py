"""What the benchmarks share: servers in their own processes on loopback, a load generator in
another (wrk when installed, else a small asyncio client), and medians.

Every server is a real `sophia-mcp serve --demo --transport http` (or a bare baseline) with one
uvicorn worker on uvloop + httptools, its store in a temporary directory; everything stops when the
script ends. `QUICK=True` (set by `--quick`) shrinks every run to a fraction of a second, so the test
suite can run the scripts without timing anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2

BENCH = Path(__file__).resolve().parent
QUICK = False
RUNS = 5
DURATION = 5.0  # seconds per measured run
CONNECTIONS = 32

MCP_HEADERS_2026 = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
}
MCP_HEADERS_2025 = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}


def parse_args(description: str) -> argparse.Namespace:
    global QUICK, RUNS, DURATION
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny runs: checks the script works, measures nothing")
    parser.add_argument("--runs", type=int, default=RUNS, help="measured runs per figure (the median is quoted)")
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds per measured run")
    args = parser.parse_args()
    QUICK, RUNS, DURATION = args.quick, args.runs, args.duration
    if QUICK:
        RUNS, DURATION = 1, 0.3
    return args


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}, {datetime.now(UTC):%Y-%m-%d}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(argv: list[str], ready_url: str, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run `argv` until the block ends; yield once `ready_url` answers 200."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(argv, env=dict(env or os.environ), stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"{argv[2:]} exited:\n{log.read().decode(errors='replace')}")
                with contextlib.suppress(httpx2.TransportError):
                    if httpx2.get(ready_url, timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{argv[2:]} did not start within 60 s")
                time.sleep(0.1)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Sophia:
    base: str
    sandbox: str


@contextlib.contextmanager
def sophia_server(**settings: str) -> Iterator[Sophia]:
    """`sophia-mcp serve --demo --transport http` with its own store and sandbox port."""
    port, sandbox_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="sophia-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOPHIA_")}
        env.update(SOPHIA_STORE_URL=f"sqlite:///{tmp}/store.sqlite3", XDG_DATA_HOME=f"{tmp}/data")
        env.update({f"SOPHIA_{k.upper()}": v for k, v in settings.items()})
        argv = [sys.executable, "-m", "sophia_mcp", "serve", "--demo", "--transport", "http", "--port", str(port),
                "--sandbox-port", str(sandbox_port)]
        base = f"http://127.0.0.1:{port}"
        with server(argv, f"{base}/ready", env):
            yield Sophia(base, f"http://127.0.0.1:{sandbox_port}")


@contextlib.contextmanager
def bare_server(script: str, data: bytes) -> Iterator[str]:
    """One of the bare baselines (`bare_starlette.py`, `bare_mcp.py`) serving `data`."""
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(data)
        file.flush()
        argv = [sys.executable, str(BENCH / script), "--port", str(port), "--data", file.name]
        base = f"http://127.0.0.1:{port}"
        with server(argv, f"{base}/health"):
            yield base


def configured_platforms(base: str) -> list[str]:
    body = httpx2.get(f"{base}/api/v4/mcp/platforms", timeout=30).json()
    return [p["platform"] for p in body["platforms"] if p["configured"]]


def tool_call(name: str, arguments: dict[str, Any], *, modern: bool = True) -> dict[str, Any]:
    """A `tools/call` request; `modern` adds the 2026-07-28 per-request `_meta` envelope."""
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if modern:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "sophia-bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def call_tool(client: httpx2.Client, base: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One 2026-07-28 single-POST `tools/call`; returns the JSON-RPC result."""
    response = client.post(f"{base}/mcp", json=tool_call(name, arguments), headers={**MCP_HEADERS_2026, "mcp-name": name})
    response.raise_for_status()
    body = response.json()
    if "error" in body or body["result"].get("isError"):
        raise SystemExit(f"{name} failed: {body}")
    return body["result"]


# -- load -------------------------------------------------------------------------------------


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    def __str__(self) -> str:
        return f"{self.requests_per_second:8.0f} req/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"


def load(url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None,
         duration: float | None = None, connections: int = CONNECTIONS) -> Load:
    """Keep `connections` keep-alive connections busy with the same request for `duration` seconds."""
    duration = DURATION if duration is None else duration
    if shutil.which("wrk"):
        result = wrk(url, body, dict(headers or {}), duration, connections)
    else:
        spec = json.dumps({"url": url, "body": (body or b"").decode(), "headers": dict(headers or {}),
                           "duration": duration, "connections": connections})
        out = subprocess.run([sys.executable, __file__, "--load", spec], capture_output=True, check=True, text=True)
        result = Load(**json.loads(out.stdout))
    if result.errors:
        raise SystemExit(f"{result.errors} requests to {url} failed during the load run")
    return result


def wrk(url: str, body: bytes | None, headers: dict[str, str], duration: float, connections: int) -> Load:
    lines = [f'wrk.method = "{"POST" if body is not None else "GET"}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body.decode())}")
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write("\n".join(lines) + "\n")
        script.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", script.name, url],
            capture_output=True, check=True, text=True,
        ).stdout

    def millis(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"Socket errors: .*?(\d+) timeout", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Load(rps, millis("50%"), millis("99%"), errors)


async def python_load(url: str, body: str, headers: dict[str, str], duration: float, connections: int) -> Load:
    """The fallback load generator: raw HTTP/1.1 keep-alive over asyncio streams, in its own process."""
    target = httpx2.URL(url)
    method = "POST" if body else "GET"
    head = [f"{method} {target.raw_path.decode()} HTTP/1.1", f"Host: {target.host}:{target.port}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        head.append(f"Content-Length: {len(body.encode())}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body.encode()
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(target.host, target.port)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.split()[1].startswith(b"2"):
                errors += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return Load(len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000,
                latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, errors)


def median(values: list[float]) -> float:
    return statistics.median(values)


def compare(label: str, ours: list[Load], bare: list[Load], target: float) -> dict[str, Any]:
    """Print medians side by side and the ratio of median throughputs; returns the figures."""
    ours_rps, bare_rps = median([r.requests_per_second for r in ours]), median([r.requests_per_second for r in bare])
    ratio = ours_rps / bare_rps
    row = {
        "ours_rps": round(ours_rps), "bare_rps": round(bare_rps), "ratio": round(ratio, 2), "target": target,
        "ours_p50_ms": round(median([r.p50_ms for r in ours]), 2), "ours_p99_ms": round(median([r.p99_ms for r in ours]), 2),
        "bare_p50_ms": round(median([r.p50_ms for r in bare]), 2), "bare_p99_ms": round(median([r.p99_ms for r in bare]), 2),
    }
    print(f"{label}")
    print(f"  sophia-mcp {row['ours_rps']:8} req/s  p50 {row['ours_p50_ms']:6.2f} ms  p99 {row['ours_p99_ms']:6.2f} ms")
    print(f"  bare       {row['bare_rps']:8} req/s  p50 {row['bare_p50_ms']:6.2f} ms  p99 {row['bare_p99_ms']:6.2f} ms")
    print(f"  ratio {ratio:.2f} (target >= {target}){'' if ratio >= target or QUICK else '  BELOW TARGET'}")
    return row


if __name__ == "__main__" and sys.argv[1:2] == ["--load"]:
    spec = json.loads(sys.argv[2])
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(python_load(spec["url"], spec["body"], spec["headers"], spec["duration"], spec["connections"]))
    print(json.dumps(result.__dict__))
