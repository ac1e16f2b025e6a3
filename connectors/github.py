"""GitHub: REST at `SOPHIA_GITHUB_BASE_URL` (https://api.github.com, or https://HOST/api/v3 for GitHub
Enterprise Server) and GraphQL at `/graphql` (GHES: https://HOST/api/graphql) for Projects (v2).

Every request carries `Authorization: Bearer <token>`, `Accept: application/vnd.github+json` and
`X-GitHub-Api-Version: 2022-11-28`. REST lists page with `per_page` (at most 100) and `page`; the
`Link` header's rel="next" says whether there is more, and our opaque cursor wraps its page number
(never its URL: a cursor must not be able to send the token elsewhere). GraphQL connections take at most
100 (`first`) too: a larger `limit` gets a page of 100 and a `next_cursor`. Errors are
`{"message", "documentation_url"}`. Rate limits: the primary limit (5,000 requests an hour per
token) answers 403 or 429 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds);
secondary limits answer 403 or 429 with `retry-after`, and a 429 without either means wait a minute;
search has its own limit of 30 requests a minute. GitHub Enterprise Server with rate limiting off
answers 404 for `/rate_limit`. GraphQL reports `errors[].type` RATE_LIMITED, NOT_FOUND, FORBIDDEN,
INSUFFICIENT_SCOPES, often with HTTP 200 and partial data (a null where the error was).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import httpx2
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from connectors.base import (
    Connector,
    RateSpec,
    TokenBucket,
    decode_cursor,
    encode_cursor,
    retry_after_seconds,
    short_error_text,
)
from sophia_mcp.config import Settings
from sophia_mcp.errors import (
    BadInput,
    Forbidden,
    NotConfigured,
    NotFound,
    RateLimited,
    SophiaError,
    UpstreamUnavailable,
)
from sophia_mcp.models import Model, Project, ProjectPage, ProjectStatus, SearchHit, ToolOutput
from sophia_mcp.registry import Cursor, Limit, PageInput, ToolInput, ToolSpec, Verbose

PLATFORM = "github"
API_VERSION = "2022-11-28"
SEARCH_RESULT_CAP = 1000  # GitHub search returns at most the first 1,000 results of a query
MAX_PER_PAGE = 100  # REST per_page and GraphQL first: GitHub's largest page
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: without retry-after or reset headers, wait at least a minute
TOKEN_SETTING = "SOPHIA_GITHUB_TOKEN"
ORG_SETTING = "SOPHIA_GITHUB_ORG"

PROJECT_FIELDS = """
        id number title shortDescription url closed public createdAt updatedAt
        creator { login }
        owner { ... on Organization { login } ... on User { login } }"""

ORG_PROJECTS_QUERY = f"""
query OrgProjectsV2($org: String!, $first: Int!, $after: String, $query: String) {{
  organization(login: $org) {{
    login
    projectsV2(first: $first, after: $after, query: $query) {{
      totalCount
      pageInfo {{ hasNextPage endCursor }}
      nodes {{{PROJECT_FIELDS}
      }}
    }}
  }}
  rateLimit {{ cost remaining resetAt }}
}}"""

# Status by name: a board may have more fields than one page of fieldValues
PROJECT_ITEMS_FRAGMENT = """
fragment ProjectItems on ProjectV2 {
  id title url closed
  items(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id type updatedAt
      content {
        ... on Issue { number title url issueState: state repository { nameWithOwner } }
        ... on PullRequest { number title url prState: state repository { nameWithOwner } }
        ... on DraftIssue { title }
      }
      status: fieldValueByName(name: "Status") { ...FieldValue }
      fieldValues(first: 20) { nodes { ...FieldValue } }
    }
  }
}

