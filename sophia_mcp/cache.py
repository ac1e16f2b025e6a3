"""The read path's cache. Every read operation of every connector passes through `Cache.read`.

This first version only fetches live; freshness TTLs, stale fallback, coalescing and the shared
store come with the store (see issue "Store and cache").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sophia_mcp.models import Freshness

T = TypeVar("T")


@dataclass(frozen=True)
class CacheKey:
    platform: str
    operation: str
    arguments: str  # normalised JSON of the arguments
    credential: str  # digest of the credentials, never the credentials

    def as_text(self) -> str:
        return f"{self.platform}|{self.operation}|{self.credential}|{self.arguments}"


class Cache:
    async def read(
        self, key: CacheKey, fetch: Callable[[], Awaitable[T]], model: type[Any], *, fresh: bool = False
    ) -> tuple[T, Freshness]:
        value = await fetch()
        return value, Freshness(source="live", fetched_at=datetime.now(UTC), age_seconds=0.0)

    async def start(self) -> None:
        pass

    async def readiness_problems(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        pass
