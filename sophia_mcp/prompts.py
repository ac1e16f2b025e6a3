"""MCP prompts that start from real data: each one reads through the service (the tools' data path,
with its cache and audit) and embeds what it found, so the model works from facts, not invented text.

- `weekly_status_report(platforms, period)`: every project of the chosen platforms, what changed in the period.
- `project_brief(platform, project)`: one project, its platform's own detail tool, and mentions elsewhere.
- `triage(platform, project, team)`: the open issues or tasks of a Linear project or team, an Asana
  project, or a GitHub repository.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, GetPromptRequestParams
from pydantic import Field, ValidationError

from sophia_mcp.errors import BadInput, SophiaError
from sophia_mcp.models import Project, ToolOutput
from sophia_mcp.registry import ToolSpec
from sophia_mcp.service import PlatformProjects, SearchOutput, Service, combined_freshness

PERIODS = ("7d", "14d", "30d")
STATUS_ORDER = ("active", "planned", "paused", "unknown", "completed", "canceled")


@dataclass(frozen=True)
class TriageSource:
    """Where a platform's open work items come from: a tool, and how to ask it."""

    tool: str
    items: str  # the output field that holds the items
    noun: str
    needs_project: bool
    project_is_id: bool  # a project id (names are resolved to it) rather than a repository name
    arguments: Callable[[str | None, str | None], dict[str, Any]]
    is_open: Callable[[dict[str, Any]], bool]


TRIAGE: dict[str, TriageSource] = {
    "linear": TriageSource(
        "linear_list_issues", "issues", "issues", False, True,
        lambda project, team: {"project_id": project, "team": team, "limit": 100},
        lambda item: item.get("state_type") not in ("completed", "canceled"),
    ),
    "asana": TriageSource(
        "asana_list_tasks", "tasks", "tasks", True, True,
        lambda project, team: {"project_id": project, "limit": 100},
        lambda item: not item.get("completed"),
    ),
    "github": TriageSource(
        "github_list_issues", "issues", "issues", True, False,
        lambda project, team: {"repo": project, "state": "open", "limit": 100},
        lambda item: item.get("state") == "open",
    ),
}


#: per platform, the tool that shows one project in detail, and its id argument
DETAIL_TOOLS: dict[str, tuple[str, str]] = {
    "linear": ("linear_get_project", "id"),
    "asana": ("asana_get_project", "project_id"),
    "hubspot": ("hubspot_get_deal", "id"),
    "github": ("github_get_project_items", "project"),
    "slack": ("slack_channel_history", "channel"),
}


class RenderedPrompt(ToolOutput):
    text: str


