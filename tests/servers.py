"""Real server processes for tests: a free port, an environment without the caller's SOPHIA_*
settings, and `python -m sophia_mcp` started, awaited and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPHIA_")}
    env.update(variables)
    return env


@contextmanager
def server_process(args: list[str], env: Mapping[str, str], log: Path, ready_path: str = "/health") -> Iterator[
    tuple[subprocess.Popen[bytes], str]
]:
    """`python -m sophia_mcp <args>` on a free port, yielding once `ready_path` answers 200."""
    port = free_port()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sophia_mcp", *args, "--port", str(port)],
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{args} exited: {log.read_text()}")
            try:
                if httpx2.get(base + ready_path, timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{args} did not start within 60 s: {log.read_text()}")
            time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
