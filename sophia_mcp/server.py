"""The MCP front: an `MCPServer` whose tools are the selected `ToolSpec`s, each calling the service."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations

from sophia_mcp import __version__
from sophia_mcp.errors import SophiaError
from sophia_mcp.models import ToolOutput
from sophia_mcp.registry import ToolSpec
from sophia_mcp.service import Service, progress_reporter

PRINCIPAL_HEADER = "x-sophia-principal"  # set by the auth middleware, never trusted from the client

INSTRUCTIONS = """\
sophia-mcp reads seven work platforms: Linear, Asana, Notion, HubSpot, Gong, Slack and GitHub.
Start with `list_projects` (all platforms at once) or `search`; `platform_status` tells which platforms are
configured. Per-platform tools are named <platform>_<verb>. Results are compact by default: pass
`verbose: true` for long fields and `cursor` (a previous `next_cursor`) for more. Each result says whether it
is `live`, from the `cache`, or `stale` (the platform failed and a saved copy was served) and how old it is."""


def compact_text(output: ToolOutput) -> str:
    """What the model reads: the same data as the structured content, as compact JSON."""
    return output.model_dump_json(exclude_none=True, exclude_defaults=False)


def tool_from_spec(spec: ToolSpec, service: Service) -> Tool:
    async def run(ctx: Context, **arguments: Any) -> CallToolResult:
        args = spec.input_model.model_construct(**arguments)

        token = progress_reporter.set(ctx.report_progress)  # a no-op unless the client asked for progress
        try:
            output = await service.invoke(spec, args, transport="mcp", principal=_principal(ctx))
        except SophiaError as exc:
            raise ToolError(exc.message) from None
        finally:
            progress_reporter.reset(token)
        return CallToolResult(
            content=[TextContent(type="text", text=compact_text(output))],
            structured_content=output.model_dump(mode="json"),
        )

    return Tool(
        fn=run,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=spec.input_model.model_json_schema(by_alias=True),
        fn_metadata=FuncMetadata(arg_model=spec.input_model, output_model=spec.output_model),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=True,
        ),
    )


def _principal(ctx: Context) -> str | None:
    try:
        headers = ctx.headers
    except ValueError:
        return None
    return headers.get(PRINCIPAL_HEADER) if headers else None


def build_mcp_server(service: Service, specs: list[ToolSpec]) -> MCPServer:
    server: MCPServer = MCPServer(
        name="sophia-mcp",
        title="sophia-mcp: Linear, Asana, Notion, HubSpot, Gong, Slack and GitHub",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=[tool_from_spec(spec, service) for spec in specs],
        log_level=service.settings.log_level,
    )
    return server
