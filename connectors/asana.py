"""Asana: REST at `{base}` (default https://app.asana.com/api/1.0), `Authorization: Bearer <PAT>`.

Answers come in `{"data": ...}` envelopes; collections paginate with `limit` (1-100) and an opaque
`offset`, returned as `next_page.offset`. `opt_fields` keeps responses to the fields we read.
Errors are `{"errors": [{"message", "help"}]}`; 429 carries `Retry-After` (seconds). Rate limit:
150 requests a minute on free plans (1,500 on paid ones). Task search is premium-only: a free
workspace answers 402 Payment Required, which becomes `PremiumRequired` naming the fallback
(filtering one project's tasks by text).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx2
from pydantic import Field

from connectors.base import Connector, PageGuard, RateSpec, decode_cursor, encode_cursor
from sophia_mcp.config import Settings
from sophia_mcp.errors import BadInput, Forbidden, SophiaError, UpstreamUnavailable
from sophia_mcp.models import Model, Project, ProjectPage, ProjectStatus, SearchHit, ToolOutput
from sophia_mcp.registry import Cursor, Limit, PageInput, ToolInput, ToolSpec, Verbose

PLATFORM = "asana"
MAX_PAGE = 100  # Asana's largest page
SEARCH_CAP = 100  # task search is unpaginated and returns at most this many tasks
SCAN_PAGES = 20  # pages a filtered listing reads in one call before it returns what it found, with a cursor
FALLBACK_HINT = (
    "Instead, filter one project's tasks by text: call asana_search_tasks again with project_id, or "
    "asana_list_tasks with project_id and text."
)

#: Asana's project status colors (`current_status.color`) as the status update picker names them
STATUS_FROM_COLOR: dict[str, tuple[ProjectStatus, str]] = {
    "green": ("active", "on track"),
    "yellow": ("active", "at risk"),
    "red": ("active", "off track"),
    "blue": ("paused", "on hold"),
    "complete": ("completed", "complete"),
}
#: `status_type` of the latest status update (`current_status_update.status_type`, asked for in PROJECT_FIELDS)
STATUS_FROM_TYPE: dict[str, ProjectStatus] = {
    "on_track": "active",
    "at_risk": "active",
    "off_track": "active",
    "on_hold": "paused",
    "complete": "completed",
    "achieved": "completed",
    "partial": "completed",
    "missed": "completed",
    "dropped": "canceled",
}

# Two opt_fields are missing from the spec's generated enum, though Asana expands dotted paths to any field
# of the nested object: `owner.name` (an upstream omission) and `current_status_update.status_type` (the
# enum lists only the compact status update's fields); the contract test knows both. The deprecated
# `current_status` is the fallback for a project whose latest update has no status_type.
PROJECT_FIELDS = (
    "name,archived,completed,completed_at,current_status_update.status_type,current_status_update.title,"
    "current_status.color,current_status.title,current_status.text,owner.name,team.name,workspace.name,due_on,"
    "start_on,permalink_url,notes,created_at,modified_at"
)
TASK_FIELDS = (
    "name,resource_subtype,completed,completed_at,assignee.name,due_on,due_at,start_on,modified_at,"
    "permalink_url,memberships.section.name,projects.name,num_subtasks,parent.name"
)
TASK_DETAIL_FIELDS = f"{TASK_FIELDS},notes,created_at,followers.name,tags.name,workspace.name"


class PremiumRequired(Forbidden):
    type = "premium-required"
    title = "Needs a premium Asana workspace"


WORKSPACES_TTL = 3600.0  # seconds the list of visible workspaces is reused


class AsanaConnector(Connector):
    platform = PLATFORM
    title = "Asana"
    credential_fields = ("asana_token",)
    base_url_field = "asana_base_url"
    rate = RateSpec(per_second=150 / 60, burst=50)

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, transport)
        #: (when listed, workspaces): every read starts from the workspaces, which rarely change
        self._visible: tuple[float, list[dict[str, Any]]] | None = None

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.asana_token is not None
        return {"Authorization": f"Bearer {self.settings.asana_token.get_secret_value()}"}

    def classify(self, response: httpx2.Response) -> SophiaError | None:
        detail = self.error_detail(response) if response.status_code >= 400 else ""
        if response.status_code == 402 or (response.status_code == 403 and "premium" in detail.lower()):
            answer = "402 Payment Required" if response.status_code == 402 else "403 Forbidden"
            return PremiumRequired(
                f"Asana answered {answer} ({detail or 'premium feature'}): task search only works in workspaces "
                f"on a paid Asana plan. {FALLBACK_HINT}",
                platform=PLATFORM,
            )
        return super().classify(response)

    # -- raw access -------------------------------------------------------------------------------

    async def data(self, path: str, params: dict[str, Any] | None = None) -> Any:
        body = await self.get_json(path, params)
        if not isinstance(body, dict) or "data" not in body:
            raise UpstreamUnavailable(f"Asana answered {path} without a data envelope.", platform=PLATFORM)
        return body["data"]

    async def collect(
        self,
        path: str,
        params: dict[str, Any],
        limit: int,
        state: dict[str, Any],
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to `limit` records of one collection that `keep` accepts, from the position in
        `state` ({"o": Asana offset, "s": records to skip in that page}); returns them and the
        position to continue from (None when the collection is exhausted). A filtered read stops
        after SCAN_PAGES pages: it then returns fewer than `limit` records and a position."""
        offset, skip = state.get("o"), int(state.get("s", 0))
        page_size = MAX_PAGE if keep else min(MAX_PAGE, limit + skip)
        items: list[dict[str, Any]] = []
        guard = PageGuard(PLATFORM, max_pages=SCAN_PAGES)  # refuses a repeated offset
        for _ in range(SCAN_PAGES):
            body = await self.get_json(path, {**params, "limit": page_size, "offset": offset})
            records = body.get("data") or []
            next_offset = (body.get("next_page") or {}).get("offset")
            for index in range(skip, len(records)):
                if keep is None or keep(records[index]):
                    if len(items) == limit:
                        return items, {"o": offset, "s": index}
                    items.append(records[index])
            if not next_offset:
                return items, None
            if len(items) == limit:
                return items, {"o": next_offset, "s": 0}
            guard.next(next_offset)
            offset, skip = next_offset, 0
        return items, {"o": offset, "s": 0}

    async def every(self, path: str, params: dict[str, Any], max_pages: int = 10) -> tuple[list[dict[str, Any]], bool]:
        """Every record of a collection, up to `max_pages` pages; also says whether it was cut."""
        records: list[dict[str, Any]] = []
        state: dict[str, Any] = {}
        for _ in range(max_pages):
            page, position = await self.collect(path, params, MAX_PAGE, state)
            records.extend(page)
            if position is None:
                return records, False
            state = position
        return records, True

    async def workspaces(self) -> list[dict[str, Any]]:
        """The workspaces to read: SOPHIA_ASANA_WORKSPACE (a gid or a name) or every one visible."""
        chosen = (self.settings.asana_workspace or "").strip()
        if chosen.isdigit():
            return [{"gid": chosen}]
        if self._visible is None or time.monotonic() - self._visible[0] > WORKSPACES_TTL:
            listed, _ = await self.every("/workspaces", {"opt_fields": "name,is_organization"})
            self._visible = (time.monotonic(), listed)
        visible = self._visible[1]
        if not chosen:
            return visible
        named = [w for w in visible if w.get("name", "").lower() == chosen.lower()]
        if not named:
            names = ", ".join(f"{w.get('name')} ({w['gid']})" for w in visible)
            raise BadInput(
                f"SOPHIA_ASANA_WORKSPACE={chosen!r} names no workspace this token can see; visible: {names}.",
                platform=PLATFORM,
            )
        return named

    async def default_workspace(self) -> str:
        """SOPHIA_ASANA_WORKSPACE, else the first organization (where team work lives), else the first."""
        workspaces = await self.workspaces()
        if not workspaces:
            raise BadInput("this Asana token sees no workspace.", platform=PLATFORM)
        return next((w for w in workspaces if w.get("is_organization")), workspaces[0])["gid"]

    # -- the common operations ---------------------------------------------------------------------

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        state = decode_cursor(PLATFORM, cursor)
        workspace_ids = [w["gid"] for w in await self.workspaces()]
        start = workspace_ids.index(state["w"]) if state.get("w") in workspace_ids else 0
        keep = (lambda node: to_project(node).status == status) if status else None
        projects: list[Project] = []
        for position, workspace_id in enumerate(workspace_ids[start:], start=start):
            within = state if position == start else {}
            nodes, more = await self.collect(
                f"/workspaces/{workspace_id}/projects",
                {"opt_fields": PROJECT_FIELDS},
                limit - len(projects),
                {k: v for k, v in within.items() if k in ("o", "s")},
                keep,
            )
            projects.extend(to_project(n) for n in nodes)
            if more is not None:
                return ProjectPage(items=projects, next_cursor=encode_cursor(PLATFORM, {"w": workspace_id, **more}))
            if len(projects) == limit and position + 1 < len(workspace_ids):
                return ProjectPage(
                    items=projects, next_cursor=encode_cursor(PLATFORM, {"w": workspace_ids[position + 1]})
                )
        return ProjectPage(items=projects)

    async def search_workspace(
        self, workspace_id: str, text: str, completed: bool | None, project_id: str | None, before: str | None
    ) -> list[dict[str, Any]]:
        params = {
            "text": text,
            "completed": None if completed is None else str(completed).lower(),
            "projects.any": project_id,
            "sort_by": "created_at",
            "sort_ascending": "false",
            "created_at.before": before,
            # documented in the operation's prose ("page sizes ... specified by the `limit` query parameter"),
            # though missing from its parameter list; without it Asana applies a smaller default page
            "limit": SEARCH_CAP,
            "opt_fields": f"{TASK_FIELDS},created_at",
        }
        tasks: list[dict[str, Any]] = await self.data(f"/workspaces/{workspace_id}/tasks/search", params)
        return tasks

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        workspaces = await self.workspaces()
        found: list[dict[str, Any]] = []
        refusals: list[PremiumRequired] = []
        for workspace in workspaces:  # usually one or two; a free one refuses, the others still answer
            try:
                found.extend(await self.search_workspace(workspace["gid"], query, None, None, None))
            except PremiumRequired as exc:
                refusals.append(exc)
        if refusals and len(refusals) == len(workspaces):
            raise refusals[0]
        found.sort(key=lambda t: t.get("modified_at") or "", reverse=True)
        return [
            SearchHit(
                platform=PLATFORM,
                kind="task",
                id=t["gid"],
                title=t.get("name") or "",
                url=t.get("permalink_url"),
                snippet=task_snippet(t),
                updated_at=t.get("modified_at"),
            )
            for t in found[:limit]
        ]

    async def check(self) -> str:
        workspaces = await self.data("/workspaces", {"limit": 10, "opt_fields": "name"})
        return "workspaces: " + (", ".join(w.get("name", w["gid"]) for w in workspaces) or "none visible")


