"""Linear: GraphQL at `{base}/graphql`, `Authorization: <API key>` (OAuth tokens as `Bearer <token>`).

Pagination is Relay (`first`/`after`, `pageInfo.endCursor`). Errors arrive as GraphQL `errors` with
`extensions.code` (AUTHENTICATION_ERROR, FORBIDDEN, RATELIMITED, ...), often with HTTP 400.
Rate limits: 5,000 requests an hour per API key (leaky bucket), a complexity budget, and per-endpoint
limits (`searchIssues`: 30 requests a minute, its schema description says so); each has its own
`X-RateLimit-{Requests,Complexity,Endpoint-Requests}-Reset` header (epoch milliseconds).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Annotated, Any, Literal

import httpx2
from pydantic import Field

from connectors.base import Connector, PageGuard, RateSpec, TokenBucket, decode_cursor, encode_cursor
from sophia_mcp.config import Settings
from sophia_mcp.errors import (
    BadInput,
    Forbidden,
    NotFound,
    RateLimited,
    SophiaError,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from sophia_mcp.models import Model, Project, ProjectPage, ProjectStatus, SearchHit, ToolOutput
from sophia_mcp.registry import Cursor, Limit, PageInput, ToolInput, ToolSpec, Verbose

PLATFORM = "linear"

STATUS_FROM_LINEAR: dict[str, ProjectStatus] = {
    "backlog": "planned",
    "planned": "planned",
    "started": "active",
    "paused": "paused",
    "completed": "completed",
    "canceled": "canceled",
}
LINEAR_TYPES_FOR: dict[str, list[str]] = {}
for _linear, _ours in STATUS_FROM_LINEAR.items():
    LINEAR_TYPES_FOR.setdefault(_ours, []).append(_linear)

PROJECT_FIELDS = """
      id name description url progress startDate targetDate createdAt updatedAt
      status { id name type }
      lead { id name }
      teams(first: 10) { nodes { id key name } }"""

PROJECTS_QUERY = f"""
query Projects($first: Int!, $after: String, $filter: ProjectFilter) {{
  projects(first: $first, after: $after, filter: $filter) {{
    nodes {{{PROJECT_FIELDS}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

ISSUE_STATES_PAGE = 250  # Linear's largest page
TEAMS_PAGE = 250  # a workspace's teams fit in one page
ISSUE_STATES_PAGES_MAX = 4  # a project's issue counts cover at most its first 1,000 issues
ISSUE_STATES = "nodes { state { type } } pageInfo { hasNextPage endCursor }"

PROJECT_QUERY = f"""
query Project($id: String!) {{
  project(id: $id) {{{PROJECT_FIELDS}
    issues(first: {ISSUE_STATES_PAGE}) {{ {ISSUE_STATES} }}
  }}
}}"""

PROJECT_ISSUES_QUERY = f"""
query ProjectIssues($id: String!, $after: String) {{
  project(id: $id) {{
    issues(first: {ISSUE_STATES_PAGE}, after: $after) {{ {ISSUE_STATES} }}
  }}
}}"""

ISSUE_FIELDS = """
      id identifier title url priority priorityLabel dueDate createdAt updatedAt
      state { name type }
      assignee { name email }
      team { key name }
      project { id name }"""

ISSUES_QUERY = f"""
query Issues($first: Int!, $after: String, $filter: IssueFilter) {{
  issues(first: $first, after: $after, filter: $filter) {{
    nodes {{{ISSUE_FIELDS}
      description
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

ISSUE_QUERY = f"""
query Issue($id: String!) {{
  issue(id: $id) {{{ISSUE_FIELDS}
    description
  }}
}}"""

TEAMS_QUERY = """
query Teams($first: Int!, $after: String) {
  teams(first: $first, after: $after) {
    nodes { id key name description }
    pageInfo { hasNextPage endCursor }
  }
}"""

SEARCH_ISSUES_QUERY = f"""
query SearchIssues($term: String!, $first: Int!, $after: String) {{
  searchIssues(term: $term, first: $first, after: $after) {{
    totalCount
    nodes {{{ISSUE_FIELDS}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

VIEWER_QUERY = "query Viewer { viewer { id name email } }"

#: every document this connector sends, for the contract tests
QUERIES = (
    PROJECTS_QUERY,
    PROJECT_QUERY,
    PROJECT_ISSUES_QUERY,
    ISSUES_QUERY,
    ISSUE_QUERY,
    TEAMS_QUERY,
    SEARCH_ISSUES_QUERY,
    VIEWER_QUERY,
)
#: `X-RateLimit-Requests-Reset`, `-Complexity-Reset`, `-Endpoint-Requests-Reset`, ...
RATE_LIMIT_RESET = re.compile(r"x-ratelimit-[a-z-]+-reset")
RATE_LIMIT_WAIT = 60.0  # when Linear names no reset time


class LinearConnector(Connector):
    platform = PLATFORM
    title = "Linear"
    credential_fields = ("linear_api_key",)
    base_url_field = "linear_base_url"
    rate = RateSpec(per_second=5000 / 3600, burst=60)
    search_rate = RateSpec(per_second=30 / 60, burst=10)  # searchIssues: "Rate-limited to 30 requests per minute"

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, transport)
        self.search_bucket = TokenBucket(self.search_rate)

    async def throttle_search(self) -> None:
        await self.search_bucket.take("Linear issue search (30 a minute)", PLATFORM)

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.linear_api_key is not None
        key = self.settings.linear_api_key.get_secret_value()
        # personal API keys go bare; OAuth access tokens as Bearer
        return {"Authorization": key if key.startswith("lin_api_") else f"Bearer {key}"}

    def classify(self, response: httpx2.Response) -> SophiaError | None:
        """Linear reports most failures as GraphQL errors with a code, whatever the HTTP status."""
        if response.status_code >= 500:
            return super().classify(response)
        try:
            body = response.json()
        except ValueError:
            return super().classify(response) if response.status_code >= 400 else None
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors:
            return super().classify(response)
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = (first.get("extensions") or {}).get("code", "")
        message = first.get("message", "unknown error")
        if code == "RATELIMITED" or response.status_code == 429:
            wait = rate_limit_wait(response)
            return RateLimited(
                f"Linear rate limit reached; try again in {wait:.0f} s.", platform=PLATFORM, retry_after=wait
            )
        if code == "AUTHENTICATION_ERROR" or response.status_code == 401:
            return UpstreamUnauthorized(
                f"Linear rejected the API key ({message}). Check SOPHIA_LINEAR_API_KEY.", platform=PLATFORM
            )
        if code == "FORBIDDEN" or response.status_code == 403:
            return Forbidden(f"Linear refused access: {message}", platform=PLATFORM)
        if "not found" in message.lower():
            return NotFound(f"Linear: {message}. Check the id; list tools show valid ids.", platform=PLATFORM)
        if body.get("data") is None:
            return BadInput(f"Linear refused the query: {message}", platform=PLATFORM)
        return None  # partial data with errors on optional fields: use what came back

    async def query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await self.post_json("/graphql", {"query": document, "variables": variables})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise UpstreamUnavailable("Linear answered without data; try again shortly.", platform=PLATFORM)
        return data

    async def page(
        self, field: str, document: str, variables: dict[str, Any], limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        state = decode_cursor(PLATFORM, cursor)
        data = await self.query(document, {**variables, "first": limit, "after": state.get("after")})
        conn = data[field]
        info = conn.get("pageInfo") or {}
        next_cursor = encode_cursor(PLATFORM, {"after": info["endCursor"]}) if info.get("hasNextPage") else None
        return conn["nodes"], next_cursor

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        project_filter = {"status": {"type": {"in": LINEAR_TYPES_FOR.get(status, ["none"])}}} if status else None
        nodes, next_cursor = await self.page("projects", PROJECTS_QUERY, {"filter": project_filter}, limit, cursor)
        return ProjectPage(items=[to_project(n) for n in nodes], next_cursor=next_cursor)

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        await self.throttle_search()
        data = await self.query(SEARCH_ISSUES_QUERY, {"term": query, "first": limit})
        return [
            SearchHit(
                platform=PLATFORM,
                kind="issue",
                id=n["identifier"],
                title=n["title"],
                url=n.get("url"),
                snippet=f"{n['state']['name']} · {(n.get('project') or {}).get('name') or n['team']['name']}",
                updated_at=n.get("updatedAt"),
            )
            for n in data["searchIssues"]["nodes"]
        ]

    async def check(self) -> str:
        viewer = (await self.query(VIEWER_QUERY, {}))["viewer"]
        return f"authenticated as {viewer['name']}"


def rate_limit_wait(response: httpx2.Response) -> float:
    """Seconds until the latest `X-RateLimit-*-Reset`: requests, complexity or an endpoint's budget,
    whichever ran out, resets last. At least a second, as Linear said stop."""
    resets = [int(v) for k, v in response.headers.items() if RATE_LIMIT_RESET.fullmatch(k.lower()) and v.isdigit()]
    return max(1.0, max(resets) / 1000 - time.time()) if resets else RATE_LIMIT_WAIT


def to_project(node: dict[str, Any]) -> Project:
    status_type = (node.get("status") or {}).get("type") or ""
    teams = (node.get("teams") or {}).get("nodes") or []
    return Project(
        platform=PLATFORM,
        id=node["id"],
        name=node["name"],
        url=node.get("url"),
        status=STATUS_FROM_LINEAR.get(status_type, "unknown"),
        status_raw=(node.get("status") or {}).get("name") or status_type or None,
        owner=(node.get("lead") or {}).get("name"),
        team=", ".join(t["name"] for t in teams) or None,
        description=node.get("description") or None,
        start_date=node.get("startDate"),
        target_date=node.get("targetDate"),
        progress=node.get("progress"),
        created_at=node.get("createdAt"),
        updated_at=node.get("updatedAt"),
    )


# -- tools ----------------------------------------------------------------------------------------


class LinearIssue(Model):
    identifier: str
    title: str
    url: str | None = None
    state: str
    state_type: str
    priority: str | None = None
    assignee: str | None = None
    team: str | None = None
    project: str | None = None
    due_date: str | None = None
    updated_at: str | None = None
    description: str | None = None


def to_issue(node: dict[str, Any], verbose: bool) -> LinearIssue:
    return LinearIssue(
        identifier=node["identifier"],
        title=node["title"],
        url=node.get("url"),
        state=node["state"]["name"],
        state_type=node["state"]["type"],
        priority=node.get("priorityLabel"),
        assignee=(node.get("assignee") or {}).get("name"),
        team=(node.get("team") or {}).get("key"),
        project=(node.get("project") or {}).get("name"),
        due_date=node.get("dueDate"),
        updated_at=node.get("updatedAt"),
        description=node.get("description") if verbose else None,
    )


class ListIssuesInput(PageInput):
    team: Annotated[str | None, Field(description="Team key (e.g. AUT) or name.")] = None
    project_id: Annotated[str | None, Field(description="Linear project id, from list_projects.")] = None
    state: Annotated[
        Literal["backlog", "unstarted", "started", "completed", "canceled", "triage"] | None,
        Field(description="Workflow state type."),
    ] = None
    assignee: Annotated[str | None, Field(description="Assignee email or name (substring).")] = None
    verbose: Verbose = False


class IssueList(ToolOutput):
    issues: list[LinearIssue]
    next_cursor: str | None = None


async def list_issues(linear: LinearConnector, args: ListIssuesInput) -> IssueList:
    conditions: list[dict[str, Any]] = []
    if args.team:
        conditions.append({"team": {"or": [{"key": {"eq": args.team.upper()}}, {"name": {"eqIgnoreCase": args.team}}]}})
    if args.project_id:
        conditions.append({"project": {"id": {"eq": args.project_id}}})
    if args.state:
        conditions.append({"state": {"type": {"eq": args.state}}})
    if args.assignee:
        who = args.assignee
        conditions.append(
            {"assignee": {"or": [{"email": {"eqIgnoreCase": who}}, {"name": {"containsIgnoreCase": who}}]}}
        )
    issue_filter = {"and": conditions} if conditions else None
    nodes, next_cursor = await linear.page("issues", ISSUES_QUERY, {"filter": issue_filter}, args.limit, args.cursor)
    if args.team and not nodes and not args.cursor:
        await require_team(linear, args.team)
    return IssueList(issues=[to_issue(n, args.verbose) for n in nodes], next_cursor=next_cursor)


async def require_team(linear: LinearConnector, team: str) -> None:
    """Linear answers an unknown team in a filter with no issues; say so instead. Asked only when a
    team filter matched nothing, so the common path costs no extra query."""
    data = await linear.query(TEAMS_QUERY, {"first": TEAMS_PAGE, "after": None})
    teams = data["teams"]
    nodes = teams["nodes"]
    if any(team.upper() == t["key"].upper() or team.casefold() == t["name"].casefold() for t in nodes):
        return
    if (teams.get("pageInfo") or {}).get("hasNextPage"):
        return  # more teams than one page: the team may be among the rest
    known = ", ".join(f"{t['key']} ({t['name']})" for t in nodes) or "none"
    raise NotFound(
        f"Linear has no team {team!r}; its teams are {known}. Pass a team key or name from linear_list_teams.",
        platform=PLATFORM,
    )


class GetIssueInput(ToolInput):
    id: Annotated[str, Field(min_length=1, description="Issue identifier (e.g. AUT-12) or id.")]


class IssueDetail(ToolOutput):
    issue: LinearIssue


async def get_issue(linear: LinearConnector, args: GetIssueInput) -> IssueDetail:
    data = await linear.query(ISSUE_QUERY, {"id": args.id})
    return IssueDetail(issue=to_issue(data["issue"], verbose=True))


class GetProjectInput(ToolInput):
    id: Annotated[str, Field(min_length=1, description="Linear project id, from list_projects.")]


class ProjectDetail(ToolOutput):
    project: Project
    issues_by_state: dict[str, int] = Field(description="Issue count per workflow state type.")


async def get_project(linear: LinearConnector, args: GetProjectInput) -> ProjectDetail:
    node = (await linear.query(PROJECT_QUERY, {"id": args.id}))["project"]
    issues = node["issues"]
    states = [i["state"]["type"] for i in issues["nodes"]]
    guard = PageGuard(PLATFORM)
    for _ in range(ISSUE_STATES_PAGES_MAX - 1):
        info = issues.get("pageInfo") or {}
        if not (info.get("hasNextPage") and guard.next(info.get("endCursor"))):
            break
        page = await linear.query(PROJECT_ISSUES_QUERY, {"id": args.id, "after": info["endCursor"]})
        issues = page["project"]["issues"]
        states.extend(i["state"]["type"] for i in issues["nodes"])
    cut = bool((issues.get("pageInfo") or {}).get("hasNextPage"))
    return ProjectDetail(
        project=to_project(node),
        issues_by_state=dict(Counter(states)),
        truncated=cut,
        note=f"Counted the first {len(states):,} issues only." if cut else None,
    )


class LinearTeam(Model):
    id: str
    key: str
    name: str
    description: str | None = None


class TeamList(ToolOutput):
    teams: list[LinearTeam]
    next_cursor: str | None = None


async def list_teams(linear: LinearConnector, args: PageInput) -> TeamList:
    nodes, next_cursor = await linear.page("teams", TEAMS_QUERY, {}, args.limit, args.cursor)
    return TeamList(teams=[LinearTeam(**n) for n in nodes], next_cursor=next_cursor)


class SearchIssuesInput(ToolInput):
    query: Annotated[str, Field(min_length=1, max_length=300, description="Words to find in issues.")]
    limit: Limit = 20
    cursor: Cursor = None


async def search_issues(linear: LinearConnector, args: SearchIssuesInput) -> IssueList:
    await linear.throttle_search()
    nodes, next_cursor = await linear.page(
        "searchIssues", SEARCH_ISSUES_QUERY, {"term": args.query}, args.limit, args.cursor
    )
    return IssueList(issues=[to_issue(n, verbose=False) for n in nodes], next_cursor=next_cursor)


CONNECTOR = LinearConnector
TOOLS = [
    ToolSpec(
        "linear_list_issues",
        PLATFORM,
        "List Linear issues",
        "List Linear issues, filtered by team (key or name), project id, workflow state type "
        "(backlog, unstarted, started, completed, canceled) and assignee (email or name). Returns identifier "
        "(e.g. AUT-12), title, state, priority, assignee and URL; verbose adds descriptions.",
        ListIssuesInput,
        IssueList,
        list_issues,
    ),
    ToolSpec(
        "linear_get_issue",
        PLATFORM,
        "Get a Linear issue",
        "One Linear issue by identifier (e.g. AUT-12) or id, with its description, state, assignee and project.",
        GetIssueInput,
        IssueDetail,
        get_issue,
    ),
    ToolSpec(
        "linear_get_project",
        PLATFORM,
        "Get a Linear project",
        "One Linear project by id (from list_projects): status, lead, teams, dates, progress, and how many of "
        "its issues are in each workflow state.",
        GetProjectInput,
        ProjectDetail,
        get_project,
    ),
    ToolSpec(
        "linear_list_teams",
        PLATFORM,
        "List Linear teams",
        "The workspace's Linear teams with their keys (the prefix of issue identifiers).",
        PageInput,
        TeamList,
        list_teams,
    ),
    ToolSpec(
        "linear_search_issues",
        PLATFORM,
        "Search Linear issues",
        "Full-text search over Linear issues (title, description, identifier).",
        SearchIssuesInput,
        IssueList,
        search_issues,
    ),
]
