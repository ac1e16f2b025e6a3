"""A store that lives in this process: for tests and for a `Service` built without one."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from sophia_mcp.store import AuditEntry, Snapshot, Store


class MemoryStore(Store):
    def __init__(self) -> None:
        self.snapshots: dict[str, Snapshot] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.audit: list[AuditEntry] = []

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def get_snapshot(self, key: str) -> Snapshot | None:
        return self.snapshots.get(key)

    async def put_snapshot(self, key: str, platform: str, snapshot: Snapshot) -> None:
        stored = self.snapshots.get(key)
        if stored is None or stored.fetched_at < snapshot.fetched_at:
            self.snapshots[key] = snapshot

    async def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        now = time.time()
        current = self.leases.get(key)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self.leases[key] = (holder, now + seconds)
        return True

    async def release_lease(self, key: str, holder: str) -> None:
        if self.leases.get(key, ("",))[0] == holder:
            del self.leases[key]

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self.audit.extend(entries)

    async def read_audit(
        self, *, since: datetime | None = None, tool: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        found = [e for e in self.audit if (since is None or e.at >= since) and (tool is None or e.tool == tool)]
        return found[-limit:] if limit else found

    async def prune_audit(self, before: datetime) -> int:
        kept = [e for e in self.audit if e.at >= before]
        pruned, self.audit = len(self.audit) - len(kept), kept
        return pruned

    async def prune_snapshots(self, before: float) -> int:
        now = time.time()
        self.leases = {k: v for k, v in self.leases.items() if v[1] >= now}
        old = [k for k, s in self.snapshots.items() if s.fetched_at < before]
        for key in old:
            del self.snapshots[key]
        return len(old)
