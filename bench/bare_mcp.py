"""Baseline for bench (b): a bare MCPServer (the SDK alone) with one `list_projects` tool that takes
the same arguments and returns the same constant result, served by the SDK's own streamable HTTP app
(stateless, JSON responses, as sophia-mcp serves it) on uvicorn with uvloop and httptools."""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--data", type=Path, required=True, help="a tools/call result as JSON")
args = parser.parse_args()
RESULT = CallToolResult.model_validate(json.loads(args.data.read_bytes()))

server = MCPServer(name="bare")


@server.tool()
async def list_projects(
    platforms: list[str] | None = None, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> CallToolResult:
    """The same constant result, whatever the arguments."""
    return RESULT


@server.custom_route("/health", methods=["GET"])
async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app: Any = server.streamable_http_app(json_response=True, stateless_http=True)
# the same runtime tuning as `sophia-mcp serve`, so the comparison is of the request path alone
gc.collect()
gc.freeze()
gc.set_threshold(20_000, 20, 10)
uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", log_level="warning",
            access_log=False)
