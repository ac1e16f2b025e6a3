"""The audit log: every tool call and REST call, committed to the store before the caller is answered.

Group commit: callers append their entry to the pending batch and wait; the store commits whole
batches (one transaction, one fsync), so a hundred concurrent calls cost one commit, not a hundred
in a row. A caller returns only once its batch is committed, so nothing acknowledged is lost when
the process dies. If the store cannot commit, the call fails rather than go unrecorded.

Every hand-off costs a turn of the event loop, and under load a turn is long, so there are few:
the first caller hands its batch to the store at once; the store's completion callback answers the
batch's callers (each waits on a future of its own, no `shield`) and hands over the next batch,
gathered meanwhile. No writer task sits in between.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Mapping
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
        self._waiters: list[asyncio.Future[None]] = []
        self._committing = False
        self._idle = asyncio.Event()  # set while no batch is being committed
        self._idle.set()
        self._pruner: asyncio.Task[None] | None = None

    def __call__(self, record: Mapping[str, Any]) -> Awaitable[None]:
        """Awaitable once `record` is committed. A plain function returning the caller's own future:
        one coroutine less to create and to resume on every audited call."""
        at = record.get("at")
        arguments = record.get("arguments")
        entry = AuditEntry(
            at=datetime.fromisoformat(at) if isinstance(at, str) else at or datetime.now(UTC),
            principal=record.get("principal") or "anonymous",
            transport=record.get("transport") or "unknown",
            tool=record["tool"],
            arguments=without_secrets(dict(arguments)) if arguments else {},
            outcome=record.get("outcome") or "ok",
            duration_ms=float(record.get("duration_ms") or 0.0),
            source=record.get("source"),
        )
        if self._pruner is None:  # not started (or stopped): commit alone
            return self._commit([entry])
        committed = asyncio.get_running_loop().create_future()
        self._pending.append(entry)
        self._waiters.append(committed)
        if not self._committing:
            self._commit_pending()
        return committed

    def _commit_pending(self) -> None:
        """Hand the pending batch to the store; when it lands, answer its callers and hand over the
        next batch, which gathered meanwhile (group commit, driven by the store's callback)."""
        batch, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        self._committing = True
        self._idle.clear()

        def landed(error: BaseException | None) -> None:
            failure: AuditUnavailable | None = None
            if error is not None:
                failure = self._unavailable(len(batch), error)
            for waiter in waiters:
                if not waiter.done():  # a caller that went away cancelled its own wait
                    if failure is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(failure)
            if self._pending:
                self._commit_pending()
            else:
                self._committing = False
                self._idle.set()

        try:
            self.store.commit_audit(batch, landed)
        except Exception as exc:  # noqa: BLE001 - a store that cannot even start a commit fails this batch's calls
            landed(exc)

    async def start(self) -> None:
        if self._pruner is None:
            self._pruner = asyncio.get_running_loop().create_task(self._prune_periodically(), name="sophia-audit-pruner")

    async def aclose(self) -> None:
        """Wait for what is pending to be committed, then stop."""
        if self._pruner is None:
            return
        pruner, self._pruner = self._pruner, None
        pruner.cancel()
        await asyncio.gather(pruner, return_exceptions=True)
        await self._idle.wait()

    async def _commit(self, batch: list[AuditEntry]) -> None:
        try:
            await self.store.append_audit(batch)
        except Exception as exc:
            raise self._unavailable(len(batch), exc) from exc

    @staticmethod
    def _unavailable(entries: int, error: BaseException) -> AuditUnavailable:
        if isinstance(error, StoreError):
            log.error("audit log: could not commit %d entries: %s", entries, error)
        else:
            log.error("audit log: could not commit %d entries", entries, exc_info=error)
        return AuditUnavailable(
            "the call ran, but its audit entry could not be saved, so its result is withheld; "
            "the store is unreachable, try again shortly."
        )

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
