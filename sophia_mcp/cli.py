"""`sophia-mcp` command line: serve, sandbox, tools, audit."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from pydantic import ValidationError

from sophia_mcp import __version__
from sophia_mcp.config import ENV_PREFIX, Settings, UnknownSetting, load_settings
from sophia_mcp.registry import ToolSpec, all_tools, select_tools, split_names
from sophia_mcp.store import Store, StoreError, StoreUnreachable, open_store

log = logging.getLogger("sophia_mcp")

#: seconds `serve --transport http` waits for an unreachable store (the pod's startup probe allows 60)
STORE_WAIT = 45.0


class UsageError(Exception):
    pass


def add_selection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--toolsets", help="comma-separated platforms whose tools to expose (default: all)")
    parser.add_argument("--tools", help="comma-separated tool names to expose (alone: only these)")
    parser.add_argument("--exclude-tools", help="comma-separated tool names to hide")
    parser.add_argument(
        "--read-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="expose only tools that do not write (default: on; --no-read-only allows writes)",
    )
    parser.add_argument("--allow-writes", dest="read_only", action="store_false", help="same as --no-read-only")


def selected_tools(args: argparse.Namespace) -> list[ToolSpec]:
    try:
        return select_tools(
            all_tools(),
            toolsets=split_names(args.toolsets),
            tools=split_names(args.tools),
            exclude_tools=split_names(args.exclude_tools),
            read_only=args.read_only,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except UnknownSetting as exc:
        raise UsageError(str(exc)) from None
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in error["loc"]).upper() if error["loc"] else "settings"
            lines.append(f"  {name}: {error['msg']}")
        raise UsageError("invalid configuration:\n" + "\n".join(lines)) from None


async def serve(args: argparse.Namespace) -> None:
    from sophia_mcp.app import create_app, is_loopback
    from sophia_mcp.server import build_mcp_server
    from sophia_mcp.service import Service

    specs = selected_tools(args)
    async with contextlib.AsyncExitStack() as stack:
        overrides: dict[str, Any] = {}
        if args.demo:
            from sophia_mcp.sandbox import SandboxNotStarted, demo_settings, sandbox_process

            try:
                base_url = await stack.enter_async_context(sandbox_process(port=args.sandbox_port))
            except SandboxNotStarted as exc:
                raise UsageError(f"{exc}: pick another --sandbox-port, or leave it out for a free one") from None
            overrides = demo_settings(base_url)
            log.info("demo mode: sandbox of all platforms at %s", base_url)
        settings = settings_or_exit(**overrides)
        # over HTTP, a server (a replica) waits a while for its store; over stdio a person is waiting
        store = await open_store_or_exit(settings.store_url, wait=STORE_WAIT if args.transport == "http" else 0.0)
        stack.push_async_callback(store.aclose)  # on every way out (closing twice is harmless)
        service = Service(settings, store=store)
        mcp_server = build_mcp_server(service, specs)
        if args.transport == "stdio":
            await service.start()
            if sys.stdin.isatty():  # a person, not an MCP client, started it: say what is going on
                print(
                    f"sophia-mcp {__version__}: MCP over stdio, {len(specs)} tools; waiting for a client on stdin "
                    "(Ctrl-C to stop). See README 'Connect a client', or try --transport http for REST.",
                    file=sys.stderr,
                )
            try:
                await mcp_server.run_stdio_async()
            finally:
                await service.aclose()
            return

        import uvicorn

        if not is_loopback(args.host) and not settings.api_keys:
            raise UsageError(
                f"refusing to serve HTTP on {args.host} without authentication: set SOPHIA_API_KEYS "
                "(comma-separated keys), or bind to 127.0.0.1"
            )
        app = create_app(service, mcp_server, specs, host=args.host)
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=25,
        )
        server = uvicorn.Server(config)
        # What start-up allocated (SDK, models, the demo sandbox) lives as long as the process: keep it
        # out of the collector's scans, and collect young objects less often. Measured (bench/README.md):
        # with the defaults, full collections of ~300k objects stalled every request ~200 ms each second.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 10)
        print(f"sophia-mcp {__version__}: MCP at http://{args.host}:{args.port}/mcp, REST at /api/v4", file=sys.stderr)
        await server.serve()


async def sandbox(args: argparse.Namespace) -> None:
    from sophia_mcp.sandbox import demo_settings, running_sandbox

    async with contextlib.AsyncExitStack() as stack:
        try:
            base_url, _ = await stack.enter_async_context(running_sandbox(host=args.host, port=args.port))
        except OSError as exc:
            raise UsageError(f"cannot serve the sandbox on {args.host}:{args.port} ({exc.strerror}): pick another --port") from None
        print(f"sophia-mcp sandbox at {base_url} (Ctrl-C to stop)", flush=True)
        print("Point sophia-mcp (or a platform's official client) at it with these settings:")
        for name, value in demo_settings(base_url).items():
            print(f"{ENV_PREFIX}{name.upper()}={value}")
        print()
        print("Each *_BASE_URL is what the platform's official SDK takes as its base URL or host")
        print("(slack_sdk: add a trailing slash; GraphQL: POST <base>/graphql). Faults: PUT /_sandbox/faults/<platform>.")
        sys.stdout.flush()
        if args.until_stdin_closes:
            await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
        else:
            await anyio.sleep_forever()


async def open_store_or_exit(url: str, *, wait: float = 0.0) -> Store:
    """The configured store, opened (schema migrated), or a usage error that names it. An unreachable
    store is tried again for up to `wait` seconds: a replica starting while its database restarts
    comes up when the database does, rather than exiting into the kubelet's growing restart delay."""
    deadline, delay = time.monotonic() + wait, 1.0
    while True:
        try:
            store = open_store(url)
            await store.open()
            return store
        except StoreUnreachable as exc:
            if time.monotonic() + delay > deadline:
                raise UsageError(str(exc)) from None
            log.warning("%s; trying again in %.0f s", exc, delay)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
        await anyio.sleep(delay)
        delay = min(delay * 2, 8.0)


