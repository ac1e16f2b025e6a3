"""(c) Cross-platform `list_projects` with 100 ms injected upstream latency on every configured
platform: cold (nothing cached) and warm (cached) latency, beside each platform alone, cold.
Targets: cold under 1.3 x the single-platform latency; warm under 10 ms."""

from __future__ import annotations

import time
from typing import Any

import harness
import httpx2

LATENCY = 0.1


def timed(client: httpx2.Client, base: str, arguments: dict[str, Any], *, cold: bool = True) -> float:
    if cold:  # let every platform's rate budget refill (Gong allows 3 calls a second, one at a time)
        time.sleep(0.05 if harness.QUICK else 0.4)
    started = time.perf_counter()
    result = harness.call_tool(client, base, "list_projects", arguments)
    elapsed = (time.perf_counter() - started) * 1000
    failed = {p: o["error"] for p, o in result["structuredContent"]["platforms"].items() if o.get("error")}
    if failed:
        raise SystemExit(f"platforms failed: {failed}")
    return elapsed


def main() -> dict[str, Any]:
    runs = max(3, min(harness.RUNS, 6))
    with harness.sophia_server() as sophia, httpx2.Client(timeout=60) as client:
        platforms = harness.configured_platforms(sophia.base)
        for platform in platforms:
            client.put(f"{sophia.sandbox}/_sandbox/faults/{platform}", json={"kind": "latency", "latency": LATENCY})
        # distinct limits make distinct cache keys, so every "cold" call below misses for real: per
        # platform, the cross-platform calls ask for 2, 4, 6... projects and the single ones for 3, 5, 7...
        # (similar pages, never the same key); the first call opens the connections and is not counted
        n = len(platforms)
        timed(client, sophia.base, {"limit": n})
        single = {
            p: harness.median([timed(client, sophia.base, {"platforms": [p], "limit": 3 + 2 * i}) for i in range(runs)])
            for p in platforms
        }
        cold = harness.median([timed(client, sophia.base, {"limit": n * (2 + 2 * i)}) for i in range(runs)])
        warm = harness.median([timed(client, sophia.base, {"limit": n * 2}, cold=False) for _ in range(runs * 5)])
    slowest = max(single, key=single.__getitem__)
    figures = {
        "platforms": platforms, "single_cold_ms": {p: round(v, 1) for p, v in single.items()},
        "cold_ms": round(cold, 1), "warm_ms": round(warm, 2), "cold_over_slowest_single": round(cold / single[slowest], 2),
    }
    print(f"(c) list_projects across {n} platforms ({', '.join(platforms)}), {LATENCY * 1000:.0f} ms upstream latency")
    print("  each platform alone, cold: " + ", ".join(f"{p} {v:.0f} ms" for p, v in single.items()))
    print(f"  all platforms, cold: {cold:.0f} ms = {cold / single[slowest]:.2f} x the slowest alone ({slowest}; "
          f"target < 1.3)")
    print(f"  all platforms, warm: {warm:.2f} ms (target < 10 ms)")
    return figures


if __name__ == "__main__":
    harness.parse_args(__doc__ or "")
    main()
