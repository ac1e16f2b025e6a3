"""The store behind one interface: SQLite (default), PostgreSQL (shared by replicas), memory.

PostgreSQL tests use the server named by SOPHIA_TEST_POSTGRES_URL (`scripts/dev test` starts one and
sets it), each in a schema of its own that is dropped afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import asyncpg  # type: ignore[import-untyped]
import httpx2
import pytest

from sophia_mcp.sandbox import demo_settings
from sophia_mcp.store import AuditEntry, Snapshot, Store, StoreError, open_store
from sophia_mcp.store.postgres import MIGRATIONS as PG_MIGRATIONS
from sophia_mcp.store.postgres import PostgresStore, split_schema
from sophia_mcp.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from sophia_mcp.store.sqlite import SQLiteStore
from tests.servers import clean_env, server_process

pytestmark = pytest.mark.anyio


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = os.environ.get("SOPHIA_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("SOPHIA_TEST_POSTGRES_URL is not set: CI runs the PostgreSQL tests through scripts/dev test")
        pytest.skip("SOPHIA_TEST_POSTGRES_URL is not set; `scripts/dev test` starts PostgreSQL and sets it")
    schema = f"sophia_test_{uuid.uuid4().hex[:12]}"
    yield f"{base}{'&' if '?' in base else '?'}schema={schema}"

    async def drop() -> None:
        connection = await asyncpg.connect(base)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()

    asyncio.run(drop())


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        url = "memory://"
    opened = open_store(url)
    await opened.open()
    yield opened
    await opened.aclose()


def entry(tool: str, at: datetime, **arguments: object) -> AuditEntry:
    return AuditEntry(at, "key:abc", "rest", tool, dict(arguments), "ok", 1.5, "cache")


async def test_a_snapshot_is_kept_unless_the_stored_one_is_newer(store: Store) -> None:
    assert await store.get_snapshot("k") is None
    await store.put_snapshot("k", "linear", Snapshot('{"items":[1]}', 100.0))
    await store.put_snapshot("k", "linear", Snapshot('{"items":[0]}', 50.0))
    assert await store.get_snapshot("k") == Snapshot('{"items":[1]}', 100.0)
    await store.put_snapshot("k", "linear", Snapshot('{"items":[2]}', 200.0))
    assert await store.get_snapshot("k") == Snapshot('{"items":[2]}', 200.0)


async def test_a_refresh_lease_has_one_holder_until_released_or_expired(store: Store) -> None:
    assert await store.try_lease("k", "replica-a", 60)
    assert not await store.try_lease("k", "replica-b", 60)
    assert await store.try_lease("k", "replica-a", 60)  # the holder may extend it
    await store.release_lease("k", "replica-b")  # not the holder: no effect
    assert not await store.try_lease("k", "replica-b", 60)
    await store.release_lease("k", "replica-a")
    assert await store.try_lease("k", "replica-b", 0.05)
    await anyio.sleep(0.1)
    assert await store.try_lease("k", "replica-a", 60)  # b's lease expired


async def test_audit_entries_read_back_in_order_with_filters_and_pruning(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await store.append_audit([entry("list_projects", now - timedelta(days=40), limit=5)])
    await store.append_audit(
        [entry("search", now - timedelta(hours=2), query="x"), entry("list_projects", now, platforms=["linear"])]
    )
    everything = await store.read_audit()
    assert [(e.tool, e.at, e.arguments) for e in everything] == [
        ("list_projects", now - timedelta(days=40), {"limit": 5}),
        ("search", now - timedelta(hours=2), {"query": "x"}),
        ("list_projects", now, {"platforms": ["linear"]}),
    ]
    assert everything[0] == entry("list_projects", now - timedelta(days=40), limit=5)
    assert [e.tool for e in await store.read_audit(since=now - timedelta(hours=3))] == ["search", "list_projects"]
    assert [e.at for e in await store.read_audit(tool="list_projects")] == [now - timedelta(days=40), now]
    assert [e.tool for e in await store.read_audit(limit=1)] == ["list_projects"]
    assert await store.prune_audit(now - timedelta(days=30)) == 1
    assert len(await store.read_audit()) == 2


async def test_old_snapshots_are_pruned(store: Store) -> None:
    await store.put_snapshot("old", "linear", Snapshot("{}", 10.0))
    await store.put_snapshot("new", "linear", Snapshot("{}", 1000.0))
    assert await store.prune_snapshots(500.0) == 1
    assert await store.get_snapshot("old") is None and await store.get_snapshot("new") is not None


async def test_sqlite_replicas_starting_together_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "store.sqlite3"
    stores = [SQLiteStore(str(path)) for _ in range(6)]
    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(store.open)
    for store in stores:
        await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(SQLITE_MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_store_newer_than_this_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="upgrade sophia-mcp"):
        await SQLiteStore(str(path)).open()


def test_store_urls_pick_the_backend_and_keep_passwords_out_of_errors() -> None:
    assert isinstance(open_store("sqlite:////var/lib/sophia/store.sqlite3"), SQLiteStore)
    assert open_store("sqlite:////var/lib/x.db").path == "/var/lib/x.db"  # type: ignore[attr-defined]
    assert open_store("sqlite:///relative.db").path == "relative.db"  # type: ignore[attr-defined]
    assert isinstance(open_store("postgres://u:p@db/sophia"), PostgresStore)
    assert split_schema("postgresql://u:p@db:5432/sophia?schema=tenant_1&sslmode=require") == (
        "postgresql://u:p@db:5432/sophia?sslmode=require",
        "tenant_1",
    )
    with pytest.raises(StoreError, match="schema"):
        split_schema("postgresql://db/x?schema=Robert');DROP")
    with pytest.raises(StoreError) as refused:
        open_store("mysql://root:hunter2@db/x")
    assert "hunter2" not in str(refused.value)


@pytest.mark.postgres
async def test_postgres_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url, min_size=1, max_size=2) for _ in range(5)]
    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(store.open)
    versions = await stores[0].pool.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in versions] == list(range(1, len(PG_MIGRATIONS) + 1))
    for store in stores:
        await store.aclose()


@pytest.mark.postgres
async def test_an_unreachable_postgres_is_reported_without_its_password() -> None:
    store = PostgresStore("postgresql://sophia:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as refused:
        await store.open()
    assert "hunter2" not in str(refused.value) and "127.0.0.1:1" in str(refused.value)


@pytest.mark.postgres
async def test_two_server_processes_on_one_postgres_make_one_platform_call(
    postgres_url: str, tmp_path: Path
) -> None:
    with server_process(["sandbox"], clean_env(), tmp_path / "sandbox.log", ready_path="/_sandbox/calls") as (
        _,
        sandbox_url,
    ):
        platform_settings = {f"SOPHIA_{k.upper()}": str(v) for k, v in demo_settings(sandbox_url).items()}
        env = clean_env(SOPHIA_STORE_URL=postgres_url, **platform_settings)
        args = ["serve", "--transport", "http"]
        with (
            server_process(args, env, tmp_path / "one.log", ready_path="/ready") as (_, one),
            server_process(args, env, tmp_path / "two.log", ready_path="/ready") as (_, two),
        ):
            async with httpx2.AsyncClient() as http:
                first = (await http.get(f"{one}/api/v4/mcp/linear/projects", params={"limit": 5})).json()
                second = (await http.get(f"{two}/api/v4/mcp/linear/projects", params={"limit": 5})).json()
                calls = (await http.get(f"{sandbox_url}/_sandbox/calls")).json()
    assert (first["source"], second["source"]) == ("live", "cache")
    assert second["projects"] == first["projects"] and second["fetched_at"] == first["fetched_at"]
    assert calls == {"linear": 1}


@pytest.mark.postgres
async def test_two_caches_on_postgres_share_one_upstream_call_for_concurrent_cold_reads(postgres_url: str) -> None:
    from pydantic import BaseModel

    from sophia_mcp.cache import Cache, CacheKey

    class Page(BaseModel):
        items: list[int]

    stores = [PostgresStore(postgres_url), PostgresStore(postgres_url)]
    for store in stores:
        await store.open()
    replicas = [Cache(store) for store in stores]
    calls = 0

    async def fetch() -> Page:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.3)  # long enough for every reader of both replicas to arrive meanwhile
        return Page(items=[4, 2])

    sources: list[str] = []

    async def read(cache: Cache) -> None:
        value, freshness = await cache.read(CacheKey("linear", "list_projects", "{}", "cred"), fetch, Page)
        assert value.items == [4, 2]
        sources.append(freshness.source)

    try:
        async with anyio.create_task_group() as tg:
            for replica in replicas:
                for _ in range(25):
                    tg.start_soon(read, replica)
    finally:
        for store in stores:
            await store.aclose()
    assert calls == 1
    assert sources.count("live") == 25 and sources.count("cache") == 25


@pytest.mark.postgres
async def test_the_postgres_store_recovers_when_the_database_drops_every_connection(postgres_url: str) -> None:
    """A failover or restart ends every connection at once, one of them in the middle of a call: that
    call and the ones after it are answered (on new connections), and nothing written before is lost."""
    store = PostgresStore(postgres_url, min_size=3, max_size=4)
    await store.open()
    dsn, schema = split_schema(postgres_url)
    other, admin = [await asyncpg.connect(dsn, server_settings={"search_path": schema}) for _ in range(2)]
    try:
        await store.append_audit([entry("before", datetime.now(UTC))])
        # another replica's uncommitted lease row holds the store's next call waiting on its lock
        blocking = other.transaction()
        await blocking.start()
        await other.execute("INSERT INTO leases VALUES ('k', 'other', now() - interval '1 hour')")
        in_flight = asyncio.create_task(store.try_lease("k", "me", 30))
        ours = "FROM pg_stat_activity WHERE application_name = 'sophia-mcp'"
        with anyio.fail_after(10):
            while not await admin.fetchval(f"SELECT count(*) {ours} AND wait_event_type = 'Lock'"):
                await asyncio.sleep(0.01)
        assert await admin.fetchval(f"SELECT count(pg_terminate_backend(pid)) {ours}") == 3
        await blocking.rollback()
        assert await in_flight is True
        for attempt in range(3):
            await store.append_audit([entry(f"after-{attempt}", datetime.now(UTC))])
        tools = [e.tool for e in await store.read_audit()]
        assert tools == ["before", "after-0", "after-1", "after-2"]
    finally:
        await other.close()
        await admin.close()
        await store.aclose()


class FreezingProxy:
    """A TCP proxy to PostgreSQL whose connections can be frozen: bytes stop flowing both ways, nothing is
    closed, as when a failed-over primary's address is simply gone. New connections flow again."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream, self.port = upstream, port
        self.frozen: list[asyncio.Event] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def freeze(self) -> None:
        for frozen in self.frozen:
            frozen.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        frozen = asyncio.Event()
        self.frozen.append(frozen)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                if not frozen.is_set():
                    sink.write(data)
                    await sink.drain()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            writer.close()
            up_writer.close()