fragment FieldValue on ProjectV2ItemFieldValue {
  ... on ProjectV2ItemFieldSingleSelectValue { name field { ... on ProjectV2FieldCommon { name } } }
  ... on ProjectV2ItemFieldTextValue { text field { ... on ProjectV2FieldCommon { name } } }
  ... on ProjectV2ItemFieldDateValue { date field { ... on ProjectV2FieldCommon { name } } }
  ... on ProjectV2ItemFieldNumberValue { number field { ... on ProjectV2FieldCommon { name } } }
  ... on ProjectV2ItemFieldIterationValue { title field { ... on ProjectV2FieldCommon { name } } }
}"""

PROJECT_ITEMS_QUERY = f"""
query ProjectV2Items($projectId: ID!, $first: Int!, $after: String) {{
  node(id: $projectId) {{ ...ProjectItems }}
}}
{PROJECT_ITEMS_FRAGMENT}"""

ORG_PROJECT_ITEMS_QUERY = f"""
query OrgProjectV2Items($org: String!, $number: Int!, $first: Int!, $after: String) {{
  organization(login: $org) {{ projectV2(number: $number) {{ ...ProjectItems }} }}
}}
{PROJECT_ITEMS_FRAGMENT}"""

#: every GraphQL document this connector sends, for the contract tests
QUERIES = (ORG_PROJECTS_QUERY, PROJECT_ITEMS_QUERY, ORG_PROJECT_ITEMS_QUERY)

# Names become URL path segments: "." or ".." would climb out of /repos/{owner}/{name} (URL normalisation
# turns /repos/../../issues into /issues, the token owner's issues everywhere). Owners are logins: letters,
# digits and hyphens, and an underscore in Enterprise Managed Users' logins (mona_octocorp).
OWNER = r"[A-Za-z0-9_-]+"
NAME = r"[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*"  # not only dots
OWNER_NAME = re.compile(OWNER)
REPO = re.compile(rf"(?:{OWNER}/)?{NAME}")
REPO_HINT = (
    "repo must be a GitHub repository as owner/name or just the name: the name of letters, digits, '-', '_' and '.' "
    "(not just dots), the owner of letters, digits, '-' and '_', e.g. northwind/battery-health or battery-health"
)


def github_repo(value: Any) -> Any:
    """Refuses a `repo` that is not a GitHub repository name, saying what one looks like."""
    if isinstance(value, str) and not REPO.fullmatch(value):
        raise PydanticCustomError("github_repo", REPO_HINT)
    return value


RepoName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=140,
        pattern=rf"^{REPO.pattern}$",
        description="Repository as owner/name, or just the name for a repository of SOPHIA_GITHUB_ORG.",
    ),
    BeforeValidator(github_repo),  # before the pattern check: its message says what a name looks like
]
Direction = Annotated[Literal["asc", "desc"] | None, Field(description="Sort direction; GitHub's default if omitted.")]


def next_page(link_header: str | None) -> int | None:
    """The page number of the Link header's rel="next", if any."""
    for url, rels in re.findall(r'<([^>]*)>\s*;\s*rel="([^"]*)"', link_header or ""):
        if "next" in rels.split():
            pages = parse_qs(urlsplit(url).query).get("page")
            return int(pages[0]) if pages and pages[0].isdigit() else None
    return None


def page_size(state: dict[str, Any], limit: int) -> int:
    """The page size to ask GitHub for: the cursor's, else `limit`, never over GitHub's 100."""
    return min(int(state.get("per_page", limit)), MAX_PER_PAGE)


