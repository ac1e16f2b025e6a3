"""The audit log: every tool call and REST call, secrets removed, committed before the answer."""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import httpx2
import pytest
from mcp import Client

from sophia_mcp import metrics
from sophia_mcp.errors import UpstreamUnavailable
from sophia_mcp.registry import all_tools
from sophia_mcp.sandbox import Fault
from sophia_mcp.server import build_mcp_server
from sophia_mcp.service import ListProjectsInput, Service
from sophia_mcp.store import AuditEntry, StoreError
from sophia_mcp.store.audit import AuditLog, AuditUnavailable, without_secrets
from sophia_mcp.store.memory import MemoryStore
from tests.conftest import Sandbox
from tests.servers import clean_env, server_process

pytestmark = pytest.mark.anyio


async def test_every_call_of_a_scripted_session_is_in_the_audit_log_after_sigkill(tmp_path: Path) -> None:
    env = clean_env(SOPHIA_STORE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}", XDG_DATA_HOME=str(tmp_path / "data"))
    expected: list[tuple[str, str, str]] = []  # (transport, tool, outcome), in the order they were answered
    args = ["serve", "--demo", "--transport", "http"]
    with server_process(args, env, tmp_path / "server.log") as (process, base):
        async with httpx2.AsyncClient(base_url=base) as http:
            for limit in (3, 4, 3):
                assert (await http.get("/api/v4/mcp/linear/projects", params={"limit": limit})).status_code == 200
                expected.append(("rest", "rest:linear.projects", "ok"))
            assert (await http.get("/api/v4/mcp/platforms")).status_code == 200
            expected.append(("rest", "rest:platforms", "ok"))

            async def concurrent_get(i: int) -> None:
                response = await http.get("/api/v4/mcp/linear/projects", params={"limit": 1 + i % 5})
                assert response.status_code == 200

            async with anyio.create_task_group() as tg:  # one group commit, many callers
                for i in range(40):
                    tg.start_soon(concurrent_get, i)
            expected += [("rest", "rest:linear.projects", "ok")] * 40

        for mode in ("2026-07-28", "legacy"):
            async with Client(f"{base}/mcp", mode=mode) as client:
                assert not (await client.call_tool("list_projects", {"limit": 5})).is_error
                assert not (await client.call_tool("linear_list_teams", {})).is_error
                assert (await client.call_tool("linear_get_issue", {"id": "NOPE-404"})).is_error
                expected += [("mcp", "list_projects", "ok"), ("mcp", "linear_list_teams", "ok"),
                             ("mcp", "linear_get_issue", "not-found")]
        process.send_signal(signal.SIGKILL)  # right after the last answer: no chance to flush anything
        assert process.wait(timeout=10) == -signal.SIGKILL

    listed = await anyio.run_process([sys.executable, "-m", "sophia_mcp", "audit", "--format", "json"], env=env)
    entries = json.loads(listed.stdout)
    assert [(e["transport"], e["tool"], e["outcome"]) for e in entries] == expected
    assert {e["principal"] for e in entries} == {"anonymous"}
    assert entries[0]["arguments"] == {"limit": 3}
    assert entries[-1]["arguments"] == {"id": "NOPE-404"}
    assert all(e["duration_ms"] >= 0 and e["at"] for e in entries)
    assert {e["source"] for e in entries if e["tool"] == "rest:linear.projects"} <= {"live", "cache"}

    only_teams = (
        await anyio.run_process(
            [sys.executable, "-m", "sophia_mcp", "audit", "--tool", "linear_list_teams", "--since", "1h"], env=env
        )
    ).stdout.decode().splitlines()
    assert only_teams[0].split() == ["time", "(UTC)", "principal", "transport", "tool", "outcome", "ms", "source",
                                     "arguments"]
    assert len(only_teams) == 3 and all("linear_list_teams" in line for line in only_teams[1:])


async def test_tool_and_rest_calls_are_recorded_with_outcome_and_source(sandbox: Sandbox, service: Service) -> None:
    async with Client(build_mcp_server(service, all_tools())) as client:
        await client.call_tool("list_projects", {"platforms": ["linear"], "limit": 4})
        await client.call_tool("list_projects", {"platforms": ["linear"], "limit": 4})
        sandbox.state.faults["linear"] = Fault(kind="status", status=503)
        await client.call_tool("linear_list_teams", {})
    entries = await service.store.read_audit()
    assert [(e.transport, e.tool, e.outcome, e.source) for e in entries] == [
        ("mcp", "list_projects", "ok", "live"),
        ("mcp", "list_projects", "ok", "cache"),
        ("mcp", "linear_list_teams", "upstream-unavailable", None),
    ]
    assert entries[0].arguments == {"platforms": ["linear"], "limit": 4}
    assert entries[0].principal == "anonymous"


