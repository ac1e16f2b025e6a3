"""(d) 200 concurrent identical cold requests: how many upstream calls reach the platforms.
Target: exactly one per platform read (REST: one; the cross-platform tool: one per platform)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import harness
import httpx2

CONCURRENT = 200


def calls(client: httpx2.Client, sandbox: str) -> dict[str, int]:
    return client.get(f"{sandbox}/_sandbox/calls").json()


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {p: n - before.get(p, 0) for p, n in sorted(after.items()) if n - before.get(p, 0)}


async def together(requests: list[httpx2.Request]) -> list[int]:
    limits = httpx2.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
        responses = await asyncio.gather(*(client.send(r) for r in requests))
    return [r.status_code for r in responses]


def main() -> dict[str, Any]:
    with harness.sophia_server() as sophia, httpx2.Client(timeout=60) as client:
        platforms = harness.configured_platforms(sophia.base)
        for platform in platforms:  # every request is still in flight when the others arrive
            client.put(f"{sophia.sandbox}/_sandbox/faults/{platform}", json={"kind": "latency", "latency": 0.1})
        harness.call_tool(client, sophia.base, "list_projects", {"limit": len(platforms)})  # warm pools

        before = calls(client, sophia.sandbox)
        url = f"{sophia.base}/api/v4/mcp/linear/projects?limit=37"
        statuses = asyncio.run(together([httpx2.Request("GET", url) for _ in range(CONCURRENT)]))
        rest = delta(calls(client, sophia.sandbox), before)
        assert statuses == [200] * CONCURRENT, set(statuses)

        # the per-read count of one cold cross-platform call (a platform may page), then 200 at once
        before = calls(client, sophia.sandbox)
        harness.call_tool(client, sophia.base, "list_projects", {"limit": len(platforms) * 3})
        one_read = delta(calls(client, sophia.sandbox), before)
        body = json.dumps(harness.tool_call("list_projects", {"limit": len(platforms) * 4})).encode()
        headers = {**harness.MCP_HEADERS_2026, "mcp-name": "list_projects"}
        before = calls(client, sophia.sandbox)
        requests = [httpx2.Request("POST", f"{sophia.base}/mcp", content=body, headers=headers)
                    for _ in range(CONCURRENT)]
        statuses = asyncio.run(together(requests))
        tool = delta(calls(client, sophia.sandbox), before)
        assert statuses == [200] * CONCURRENT, set(statuses)
    print(f"(d) {CONCURRENT} concurrent identical cold requests")
    print(f"  REST GET /api/v4/mcp/linear/projects: upstream calls {rest} (target: exactly 1)")
    print(f"  MCP list_projects, {len(platforms)} platforms: upstream calls {tool}; one cold read alone makes "
          f"{one_read} (target: the same)")
    return {"rest_upstream_calls": rest, "tool_upstream_calls": tool, "one_read_upstream_calls": one_read}


if __name__ == "__main__":
    harness.parse_args(__doc__ or "")
    main()
