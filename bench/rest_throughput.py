"""(a) REST throughput: cached `GET /api/v4/mcp/linear/projects` at 32 connections, beside a bare
Starlette endpoint returning the same bytes. Target: at least 0.6 of the bare figure."""

from __future__ import annotations

from typing import Any

import harness
import httpx2

PATH = "/api/v4/mcp/linear/projects"


def main() -> dict[str, Any]:
    with harness.sophia_server() as sophia:
        url = sophia.base + PATH
        body = httpx2.get(url, timeout=30).content  # the first read fills the cache; the load reads it
        with harness.bare_server("bare_starlette.py", body) as bare:
            bare_url = bare + PATH
            harness.load(url, duration=1)  # warm-up: both processes reach their steady state
            harness.load(bare_url, duration=1)
            ours, baseline = [], []
            for _ in range(harness.RUNS):  # interleaved, so drift on a shared machine hits both alike
                baseline.append(harness.load(bare_url))
                ours.append(harness.load(url))
        source = httpx2.get(url, timeout=30).json()["source"]
    assert source == "cache", source
    return harness.compare(
        f"(a) REST cached GET {PATH}, {harness.CONNECTIONS} connections, {len(body)} bytes",
        ours, baseline, target=0.6,
    )


if __name__ == "__main__":
    harness.parse_args(__doc__ or "")
    main()