def parse_since(value: str) -> datetime:
    """`30m`, `2h`, `7d`, `45s` ago, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return datetime.now(UTC) - timedelta(seconds=float(value[:-1]) * units[value[-1]])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since {value!r}: use 30m, 2h, 7d or an ISO date such as 2026-01-31") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def audit_command(args: argparse.Namespace) -> None:
    store = await open_store_or_exit(settings_or_exit().store_url)
    try:
        entries = await store.read_audit(since=args.since, tool=args.tool, limit=args.limit)
    finally:
        await store.aclose()
    if args.format == "json":
        print(json.dumps([e.as_json() for e in entries], indent=1))
        return
    rows = [
        (e.at.strftime("%Y-%m-%d %H:%M:%S"), e.principal, e.transport, e.tool, e.outcome, f"{e.duration_ms:.1f}",
         e.source or "-", json.dumps(e.arguments, separators=(",", ":"))[:60])
        for e in entries
    ]
    header = ("time (UTC)", "principal", "transport", "tool", "outcome", "ms", "source", "arguments")
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def tools_command(args: argparse.Namespace) -> None:
    specs = selected_tools(args)
    if args.format == "json":
        from sophia_mcp.rest import tool_summary

        print(json.dumps([tool_summary(s) for s in specs], indent=2))
    else:
        print(tools_markdown(specs))


def tools_markdown(specs: list[ToolSpec]) -> str:
    lines = ["| Tool | Toolset | What it does | Writes |", "|---|---|---|---|"]
    for s in specs:
        lines.append(f"| `{s.name}` | {s.toolset} | {s.title} | {'no' if s.read_only else 'yes'} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sophia-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sophia-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the MCP server (stdio by default, or streamable HTTP + REST)")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--demo", action="store_true", help="serve the built-in sandbox of all seven platforms")
    p.add_argument("--sandbox-port", type=int, default=0, help="port of the demo sandbox (default: a free one)")
    add_selection_flags(p)

    p = commands.add_parser("sandbox", help="run the sandbox of all seven platform APIs alone")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument("--until-stdin-closes", action="store_true",
                   help="stop when standard input closes (how `serve --demo` runs it as its child)")

    p = commands.add_parser("audit", help="print the audit log: every tool call and REST call")
    p.add_argument("--since", type=parse_since, help="only entries since then: 30m, 2h, 7d, or an ISO date/time")
    p.add_argument("--tool", help="only this tool or REST route (for example list_projects, rest:linear.projects)")
    p.add_argument("--limit", type=int, help="only the most recent N entries")
    p.add_argument("--format", choices=["table", "json"], default="table")

    p = commands.add_parser("tools", help="print the tool catalogue for the given selection")
    p.add_argument("--format", choices=["markdown", "json"], default="markdown")
    add_selection_flags(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # argument errors reach the model as text: keep pydantic's per-error documentation links out of it
    os.environ.setdefault("PYDANTIC_ERRORS_INCLUDE_URL", "0")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per upstream request is noise
    try:
        if args.command == "tools":
            tools_command(args)
        elif args.command == "serve":
            anyio.run(serve, args, backend_options={"use_uvloop": True})
        elif args.command == "audit":
            anyio.run(audit_command, args)
        elif args.command == "sandbox":
            anyio.run(sandbox, args, backend_options={"use_uvloop": True})
    except UsageError as exc:
        print(f"sophia-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