def project_status(node: dict[str, Any]) -> tuple[ProjectStatus, str | None]:
    if node.get("completed"):
        return "completed", "completed"
    if node.get("archived"):
        return "completed", "archived"
    status_type = (node.get("current_status_update") or {}).get("status_type")
    if status_type in STATUS_FROM_TYPE:
        return STATUS_FROM_TYPE[status_type], status_type.replace("_", " ")
    color = (node.get("current_status") or {}).get("color")
    if color in STATUS_FROM_COLOR:
        return STATUS_FROM_COLOR[color]
    return "active", None  # an open project with no status update posted yet


def to_project(node: dict[str, Any]) -> Project:
    status, status_raw = project_status(node)
    notes = (node.get("notes") or "").strip()
    return Project(
        platform=PLATFORM,
        id=node["gid"],
        name=node.get("name") or "",
        url=node.get("permalink_url"),
        status=status,
        status_raw=status_raw,
        owner=(node.get("owner") or {}).get("name"),
        team=(node.get("team") or {}).get("name"),
        description=(notes[:297] + "…" if len(notes) > 300 else notes) or None,
        start_date=node.get("start_on"),
        target_date=node.get("due_on"),
        created_at=node.get("created_at"),
        updated_at=node.get("modified_at"),
    )


def task_snippet(task: dict[str, Any]) -> str:
    parts = [
        "completed" if task.get("completed") else "open",
        ", ".join(p.get("name", "") for p in task.get("projects") or []),
        (task.get("assignee") or {}).get("name") or "unassigned",
    ]
    if task.get("due_on"):
        parts.append(f"due {task['due_on']}")
    return " · ".join(p for p in parts if p)