def listing_key(*parts: Any) -> str:
    """Names one listing (operation and arguments) inside its cursors."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def page_state(cursor: str | None, listing: str) -> dict[str, Any]:
    """The page a cursor points at; a cursor made for another listing (tool or arguments) is refused."""
    state = decode_cursor(PLATFORM, cursor)
    if state and state.get("of") != listing:
        raise BadInput(
            "cursor belongs to another listing: pass `next_cursor` to the same tool with the same arguments.",
            platform=PLATFORM,
        )
    return state


def iso_z(moment: datetime) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if moment.tzinfo else text + "Z"


class GitHubConnector(Connector):
    platform = PLATFORM
    title = "GitHub"
    credential_fields = ("github_token",)
    base_url_field = "github_base_url"
    rate = RateSpec(per_second=5000 / 3600, burst=100)  # primary limit: 5,000 requests an hour per token
    search_rate = RateSpec(per_second=30 / 60, burst=10)  # /search/*: its own limit of 30 requests a minute

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, transport)
        self.search_bucket = TokenBucket(self.search_rate)

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.github_token is not None
        return {
            "Authorization": f"Bearer {self.settings.github_token.get_secret_value()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }

    @property
    def graphql_url(self) -> str:
        base = self.base_url or ""
        return base.removesuffix("/api/v3") + "/api/graphql" if base.endswith("/api/v3") else base + "/graphql"

    @property
    def org(self) -> str | None:
        return self.settings.github_org

    def require_org(self) -> str:
        if not self.org:
            raise NotConfigured(PLATFORM, [ORG_SETTING])
        return self.org

    def org_segment(self) -> str:
        """The organization as a URL path segment; a value that is not a GitHub login is refused."""
        org = self.require_org()
        if not OWNER_NAME.fullmatch(org):
            raise BadInput(
                f"{ORG_SETTING}={org!r} is not a GitHub organization: a login is letters, digits, '-' and '_', "
                "e.g. northwind.",
                platform=PLATFORM,
            )
        return quote(org, safe="")

    # -- errors -----------------------------------------------------------------------------------

    def classify(self, response: httpx2.Response) -> SophiaError | None:
        if response.status_code in (403, 429):
            limited = self.rate_limit(response)
            if limited is not None:
                return limited
        path = response.request.url.path
        if response.status_code == 200 and path.endswith("graphql"):
            return self.graphql_error(response)
        repo = re.search(r"/repos/([^/]+/[^/]+)", path)
        if response.status_code == 404 and repo:  # GitHub answers 404 for private repositories it hides too
            return NotFound(
                f"GitHub has no repository {repo.group(1)} that the token in {TOKEN_SETTING} can see; "
                "github_list_repositories lists them.",
                platform=PLATFORM,
            )
        org = re.search(r"/orgs/([^/]+)/repos$", path)
        if response.status_code == 404 and org:
            return NotFound(
                f"GitHub has no organization {org.group(1)} that the token in {TOKEN_SETTING} can see; "
                f"check {ORG_SETTING}.",
                platform=PLATFORM,
            )
        return super().classify(response)

    def error_detail(self, response: httpx2.Response) -> str:
        """GitHub's message plus the first validation error, e.g. "Validation Failed (state: invalid)"."""
        try:
            body = response.json()
        except ValueError:
            return ""
        detail = short_error_text(body)
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and "field" in errors[0]:
            detail += f" ({errors[0]['field']}: {errors[0].get('code', 'invalid')})"
        return detail

    def rate_limit(self, response: httpx2.Response) -> RateLimited | None:
        """GitHub's primary limit (`x-ratelimit-remaining: 0`, wait until `x-ratelimit-reset`) or a secondary
        limit (`retry-after`; a message saying so, or any other 429: wait a minute). None for other 403s."""
        wait = retry_after_seconds(response)
        reset = response.headers.get("x-ratelimit-reset", "")
        if wait is not None:
            kind = "a secondary rate limit"
        elif response.headers.get("x-ratelimit-remaining") == "0":
            kind = "its rate limit"
            wait = max(0.0, int(reset) - time.time()) if reset.isdigit() else SECONDARY_LIMIT_WAIT
        elif response.status_code == 429 or "rate limit" in self.error_detail(response).lower():
            kind, wait = "a secondary rate limit", SECONDARY_LIMIT_WAIT
        else:
            return None
        return RateLimited(
            f"GitHub: the token in {TOKEN_SETTING} hit {kind}; retry in {wait:.0f} s.",
            platform=PLATFORM,
            retry_after=wait,
        )

    def graphql_error(self, response: httpx2.Response) -> SophiaError | None:
        """A spent budget, or errors with no data at all; errors beside data are for `graphql` to judge."""
        try:
            body = response.json()
        except ValueError:
            return None  # parse_json reports it
        errors = graphql_errors(body)
        if not errors:
            return None
        limited = next((e for e in errors if e.get("type") == "RATE_LIMITED"), None)
        if limited is not None:
            reset = response.headers.get("x-ratelimit-reset", "")
            wait = max(0.0, int(reset) - time.time()) if reset.isdigit() else SECONDARY_LIMIT_WAIT
            return RateLimited(
                f"GitHub: the token in {TOKEN_SETTING} spent its GraphQL budget; retry in {wait:.0f} s.",
                platform=PLATFORM,
                retry_after=wait,
            )
        return graphql_failure(errors[0]) if body.get("data") is None else None

    # -- requests ---------------------------------------------------------------------------------

    async def throttle(self, method: str, path: str) -> None:
        if path.startswith("/search/"):  # every attempt, retries too
            await self.search_bucket.take("GitHub search (30 requests a minute)", PLATFORM)
        await super().throttle(method, path)

    async def graphql(self, document: str, variables: dict[str, Any], *path: str) -> tuple[Any, list[dict[str, Any]]]:
        """The value at `path` in the answer's data, and the errors GitHub reported beside it. An error that
        nulled a value on `path` is raised (a non-null field's error nulls its parent too)."""
        body = await self.post_json(self.graphql_url, {"query": document, "variables": variables})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise UpstreamUnavailable("GitHub answered without data; try again shortly.", platform=PLATFORM)
        errors = graphql_errors(body)
        value: Any = data
        for depth, key in enumerate(path):
            value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                here = list(path[: depth + 1])
                cause = next((e for e in errors if (e.get("path") or [])[: len(here)] == here), None)
                cause = cause or next((e for e in errors if not e.get("path")), None)
                if cause is not None:
                    raise graphql_failure(cause)
                break
        return value, errors

    async def rest_page(
        self, path: str, params: dict[str, Any], limit: int, cursor: str | None
    ) -> tuple[Any, str | None]:
        """One page of a REST list; the cursor keeps the page size it was made with. A limit over GitHub's
        100 gets a page of 100 (and a cursor for the next)."""
        listing = listing_key(path, {k: v for k, v in params.items() if v is not None})
        state = page_state(cursor, listing)
        per_page, page = page_size(state, limit), int(state.get("page", 1))
        response = await self.request("GET", path, params={**params, "per_page": per_page, "page": page})
        body = self.parse_json(response)
        following = next_page(response.headers.get("link"))
        if following is None or following <= page:
            return body, None
        return body, encode_cursor(PLATFORM, {"of": listing, "page": following, "per_page": per_page})

    def repo_path(self, repo: str) -> str:
        if not REPO.fullmatch(repo):
            raise BadInput(REPO_HINT + ".", platform=PLATFORM)
        owner, _, name = repo.rpartition("/")
        if not owner:
            if not self.org:
                raise BadInput(
                    f"give the repository as owner/name: {ORG_SETTING} is not set, so there is no default owner.",
                    platform=PLATFORM,
                )
            return f"/repos/{self.org_segment()}/{quote(name, safe='')}"
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    # -- the operations every platform has --------------------------------------------------------

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        """The organization's Projects (v2). GitHub projects are only open or closed."""
        org = self.require_org()
        if status not in (None, "active", "completed"):
            return ProjectPage(items=[])
        listing = listing_key("projectsV2", org, status)
        variables = {
            "org": org,
            "first": min(limit, MAX_PER_PAGE),
            "after": page_state(cursor, listing).get("after"),
            "query": {"active": "is:open", "completed": "is:closed"}.get(status or ""),
        }
        connection, errors = await self.graphql(ORG_PROJECTS_QUERY, variables, "organization", "projectsV2")
        if connection is None:
            raise NotFound(f"GitHub has no organization {org}; check {ORG_SETTING}.", platform=PLATFORM)
        info = connection["pageInfo"]
        next_cursor = (
            encode_cursor(PLATFORM, {"of": listing, "after": info["endCursor"]}) if info["hasNextPage"] else None
        )
        projects = [to_project(n) for n in connection["nodes"] if n]
        if not projects and not next_cursor and None in connection["nodes"]:
            raise refusal(withheld_cause(errors))
        return ProjectPage(items=projects, next_cursor=next_cursor)

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        """Issues and pull requests of the organization (or involving the token's user without one).
        Two queries, `is:issue` and `is:pr`: GitHub refuses mixed searches from GitHub App user tokens."""
        scope = f"org:{self.org}" if self.org else "involves:@me"
        found: dict[str, list[dict[str, Any]]] = {}

        async def one(kind: str) -> None:
            params = {"q": f"{query} {scope} is:{kind}", "per_page": min(limit, MAX_PER_PAGE)}
            found[kind] = (await self.get_json("/search/issues", params))["items"]

        try:
            async with anyio.create_task_group() as tg:
                for kind in ("issue", "pr"):
                    tg.start_soon(one, kind)
        except BaseExceptionGroup as group:  # the error itself (a rate limit, say), not "failed unexpectedly"
            raise next((e for e in group.exceptions if isinstance(e, SophiaError)), group) from None
        items = sorted(found["issue"] + found["pr"], key=lambda i: (i.get("score", 0), i["updated_at"]), reverse=True)
        return [to_search_hit(i) for i in items[:limit]]

    async def check(self) -> str:
        scope = f"organization {self.org}" if self.org else f"{ORG_SETTING} not set"
        try:
            core = (await self.get_json("/rate_limit"))["resources"]["core"]
        except NotFound:  # GitHub Enterprise Server with rate limiting off: prove the token with a listing
            path = f"/orgs/{self.org_segment()}/repos" if self.org else "/user/repos"
            await self.get_json(path, {"per_page": 1})
            return f"token accepted; rate limiting is disabled on this server; {scope}"
        return f"token accepted; {core['remaining']} of {core['limit']} REST requests left this hour; {scope}"


