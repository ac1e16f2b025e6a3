"""PostgreSQL store, shared by every replica: snapshots, refresh leases and the audit log, through an
asyncpg connection pool.

`SOPHIA_STORE_URL=postgresql://user:password@host:5432/db?schema=sophia` (`schema` is optional,
default `public`; it is created when missing). Migrations run in one transaction holding an
advisory lock derived from the schema name, so replicas starting together apply each one exactly
once; the others wait for it and find nothing left to do. Lease times come from the database clock,
so replicas with skewed clocks still agree on who holds a lease.

When the server drops our connections (a failover, a restart), every connection in the pool is dead
at once: the first call to notice replaces them all and tries once more on a new one, so a failover
costs callers a reconnect, not a burst of errors. An audit batch whose commit was cut off may then be
written twice: an entry twice rather than none. A server that vanished without closing its connections
(a failed-over primary's address gone) would leave calls waiting for TCP to give up, many minutes: every
statement has `command_timeout` (10 s), after which the pool's connections are replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from sophia_mcp.store import AuditEntry, Snapshot, Store, StoreError, StoreUnreachable, arguments_json, redacted_url

#: Version N is MIGRATIONS[N - 1]; applied versions are rows of `schema_migrations`.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE snapshots (
            key text PRIMARY KEY,
            platform text NOT NULL,
            body text NOT NULL,
            fetched_at double precision NOT NULL
        )""",
        "CREATE INDEX snapshots_fetched_at ON snapshots (fetched_at)",
        """CREATE TABLE leases (
            key text PRIMARY KEY,
            holder text NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
        """CREATE TABLE audit_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL,
            principal text NOT NULL,
            transport text NOT NULL,
            tool text NOT NULL,
            arguments jsonb NOT NULL,
            outcome text NOT NULL,
            duration_ms double precision NOT NULL,
            source text
        )""",
        "CREATE INDEX audit_log_at ON audit_log (at)",
        "CREATE INDEX audit_log_tool_at ON audit_log (tool, at)",
    ],
]

T = TypeVar("T")

#: what the driver raises; `failures()` turns each into `StoreError`
DRIVER_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
#: the connection is gone (dropped by the server, or broken before our statement was sent): retry on a new one
CONNECTION_LOST = (
    ConnectionError,
    asyncpg.PostgresConnectionError,  # including ConnectionDoesNotExistError
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # "another operation is in progress": the server's goodbye is half-read
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
)

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def split_schema(url: str) -> tuple[str, str]:
    """The connection URL without our `schema` parameter, and the schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "public")
    if not SCHEMA_NAME.match(schema):
        raise StoreError(f"SOPHIA_STORE_URL: schema {schema!r} must be lower-case letters, digits and _")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    scheme = "postgresql" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    return urlunsplit(parts._replace(scheme=scheme, query=rest)), schema


def lock_id(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(f"sophia-mcp:migrate:{schema}".encode()).digest()[:8], "big", signed=True)