def matches_text(text: str) -> Callable[[dict[str, Any]], bool]:
    words = text.lower().split()
    return lambda task: all(w in f"{task.get('name', '')} {task.get('notes', '')}".lower() for w in words)


# -- tools ------------------------------------------------------------------------------------------

ProjectId = Annotated[
    str, Field(min_length=1, pattern=r"^\d+$", description="Asana project gid (digits), from list_projects.")
]
TaskId = Annotated[
    str, Field(min_length=1, pattern=r"^\d+$", description="Asana task gid (digits), from asana_list_tasks.")
]


class AsanaWorkspace(Model):
    id: str
    name: str
    is_organization: bool | None = None


class WorkspaceList(ToolOutput):
    workspaces: list[AsanaWorkspace]
    next_cursor: str | None = None


async def list_workspaces(asana: AsanaConnector, args: PageInput) -> WorkspaceList:
    nodes, more = await asana.collect(
        "/workspaces", {"opt_fields": "name,is_organization"}, args.limit, decode_cursor(PLATFORM, args.cursor)
    )
    return WorkspaceList(
        workspaces=[
            AsanaWorkspace(id=n["gid"], name=n.get("name", ""), is_organization=n.get("is_organization")) for n in nodes
        ],
        next_cursor=encode_cursor(PLATFORM, more) if more else None,
    )