def add_prompts(server: MCPServer, service: Service, specs: list[ToolSpec]) -> None:
    tools = {spec.name: spec for spec in specs}

    async def call_tool(name: str, arguments: dict[str, Any]) -> ToolOutput:
        spec = tools[name]
        args = spec.input_model.model_validate({k: v for k, v in arguments.items() if v is not None})
        return await service.invoke(spec, args, transport="mcp")

    async def rendered(name: str, arguments: dict[str, str], build: Callable[[], Any]) -> str:
        """Run `build` (which returns the prompt text and the results it read) under audit and metrics."""

        async def call() -> RenderedPrompt:
            text, parts = await build()
            return RenderedPrompt(text=text, **combined_freshness(parts))

        try:
            output = await service.observe(f"prompt:{name}", arguments, call, transport="mcp")
        except SophiaError as exc:
            raise MCPError(code=INVALID_PARAMS if exc.status < 500 else INTERNAL_ERROR, message=exc.message) from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise MCPError(code=INVALID_PARAMS, message=f"bad arguments ({problems})") from None
        assert isinstance(output, RenderedPrompt)
        return output.text

    @server.prompt(
        name="weekly_status_report",
        title="Weekly cross-platform status report",
        description="A status report across platforms for a period: embeds every project of the chosen platforms "
        "(status, owner, dates, progress) and marks the ones that changed in the period.",
    )
    async def weekly_status_report(
        platforms: Annotated[
            str, Field(description="Comma-separated platforms (default: every configured platform).")
        ] = "",
        period: Annotated[
            str, Field(description="7d, 2w (up to today) or 2026-11-13..2026-11-20 (default: 7d).")
        ] = "7d",
    ) -> str:
        async def build() -> tuple[str, list[ToolOutput]]:
            start, end = parse_period(period, datetime.now(UTC).date())
            targets = parse_platforms(service, platforms)
            results = await service.fan_out(targets, service.all_platform_projects)
            sections = [report_section(service, p, r, start, end) for p, r in results.items()]
            text = (
                f"Write the weekly status report for {start} to {end} across "
                f"{', '.join(service.connector(p).title for p in targets)}.\n"
                "Lead with what changed in the period and what is at risk (paused, past target, low progress near "
                "the target date); then one short paragraph per platform. Cite projects by name with their URL. "
                "Use only the data below; where it is missing or a platform failed, say so.\n\n"
                + "\n\n".join(sections)
            )
            return text, [r for r in results.values() if isinstance(r, ToolOutput)]

        return await rendered("weekly_status_report", {"platforms": platforms, "period": period}, build)

    @server.prompt(
        name="project_brief",
        title="Project brief",
        description="A brief on one project: embeds the project, its platform's detail view where there is one, "
        "and where the project is mentioned on the other platforms.",
    )
    async def project_brief(
        platform: Annotated[str, Field(description="The project's platform (linear, asana, github, ...).")],
        project: Annotated[str, Field(description="Project id (from list_projects) or its exact name.")],
    ) -> str:
        async def build() -> tuple[str, list[ToolOutput]]:
            found = await service.platform_project(platform, project)
            parts: list[ToolOutput] = [found]
            lines = [
                (
                    f"Write a one-page brief on the {service.connector(platform).title} project "
                    f"\"{found.project.name}\": goal, status and progress, owner, dates, risks, and what the other "
                    "platforms show about it (conversations, deals, calls, documents). Use only the data below; say "
                    "what is unknown."
                ),
                "",
                "## The project",
                project_line(found.project, with_description=True),
            ]
            detail_tool, id_argument = DETAIL_TOOLS.get(platform, ("", ""))
            if detail_tool in tools:
                detail = await call_tool(detail_tool, {id_argument: found.project.id})
                parts.append(detail)
                lines += ["", f"## {detail_tool}", detail.model_dump_json(exclude_none=True, exclude=FRESHNESS)]
            if "search" in tools:
                hits = await call_tool("search", {"query": found.project.name, "limit": 5})
                assert isinstance(hits, SearchOutput)
                parts.append(hits)
                lines += ["", f"## Mentions across platforms (search for \"{found.project.name}\")"]
                lines += [f"- [{h.platform} {h.kind}] {h.title}" + (f" — {h.snippet}" if h.snippet else "")
                          + (f" · {h.url}" if h.url else "") for h in hits.hits] or ["- none found"]
                lines += [f"- {p}: failed: {o.error}" for p, o in hits.platforms.items()
                          if o.error and o.error_type != "not-configured"]
            return "\n".join(lines), parts

        return await rendered("project_brief", {"platform": platform, "project": project}, build)

    triage_platforms = [p for p, source in TRIAGE.items() if source.tool in tools]
    if not triage_platforms:
        return

    @server.prompt(
        name="triage",
        title="Triage open issues and tasks",
        description="Triage the open work of a Linear project or team, an Asana project or a GitHub repository: "
        "embeds the open issues or tasks and asks for what needs attention, owners and next steps.",
    )
    async def triage(
        platform: Annotated[str, Field(description="linear, asana or github.")],
        project: Annotated[
            str,
            Field(description="Linear or Asana project (id or exact name); GitHub repository (owner/name or name)."),
        ] = "",
        team: Annotated[str, Field(description="Linear team key or name (e.g. AUT), instead of a project.")] = "",
    ) -> str:
        async def build() -> tuple[str, list[ToolOutput]]:
            source = TRIAGE.get(platform)
            if source is None or platform not in triage_platforms:
                raise BadInput(f"triage covers {', '.join(triage_platforms)}, not {platform!r}.")
            if source.needs_project and not project:
                raise BadInput(f"{platform} triage needs a project.")
            parts: list[ToolOutput] = []
            scope_id, scope = project or None, f"team {team}" if team else f"all of {platform}"
            if project and source.project_is_id:
                found = await service.platform_project(platform, project)
                parts.append(found)
                scope_id, scope = found.project.id, f"project \"{found.project.name}\""
            elif project:
                scope = f"repository {project}"
            listed = await call_tool(source.tool, source.arguments(scope_id, team or None))
            parts.append(listed)
            items = [i for i in listed.model_dump(mode="json")[source.items] if source.is_open(i)]
            lines = [
                (
                    f"Triage the {len(items)} open {source.noun} of {service.connector(platform).title} {scope}. "
                    "Group them by what needs attention first (urgent or high priority, overdue, unassigned, no update "
                    "for two weeks or more, possible duplicates); for each one that needs action propose an owner and "
                    "the next step. Use only the data below."
                ),
                "",
                f"## Open {source.noun} (from {source.tool})",
                *([item_line(i) for i in items] or [f"- no open {source.noun}"]),
            ]
            if listed.truncated or listed.model_dump().get("next_cursor"):
                lines.append(f"(more {source.noun} exist than shown here)")
            return "\n".join(lines), parts

        return await rendered("triage", {"platform": platform, "project": project, "team": team}, build)

    refuse_bad_prompt_requests(server)


