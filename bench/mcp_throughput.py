"""(b) MCP throughput: `tools/call list_projects` (every configured platform, warm cache) over
streamable HTTP at 32 connections, as a 2026-07-28 single POST and as a 2025-11-25 client's call,
beside a bare MCPServer tool returning the same constant result. Target: at least 0.9 of bare."""

from __future__ import annotations

import json
from typing import Any

import harness
import httpx2

ARGUMENTS: dict[str, Any] = {}  # the defaults: every configured platform, 50 projects


def main() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    protocols = {  # (request body, headers) as each client sends a tools/call
        "2026-07-28 single POST": (json.dumps(harness.tool_call("list_projects", ARGUMENTS)).encode(),
                                   {**harness.MCP_HEADERS_2026, "mcp-name": "list_projects"}),
        "2025-11-25 client": (json.dumps(harness.tool_call("list_projects", ARGUMENTS, modern=False)).encode(),
                              harness.MCP_HEADERS_2025),
    }
    with harness.sophia_server() as sophia, httpx2.Client(timeout=30) as client:
        result = harness.call_tool(client, sophia.base, "list_projects", ARGUMENTS)  # fills the cache
        platforms = sorted(result["structuredContent"]["platforms"])
        # what the tool returned, without what the SDK adds to every 2026-07-28 result (the `serverInfo`
        # `_meta` stamp, `resultType`): the bare server's SDK adds them again, as ours does
        returned = {k: v for k, v in result.items() if k not in ("_meta", "resultType")}
        with harness.bare_server("bare_mcp.py", json.dumps(returned).encode()) as bare:
            for protocol, (body, headers) in protocols.items():
                ours_url, bare_url = sophia.base + "/mcp", bare + "/mcp"
                harness.load(ours_url, body=body, headers=headers, duration=1)
                harness.load(bare_url, body=body, headers=headers, duration=1)
                ours, baseline = [], []
                for _ in range(harness.RUNS):
                    baseline.append(harness.load(bare_url, body=body, headers=headers))
                    ours.append(harness.load(ours_url, body=body, headers=headers))
                figures[protocol] = harness.compare(
                    f"(b) MCP tools/call list_projects ({protocol}), {len(platforms)} platforms "
                    f"({', '.join(platforms)}), {harness.CONNECTIONS} connections",
                    ours, baseline, target=0.9,
                )
    return figures


if __name__ == "__main__":
    harness.parse_args(__doc__ or "")
    main()