class AsanaTask(Model):
    id: str
    name: str
    url: str | None = None
    completed: bool = False
    completed_at: str | None = None
    assignee: str | None = None
    due_on: str | None = Field(default=None, description="Due date (or due time, when one is set).")
    start_on: str | None = None
    section: str | None = None
    projects: list[str] | None = None
    parent: str | None = Field(default=None, description="Name of the parent task, for a subtask.")
    subtasks: int | None = Field(default=None, description="How many subtasks it has.")
    milestone: bool | None = None
    modified_at: str | None = None
    notes: str | None = None


def to_task(node: dict[str, Any], verbose: bool) -> AsanaTask:
    sections = [(m.get("section") or {}).get("name") for m in node.get("memberships") or []]
    return AsanaTask(
        id=node["gid"],
        name=node.get("name") or "",
        url=node.get("permalink_url"),
        completed=bool(node.get("completed")),
        completed_at=node.get("completed_at"),
        assignee=(node.get("assignee") or {}).get("name"),
        due_on=node.get("due_at") or node.get("due_on"),
        start_on=node.get("start_on"),
        section=next((s for s in sections if s), None),
        projects=[p.get("name", p["gid"]) for p in node.get("projects") or []] or None,
        parent=(node.get("parent") or {}).get("name"),
        subtasks=node.get("num_subtasks") or None,
        milestone=True if node.get("resource_subtype") == "milestone" else None,
        modified_at=node.get("modified_at"),
        notes=node.get("notes") if verbose else None,
    )


class GetProjectInput(ToolInput):
    project_id: ProjectId


class AsanaProjectDetail(ToolOutput):
    project: Project
    workspace: str | None = None
    status_update: str | None = Field(default=None, description="Title and text of the latest status update.")
    tasks: dict[str, int] = Field(description="Top-level tasks by state: open and completed.")


async def get_project(asana: AsanaConnector, args: GetProjectInput) -> AsanaProjectDetail:
    node = await asana.data(f"/projects/{args.project_id}", {"opt_fields": PROJECT_FIELDS})
    tasks, cut = await asana.every(f"/projects/{args.project_id}/tasks", {"opt_fields": "completed"})
    done = sum(1 for t in tasks if t.get("completed"))
    status = node.get("current_status") or {}
    update = " — ".join(p for p in (status.get("title"), status.get("text")) if p)
    update = update or (node.get("current_status_update") or {}).get("title")
    return AsanaProjectDetail(
        project=to_project(node),
        workspace=(node.get("workspace") or {}).get("name"),
        status_update=update,
        tasks={"open": len(tasks) - done, "completed": done},
        truncated=cut,
        note=f"Counted the first {len(tasks)} tasks only." if cut else None,
    )


