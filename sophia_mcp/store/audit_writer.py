"""The SQLite store's audit writer: a small process of its own that commits audit batches, each with
an fsync, and acknowledges them in order.

Why a process: the event loop answers an audited call only once its entry is durable. Committed from
a thread, every batch made that thread wake up and take the GIL back after its fsync, in turns with
the busy event loop; measured on bench (a), those hand-offs cost the loop about a fifth of its cached
REST throughput. A process has a GIL of its own: the loop only writes a line to a pipe and reads one.

Protocol, one line each way per batch: in, a JSON array of column values (`AUDIT_COLUMNS`, row after
row); out, `ok` or `error <message>`. The writer exits at the end of its input, so it never outlives
the server, even one killed with SIGKILL. If it dies, the batches it had not acknowledged fail (their
calls are not answered as if recorded) and the store goes on committing in its own thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from sophia_mcp.store import StoreError

log = logging.getLogger("sophia_mcp.store")

Done = Callable[[BaseException | None], None]


class AuditWriter(asyncio.SubprocessProtocol):
    """The server's side: `commit(params, done)` sends a batch; `done(error)` runs when it lands."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._waiting: deque[Done] = deque()  # callbacks of sent batches, in order
        self._received = b""
        self._exited = asyncio.get_running_loop().create_future()

    @classmethod
    async def start(cls, path: str) -> AuditWriter | None:
        """The writer for the database at `path`, running; None if it cannot be started."""
        loop = asyncio.get_running_loop()
        try:
            _, writer = await loop.subprocess_exec(
                lambda: cls(path), sys.executable, "-m", __name__, path,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            )
        except OSError as exc:
            log.warning("audit log: no writer process (%s); committing in a thread", exc)
            return None
        return writer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, so no isinstance checks here
        self._transport = cast(asyncio.SubprocessTransport, transport)
        self._stdin = cast(asyncio.WriteTransport, self._transport.get_pipe_transport(0))

    def commit(self, params: Sequence[Any], done: Done) -> bool:
        """Send one batch; False (nothing sent) when the writer is not running."""
        if self._stdin is None or self._stdin.is_closing():
            return False
        self._waiting.append(done)
        self._stdin.write(json.dumps(params, separators=(",", ":")).encode() + b"\n")
        return True

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._received += data
        *lines, self._received = self._received.split(b"\n")
        for line in lines:
            done = self._waiting.popleft()
            done(None if line == b"ok" else StoreError(f"the SQLite store {self.path} failed: {line[6:].decode()}"))

    def process_exited(self) -> None:
        code = self._transport.get_returncode() if self._transport is not None else None
        if self._stdin is not None and not self._stdin.is_closing():
            log.warning("audit log: the writer process exited (code %s); committing in a thread from now on", code)
            self._stdin.close()
        error = StoreError(f"the audit writer process exited (code {code}) before confirming these entries")
        while self._waiting:
            self._waiting.popleft()(error)
        if not self._exited.done():
            self._exited.set_result(None)

    async def aclose(self) -> None:
        """Let the writer commit what it was sent, then wait for it to exit."""
        if self._stdin is not None:
            self._stdin.close()  # end of input: the writer finishes and exits
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), timeout=30)
        except TimeoutError:
            log.warning("audit log: the writer process did not exit; stopping it")
            if self._transport is not None:
                self._transport.kill()
        if self._transport is not None:
            self._transport.close()


def main(argv: Sequence[str]) -> int:
    """The writer process: batches from stdin into the `audit_log` table at `argv[0]`."""
    from sophia_mcp.store.sqlite import insert_audit

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which ends our input
    conn = sqlite3.connect(argv[0], isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = FULL")  # fsync at every commit: nothing acknowledged is lost
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            insert_audit(conn, json.loads(line))
            out.write(b"ok\n")
        except (sqlite3.Error, ValueError) as exc:
            out.write(b"error " + str(exc).replace("\n", " ").encode() + b"\n")
        out.flush()
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
