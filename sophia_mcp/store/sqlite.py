"""SQLite store: the zero-setup default. The standard library's `sqlite3` runs in one thread of the
store's own (one connection), so the event loop never waits on disk; audit batches go to a writer
process (`audit_writer`), which spares the event loop the GIL hand-offs of a thread per commit.

The database is in WAL mode. Audit commits use `synchronous=FULL` (fsync before the caller is
answered: nothing acknowledged is lost, even on power loss); snapshot writes use `NORMAL` (they are
a cache: surviving a process crash is enough). Migrations run under `BEGIN IMMEDIATE`, the
database's write lock, so processes starting together apply each one exactly once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sophia_mcp.store import AuditEntry, Snapshot, Store, StoreError, arguments_json
from sophia_mcp.store.audit_writer import AuditWriter

T = TypeVar("T")

#: Version N is MIGRATIONS[N - 1]; applied versions are recorded in `PRAGMA user_version`.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE snapshots (
            key TEXT PRIMARY KEY,
            platform TEXT NOT NULL,
            body TEXT NOT NULL,
            fetched_at REAL NOT NULL
        )""",
        "CREATE INDEX snapshots_fetched_at ON snapshots (fetched_at)",
        """CREATE TABLE leases (
            key TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at REAL NOT NULL
        )""",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            principal TEXT NOT NULL,
            transport TEXT NOT NULL,
            tool TEXT NOT NULL,
            arguments TEXT NOT NULL,
            outcome TEXT NOT NULL,
            duration_ms REAL NOT NULL,
            source TEXT
        )""",
        "CREATE INDEX audit_log_at ON audit_log (at)",
        "CREATE INDEX audit_log_tool_at ON audit_log (tool, at)",
    ],
]


AUDIT_COLUMNS = ("at", "principal", "transport", "tool", "arguments", "outcome", "duration_ms", "source")
#: rows per INSERT: 8 parameters each, under SQLite's limit of 32,766 parameters a statement
AUDIT_ROWS_PER_STATEMENT = 4000


@functools.lru_cache(maxsize=64)
def audit_insert(rows: int) -> str:
    values = "(" + ", ".join("?" * len(AUDIT_COLUMNS)) + ")"
    return f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES " + ", ".join([values] * rows)


def audit_params(entries: Sequence[AuditEntry]) -> list[Any]:
    """The entries' column values, row after row (`AUDIT_COLUMNS` order)."""
    return [
        value
        for e in entries
        for value in (e.at.timestamp(), e.principal, e.transport, e.tool, arguments_json(e.arguments), e.outcome,
                      e.duration_ms, e.source)
    ]