class ListTasksInput(PageInput):
    project_id: ProjectId
    include_completed: Annotated[
        bool, Field(description="Also return completed tasks (default: only incomplete ones).")
    ] = False
    text: Annotated[
        str | None,
        Field(
            max_length=200,
            description="Only tasks whose name or notes contain all these words (case-insensitive). Works on every "
            "Asana plan: the fallback when workspace search needs premium.",
        ),
    ] = None
    assignee: Annotated[
        str | None, Field(max_length=100, description="Only tasks whose assignee's name contains this.")
    ] = None
    verbose: Verbose = False


class TaskList(ToolOutput):
    tasks: list[AsanaTask]
    next_cursor: str | None = None


async def list_tasks(asana: AsanaConnector, args: ListTasksInput) -> TaskList:
    return await project_tasks(asana, args.project_id, args, decode_cursor(PLATFORM, args.cursor), lambda s: s)


async def project_tasks(
    asana: AsanaConnector,
    project_id: str,
    args: ListTasksInput,
    state: dict[str, Any],
    wrap: Callable[[dict[str, Any]], dict[str, Any]],
) -> TaskList:
    checks: list[Callable[[dict[str, Any]], bool]] = []
    if args.text:
        checks.append(matches_text(args.text))
    if args.assignee:
        who = args.assignee.lower()
        checks.append(lambda t: who in ((t.get("assignee") or {}).get("name") or "").lower())
    keep = (lambda t: all(c(t) for c in checks)) if checks else None
    fields = f"{TASK_FIELDS},notes" if args.text or args.verbose else TASK_FIELDS
    params = {"opt_fields": fields, "completed_since": None if args.include_completed else "now"}
    nodes, more = await asana.collect(f"/projects/{project_id}/tasks", params, args.limit, state, keep)
    scan_cut = more is not None and len(nodes) < args.limit
    return TaskList(
        tasks=[to_task(n, args.verbose) for n in nodes],
        next_cursor=encode_cursor(PLATFORM, wrap(more)) if more else None,
        truncated=scan_cut,
        note=f"Looked through {SCAN_PAGES * MAX_PAGE} tasks in this call and found {len(nodes)} that match; the "
        "project has more: pass next_cursor to keep looking."
        if scan_cut
        else None,
    )


class GetTaskInput(ToolInput):
    task_id: TaskId


class AsanaTaskDetail(ToolOutput):
    task: AsanaTask
    subtasks: list[AsanaTask]
    followers: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    workspace: str | None = None
    created_at: str | None = None


async def get_task(asana: AsanaConnector, args: GetTaskInput) -> AsanaTaskDetail:
    node = await asana.data(f"/tasks/{args.task_id}", {"opt_fields": TASK_DETAIL_FIELDS})
    subtasks: list[dict[str, Any]] = []
    cut = False
    if node.get("num_subtasks", 1):
        subtasks, more = await asana.collect(
            f"/tasks/{args.task_id}/subtasks", {"opt_fields": TASK_FIELDS}, MAX_PAGE, {}
        )
        cut = more is not None
    return AsanaTaskDetail(
        task=to_task(node, verbose=True),
        subtasks=[to_task(s, verbose=False) for s in subtasks],
        followers=[f.get("name", f["gid"]) for f in node.get("followers") or []],
        tags=[t.get("name", t["gid"]) for t in node.get("tags") or []],
        workspace=(node.get("workspace") or {}).get("name"),
        created_at=node.get("created_at"),
        truncated=cut,
        note=f"Showing the first {MAX_PAGE} subtasks." if cut else None,
    )