def refuse_bad_prompt_requests(server: MCPServer) -> None:
    """A prompt that does not exist, an argument it does not take, or a required argument missing or blank
    is the caller's mistake: Invalid params (-32602) as the protocol says, not an internal error with a
    traceback. Checked in front of the SDK's own prompts/get handler, which then gets the arguments with
    surrounding whitespace removed."""
    lowlevel = server._lowlevel_server  # the SDK exposes no public accessor for the low-level server
    entry = lowlevel.get_request_handler("prompts/get")
    assert entry is not None, "MCPServer registers prompts/get"

    async def get_prompt(ctx: ServerRequestContext[Any, Any], params: GetPromptRequestParams) -> Any:
        prompts = {prompt.name: prompt for prompt in await server.list_prompts()}
        if params.name not in prompts:
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {params.name!r}; prompts/list shows them")
        declared = prompts[params.name].arguments or []
        given = {name: value.strip() for name, value in (params.arguments or {}).items()}
        if unknown := [name for name in given if name not in {a.name for a in declared}]:
            takes = ", ".join(a.name + (" (required)" if a.required else "") for a in declared) or "none"
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"prompt {params.name!r} has no argument {', '.join(map(repr, unknown))}; it takes: {takes}",
            )
        if missing := [a.name for a in declared if a.required and not given.get(a.name)]:
            raise MCPError(code=INVALID_PARAMS, message=f"prompt {params.name!r} needs: {', '.join(missing)}")
        return await entry.handler(ctx, params.model_copy(update={"arguments": given}))

    lowlevel.add_request_handler("prompts/get", GetPromptRequestParams, get_prompt)


FRESHNESS = {"source", "fetched_at", "age_seconds", "stale_reason", "truncated", "note"}


def parse_platforms(service: Service, platforms: str) -> list[str]:
    names = list(dict.fromkeys(p.strip() for p in platforms.split(",") if p.strip()))
    for name in names:
        service.connector(name)  # UnknownPlatform names the known ones
    return names or service.configured_platforms()


