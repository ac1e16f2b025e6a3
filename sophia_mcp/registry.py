"""Tools as data: every tool is one `ToolSpec`, and one pure function decides which are exposed.

The MCP server, the REST shim, `sophia-mcp tools` and the README's tool table all read
`select_tools(all_tools(), ...)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import ConfigDict, Field

from sophia_mcp.models import ToolOutput

CORE_TOOLSET = "core"


class ToolInput(ArgModelBase):
    """Base of every tool's input model: unknown arguments are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    fresh: bool = Field(
        default=False,
        description="Ask the platform now instead of answering from data cached in the last 5 minutes.",
    )


Limit = Annotated[int, Field(ge=1, le=100, description="Maximum number of items to return (1-100).")]
Cursor = Annotated[
    str | None,
    Field(description="Opaque `next_cursor` from a previous call of this tool, to get the next page."),
]
Verbose = Annotated[
    bool,
    Field(description="Include long fields (descriptions, bodies). Off by default to keep results compact."),
]


class PageInput(ToolInput):
    limit: Limit = 25
    cursor: Cursor = None


Handler = Callable[[Any, Any], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool. `handler(target, args)` gets the platform's connector (or, for the core toolset,
    the service) and the validated input model, and returns the output model."""

    name: str
    toolset: str
    title: str
    description: str
    input_model: type[ToolInput]
    output_model: type[ToolOutput]
    handler: Handler
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True

    @property
    def cacheable(self) -> bool:
        return self.read_only


def all_tools() -> list[ToolSpec]:
    """Every tool the server knows: the core tools, then each connector's table."""
    from connectors import load_connector_modules
    from sophia_mcp.service import CORE_TOOLS

    specs = list(CORE_TOOLS)
    for module in load_connector_modules():
        specs.extend(module.TOOLS)
    return specs


def split_names(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [p.strip() for p in parts if p.strip()]


def select_tools(
    specs: Iterable[ToolSpec],
    *,
    toolsets: Iterable[str] | None = None,
    tools: Iterable[str] | None = None,
    exclude_tools: Iterable[str] | None = None,
    read_only: bool = True,
) -> list[ToolSpec]:
    """Which tools are exposed. Filters apply in this order:

    1. `toolsets` keeps the named toolsets (platforms); the core tools are always kept;
    2. `tools` adds named tools, whatever their toolset (given alone, only those are kept);
    3. `exclude_tools` removes named tools;
    4. `read_only` removes every tool that writes.

    Raises ValueError naming any unknown toolset or tool, so a typo is not silently ignored.
    Results are sorted by toolset (core first), then name.
    """
    specs = list(specs)
    by_name = {s.name: s for s in specs}
    known_toolsets = {s.toolset for s in specs}
    wanted_tools = set(tools or ())
    # `tools` alone means "just these (and the core tools)"; with `toolsets` it adds to them.
    wanted_sets = set(toolsets) if toolsets is not None else (set() if wanted_tools else None)
    excluded = set(exclude_tools or ())
    for label, names, known in (
        ("toolset", wanted_sets or set(), known_toolsets),
        ("tool", wanted_tools | excluded, set(by_name)),
    ):
        unknown = sorted(names - known)
        if unknown:
            raise ValueError(f"unknown {label}(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")

    chosen = [
        s
        for s in specs
        if (wanted_sets is None or s.toolset == CORE_TOOLSET or s.toolset in wanted_sets or s.name in wanted_tools)
        and s.name not in excluded
        and (s.read_only or not read_only)
    ]
    return sorted(chosen, key=lambda s: (s.toolset != CORE_TOOLSET, s.toolset, s.name))
