"""The MCP front: an `MCPServer` whose tools are the selected `ToolSpec`s, each calling the service,
plus resources (`resources.py`), prompts (`prompts.py`), completions, logging and progress.

Progress and log messages go to the client while a tool runs: over stdio always; over HTTP on an SSE
response, which `app.py` gives to requests that ask for progress or (2026-07-28) log messages.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any, ClassVar, get_args

from mcp.server.connection import allowed_log_levels
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import (
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    EmptyResult,
    LoggingLevel,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    PromptReference,
    ResourceTemplateReference,
    SetLevelRequestParams,
    TextContent,
    ToolAnnotations,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import PrivateAttr, ValidationError

from sophia_mcp import __version__
from sophia_mcp.errors import SophiaError
from sophia_mcp.memo import IdentityMemo
from sophia_mcp.models import ToolOutput
from sophia_mcp.prompts import PERIODS, TRIAGE, add_prompts
from sophia_mcp.registry import ToolSpec
from sophia_mcp.resources import PROJECT_TEMPLATE, ResourceSubscriptions, add_resources, connection_of
from sophia_mcp.service import PlatformOutcome, Service, progress_reporter

INSTRUCTIONS = """\
sophia-mcp reads seven work platforms: Linear, Asana, Notion, HubSpot, Gong, Slack and GitHub.
Start with `list_projects` (all platforms at once) or `search`; `platform_status` tells which platforms are
configured. Per-platform tools are named <platform>_<verb>. Results are compact by default: pass
`verbose: true` for long fields and `cursor` (a previous `next_cursor`) for more. Each result says whether it
is `live`, from the `cache`, or `stale` (the platform failed and a saved copy was served) and how old it is.
Resources `sophia://{platform}/projects[/{id}]` hold the same projects as JSON; prompts `weekly_status_report`,
`project_brief` and `triage` start from real data."""

MCP_LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)  # severity ascending
LOG_LEVEL = "sophia.log_level"  # key in a connection's state: the level the client set with logging/setLevel
MAX_COMPLETIONS = 100  # the protocol's cap on completion values


def compact_text(output: ToolOutput) -> str:
    """What the model reads: the same data as the structured content, as compact JSON."""
    return output.model_dump_json(exclude_none=True, exclude_defaults=False)


# -- progress and log messages to the client ----------------------------------------------------


class ClientFeedback:
    """While one tool call runs: progress notifications (sent only when the client asked, with a
    progress token) and log messages at or above the client's level: the records this process logs
    for the call, and what the result says about stale data, truncation and failed platforms."""

    def __init__(self, ctx: Context, default_level: LoggingLevel) -> None:
        self.ctx = ctx
        self.request = ctx.request_context  # read once: each read of it goes through pydantic's __getattr__
        self.levels = client_log_levels(self.request, default_level)
        self.pending: list[LoggingMessageNotificationParams] = []

    def log(self, level: LoggingLevel, message: str, logger: str = "sophia_mcp") -> None:
        if level in self.levels:
            self.pending.append(LoggingMessageNotificationParams(level=level, data=message, logger=logger))

    async def flush(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        for params in pending:
            await self.request.session.send_notification(
                LoggingMessageNotification(params=params), related_request_id=str(self.request.request_id)
            )

    async def progress(self, done: float, total: float, message: str) -> None:
        await self.flush()
        await self.request.session.report_progress(done, total, message)  # a no-op unless the client asked

    def summarise(self, name: str, output: ToolOutput, started: float) -> None:
        if not self.levels:  # the client takes no log messages (2026-07-28 without a log level)
            return
        if "debug" in self.levels:
            self.log("debug", f"{name}: {output.source} in {(time.perf_counter() - started) * 1000:.0f} ms")
        if output.stale_reason:
            self.log("warning", f"{name}: served data saved {output.age_seconds:.0f} s ago: {output.stale_reason}")
        if output.truncated and output.note:
            self.log("notice", f"{name}: {output.note}")
        outcomes = getattr(output, "platforms", None)  # list_projects and search report each platform
        for platform, outcome in outcomes.items() if isinstance(outcomes, dict) else ():
            if isinstance(outcome, PlatformOutcome) and outcome.error:
                level: LoggingLevel = "info" if outcome.error_type == "not-configured" else "warning"
                self.log(level, f"{platform}: {outcome.error}")


current_feedback: ContextVar[ClientFeedback | None] = ContextVar("current_feedback", default=None)


class ClientLogRelay(logging.Handler):
    """Copies this process's log records made while serving a tool call to that call's client."""

    LEVELS: ClassVar[tuple[tuple[int, LoggingLevel], ...]] = (
        (logging.CRITICAL, "critical"), (logging.ERROR, "error"), (logging.WARNING, "warning"), (logging.INFO, "info"),
    )

    def emit(self, record: logging.LogRecord) -> None:
        feedback = current_feedback.get()
        if feedback is not None:
            level = next((name for number, name in self.LEVELS if record.levelno >= number), "debug")
            feedback.log(level, record.getMessage(), record.name)


RELAY = ClientLogRelay()


def client_log_levels(request: ServerRequestContext[Any, Any], default: LoggingLevel) -> frozenset[LoggingLevel]:
    """The levels this request's client wants: on 2026-07-28 what the request's `_meta` opts into
    (nothing unless it does); before, the level it set with logging/setLevel on this connection, else
    the server's own (SOPHIA_LOG_LEVEL). Over stateless HTTP each request is a new connection."""
    allowed = allowed_log_levels(request.protocol_version, request.meta)
    if request.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return allowed
    minimum = connection_of(request).state.get(LOG_LEVEL, default)
    return allowed & frozenset(MCP_LEVELS[MCP_LEVELS.index(minimum):])