def parse_period(period: str, today: date) -> tuple[date, date]:
    """`7d` / `2w` up to today, or an explicit `YYYY-MM-DD..YYYY-MM-DD`."""
    text = period.strip().lower() or "7d"
    usage = "use 7d, 2w, or a range such as 2026-11-13..2026-11-20."
    if match := re.fullmatch(r"(\d{1,3})\s*([dw])", text):
        days = int(match[1]) * (7 if match[2] == "w" else 1)
        return today - timedelta(days=days), today
    if match := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})", text):
        dates: list[date] = []
        for day in match[1], match[2]:
            try:
                dates.append(date.fromisoformat(day))
            except ValueError:
                raise BadInput(f"period {period!r}: {day} is not a date; {usage}") from None
        start, end = dates
        if start > end:
            raise BadInput(f"period {period!r} ends before it starts; {usage}")
        return start, end
    raise BadInput(f"period {period!r}: {usage}")


def report_section(
    service: Service, platform: str, result: ToolOutput | SophiaError, start: date, end: date
) -> str:
    title = service.connector(platform).title
    if isinstance(result, SophiaError):
        return f"## {title}\nNo data: {result.message}"
    assert isinstance(result, PlatformProjects)
    changed = [p for p in result.projects if start <= (day_of(p.updated_at) or date.min) <= end]
    counts = {s: sum(p.status == s for p in result.projects) for s in STATUS_ORDER}
    ongoing = [p for p in result.projects if p not in changed and p.status in ("active", "planned", "paused")]
    lines = [
        f"## {title}: {len(result.projects)} projects ("
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + f"; data {result.source}" + (f", {result.age_seconds:.0f} s old" if result.source != "live" else "")
        + (f"; stale because {result.stale_reason}" if result.stale_reason else "") + ")",
        f"Changed in the period ({len(changed)}):",
        *([project_line(p) for p in sorted(changed, key=status_rank)] or ["- none"]),
        f"Other open projects ({len(ongoing)}):",
        *([project_line(p) for p in sorted(ongoing, key=status_rank)] or ["- none"]),
    ]
    return "\n".join(lines)


def status_rank(project: Project) -> tuple[int, str]:
    return STATUS_ORDER.index(project.status), project.name


def day_of(moment: str | None) -> date | None:
    if not moment:
        return None
    try:
        return datetime.fromisoformat(moment).date()
    except ValueError:
        return None


def project_line(project: Project, *, with_description: bool = False) -> str:
    facts = [
        f"{project.status}" + (f" ({project.status_raw})" if project.status_raw else ""),
        f"owner {project.owner}" if project.owner else None,
        f"team {project.team}" if project.team else None,
        f"start {project.start_date}" if project.start_date else None,
        f"target {project.target_date}" if project.target_date else None,
        f"{project.progress:.0%} done" if project.progress is not None else None,
        f"updated {project.updated_at[:10]}" if project.updated_at else None,
        f"id {project.id}",
        project.url,
    ]
    line = f"- {project.name}: " + " · ".join(f for f in facts if f)
    if with_description and project.description:
        line += f"\n  {project.description}"
    return line


ITEM_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("identifier", "number", "id")),
    ("", ("title", "name")),
    ("state", ("state",)),
    ("priority", ("priority",)),
    ("assignee", ("assignee", "assignees")),
    ("labels", ("labels",)),
    ("due", ("due_date", "due_on")),
    ("updated", ("updated_at", "modified_at")),
    ("", ("url",)),
)


def item_line(item: dict[str, Any]) -> str:
    """One issue or task, whatever the platform calls its fields."""
    facts = []
    for label, names in ITEM_FIELDS:
        value = next((item[n] for n in names if item.get(n) not in (None, [], "")), None)
        if value is None:
            continue
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        facts.append(f"{label} {text}" if label else text)
    if not any(item.get(n) for n in ("assignee", "assignees")):
        facts.append("unassigned")
    return "- " + " · ".join(facts)