def insert_audit(conn: sqlite3.Connection, params: Sequence[Any]) -> None:
    """Insert the rows of `params` in one transaction (durable if the connection is `synchronous=FULL`).
    One multi-row INSERT, not executemany: every statement step releases and retakes the GIL."""
    width = len(AUDIT_COLUMNS)
    if not params:
        return
    if len(params) % width:
        raise ValueError(f"audit rows have {width} values each, got {len(params)} values")
    per_statement = AUDIT_ROWS_PER_STATEMENT * width
    if len(params) <= per_statement:  # one statement: its own transaction, committed as it ends
        conn.execute(audit_insert(len(params) // width), params)
        return
    conn.execute("BEGIN")
    try:
        for start in range(0, len(params), per_statement):
            chunk = params[start : start + per_statement]
            conn.execute(audit_insert(len(chunk) // width), chunk)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SQLiteStore(Store):
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        # one connection, used by one thread of its own, so calls run one at a time, in order
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sophia-sqlite")
        self._sync_mode = ""
        self._writer: AuditWriter | None = None
        self._writer_start: asyncio.Task[None] | None = None

    def _synchronous(self, conn: sqlite3.Connection, mode: str) -> None:
        """`PRAGMA synchronous`, issued only when it changes (every statement costs a GIL round trip)."""
        if self._sync_mode != mode:
            conn.execute(f"PRAGMA synchronous = {mode}")
            self._sync_mode = mode

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError(f"the SQLite store {self.path} is not open")
        try:
            return await self._in_thread(fn, conn)
        except sqlite3.Error as exc:
            raise StoreError(f"the SQLite store {self.path} failed: {exc}") from exc

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # the event loop's own executor hand-off: a turn of the loop shorter than anyio's to_thread,
        # which counts here because every audited answer waits for one
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        try:
            self._conn = await self._in_thread(self._connect)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            Path(self.path).expanduser() if self.path != ":memory:" else self.path,
            isolation_level=None,  # transactions are explicit
            check_same_thread=False,  # used from one worker thread at a time
            timeout=30.0,
        )
        conn.execute("PRAGMA busy_timeout = 30000")
        self._sync_mode = ""  # a new connection starts with the default
        use_wal(conn)
        migrate(conn)
        return conn

    async def aclose(self) -> None:
        starting, self._writer_start = self._writer_start, None
        if starting is not None:
            await starting
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.aclose()
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._in_thread(conn.close)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    # -- snapshots and leases -----------------------------------------------------------------

    async def get_snapshot(self, key: str) -> Snapshot | None:
        def get(conn: sqlite3.Connection) -> Snapshot | None:
            row = conn.execute("SELECT body, fetched_at FROM snapshots WHERE key = ?", (key,)).fetchone()
            return Snapshot(row[0], row[1]) if row else None

        return await self._run(get)

    async def put_snapshot(self, key: str, platform: str, snapshot: Snapshot) -> None:
        def put(conn: sqlite3.Connection) -> None:
            self._synchronous(conn, "NORMAL")
            conn.execute(
                """INSERT INTO snapshots (key, platform, body, fetched_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at
                   WHERE snapshots.fetched_at < excluded.fetched_at""",
                (key, platform, snapshot.body, snapshot.fetched_at),
            )

        await self._run(put)

    async def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        def take(conn: sqlite3.Connection) -> bool:
            now = time.time()
            self._synchronous(conn, "NORMAL")
            row = conn.execute(
                """INSERT INTO leases (key, holder, expires_at) VALUES (?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                   WHERE leases.expires_at < ? OR leases.holder = excluded.holder
                   RETURNING holder""",
                (key, holder, now + seconds, now),
            ).fetchone()
            return row is not None

        return await self._run(take)

    async def release_lease(self, key: str, holder: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder)))

    # -- audit --------------------------------------------------------------------------------

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        params = audit_params(entries)

        def append(conn: sqlite3.Connection) -> None:
            self._synchronous(conn, "FULL")
            insert_audit(conn, params)

        await self._run(append)

    def commit_audit(self, entries: Sequence[AuditEntry], done: Callable[[BaseException | None], None]) -> None:
        """Through the audit writer process while it runs (see `audit_writer`; started by the first
        commit, so a store opened only to read starts none), else in this store's thread."""
        params = audit_params(entries)
        if self._writer is not None and self._writer.commit(params, done):
            return
        loop = asyncio.get_running_loop()
        if self._writer_start is None and self._conn is not None and self.path != ":memory:":
            self._writer_start = loop.create_task(self._start_writer())  # one try: a writer that died stays gone

        def commit() -> None:
            error: BaseException | None = None
            try:
                if self._conn is None:
                    raise StoreError(f"the SQLite store {self.path} is not open")
                self._synchronous(self._conn, "FULL")
                insert_audit(self._conn, params)
            except sqlite3.Error as exc:
                error = StoreError(f"the SQLite store {self.path} failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - handed to `done`, which fails the waiting calls and logs it
                error = exc
            loop.call_soon_threadsafe(done, error)

        self._thread.submit(commit)

    async def _start_writer(self) -> None:
        self._writer = await AuditWriter.start(str(Path(self.path).expanduser()))

    async def read_audit(
        self, *, since: datetime | None = None, tool: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("at >= ?")
            params.append(since.timestamp())
        if tool is not None:
            where.append("tool = ?")
            params.append(tool)
        sql = "SELECT at, principal, transport, tool, arguments, outcome, duration_ms, source FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        return [
            AuditEntry(datetime.fromtimestamp(at, UTC), principal, transport, tool_, json.loads(arguments), outcome,
                       duration_ms, source)
            for at, principal, transport, tool_, arguments, outcome, duration_ms, source in reversed(await self._run(read))
        ]

    async def prune_audit(self, before: datetime) -> int:
        def prune(conn: sqlite3.Connection) -> int:
            self._synchronous(conn, "FULL")
            return conn.execute("DELETE FROM audit_log WHERE at < ?", (before.timestamp(),)).rowcount

        return await self._run(prune)

    async def prune_snapshots(self, before: float) -> int:
        def prune(conn: sqlite3.Connection) -> int:
            self._synchronous(conn, "NORMAL")
            conn.execute("DELETE FROM leases WHERE expires_at < ?", (time.time(),))
            return conn.execute("DELETE FROM snapshots WHERE fetched_at < ?", (before,)).rowcount

        return await self._run(prune)


def use_wal(conn: sqlite3.Connection, within: float = 30.0) -> None:
    """Switch to WAL. Processes opening a new database together can find it locked: switching needs
    a moment alone with the file, and SQLite does not wait for it (no busy handler), so we do."""
    deadline = time.monotonic() + within
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # an in-memory database stays "memory": fine too
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this database lacks, each exactly once even with several processes."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the store's schema is version {version}, newer than this sophia-mcp knows ({len(MIGRATIONS)}): "
                "upgrade sophia-mcp"
            )
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
