"""The store: cache snapshots, refresh leases and the audit log.

One small interface, three implementations chosen by `SOPHIA_STORE_URL`:

- `sqlite:///path/to/file` (the default, under the user's data directory): zero setup, one replica;
- `postgresql://user@host:port/db[?schema=name]`: shared by every replica (snapshots, refresh leases,
  audit log), through an asyncpg connection pool;
- `memory://`: in this process only (tests, and a `Service` built without a store).

`open()` connects and applies the versioned schema migrations, safely when several replicas start
at once. Times are epoch seconds (`time.time()`) except audit timestamps, which are aware datetimes.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit


class StoreError(Exception):
    """The store cannot be opened or used; the message names the store without its password."""


class StoreUnreachable(StoreError):
    """The store's server did not answer (down, restarting, not yet up): worth trying again."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The last good answer for one cache key: the value as JSON, and when the platform gave it."""

    body: str
    fetched_at: float


@dataclass(slots=True)  # not frozen: one is built per call, and frozen dataclasses build 4x slower
class AuditEntry:
    at: datetime
    principal: str
    transport: str
    tool: str
    arguments: dict[str, Any]
    outcome: str
    duration_ms: float
    source: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "principal": self.principal,
            "transport": self.transport,
            "tool": self.tool,
            "arguments": self.arguments,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
            "source": self.source,
        }


def snapshot_key(text: str) -> str:
    """The store's key for a cache key's text: fixed length, and no argument values in clear."""
    return hashlib.sha256(text.encode()).hexdigest()


def arguments_json(arguments: dict[str, Any]) -> str:
    if not arguments:
        return "{}"
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)


class Store(abc.ABC):
    #: replicas share this store, so a refresh lease decides which one calls the platform
    shared: ClassVar[bool] = False

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    @abc.abstractmethod
    async def get_snapshot(self, key: str) -> Snapshot | None: ...

    @abc.abstractmethod
    async def put_snapshot(self, key: str, platform: str, snapshot: Snapshot) -> None:
        """Keep `snapshot` unless the stored one is newer."""

    @abc.abstractmethod
    async def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Take (or extend) the refresh lease on `key` unless another holder's is unexpired."""

    @abc.abstractmethod
    async def release_lease(self, key: str, holder: str) -> None: ...

    @abc.abstractmethod
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Commit all `entries` durably, in one transaction, before returning."""

    def commit_audit(self, entries: Sequence[AuditEntry], done: Callable[[BaseException | None], None]) -> None:
        """Start `append_audit(entries)` and return at once; `done(error)` runs on the event loop once
        the entries are committed (`None`) or could not be. A store that commits in a thread of its
        own calls back from there, which saves the group commit a turn of the event loop."""

        def finished(task: asyncio.Task[None]) -> None:
            done(asyncio.CancelledError() if task.cancelled() else task.exception())

        asyncio.get_running_loop().create_task(self.append_audit(entries)).add_done_callback(finished)

    @abc.abstractmethod
    async def read_audit(
        self, *, since: datetime | None = None, tool: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Entries oldest first; with `limit`, the most recent `limit` of them."""

    @abc.abstractmethod
    async def prune_audit(self, before: datetime) -> int:
        """Delete audit entries older than `before`; returns how many."""

    @abc.abstractmethod
    async def prune_snapshots(self, before: float) -> int:
        """Delete snapshots fetched before `before`, and expired leases; returns how many snapshots."""


def redacted_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def open_store(url: str) -> Store:
    """The store for `SOPHIA_STORE_URL` (not yet opened)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from sophia_mcp.store.sqlite import SQLiteStore

        path = re.sub(r"^sqlite:///?", "", url, flags=re.IGNORECASE)
        if not path:
            raise StoreError("SOPHIA_STORE_URL: a sqlite URL needs a path: sqlite:///relative or sqlite:////absolute")
        return SQLiteStore(path)
    if scheme in ("postgresql", "postgres"):
        from sophia_mcp.store.postgres import PostgresStore

        return PostgresStore(url)
    if scheme == "memory":
        from sophia_mcp.store.memory import MemoryStore

        return MemoryStore()
    raise StoreError(
        f"SOPHIA_STORE_URL: unsupported store {redacted_url(url)!r}; use sqlite:///path or postgresql://..."
    )