def graphql_errors(body: Any) -> list[dict[str, Any]]:
    return [e for e in body.get("errors") or [] if isinstance(e, dict)] if isinstance(body, dict) else []


def access_hint(error: dict[str, Any]) -> str:
    """What the token lacks: access to the repositories of a board's items, or to Projects."""
    if "items" in (error.get("path") or []):
        return (
            f"the token in {TOKEN_SETTING} needs read access to the repositories of the board's issues and pull "
            "requests: the repo scope, or Issues and Pull requests read for a fine-grained token"
        )
    return (
        f"Projects need the read:project scope on {TOKEN_SETTING}, or Projects read for a fine-grained token "
        "or GitHub App"
    )


def refusal(error: dict[str, Any]) -> Forbidden:
    message = str(error.get("message") or "access denied").rstrip(".")
    return Forbidden(f"GitHub refused access: {message} ({access_hint(error)}).", platform=PLATFORM)


def graphql_failure(error: dict[str, Any]) -> SophiaError:
    """The error for a GraphQL error that left nothing to read."""
    kind, message = error.get("type", ""), str(error.get("message", "unknown error")).rstrip(".")
    if kind == "NOT_FOUND":
        hint = f"Check {ORG_SETTING}" if "Organization" in message else "Check the id; list tools show valid ids"
        return NotFound(f"GitHub: {message}. {hint}.", platform=PLATFORM)
    if kind in ("FORBIDDEN", "INSUFFICIENT_SCOPES"):
        return refusal(error)
    if "something went wrong" in message.lower():  # GitHub's answer to a query that timed out
        return UpstreamUnavailable(f"GitHub failed on its side: {message}", platform=PLATFORM)
    return BadInput(f"GitHub refused the query: {message}", platform=PLATFORM)


