"""The read path's cache. Every read operation of every connector passes through `Cache.read`.

- A hot in-process layer answers fresh entries (younger than `SOPHIA_CACHE_TTL`) with no I/O.
- On a miss, the store is asked first (another replica, or this one before a restart, may hold a
  fresh snapshot); only then the platform. Every good answer is written back to both.
- Identical concurrent misses in this process share one upstream call (one task per key, awaited
  by every caller). On a shared store (PostgreSQL) a refresh lease lets one replica call the
  platform for a key while the others wait for its snapshot, or serve the one they have.
- When the platform fails with a retriable error (5xx, timeout, long 429, circuit open), the last
  good snapshot younger than `SOPHIA_CACHE_MAX_STALE` is served as `stale`, with the reason.
- A background task refreshes entries that were used within the TTL before they expire, a few at
  a time per platform (`SOPHIA_CACHE_REFRESH_CONCURRENCY`), so dashboards never wait on platforms.

The cache runs on asyncio (the only event loop sophia-mcp runs on, with uvloop in production).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import ValidationError

from sophia_mcp import metrics
from sophia_mcp.errors import SophiaError
from sophia_mcp.models import Freshness
from sophia_mcp.store import Snapshot, Store, StoreError, snapshot_key
from sophia_mcp.store.memory import MemoryStore

if TYPE_CHECKING:
    from sophia_mcp.config import Settings

log = logging.getLogger("sophia_mcp.cache")

T = TypeVar("T")
Fetch = Callable[[], Awaitable[Any]]
ChangeListener = Callable[["CacheKey", Any, Any], Awaitable[None]]

REFRESH_AHEAD = 0.8  # refresh a used entry once it has lived this share of the TTL
PRUNE_EVERY = 3600.0  # seconds between deletions of snapshots too old to serve even stale


@dataclass(frozen=True)
class CacheKey:
    platform: str
    operation: str
    arguments: str  # normalised JSON of the arguments
    credential: str  # digest of the credentials, never the credentials

    def as_text(self) -> str:
        return f"{self.platform}|{self.operation}|{self.credential}|{self.arguments}"

    @cached_property
    def store_key(self) -> str:
        return snapshot_key(self.as_text())


@dataclass(slots=True)
class Entry:
    """A value in the hot layer, with what is needed to refresh it."""

    value: Any
    fetched_at: float
    fetched_at_dt: datetime
    used_at: float
    fetch: Fetch
    model: type[Any]
    freshness: Freshness | None = None  # of the last hit: one object per second of age, reused


@dataclass(frozen=True, slots=True)
class Served:
    value: Any
    fetched_at: float
    fetched_at_dt: datetime
    source: Literal["live", "cache", "stale"]
    stale_reason: str | None = None


Mode = Literal["read", "fresh", "refresh"]

LOOKUP_RESULT = {"live": "miss", "cache": "fresh", "stale": "stale"}


class Cache:
    def __init__(
        self,
        store: Store | None = None,
        *,
        ttl: float = 300.0,
        max_stale: float = 86_400.0,
        refresh_concurrency: int = 2,
        lease_seconds: float = 60.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store: Store = store if store is not None else MemoryStore()
        self.ttl = ttl
        self.max_stale = max_stale
        self.refresh_concurrency = refresh_concurrency
        self.lease_seconds = lease_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.replica = uuid.uuid4().hex  # lease holder name
        self.hot: dict[CacheKey, Entry] = {}
        self.version = 0  # changes whenever the hot layer gains, replaces or drops an entry
        self.flights: dict[CacheKey, asyncio.Task[Served]] = {}  # one upstream call per key at a time
        self._refresh_limits: dict[str, asyncio.Semaphore] = {}
        self._background: asyncio.Task[None] | None = None
        self._change_listeners: list[ChangeListener] = []
        self._announcements: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None) -> Cache:
        return cls(
            store,
            ttl=settings.cache_ttl,
            max_stale=settings.cache_max_stale,
            refresh_concurrency=settings.cache_refresh_concurrency,
            # long enough for a fetch with all its retries; a holder that died frees the key after it
            lease_seconds=min(300.0, settings.http_timeout * (settings.http_max_retries + 1) + 10),
        )

    # -- the read path ------------------------------------------------------------------------

    async def read(
        self, key: CacheKey, fetch: Callable[[], Awaitable[T]], model: type[Any], *, fresh: bool = False
    ) -> tuple[T, Freshness]:
        """The value for `key` and where it came from. `fetch` calls the platform; `model` rebuilds
        the value from its stored JSON. `fresh=True` skips fresh entries but still shares the call."""
        if not fresh and (hit := self.fresh_hit(key)) is not None:
            return hit
        served = await self._coalesced(key, fetch, model, fresh, self.clock())
        age = int(max(0.0, self.clock() - served.fetched_at)) if served.source != "live" else 0
        self._count(key.platform, LOOKUP_RESULT[served.source], age)
        return served.value, Freshness.model_construct(
            source=served.source, fetched_at=served.fetched_at_dt, age_seconds=age, stale_reason=served.stale_reason
        )

    def fresh_hit(self, key: CacheKey) -> tuple[Any, Freshness] | None:
        """The value for `key` if the hot layer holds it fresh, else None: `read`'s hit, without
        awaiting anything, so a fan-out over warm keys needs no task per key. Within one second of
        age the same value and freshness objects come back (see `sophia_mcp.memo`)."""
        now = self.clock()
        entry = self.hot.get(key)
        if entry is None or now - entry.fetched_at >= self.ttl:
            return None
        entry.used_at = now
        age = int(max(0.0, now - entry.fetched_at))
        metrics.child(metrics.CACHE_LOOKUPS, key.platform, "fresh").inc()
        freshness = entry.freshness
        if freshness is None or freshness.age_seconds != age:
            metrics.child(metrics.DATA_AGE, key.platform).set(age)  # whole seconds: it changes once a second
            freshness = entry.freshness = Freshness.model_construct(
                source="cache", fetched_at=entry.fetched_at_dt, age_seconds=age, stale_reason=None
            )
        return entry.value, freshness

    def stable_until(self, parts: Iterable[tuple[CacheKey, int]]) -> float:
        """Until when (by `clock`) fresh hits on these keys answer what they answered at these ages,
        provided `version` stays the same: the first moment one of them is a second older or expires."""
        until = math.inf
        for key, age in parts:
            entry = self.hot.get(key)
            if entry is None:
                return 0.0
            until = min(until, entry.fetched_at + age + 1, entry.fetched_at + self.ttl)
        return until

    def _count(self, platform: str, result: str, age: float) -> None:
        metrics.child(metrics.CACHE_LOOKUPS, platform, result).inc()
        metrics.child(metrics.DATA_AGE, platform).set(age)

    async def _coalesced(self, key: CacheKey, fetch: Fetch, model: type[Any], fresh: bool, started: float) -> Served:
        while True:
            flight = self.flights.get(key)
            if flight is None:
                if fresh:
                    fill = self._fill(key, fetch, model, "fresh", accept_after=started)
                else:
                    fill = self._fill(key, fetch, model, "read", accept_after=started - self.ttl)
                flight = self._launch(key, fill)
            served = await asyncio.shield(flight)
            # a fresh read that joined a flight answered from the store asks the platform itself
            if fresh and served.source == "cache" and served.fetched_at < started:
                continue
            return served

    def _launch(self, key: CacheKey, fill: Coroutine[Any, Any, Served]) -> asyncio.Task[Served]:
        """Run `fill` as the key's one flight: a task of its own, so a caller that goes away (a client
        disconnecting) never cancels the call the others wait for."""
        flight = self.flights[key] = asyncio.get_running_loop().create_task(fill)

        def landed(done: asyncio.Task[Served]) -> None:
            if self.flights.get(key) is done:
                del self.flights[key]
            if not done.cancelled():
                done.exception()  # retrieved: every caller may have gone away

        flight.add_done_callback(landed)
        return flight

    async def _fill(self, key: CacheKey, fetch: Fetch, model: type[Any], mode: Mode, *, accept_after: float) -> Served:
        """Find a snapshot fetched after `accept_after` (in the store, or from another replica's
        call), else call the platform once; on a retriable failure, serve the newest snapshot we
        have as stale. `mode`: a `read`, a `fresh` read, or a background `refresh`."""
        previous = self.hot.get(key)
        stored = await self._stored(key) if mode != "fresh" or self.store.shared else None
        if stored is not None and stored.fetched_at > accept_after and (
            previous is None or stored.fetched_at > previous.fetched_at
        ):
            adopted = self._adopt(key, stored, fetch, model)
            if adopted is not None:
                return adopted

        leased = False
        if self.store.shared:
            leased, answer = await self._lease_or_wait(key, fetch, model, mode, accept_after, previous, stored)
            if answer is not None:
                return answer
        try:
            try:
                value = await fetch()
            except SophiaError as exc:
                if not exc.retriable:
                    raise
                fallback = self._fallback(key, previous, stored or await self._stored(key), fetch, model)
                if fallback is None:
                    raise
                log.info("%s: serving a stale snapshot (%s)", key.platform, exc.message)
                return Served(fallback.value, fallback.fetched_at, fallback.fetched_at_dt, "stale", exc.message)
            return await self._keep(key, value, fetch, model)
        finally:
            if leased:  # released once the snapshot is stored, so waiting replicas find it
                await self._release(key)

    async def _keep(self, key: CacheKey, value: Any, fetch: Fetch, model: type[Any]) -> Served:
        fetched_at = self.clock()
        served = Served(value, fetched_at, datetime.fromtimestamp(fetched_at, UTC), "live")
        self._remember(key, served, fetch, model)
        try:
            await self.store.put_snapshot(key.store_key, key.platform, Snapshot(value.model_dump_json(), fetched_at))
        except StoreError as exc:
            log.warning("cache: could not store a snapshot for %s: %s", key.platform, exc)
        return served

    async def _lease_or_wait(
        self,
        key: CacheKey,
        fetch: Fetch,
        model: type[Any],
        mode: Mode,
        accept_after: float,
        previous: Entry | None,
        stored: Snapshot | None,
    ) -> tuple[bool, Served | None]:
        """On a shared store: (True, None) when this replica holds the lease and calls the platform;
        (False, answer) when another replica's work answers; (False, None) when the lease holder
        seems gone, and this replica calls the platform without the lease."""
        deadline = time.monotonic() + self.lease_seconds
        pause = 0.02
        while not await self._try_lease(key):
            # another replica is calling the platform for this key right now
            usable = self._fallback(key, previous, stored, fetch, model)
            if usable is not None and mode == "refresh":
                return False, usable
            if usable is not None and mode == "read":
                return False, Served(
                    usable.value, usable.fetched_at, usable.fetched_at_dt, "stale",
                    "another replica is refreshing this data from the platform",
                )
            if time.monotonic() > deadline:
                return False, None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)
            stored = await self._stored(key)
            if stored is not None and stored.fetched_at > accept_after:
                adopted = self._adopt(key, stored, fetch, model)
                if adopted is not None:
                    return False, adopted
        # a replica may have stored the answer between our first look and our lease
        fresher = await self._stored(key)
        if fresher is not None and fresher.fetched_at > accept_after:
            adopted = self._adopt(key, fresher, fetch, model)
            if adopted is not None:
                await self._release(key)
                return False, adopted
        return True, None

    # -- snapshots ----------------------------------------------------------------------------

    def _adopt(self, key: CacheKey, snapshot: Snapshot, fetch: Fetch, model: type[Any]) -> Served | None:
        try:
            value = model.model_validate_json(snapshot.body)
        except ValidationError as exc:  # written by another version: not usable, refetch
            log.warning("cache: ignoring a stored %s snapshot that no longer fits %s (%d errors)",
                        key.platform, model.__name__, exc.error_count())
            return None
        served = Served(value, snapshot.fetched_at, datetime.fromtimestamp(snapshot.fetched_at, UTC), "cache")
        self._remember(key, served, fetch, model)
        return served

    def _fallback(
        self, key: CacheKey, previous: Entry | None, stored: Snapshot | None, fetch: Fetch, model: type[Any]
    ) -> Served | None:
        """The newest snapshot still young enough to serve stale, from this process or the store."""
        oldest_allowed = self.clock() - self.max_stale
        current = self.hot.get(key) or previous
        if current is not None and current.fetched_at >= oldest_allowed and (
            stored is None or current.fetched_at >= stored.fetched_at
        ):
            return Served(current.value, current.fetched_at, current.fetched_at_dt, "cache")
        if stored is not None and stored.fetched_at >= oldest_allowed:
            return self._adopt(key, stored, fetch, model)
        return None

    def add_change_listener(self, listener: ChangeListener) -> None:
        """`await listener(key, before, after)` whenever a read or a background refresh replaces a
        key's value with a different one (resource subscriptions hear of changes this way)."""
        self._change_listeners.append(listener)

    def _remember(self, key: CacheKey, served: Served, fetch: Fetch, model: type[Any]) -> None:
        current = self.hot.get(key)
        if current is not None and current.fetched_at >= served.fetched_at:
            return
        used_at = current.used_at if current is not None else self.clock()
        self.hot[key] = Entry(served.value, served.fetched_at, served.fetched_at_dt, used_at, fetch, model)
        self.version += 1
        if current is not None and current.value != served.value:
            for listener in self._change_listeners:
                task = asyncio.ensure_future(listener(key, current.value, served.value))
                self._announcements.add(task)
                task.add_done_callback(self._announcements.discard)
        if len(self.hot) > self.max_entries:
            for old in sorted(self.hot, key=lambda k: self.hot[k].used_at)[: self.max_entries // 10]:
                del self.hot[old]
            self.version += 1

    async def _stored(self, key: CacheKey) -> Snapshot | None:
        try:
            return await self.store.get_snapshot(key.store_key)
        except StoreError as exc:  # the store being down must not stop reads
            log.warning("cache: store unavailable, reading past it: %s", exc)
            return None

    async def _try_lease(self, key: CacheKey) -> bool:
        try:
            return await self.store.try_lease(key.store_key, self.replica, self.lease_seconds)
        except StoreError as exc:
            log.warning("cache: store unavailable for refresh leases: %s", exc)
            return True

    async def _release(self, key: CacheKey) -> None:
        try:
            await self.store.release_lease(key.store_key, self.replica)
        except StoreError as exc:
            log.warning("cache: could not release a refresh lease (it expires by itself): %s", exc)

    # -- background refresh -------------------------------------------------------------------

    async def refresh_due(self) -> int:
        """One pass of the background refresh: refresh every entry read again since it was
        fetched, within the TTL, once it has lived `REFRESH_AHEAD` of the TTL, at most
        `refresh_concurrency` at a time per platform (a one-off read is not kept warm); forget
        entries neither used nor young enough to serve stale. Returns how many were refreshed."""
        now = self.clock()
        due: list[tuple[CacheKey, Entry]] = []
        for key, entry in list(self.hot.items()):
            age = now - entry.fetched_at
            if now - entry.used_at > self.ttl or entry.used_at <= entry.fetched_at:
                if age > self.max_stale:
                    del self.hot[key]
                    self.version += 1
            elif age >= self.ttl * REFRESH_AHEAD and key not in self.flights:
                due.append((key, entry))
        refreshed = await asyncio.gather(*(self._refresh(key, entry) for key, entry in due))
        return sum(refreshed)

    async def _refresh(self, key: CacheKey, entry: Entry) -> bool:
        limit = self._refresh_limits.get(key.platform)
        if limit is None:
            limit = self._refresh_limits[key.platform] = asyncio.Semaphore(self.refresh_concurrency)
        async with limit:
            if key in self.flights or self.hot.get(key) is not entry:
                return False  # a read got there first
            accept_after = self.clock() - self.ttl * (1 - REFRESH_AHEAD)
            flight = self._launch(key, self._fill(key, entry.fetch, entry.model, "refresh", accept_after=accept_after))
            try:
                served = await asyncio.shield(flight)
            except SophiaError as exc:
                log.info("cache: background refresh of %s %s failed: %s", key.platform, key.operation, exc)
                return False
            except Exception:
                log.exception("cache: background refresh of %s %s failed", key.platform, key.operation)
                return False
            return served.source in ("live", "cache") and served.fetched_at > entry.fetched_at

    async def _run_in_background(self) -> None:
        every = max(1.0, min(30.0, self.ttl * (1 - REFRESH_AHEAD) / 2))
        pruned_at = 0.0
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh_due()
                if time.monotonic() - pruned_at > PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    await self.store.prune_snapshots(self.clock() - self.max_stale)
            except Exception:
                log.exception("cache: background refresh pass failed")

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._background is None:
            self._background = asyncio.get_running_loop().create_task(
                self._run_in_background(), name="sophia-cache-refresh"
            )

    async def readiness_problems(self) -> list[str]:
        try:
            await asyncio.wait_for(self.store.ping(), timeout=2.0)
        except (StoreError, TimeoutError) as exc:
            return [f"store unreachable: {type(exc).__name__}: {exc}"]
        return []

    async def aclose(self) -> None:
        tasks: list[asyncio.Task[Any]] = list(self.flights.values())
        if self._background is not None:
            tasks.append(self._background)
            self._background = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