async def set_log_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
    connection_of(ctx).state[LOG_LEVEL] = params.level
    return EmptyResult()


# -- tools --------------------------------------------------------------------------------------


WIRE_DUMP: dict[str, Any] = {"by_alias": True, "mode": "json", "exclude_none": True}  # how the SDK dumps a result


class ReusedResult(CallToolResult):
    """A tool result handed out again while its output object is unchanged (`sophia_mcp.memo`). The
    SDK dumps every result it sends (WIRE_DUMP); this one is dumped once, and each call gets its own
    copy of the top level, which is all the SDK writes to (the `_meta` stamp). Nothing mutates the
    result itself: it is built here and only ever read."""

    _wire: dict[str, Any] | None = PrivateAttr(default=None)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        if kwargs != WIRE_DUMP:
            return super().model_dump(**kwargs)
        if self._wire is None:
            self._wire = super().model_dump(**kwargs)
        return dict(self._wire)


class ArgumentsAsGiven(FuncMetadata):
    """Hands a tool the arguments as the client sent them (JSON-in-strings parsed, as the SDK does), for
    `run` to validate: the SDK would answer a mistake with pydantic's report, type codes and all."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        return {"arguments": self.pre_parse_json(arguments_to_validate)}


def arguments_error(spec: ToolSpec, error: ValidationError) -> str:
    """A tool's argument mistakes, one clause each, in words a model can act on."""
    fields = spec.input_model.model_fields
    problems = []
    for e in error.errors(include_url=False):
        name = ".".join(str(part) for part in e["loc"]) or "arguments"
        if e["type"] == "extra_forbidden":
            problems.append(f"{name}: no such argument (this tool takes {', '.join(fields)})")
        elif e["type"] == "missing":
            problems.append(f"{name}: required")
        else:
            given = repr(e["input"])
            problems.append(f"{name}: {e['msg']} (got {given if len(given) <= 40 else given[:39] + '…'})")
    return "invalid arguments: " + "; ".join(problems) + ". The tool's inputSchema lists what it takes."