class PostgresStore(Store):
    shared = True

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float = 10.0) -> None:
        self.dsn, self.schema = split_schema(url)
        self.display = redacted_url(url)
        self.min_size, self.max_size = min_size, max_size
        self.command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None

    @contextlib.contextmanager
    def failures(self) -> Iterator[None]:
        """Turn the driver's errors into `StoreError`, the one kind callers handle."""
        try:
            yield
        except DRIVER_ERRORS as exc:
            detail = f"no answer within {self.command_timeout:g} s" if isinstance(exc, TimeoutError) else exc
            raise StoreError(f"the PostgreSQL store {self.display} failed: {detail}") from exc

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(f"the PostgreSQL store {self.display} is not open")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                server_settings={"search_path": self.schema, "application_name": "sophia-mcp"},
                timeout=10,
                command_timeout=self.command_timeout,
            )
        except (OSError, TimeoutError, asyncpg.exceptions.CannotConnectNowError) as exc:
            raise StoreUnreachable(f"cannot connect to the PostgreSQL store {self.display}: {exc}") from exc
        except DRIVER_ERRORS as exc:  # refused: a wrong password or database name, no point in waiting
            raise StoreError(f"cannot connect to the PostgreSQL store {self.display}: {exc}") from exc
        try:
            with self.failures():
                await self.migrate(pool)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def migrate(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(self.schema))
            if self.schema != "public":
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the store's schema is version {version}, newer than this sophia-mcp knows "
                    f"({len(MIGRATIONS)}): upgrade sophia-mcp"
                )
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", number)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:  # a connection to a server that is gone never acknowledges a graceful close
                await asyncio.wait_for(pool.close(), timeout=self.command_timeout)
            except TimeoutError:
                pass  # cancelled, `close` terminated the pool instead

    async def _run(self, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        with self.failures():
            pool = self.pool
            try:
                return await call(pool)
            except CONNECTION_LOST:
                await pool.expire_connections()  # the rest of the pool went with it: new connections for all
                return await call(pool)
            except TimeoutError:
                await pool.expire_connections()  # maybe a connection to a server that is gone: replace them
                raise

    async def _execute(self, sql: str, *args: Any) -> str:
        return str(await self._run(lambda pool: pool.execute(sql, *args)))

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self._run(lambda pool: pool.fetch(sql, *args)))

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._run(lambda pool: pool.fetchrow(sql, *args))

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run(lambda pool: pool.fetchval(sql, *args))

    async def ping(self) -> None:
        await self._fetchval("SELECT 1")

    # -- snapshots and leases -----------------------------------------------------------------

    async def get_snapshot(self, key: str) -> Snapshot | None:
        row = await self._fetchrow("SELECT body, fetched_at FROM snapshots WHERE key = $1", key)
        return Snapshot(row["body"], row["fetched_at"]) if row else None

    async def put_snapshot(self, key: str, platform: str, snapshot: Snapshot) -> None:
        await self._execute(
            """INSERT INTO snapshots (key, platform, body, fetched_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (key) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at
               WHERE snapshots.fetched_at < excluded.fetched_at""",
            key, platform, snapshot.body, snapshot.fetched_at,
        )

    async def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        taken = await self._fetchval(
            """INSERT INTO leases (key, holder, expires_at) VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
               ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
               WHERE leases.expires_at < clock_timestamp() OR leases.holder = excluded.holder
               RETURNING true""",
            key, holder, float(seconds),
        )
        return bool(taken)

    async def release_lease(self, key: str, holder: str) -> None:
        await self._execute("DELETE FROM leases WHERE key = $1 AND holder = $2", key, holder)

    # -- audit --------------------------------------------------------------------------------

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        # one statement, one round trip, one commit (and one WAL flush) for the whole batch
        await self._execute(
            """INSERT INTO audit_log (at, principal, transport, tool, arguments, outcome, duration_ms, source)
               SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::jsonb[],
                                    $6::text[], $7::float8[], $8::text[])""",
            [e.at for e in entries],
            [e.principal for e in entries],
            [e.transport for e in entries],
            [e.tool for e in entries],
            [arguments_json(e.arguments) for e in entries],
            [e.outcome for e in entries],
            [e.duration_ms for e in entries],
            [e.source for e in entries],
        )

    async def read_audit(
        self, *, since: datetime | None = None, tool: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        rows = await self._fetch(
            """SELECT at, principal, transport, tool, arguments::text AS arguments, outcome, duration_ms, source
               FROM audit_log
               WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::text IS NULL OR tool = $2)
               ORDER BY at DESC, id DESC LIMIT $3""",
            since, tool, limit,
        )
        return [_entry(row) for row in reversed(rows)]

    async def prune_audit(self, before: datetime) -> int:
        status = await self._execute("DELETE FROM audit_log WHERE at < $1", before)
        return int(status.split()[-1])

    async def prune_snapshots(self, before: float) -> int:
        await self._execute("DELETE FROM leases WHERE expires_at < clock_timestamp()")
        status = await self._execute("DELETE FROM snapshots WHERE fetched_at < $1", before)
        return int(status.split()[-1])


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        row["at"], row["principal"], row["transport"], row["tool"], json.loads(row["arguments"]), row["outcome"],
        row["duration_ms"], row["source"],
    )