def withheld_cause(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error that nulled entries of a `nodes` list (objects the token may not see)."""
    return next((e for e in errors if "nodes" in (e.get("path") or [])), errors[0] if errors else {})


def to_project(node: dict[str, Any]) -> Project:
    closed = bool(node.get("closed"))
    return Project(
        platform=PLATFORM,
        id=node["id"],
        name=node["title"],
        url=node.get("url"),
        status="completed" if closed else "active",
        status_raw=f"{'closed' if closed else 'open'} ({'public' if node.get('public') else 'private'})",
        owner=(node.get("creator") or {}).get("login"),
        team=(node.get("owner") or {}).get("login"),
        description=node.get("shortDescription") or None,
        created_at=node.get("createdAt"),
        updated_at=node.get("updatedAt"),
    )


def repo_of(item: dict[str, Any]) -> str:
    return "/".join(item["repository_url"].rsplit("/", 2)[-2:])


def to_search_hit(item: dict[str, Any]) -> SearchHit:
    kind = "pull_request" if "pull_request" in item else "issue"
    return SearchHit(
        platform=PLATFORM,
        kind=kind,
        id=f"{repo_of(item)}#{item['number']}",
        title=item["title"],
        url=item.get("html_url"),
        snippet=f"{item['state']} {kind.replace('_', ' ')} in {repo_of(item)}",
        updated_at=item.get("updated_at"),
    )


# -- tools ------------------------------------------------------------------------------------------


class Repository(Model):
    name: str
    full_name: str
    description: str | None = None
    url: str
    visibility: str
    language: str | None = None
    default_branch: str | None = None
    archived: bool = False
    open_issues_and_prs: int = Field(description="Open issues plus open pull requests, as GitHub counts them.")
    stars: int = 0
    topics: list[str] = Field(default_factory=list)
    pushed_at: str | None = None
    updated_at: str | None = None


class ListRepositoriesInput(PageInput):
    visibility: Annotated[
        Literal["all", "public", "private"], Field(description="Only public or only private repositories.")
    ] = "all"
    sort: Annotated[
        Literal["created", "updated", "pushed", "full_name"],
        Field(description="Order: newest update first by default."),
    ] = "updated"
    direction: Direction = None


class RepositoryList(ToolOutput):
    repositories: list[Repository]
    next_cursor: str | None = None


async def list_repositories(github: GitHubConnector, args: ListRepositoriesInput) -> RepositoryList:
    params: dict[str, Any] = {"sort": args.sort, "direction": args.direction}
    if github.org:
        path, note = f"/orgs/{github.org_segment()}/repos", None
        params["type"] = "all" if args.visibility == "all" else args.visibility
    else:
        path = "/user/repos"
        params["visibility"] = args.visibility
        note = f"{ORG_SETTING} is not set: these are the repositories the token's user can access."
    body, next_cursor = await github.rest_page(path, params, args.limit, args.cursor)
    return RepositoryList(
        repositories=[
            Repository(
                name=r["name"],
                full_name=r["full_name"],
                description=r.get("description"),
                url=r["html_url"],
                visibility=r.get("visibility") or ("private" if r.get("private") else "public"),
                language=r.get("language"),
                default_branch=r.get("default_branch"),
                archived=bool(r.get("archived")),
                open_issues_and_prs=r.get("open_issues_count") or 0,
                stars=r.get("stargazers_count") or 0,
                topics=r.get("topics") or [],
                pushed_at=r.get("pushed_at"),
                updated_at=r.get("updated_at"),
            )
            for r in body
        ],
        next_cursor=next_cursor,
        note=note,
    )


class Issue(Model):
    number: int
    title: str
    state: str
    state_reason: str | None = None
    url: str
    author: str | None = None
    assignees: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    comments: int = 0
    created_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    body: str | None = None


def logins(users: list[dict[str, Any]] | None) -> list[str]:
    return [u["login"] for u in users or [] if u]


def label_names(labels: list[Any]) -> list[str]:
    return [label if isinstance(label, str) else label["name"] for label in labels]


def to_issue(item: dict[str, Any], verbose: bool) -> Issue:
    return Issue(
        number=item["number"],
        title=item["title"],
        state=item["state"],
        state_reason=item.get("state_reason"),
        url=item["html_url"],
        author=(item.get("user") or {}).get("login"),
        assignees=logins(item.get("assignees")),
        labels=label_names(item.get("labels") or []),
        comments=item.get("comments") or 0,
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
        closed_at=item.get("closed_at"),
        body=item.get("body") if verbose else None,
    )


class ListIssuesInput(PageInput):
    repo: RepoName
    state: Annotated[Literal["open", "closed", "all"], Field(description="Issue state.")] = "open"
    labels: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=50)]] | None,
        Field(max_length=10, description="Only issues that have all these labels."),
    ] = None
    assignee: Annotated[
        str | None,
        Field(max_length=39, description="Assignee login; `none` for unassigned, `*` for any assignee."),
    ] = None
    since: Annotated[datetime | None, Field(description="Only issues updated at or after this time (ISO 8601).")] = None
    sort: Annotated[Literal["created", "updated", "comments"], Field(description="Order of the results.")] = "created"
    direction: Direction = None
    verbose: Verbose = False


class IssueList(ToolOutput):
    repo: str
    issues: list[Issue]
    next_cursor: str | None = None


async def list_issues(github: GitHubConnector, args: ListIssuesInput) -> IssueList:
    path = github.repo_path(args.repo)
    params = {
        "state": args.state,
        "labels": ",".join(args.labels) if args.labels else None,
        "assignee": args.assignee,
        "since": iso_z(args.since) if args.since else None,
        "sort": args.sort,
        "direction": args.direction,
    }
    body, next_cursor = await github.rest_page(path + "/issues", params, args.limit, args.cursor)
    issues = [to_issue(i, args.verbose) for i in body if "pull_request" not in i]
    skipped = len(body) - len(issues)
    note = (
        f"{skipped} pull request(s) on this page were left out (GitHub lists them as issues too); "
        "use github_list_pull_requests for them."
        if skipped
        else None
    )
    return IssueList(repo=path.removeprefix("/repos/"), issues=issues, next_cursor=next_cursor, note=note)


class PullRequest(Model):
    number: int
    title: str
    state: Literal["open", "closed", "merged"]
    draft: bool = False
    url: str
    author: str | None = None
    head: str | None = Field(default=None, description="Branch with the changes (owner:branch).")
    base: str | None = Field(default=None, description="Branch it merges into.")
    assignees: list[str] = Field(default_factory=list)
    requested_reviewers: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    merged_at: str | None = None
    body: str | None = None


class ListPullRequestsInput(PageInput):
    repo: RepoName
    state: Annotated[
        Literal["open", "closed", "all"], Field(description="Pull request state; closed includes merged.")
    ] = "open"
    base: Annotated[
        str | None, Field(max_length=255, description="Only pull requests into this branch, e.g. main.")
    ] = None
    head: Annotated[
        str | None,
        Field(
            max_length=255, description="Only pull requests from this branch, as owner:branch (e.g. northwind:fix-x)."
        ),
    ] = None
    sort: Annotated[
        Literal["created", "updated", "popularity", "long-running"],
        Field(description="Order: created, updated, popularity (comments), long-running (open the longest)."),
    ] = "created"
    direction: Direction = None
    verbose: Verbose = False


class PullRequestList(ToolOutput):
    repo: str
    pull_requests: list[PullRequest]
    next_cursor: str | None = None


async def list_pull_requests(github: GitHubConnector, args: ListPullRequestsInput) -> PullRequestList:
    path = github.repo_path(args.repo)
    params = {"state": args.state, "base": args.base, "head": args.head, "sort": args.sort, "direction": args.direction}
    body, next_cursor = await github.rest_page(path + "/pulls", params, args.limit, args.cursor)
    return PullRequestList(
        repo=path.removeprefix("/repos/"),
        pull_requests=[
            PullRequest(
                number=p["number"],
                title=p["title"],
                state="merged" if p.get("merged_at") else p["state"],
                draft=bool(p.get("draft")),
                url=p["html_url"],
                author=(p.get("user") or {}).get("login"),
                head=(p.get("head") or {}).get("label"),
                base=(p.get("base") or {}).get("ref"),
                assignees=logins(p.get("assignees")),
                requested_reviewers=logins(p.get("requested_reviewers")),
                labels=label_names(p.get("labels") or []),
                created_at=p.get("created_at"),
                updated_at=p.get("updated_at"),
                closed_at=p.get("closed_at"),
                merged_at=p.get("merged_at"),
                body=p.get("body") if args.verbose else None,
            )
            for p in body
        ],
        next_cursor=next_cursor,
    )


class SearchItem(Issue):
    kind: Literal["issue", "pull_request"]
    repo: str


class SearchIssuesInput(ToolInput):
    query: Annotated[
        str,
        Field(
            min_length=1,
            max_length=256,
            description="GitHub search syntax: words plus qualifiers such as is:pr (issues if no type is given), "
            "is:open, label:bug, assignee:login, author:@me, repo:owner/name, org:name, updated:>2026-01-01.",
        ),
    ]
    sort: Annotated[
        Literal["comments", "reactions", "interactions", "created", "updated"] | None,
        Field(description="Order; best match if omitted."),
    ] = None
    order: Annotated[Literal["asc", "desc"], Field(description="Direction of `sort`.")] = "desc"
    limit: Limit = 20
    cursor: Cursor = None
    verbose: Verbose = False


class SearchResult(ToolOutput):
    query: str = Field(
        description="The query as sent: is:issue added when no type was given, the organization when no scope was."
    )
    total_count: int
    incomplete_results: bool = False
    items: list[SearchItem]
    next_cursor: str | None = None


SCOPE_QUALIFIER = re.compile(r"(^|\s)-?(repo|org|user|owner):", re.IGNORECASE)
# GitHub App user tokens get 422 for a query that could match both issues and pull requests
TYPE_QUALIFIER = re.compile(r"(^|\s)(is|type):(issue|pr|pull-request)(?=\s|$)", re.IGNORECASE)


async def search_issues(github: GitHubConnector, args: SearchIssuesInput) -> SearchResult:
    query = args.query.strip()
    if not TYPE_QUALIFIER.search(query):
        query += " is:issue"
    if github.org and not SCOPE_QUALIFIER.search(query):
        query += f" org:{github.org}"
    params = {"q": query, "sort": args.sort, "order": args.order if args.sort else None}
    state = decode_cursor(PLATFORM, args.cursor)
    per_page = page_size(state, args.limit)
    body, next_cursor = await github.rest_page("/search/issues", params, args.limit, args.cursor)
    page = int(state.get("page", 1))
    note = None
    if next_cursor and page * per_page >= SEARCH_RESULT_CAP:
        next_cursor = None
        note = f"GitHub search returns only the first {SEARCH_RESULT_CAP} results; narrow the query to see the rest."
    elif body["total_count"] > SEARCH_RESULT_CAP:
        note = f"{body['total_count']} matches, but GitHub search pages through only the first {SEARCH_RESULT_CAP}."
    if body.get("incomplete_results"):
        note = ((note or "") + " GitHub timed out on part of the search: results may be incomplete.").strip()
    return SearchResult(
        query=query,
        total_count=body["total_count"],
        incomplete_results=bool(body.get("incomplete_results")),
        items=[
            SearchItem(
                **to_issue(i, args.verbose).model_dump(),
                kind="pull_request" if "pull_request" in i else "issue",
                repo=repo_of(i),
            )
            for i in body["items"]
        ],
        next_cursor=next_cursor,
        note=note,
    )


class ProjectItem(Model):
    id: str
    type: str = Field(description="ISSUE, PULL_REQUEST, DRAFT_ISSUE or REDACTED.")
    title: str | None = None
    number: int | None = None
    state: str | None = None
    repo: str | None = None
    url: str | None = None
    status: str | None = Field(default=None, description="The board's Status field.")
    fields: dict[str, str | float] = Field(default_factory=dict, description="Other field values by field name.")
    updated_at: str | None = None


class GetProjectItemsInput(PageInput):
    project: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            description="Project id (PVT_..., from list_projects) or its number in SOPHIA_GITHUB_ORG "
            "(the N in github.com/orgs/ORG/projects/N).",
        ),
    ]


class ProjectItems(ToolOutput):
    project_id: str
    title: str
    url: str | None = None
    closed: bool = False
    items: list[ProjectItem]
    next_cursor: str | None = None


def field_value(value: dict[str, Any] | None) -> str | float | None:
    if not value:
        return None
    return next((value[k] for k in ("name", "text", "date", "number", "title") if value.get(k) is not None), None)


def to_project_item(node: dict[str, Any]) -> ProjectItem:
    content = node.get("content") or {}
    values: dict[str, str | float] = {}
    for value in (node.get("fieldValues") or {}).get("nodes") or []:
        name = ((value or {}).get("field") or {}).get("name")
        found = field_value(value)
        if name and found is not None:
            values[name] = found
    values.pop("Title", None)
    listed = values.pop("Status", None)
    status = field_value(node.get("status"))
    if status is None:
        status = listed
    return ProjectItem(
        id=node["id"],
        type=node["type"],
        title=content.get("title"),
        number=content.get("number"),
        state=content.get("issueState") or content.get("prState"),
        repo=(content.get("repository") or {}).get("nameWithOwner"),
        url=content.get("url"),
        status=str(status) if status is not None else None,
        fields=values,
        updated_at=node.get("updatedAt"),
    )


async def get_project_items(github: GitHubConnector, args: GetProjectItemsInput) -> ProjectItems:
    listing = listing_key("items", args.project)
    variables: dict[str, Any] = {
        "first": min(args.limit, MAX_PER_PAGE),
        "after": page_state(args.cursor, listing).get("after"),
    }
    if args.project.isdigit():
        variables |= {"org": github.require_org(), "number": int(args.project)}
        project, errors = await github.graphql(ORG_PROJECT_ITEMS_QUERY, variables, "organization", "projectV2")
    else:
        project, errors = await github.graphql(PROJECT_ITEMS_QUERY, variables | {"projectId": args.project}, "node")
    if not project or "items" not in project:
        raise NotFound(
            f"GitHub: {args.project} is not a Projects (v2) board; list_projects shows them.", platform=PLATFORM
        )
    info, nodes = project["items"]["pageInfo"], project["items"]["nodes"]
    items = [to_project_item(n) for n in nodes if n]
    next_cursor = encode_cursor(PLATFORM, {"of": listing, "after": info["endCursor"]}) if info["hasNextPage"] else None
    note = None
    if len(items) < len(nodes):  # GitHub nulls an item the token may not see, with an error saying why
        cause = withheld_cause(errors)
        if not items and not next_cursor:
            raise refusal(cause)
        reason = str(cause.get("message") or "no reason given").rstrip(".")
        note = f"{len(nodes) - len(items)} item(s) GitHub withheld were left out ({reason}); {access_hint(cause)}."
    return ProjectItems(
        project_id=project["id"],
        title=project["title"],
        url=project.get("url"),
        closed=bool(project.get("closed")),
        items=items,
        next_cursor=next_cursor,
        note=note,
    )


CONNECTOR = GitHubConnector
TOOLS = [
    ToolSpec(
        "github_list_repositories",
        PLATFORM,
        "List GitHub repositories",
        "The organization's repositories (SOPHIA_GITHUB_ORG; without it, those the token's user can access), "
        "recently updated first: name, description, visibility, language, open issue and PR count, last push.",
        ListRepositoriesInput,
        RepositoryList,
        list_repositories,
    ),
    ToolSpec(
        "github_list_issues",
        PLATFORM,
        "List GitHub issues",
        "Issues of one repository (pull requests left out), filtered by state, labels, assignee and last update. "
        "Returns number, title, state, author, assignees, labels and URL; verbose adds the body.",
        ListIssuesInput,
        IssueList,
        list_issues,
    ),
    ToolSpec(
        "github_list_pull_requests",
        PLATFORM,
        "List GitHub pull requests",
        "Pull requests of one repository, filtered by state and base or head branch: number, title, open/closed/"
        "merged, draft, author, branches, requested reviewers and URL; verbose adds the description.",
        ListPullRequestsInput,
        PullRequestList,
        list_pull_requests,
    ),
    ToolSpec(
        "github_search_issues",
        PLATFORM,
        "Search GitHub issues and pull requests",
        "Search issues, or pull requests with is:pr, with GitHub's search syntax (is:open, label:, assignee:, "
        "repo:, org:, updated:>DATE); is:issue is added when the query names no type, and the search is scoped to "
        "SOPHIA_GITHUB_ORG unless the query names a repo, org or user. GitHub returns at most the first 1,000 "
        "results of a query.",
        SearchIssuesInput,
        SearchResult,
        search_issues,
    ),
    ToolSpec(
        "github_get_project_items",
        PLATFORM,
        "Get a GitHub project board's items",
        "The items of a GitHub Projects (v2) board, by project id (from list_projects) or number: issue, pull "
        "request or draft, title, state, repository, the board's Status and other field values.",
        GetProjectItemsInput,
        ProjectItems,
        get_project_items,
    ),
]