def tool_from_spec(spec: ToolSpec, service: Service) -> Tool:
    # the service returns the same output object while nothing changed (`sophia_mcp.memo`): so does this
    results: IdentityMemo[ReusedResult] = IdentityMemo(max_keys=1)

    async def run(ctx: Context, arguments: dict[str, Any]) -> CallToolResult:
        try:
            args = spec.input_model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(arguments_error(spec, exc)) from None
        feedback = ClientFeedback(ctx, service.settings.log_level.lower())  # type: ignore[arg-type]
        tokens = progress_reporter.set(feedback.progress), current_feedback.set(feedback)
        started = time.perf_counter()
        try:
            output = await service.invoke(spec, args, transport="mcp")
        except SophiaError as exc:
            await feedback.flush()
            raise ToolError(exc.message) from None
        finally:
            progress_reporter.reset(tokens[0])
            current_feedback.reset(tokens[1])
        feedback.summarise(spec.name, output, started)
        await feedback.flush()
        result = results.get(spec.name, (output,))
        if result is None:
            result = results.put(spec.name, (output,), ReusedResult(
                content=[TextContent(type="text", text=compact_text(output))],
                structured_content=output.model_dump(mode="json"),
            ))
        return result

    # The output schema is advertised but not re-validated on every call: the service already returns
    # instances of `spec.output_model`, and re-validating a large result cost as much as building it.
    output_schema = FuncMetadata(arg_model=spec.input_model, output_model=spec.output_model).output_schema
    return Tool(
        fn=run,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=spec.input_model.model_json_schema(by_alias=True),
        fn_metadata=ArgumentsAsGiven(arg_model=spec.input_model, output_schema=output_schema),
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


# -- completions --------------------------------------------------------------------------------


def add_completions(server: MCPServer, service: Service, specs: list[ToolSpec]) -> None:
    tools = {spec.name: spec for spec in specs}

    async def tool_output(name: str) -> dict[str, Any]:
        spec = tools[name]
        arguments = spec.input_model.model_validate({"limit": 100})
        output = await service.invoke(spec, arguments, transport="mcp")
        return output.model_dump(mode="json")

    async def projects(platforms: list[str]) -> list[tuple[str, str]]:
        """(id, name) of every project of these platforms, from the cache; a failing platform adds none."""
        results = await service.fan_out(platforms, service.all_platform_projects)
        return [(p.id, p.name) for r in results.values() if not isinstance(r, SophiaError) for p in r.projects]

    async def candidates(
        ref: PromptReference | ResourceTemplateReference, name: str, given: dict[str, str]
    ) -> list[str]:
        prompt = ref.name if isinstance(ref, PromptReference) else None
        configured = service.configured_platforms()
        platform = given.get("platform")
        scope = [platform] if platform in configured else configured
        if name == "platform":
            if prompt == "triage":
                return [p for p in configured if p in TRIAGE and TRIAGE[p].tool in tools]
            return configured
        if name == "platforms":
            return configured
        if name == "period":
            return list(PERIODS)
        if name == "id" and isinstance(ref, ResourceTemplateReference) and ref.uri == PROJECT_TEMPLATE:
            return [project_id for project_id, _ in await projects(scope)]
        if name == "project" and prompt == "triage" and platform == "github":
            if "github_list_repositories" not in tools:
                return []
            return [r["full_name"] for r in (await tool_output("github_list_repositories"))["repositories"]]
        if name == "project" and prompt in ("project_brief", "triage"):
            if prompt == "triage":
                scope = [p for p in scope if p in ("linear", "asana")]
            return sorted({project_name for _, project_name in await projects(scope)})
        if name == "team" and prompt == "triage" and "linear_list_teams" in tools:
            return [team["key"] for team in (await tool_output("linear_list_teams"))["teams"]]
        return []

    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        given = (context.arguments if context else None) or {}
        head, _, partial = argument.value.rpartition(",") if argument.name == "platforms" else ("", "", argument.value)
        chosen = set(head.split(",")) if head else set()
        values = [
            f"{head},{value}" if head else value
            for value in await candidates(ref, argument.name, given)
            if value not in chosen and partial.lower() in value.lower()
        ]
        values.sort(key=lambda value: not value.lower().startswith(argument.value.lower()))  # prefix matches first
        return Completion(values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS)


# -- the server ---------------------------------------------------------------------------------


def build_mcp_server(service: Service, specs: list[ToolSpec]) -> MCPServer:
    subscriptions = ResourceSubscriptions()
    server: MCPServer = MCPServer(
        name="sophia-mcp",
        title="sophia-mcp: Linear, Asana, Notion, HubSpot, Gong, Slack and GitHub",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=[tool_from_spec(spec, service) for spec in specs],
        log_level=service.settings.log_level,
        subscriptions=subscriptions.bus,
    )
    add_resources(server, service)
    add_prompts(server, service, specs)
    add_completions(server, service, specs)
    subscriptions.install(server)
    # MCPServer has no decorator for logging/setLevel; the capability derives from the handler
    server._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_log_level)
    for name in ("sophia_mcp", "connectors"):
        if RELAY not in logging.getLogger(name).handlers:
            logging.getLogger(name).addHandler(RELAY)
    service.cache.add_change_listener(subscriptions.data_changed)
    return server