class SearchTasksInput(ToolInput):
    query: Annotated[str, Field(min_length=1, max_length=200, description="Words to find in task names and notes.")]
    workspace_id: Annotated[
        str | None,
        Field(
            pattern=r"^\d+$", description="Workspace gid; default SOPHIA_ASANA_WORKSPACE, else your first organization."
        ),
    ] = None
    project_id: Annotated[
        str | None,
        Field(
            pattern=r"^\d+$",
            description="Only this project's tasks. Also the fallback: if the workspace is not on a premium plan, this "
            "project's tasks are filtered by the words instead.",
        ),
    ] = None
    include_completed: Annotated[bool, Field(description="Also find completed tasks.")] = True
    limit: Limit = 20
    cursor: Cursor = None
    verbose: Verbose = False


async def search_tasks(asana: AsanaConnector, args: SearchTasksInput) -> TaskList:
    state = decode_cursor(PLATFORM, args.cursor)
    if "fallback" in state:
        if not args.project_id:
            raise BadInput("this cursor continues a project's tasks: pass the same project_id.", platform=PLATFORM)
        return await fallback(asana, args, state["fallback"])
    workspace_id = args.workspace_id or await asana.default_workspace()
    try:
        found = await asana.search_workspace(
            workspace_id, args.query, None if args.include_completed else False, args.project_id, state.get("before")
        )
    except PremiumRequired:
        if not args.project_id:
            raise
        return await fallback(asana, args, {})
    kept = found[: args.limit]
    more = len(found) > args.limit and kept[-1].get("created_at")
    return TaskList(
        tasks=[to_task(t, args.verbose) for t in kept],
        next_cursor=encode_cursor(PLATFORM, {"before": kept[-1]["created_at"]}) if more else None,
        note=f"Asana returns at most {SEARCH_CAP} tasks per search; narrow the words for more."
        if len(found) >= SEARCH_CAP and not more
        else None,
    )


async def fallback(asana: AsanaConnector, args: SearchTasksInput, state: dict[str, Any]) -> TaskList:
    assert args.project_id is not None
    as_list = ListTasksInput(
        project_id=args.project_id,
        include_completed=args.include_completed,
        text=args.query,
        limit=args.limit,
        verbose=args.verbose,
    )
    result = await project_tasks(asana, args.project_id, as_list, state, lambda s: {"fallback": s})
    result.note = (
        "This workspace is not on a premium Asana plan, so task search is unavailable (402 Payment Required); "
        "these are the project's tasks whose name or notes contain the words."
    ) + (f" {result.note}" if result.note else "")
    return result


CONNECTOR = AsanaConnector
TOOLS = [
    ToolSpec(
        "asana_list_workspaces",
        PLATFORM,
        "List Asana workspaces",
        "The Asana workspaces and organizations this token can see, with their gids (used by the other Asana tools).",
        PageInput,
        WorkspaceList,
        list_workspaces,
    ),
    ToolSpec(
        "asana_get_project",
        PLATFORM,
        "Get an Asana project",
        "One Asana project by gid (from list_projects): normalised status and Asana's own (on track, at risk, off "
        "track, on hold, complete, archived), owner, team, start and due dates, latest status update, and how many "
        "of its tasks are open or completed.",
        GetProjectInput,
        AsanaProjectDetail,
        get_project,
    ),
    ToolSpec(
        "asana_list_tasks",
        PLATFORM,
        "List an Asana project's tasks",
        "Tasks of one Asana project in project order: name, assignee, due date, section, completion, subtask count "
        "and URL. Only incomplete tasks unless include_completed. Filter by text (words in name or notes; works on "
        "every plan) and assignee name; verbose adds notes.",
        ListTasksInput,
        TaskList,
        list_tasks,
    ),
    ToolSpec(
        "asana_get_task",
        PLATFORM,
        "Get an Asana task",
        "One Asana task by gid with its notes, assignee, dates, section, projects, followers, tags and subtasks.",
        GetTaskInput,
        AsanaTaskDetail,
        get_task,
    ),
    ToolSpec(
        "asana_search_tasks",
        PLATFORM,
        "Search Asana tasks",
        "Search tasks in an Asana workspace by words in their name and notes, newest first. Asana allows this only "
        "in workspaces on a paid plan: elsewhere it fails with a premium-required error, unless project_id is given, "
        "in which case that project's tasks are filtered by the words instead (asana_list_tasks with text does the "
        "same).",
        SearchTasksInput,
        TaskList,
        search_tasks,
    ),
]