def test_secrets_are_removed_from_arguments_by_name_and_by_shape() -> None:
    arguments = {
        "query": "deploy key lin_api_abcdefghijklmnop1234 leaked",
        "api_key": "whatever",
        "nested": {"Authorization": "Bearer abcdefghijkl", "team": "AUT", "client_secret": None},
        "tokens": ["ghp_abcdefghijklmnopqrstuvwx", "fine"],
        "limit": 5,
    }
    assert without_secrets(arguments) == {
        "query": "deploy key [redacted] leaked",
        "api_key": "[redacted]",
        "nested": {"Authorization": "[redacted]", "team": "AUT", "client_secret": None},
        "tokens": "[redacted]",
        "limit": 5,
    }


async def test_concurrent_calls_share_one_commit() -> None:
    class CountingStore(MemoryStore):
        commits: ClassVar[list[int]] = []

        async def append_audit(self, entries):  # type: ignore[no-untyped-def]
            self.commits.append(len(entries))
            await anyio.lowlevel.checkpoint()
            await super().append_audit(entries)

    store = CountingStore()
    audit = AuditLog(store)

    async def call(i: int) -> None:
        await audit({"tool": f"t{i}", "arguments": {}})

    await audit.start()
    try:
        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(call, i)
    finally:
        await audit.aclose()
    assert len(store.audit) == 100 and sum(store.commits) == 100
    assert len(store.commits) <= 3


async def test_a_call_whose_audit_entry_cannot_be_saved_fails_instead_of_going_unrecorded(sandbox: Sandbox) -> None:
    class BrokenStore(MemoryStore):
        async def append_audit(self, entries):  # type: ignore[no-untyped-def]
            raise StoreError("disk full")

    service = Service(sandbox.settings(), transports={"linear": sandbox.transport}, store=BrokenStore())
    await service.start()
    try:
        spec = next(s for s in all_tools() if s.name == "list_projects")
        labels = {"tool": "list_projects", "outcome": "audit-unavailable"}
        before = metrics.REGISTRY.get_sample_value("sophia_tool_calls_total", labels) or 0.0
        with pytest.raises(AuditUnavailable, match="could not be saved"):
            await service.invoke(spec, ListProjectsInput(platforms=["linear"]))
        # counted as what the caller got, so the tool error alert sees it (MCP answers such a call HTTP 200)
        assert metrics.REGISTRY.get_sample_value("sophia_tool_calls_total", labels) == before + 1
    finally:
        await service.aclose()


async def test_entries_older_than_the_retention_are_pruned() -> None:
    store = MemoryStore()
    now = datetime.now(UTC)
    for days in (40, 31, 29, 1):
        await store.append_audit(
            [AuditEntry(now - timedelta(days=days), "anonymous", "rest", f"{days}d", {}, "ok", 1.0, None)]
        )
    assert await AuditLog(store, retention_days=30).prune() == 2
    assert [e.tool for e in await store.read_audit()] == ["29d", "1d"]


async def test_an_upstream_failure_with_nothing_cached_is_recorded_as_its_error_type(sandbox: Sandbox) -> None:
    service = sandbox.service()
    sandbox.state.faults["linear"] = Fault(kind="status", status=500)
    spec = next(s for s in all_tools() if s.name == "linear_list_teams")
    with pytest.raises(UpstreamUnavailable):
        await service.invoke(spec, spec.input_model())
    [entry] = await service.store.read_audit()
    assert (entry.tool, entry.outcome, entry.transport) == ("linear_list_teams", "upstream-unavailable", "mcp")


async def test_refused_rest_requests_are_audited_too(sandbox: Sandbox) -> None:
    from sophia_mcp.app import create_app
    from sophia_mcp.registry import all_tools
    from sophia_mcp.server import build_mcp_server

    service = sandbox.service()
    entries: list[dict[str, Any]] = []

    async def sink(entry: dict[str, Any]) -> None:
        entries.append(entry)

    service.audit = sink
    app = create_app(service, build_mcp_server(service, all_tools()), all_tools())
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as rest:
        assert (await rest.get("/api/v4/mcp/nope/projects")).status_code == 404
        assert (await rest.get("/api/v4/mcp/linear/projects", params={"limit": "x"})).status_code == 400
    assert [(e["tool"], e["outcome"], e["arguments"]) for e in entries] == [
        ("rest:unknown.projects", "unknown-platform", {}),
        ("rest:linear.projects", "bad-input", {"limit": "x"}),
    ]


async def test_a_store_that_cannot_start_a_commit_fails_that_call_and_the_next_ones_still_commit() -> None:
    class FlakyStore(MemoryStore):
        broken = True

        def commit_audit(self, entries, done):  # type: ignore[no-untyped-def]
            if self.broken:
                self.broken = False
                raise StoreError("no connection")
            super().commit_audit(entries, done)

    store = FlakyStore()
    audit = AuditLog(store)
    await audit.start()
    try:
        with pytest.raises(AuditUnavailable):
            await audit({"tool": "first", "arguments": {}})
        await audit({"tool": "second", "arguments": {}})
    finally:
        await audit.aclose()
    assert [e.tool for e in store.audit] == ["second"]
