"""Baseline for bench (a): a bare Starlette endpoint returning fixed bytes, on the same uvicorn
settings as `sophia-mcp serve` (one worker, uvloop, httptools, no access log)."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--data", type=Path, required=True, help="the response body")
args = parser.parse_args()
BODY = args.data.read_bytes()


async def projects(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/api/v4/mcp/{platform}/projects", projects), Route("/health", health)])
# the same runtime tuning as `sophia-mcp serve`, so the comparison is of the request path alone
gc.collect()
gc.freeze()
gc.set_threshold(20_000, 20, 10)
uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", log_level="warning",
            access_log=False)
