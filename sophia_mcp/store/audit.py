"""The audit log: every tool call and REST call, committed to the store before the caller is answered.

Group commit: callers append their entry to the pending batch and wait; one writer task commits
whole batches (one transaction, one fsync), so a hundred concurrent calls cost one commit, not a
hundred in a row. A caller returns only once its batch is committed, so nothing acknowledged is
lost when the process dies. If the store cannot commit, the call fails rather than go unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sophia_mcp.errors import SophiaError
from sophia_mcp.store import AuditEntry, Store, StoreError

log = logging.getLogger("sophia_mcp.audit")

SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|authori[sz]ation|cookie|credential|session)",
    re.IGNORECASE,
)
# values that look like a credential whatever the field: platform token formats and bearer headers
SECRET_VALUE = re.compile(
    r"(lin_(api|oauth)_[A-Za-z0-9]{8,}|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_\w{16,}|xox[abposr]-[\w-]{8,}"
    r"|pat-[a-z]{2,4}\d?-[\w-]{16,}|ntn_[A-Za-z0-9]{16,}|secret_[A-Za-z0-9]{16,}|Bearer\s+\S{8,})"
)
REDACTED = "[redacted]"
PRUNE_EVERY = 3600.0  # seconds


def without_secrets(value: Any, name: str = "") -> Any:
    """A copy of `value` with anything that is or looks like a credential replaced by `[redacted]`."""
    if name and SECRET_NAME.search(name) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): without_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_secrets(v) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE.sub(REDACTED, value)
    return value


class AuditUnavailable(SophiaError):
    type = "audit-unavailable"
    status = 503
    title = "Audit log unavailable"


class AuditLog:
    """The `audit` sink of `Service`: `await audit(record)` returns once the record is committed."""

    def __init__(self, store: Store, *, retention_days: float = 30.0) -> None:
        self.store = store
        self.retention = timedelta(days=retention_days)
        self._pending: list[AuditEntry] = []
        self._batch_committed: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    async def __call__(self, record: Mapping[str, Any]) -> None:
        at = record.get("at")
        entry = AuditEntry(
            at=datetime.fromisoformat(at) if isinstance(at, str) else at or datetime.now(UTC),
            principal=record.get("principal") or "anonymous",
            transport=record.get("transport") or "unknown",
            tool=record["tool"],
            arguments=without_secrets(dict(record.get("arguments") or {})),
            outcome=record.get("outcome") or "ok",
            duration_ms=float(record.get("duration_ms") or 0.0),
            source=record.get("source"),
        )
        if not self._tasks:  # not started (or stopped): commit alone
            await self._commit([entry])
            return
        if self._batch_committed is None:
            self._batch_committed = asyncio.get_running_loop().create_future()
        committed = self._batch_committed
        self._pending.append(entry)
        self._wake.set()
        await asyncio.shield(committed)

    async def start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._closing = False
            self._tasks = [
                loop.create_task(self._write_batches(), name="sophia-audit-writer"),
                loop.create_task(self._prune_periodically(), name="sophia-audit-pruner"),
            ]

    async def aclose(self) -> None:
        """Commit what is pending, then stop."""
        if not self._tasks:
            return
        writer, pruner = self._tasks
        self._closing = True
        self._wake.set()
        pruner.cancel()
        await asyncio.gather(writer, pruner, return_exceptions=True)
        self._tasks = []

    async def _write_batches(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, committed = self._pending, self._batch_committed
                self._pending, self._batch_committed = [], None
                try:
                    await self._commit(batch)
                except AuditUnavailable as exc:
                    if committed is not None:
                        committed.set_exception(exc)
                        committed.exception()  # retrieved here: a caller that went away leaves no warning
                else:
                    if committed is not None:
                        committed.set_result(None)
            if self._closing:
                return

    async def _commit(self, batch: list[AuditEntry]) -> None:
        try:
            await self.store.append_audit(batch)
        except StoreError as exc:
            log.error("audit log: could not commit %d entries: %s", len(batch), exc)
            raise AuditUnavailable(
                "the call ran, but its audit entry could not be saved, so its result is withheld; "
                "the store is unreachable, try again shortly."
            ) from exc

    async def _prune_periodically(self) -> None:
        while True:
            await self.prune()
            await asyncio.sleep(PRUNE_EVERY)

    async def prune(self) -> int:
        """Delete entries older than the retention (`SOPHIA_AUDIT_RETENTION_DAYS`); returns how many."""
        try:
            pruned = await self.store.prune_audit(datetime.now(UTC) - self.retention)
        except StoreError as exc:
            log.warning("audit log: pruning failed: %s", exc)
            return 0
        if pruned:
            log.info("audit log: pruned %d entries older than %s", pruned, self.retention)
        return pruned