@pytest.mark.postgres
async def test_a_database_that_vanished_without_closing_connections_costs_one_bounded_failure(postgres_url: str) -> None:
    """Without a statement timeout, a connection whose server is gone waits for TCP to give up (many
    minutes), and every audited call with it; with one, that call fails in bounded time and the next
    ones run on new connections."""
    target = urlsplit(split_schema(postgres_url)[0])
    proxy = FreezingProxy((target.hostname or "127.0.0.1", target.port or 5432))
    async with proxy as port:
        user = f"{target.username}@" if target.username else ""
        store = PostgresStore(postgres_url.replace(target.netloc, f"{user}127.0.0.1:{port}"), min_size=2, command_timeout=1)
        await store.open()
        try:
            await store.append_audit([entry("before", datetime.now(UTC))])
            proxy.freeze()
            with anyio.fail_after(8), pytest.raises(StoreError, match="no answer within 1 s"):
                await store.append_audit([entry("unanswered", datetime.now(UTC))])
            with anyio.fail_after(8):
                await store.append_audit([entry("after", datetime.now(UTC))])
                assert [e.tool for e in await store.read_audit()][-1] == "after"
        finally:
            with anyio.fail_after(8):
                await store.aclose()


@pytest.mark.postgres
async def test_a_server_starting_while_its_database_is_down_comes_up_when_the_database_does(postgres_url: str) -> None:
    from sophia_mcp.cli import UsageError, open_store_or_exit
    from tests.servers import free_port

    target = urlsplit(split_schema(postgres_url)[0])
    port = free_port()
    user = f"{target.username}@" if target.username else ""
    later = postgres_url.replace(target.netloc, f"{user}127.0.0.1:{port}")  # nothing listens there yet

    async def database_returns() -> None:
        await asyncio.sleep(1.5)
        async with FreezingProxy((target.hostname or "127.0.0.1", target.port or 5432), port):
            await asyncio.sleep(30)

    returns = asyncio.create_task(database_returns())
    try:
        with anyio.fail_after(20):
            store = await open_store_or_exit(later, wait=20)
        await store.ping()
        await store.aclose()
    finally:
        returns.cancel()
    wrong_database = postgres_url.replace(target.path, "/no_such_database")
    with anyio.fail_after(5), pytest.raises(UsageError, match="no_such_database"):
        await open_store_or_exit(wrong_database, wait=20)  # refused, not unreachable: no point in waiting
    with pytest.raises(UsageError, match="cannot connect"):
        await open_store_or_exit(later, wait=0)
