"""GitHub's REST API (the documented operations the connector uses, plus the few PyGithub needs for
the same calls) and its GraphQL API (`POST /graphql`, executed against GitHub's published schema),
for the `northwind` organization: one repository and one Projects (v2) board per initiative, issues
and pull requests from its work items.

Behaviour as GitHub documents it: `Authorization: Bearer <token>` (or `token <token>`), a
`User-Agent` required, `X-GitHub-Api-Version` checked; `per_page` (max 100) and `page` with `Link`
headers (rel next/last/prev/first); `{"message", "documentation_url", "status"}` error bodies;
`x-ratelimit-*` headers on every response from per-token budgets (core 5,000 an hour, search 30 a
minute, GraphQL 5,000 points an hour): a spent REST budget answers 403 with
`x-ratelimit-remaining: 0`, a spent GraphQL budget answers 200 with a `RATE_LIMITED` error. The
issues endpoint includes pull requests (with a `pull_request` key), and search stops at 1,000 results;
a GitHub App user access token's issue search must say is:issue or is:pull-request (422 otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from urllib.parse import quote

import anyio
import graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sophia_mcp.sandbox import SandboxState
from sophia_mcp.sandbox.dataset import (
    COMPANY,
    EPOCH,
    PEOPLE,
    SLUG,
    Initiative,
    Person,
    WorkItem,
    initiatives,
    iso,
    stable_int,
)
from sophia_mcp.sandbox.graphql import Node, connection, execute, load_schema

TOKEN = "ghp_sandboxNorthwindDemoToken000000000000"
#: a GitHub App user access token for the same user: its issue searches must say is:issue or is:pull-request
APP_USER_TOKEN = "ghu_sandboxNorthwindAppUserToken00000000"
ORG = SLUG
VIEWER = "dara.nguyen"
API_VERSIONS = ("2022-11-28", "2026-03-10")
WEB = "https://github.com"
DOCS = "https://docs.github.com/rest"
LANGUAGE_BY_TEAM = {
    "Autonomy": "C++",
    "Fleet": "TypeScript",
    "Platform": "Go",
    "Experience": "TypeScript",
    "Sales": "Python",
}
#: resource -> (limit, window seconds), as GitHub documents for a personal access token
RATE_LIMITS = {"core": (5000, 3600), "search": (30, 60), "graphql": (5000, 3600)}
SEARCH_CAP = 1000
SEARCH_SORTS = (
    "comments",
    "reactions",
    "reactions-+1",
    "reactions--1",
    "reactions-smile",
    "reactions-thinking_face",
    "reactions-heart",
    "reactions-tada",
    "interactions",
    "created",
    "updated",
)
LABELS = {  # name -> (color, description, GitHub default label)
    "bug": ("d73a4a", "Something isn't working", True),
    "documentation": ("0075ca", "Improvements or additions to documentation", True),
    "enhancement": ("a2eeef", "New feature or request", True),
    "priority: urgent": ("b60205", "Drop everything", False),
    "priority: high": ("d93f0b", "Next up", False),
}
STATUS_OPTIONS = {  # work item state -> Status option of the project board
    "backlog": "Backlog",
    "todo": "Todo",
    "in_progress": "In Progress",
    "in_review": "In Review",
    "done": "Done",
    "canceled": "Won't do",
}
PRIORITY_OPTIONS = ("", "Urgent", "High", "Medium", "Low")


def demo_settings(base_url: str) -> dict[str, Any]:
    return {"github_token": TOKEN, "github_org": ORG, "github_base_url": base_url}


# -- errors and rate limits ---------------------------------------------------------------------


def error_json(
    status: int, message: str, doc: str = DOCS, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body = {"message": message, **extra, "documentation_url": doc, "status": str(status)}
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(status: int, retry_after: float | None) -> Response:
    """GitHub's own error bodies; 429 is its secondary rate limit, with Retry-After."""
    if status == 429:
        wait = math.ceil(retry_after or 60)
        return error_json(
            429,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
            "out to GitHub Support for help, please include the request ID 0400:1C2D:5E6F7A:8B9C0D:6740B9C1.",
            "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            headers={
                "Retry-After": str(wait),
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": str(int(time.time()) + wait),
                "x-ratelimit-resource": "core",
            },
        )
    if status == 401:
        return error_json(401, "Bad credentials")
    if status == 403:
        return error_json(403, "Resource not accessible by personal access token")
    if status == 404:
        return error_json(404, "Not Found")
    if status == 503:
        return JSONResponse(
            {"code": "unavailable", "message": "Service unavailable", "documentation_url": DOCS}, status_code=503
        )
    return error_json(status, "Server Error")


@dataclass
class RateWindow:
    """One token's budget for one resource, refilled when its window ends."""

    limit: int
    seconds: int
    used: int = 0
    reset: int = field(default=0)

    def __post_init__(self) -> None:
        self.reset = self.reset or int(time.time()) + self.seconds

    def take(self, cost: int = 1) -> bool:
        now = int(time.time())
        if now >= self.reset:
            self.used, self.reset = 0, now + self.seconds
        if self.used + cost > self.limit:
            return False
        self.used += cost
        return True

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, resource: str) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": resource,
        }

    def overview(self) -> dict[str, int]:
        return {"limit": self.limit, "used": self.used, "remaining": self.remaining, "reset": self.reset}


def rate_windows(state: SandboxState) -> dict[str, RateWindow]:
    """The demo token's budgets (tests may spend them to see GitHub's rate-limit answers)."""
    return state.extra.setdefault("github", {name: RateWindow(*spec) for name, spec in RATE_LIMITS.items()})


class Invalid(Exception):
    """A 422 Validation Failed, as GitHub answers a bad parameter."""

    def __init__(self, resource: str, field_name: str, value: str | None, code: str = "invalid") -> None:
        super().__init__(field_name)
        self.error = {"resource": resource, "field": field_name, "code": code}
        if value is not None:
            self.error["value"] = value


# -- ids and URLs ---------------------------------------------------------------------------------


def node_id(prefix: str, *parts: object) -> str:
    raw = stable_int("github-node", prefix, *parts, digits=15).to_bytes(8, "big")
    return f"{prefix}_kwDO" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def login(person: Person) -> str:
    return person.handle


def branch_name(item: WorkItem) -> str:
    return f"{item.key.lower()}-" + re.sub(r"[^a-z0-9]+", "-", item.title.lower()).strip("-")[:32].rstrip("-")


def is_pull_request(item: WorkItem) -> bool:
    return item.state == "in_review" or (item.state == "done" and item.number % 3 == 0)


def labels_for(item: WorkItem) -> list[str]:
    kind = (
        "bug"
        if item.title.startswith("Fix")
        else "documentation"
        if item.title.startswith("Document")
        else "enhancement"
    )
    return [kind, *(["priority: urgent"] if item.priority == 1 else ["priority: high"] if item.priority == 2 else [])]


def is_public(initiative: Initiative) -> bool:
    return initiative.customer is None


# -- REST objects, built for the API base URL they are served under ---------------------------------


def simple_user(api: str, name: str, ident: int, kind: str = "User") -> dict[str, Any]:
    user = f"{api}/users/{name}"
    return {
        "login": name,
        "id": ident,
        "node_id": node_id("O" if kind == "Organization" else "U", name),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{ident}?v=4",
        "gravatar_id": "",
        "url": user,
        "html_url": f"{WEB}/{name}",
        "followers_url": f"{user}/followers",
        "following_url": f"{user}/following{{/other_user}}",
        "gists_url": f"{user}/gists{{/gist_id}}",
        "starred_url": f"{user}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{user}/subscriptions",
        "organizations_url": f"{user}/orgs",
        "repos_url": f"{user}/repos",
        "events_url": f"{user}/events{{/privacy}}",
        "received_events_url": f"{user}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def repository(api: str, initiative: Initiative, owner: dict[str, Any], open_count: int) -> dict[str, Any]:
    full_name = f"{ORG}/{initiative.repo}"
    url = f"{api}/repos/{full_name}"
    public = is_public(initiative)
    return {
        "id": stable_int("github-repo", initiative.key),
        "node_id": node_id("R", initiative.key),
        "name": initiative.repo,
        "full_name": full_name,
        "owner": owner,
        "private": not public,
        "html_url": f"{WEB}/{full_name}",
        "description": initiative.summary,
        "fork": False,
        "url": url,
        "archive_url": f"{url}/{{archive_format}}{{/ref}}",
        "assignees_url": f"{url}/assignees{{/user}}",
        "blobs_url": f"{url}/git/blobs{{/sha}}",
        "branches_url": f"{url}/branches{{/branch}}",
        "collaborators_url": f"{url}/collaborators{{/collaborator}}",
        "comments_url": f"{url}/comments{{/number}}",
        "commits_url": f"{url}/commits{{/sha}}",
        "compare_url": f"{url}/compare/{{base}}...{{head}}",
        "contents_url": f"{url}/contents/{{+path}}",
        "contributors_url": f"{url}/contributors",
        "deployments_url": f"{url}/deployments",
        "downloads_url": f"{url}/downloads",
        "events_url": f"{url}/events",
        "forks_url": f"{url}/forks",
        "git_commits_url": f"{url}/git/commits{{/sha}}",
        "git_refs_url": f"{url}/git/refs{{/sha}}",
        "git_tags_url": f"{url}/git/tags{{/sha}}",
        "git_url": f"git://github.com/{full_name}.git",
        "issue_comment_url": f"{url}/issues/comments{{/number}}",
        "issue_events_url": f"{url}/issues/events{{/number}}",
        "issues_url": f"{url}/issues{{/number}}",
        "keys_url": f"{url}/keys{{/key_id}}",
        "labels_url": f"{url}/labels{{/name}}",
        "languages_url": f"{url}/languages",
        "merges_url": f"{url}/merges",
        "milestones_url": f"{url}/milestones{{/number}}",
        "notifications_url": f"{url}/notifications{{?since,all,participating}}",
        "pulls_url": f"{url}/pulls{{/number}}",
        "releases_url": f"{url}/releases{{/id}}",
        "ssh_url": f"git@github.com:{full_name}.git",
        "stargazers_url": f"{url}/stargazers",
        "statuses_url": f"{url}/statuses/{{sha}}",
        "subscribers_url": f"{url}/subscribers",
        "subscription_url": f"{url}/subscription",
        "tags_url": f"{url}/tags",
        "teams_url": f"{url}/teams",
        "trees_url": f"{url}/git/trees{{/sha}}",
        "clone_url": f"{WEB}/{full_name}.git",
        "mirror_url": None,
        "hooks_url": f"{url}/hooks",
        "svn_url": f"{WEB}/{full_name}",
        "homepage": None,
        "language": LANGUAGE_BY_TEAM[initiative.team],
        "forks_count": 0,
        "stargazers_count": stable_int("stars", initiative.key) % 40 if public else 0,
        "watchers_count": stable_int("stars", initiative.key) % 40 if public else 0,
        "size": stable_int("size", initiative.key) % 90_000,
        "default_branch": "main",
        "open_issues_count": open_count,
        "is_template": False,
        "topics": [initiative.team.lower(), initiative.code.lower()],
        "has_issues": True,
        "has_projects": True,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": initiative.status == "canceled",
        "disabled": False,
        "visibility": "public" if public else "private",
        "pushed_at": iso(initiative.updated),
        "created_at": iso(initiative.created),
        "updated_at": iso(initiative.updated),
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        "allow_rebase_merge": True,
        "allow_squash_merge": True,
        "allow_merge_commit": False,
        "allow_auto_merge": False,
        "delete_branch_on_merge": True,
        "allow_forking": public,
        "web_commit_signoff_required": False,
        "temp_clone_token": "",
        "license": {
            "key": "mit",
            "name": "MIT License",
            "spdx_id": "MIT",
            "url": f"{api}/licenses/mit",
            "node_id": "MDc6TGljZW5zZTEz",
        }
        if public
        else None,
        "forks": 0,
        "open_issues": open_count,
        "watchers": stable_int("stars", initiative.key) % 40 if public else 0,
        "security_and_analysis": None,
    }


def label(api: str, full_name: str, name: str) -> dict[str, Any]:
    color, description, default = LABELS[name]
    return {
        "id": stable_int("github-label", full_name, name),
        "node_id": node_id("LA", full_name, name),
        "url": f"{api}/repos/{full_name}/labels/{quote(name)}",
        "name": name,
        "color": color,
        "default": default,
        "description": description,
    }


def issue(api: str, initiative: Initiative, item: WorkItem, users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An issue as the issues and search endpoints list it; a pull request carries `pull_request`."""
    full_name = f"{ORG}/{initiative.repo}"
    repo_url = f"{api}/repos/{full_name}"
    url = f"{repo_url}/issues/{item.number}"
    pull = is_pull_request(item)
    closed = item.state in ("done", "canceled")
    assignee = users[item.assignee.key] if item.assignee else None
    author = users[(item.assignee or initiative.lead).key] if pull else users[initiative.lead.key]
    body: dict[str, Any] = {
        "url": url,
        "repository_url": repo_url,
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": f"{WEB}/{full_name}/{'pull' if pull else 'issues'}/{item.number}",
        "id": stable_int("github-issue", initiative.key, item.number, digits=10),
        "node_id": node_id("PR" if pull else "I", initiative.key, item.number),
        "number": item.number,
        "title": item.title,
        "user": author,
        "labels": [label(api, full_name, name) for name in labels_for(item)],
        "state": "closed" if closed else "open",
        "locked": False,
        "assignee": assignee,
        "assignees": [assignee] if assignee else [],
        "milestone": None,
        "comments": stable_int("comments", initiative.key, item.number) % 7,
        "created_at": iso(item.created),
        "updated_at": iso(item.updated),
        "closed_at": iso(item.updated) if closed else None,
        "author_association": "MEMBER",
        "type": None,
        "active_lock_reason": None,
        "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
        "body": item.description,
        "closed_by": users[initiative.lead.key] if closed and not pull else None,
        "reactions": {
            "url": f"{url}/reactions",
            "total_count": 0,
            "+1": 0,
            "-1": 0,
            "laugh": 0,
            "hooray": 0,
            "confused": 0,
            "heart": 0,
            "rocket": 0,
            "eyes": 0,
        },
        "timeline_url": f"{url}/timeline",
        "performed_via_github_app": None,
        "state_reason": ("completed" if item.state == "done" else "not_planned") if closed and not pull else None,
    }
    if pull:
        pr_url = f"{repo_url}/pulls/{item.number}"
        body["draft"] = item.state == "in_review" and item.number % 2 == 0
        body["pull_request"] = {
            "url": pr_url,
            "html_url": body["html_url"],
            "diff_url": f"{body['html_url']}.diff",
            "patch_url": f"{body['html_url']}.patch",
            "merged_at": iso(item.updated) if closed else None,
        }
    return body


def pull_request(
    api: str, initiative: Initiative, item: WorkItem, as_issue: dict[str, Any], repo: dict[str, Any]
) -> dict[str, Any]:
    """A pull request as `GET /repos/{owner}/{repo}/pulls` lists it (pull-request-simple)."""
    full_name = repo["full_name"]
    url = f"{api}/repos/{full_name}/pulls/{item.number}"
    head_sha = sha("head", initiative.key, item.number)
    merged = as_issue["state"] == "closed"
    org = repo["owner"]
    links = {
        "self": url,
        "html": as_issue["html_url"],
        "issue": as_issue["url"],
        "comments": as_issue["comments_url"],
        "review_comments": f"{url}/comments",
        "review_comment": f"{api}/repos/{full_name}/pulls/comments{{/number}}",
        "commits": f"{url}/commits",
        "statuses": f"{api}/repos/{full_name}/statuses/{head_sha}",
    }
    return {
        "url": url,
        "id": stable_int("github-pull", initiative.key, item.number, digits=10),
        "node_id": as_issue["node_id"],
        "html_url": as_issue["html_url"],
        "diff_url": f"{as_issue['html_url']}.diff",
        "patch_url": f"{as_issue['html_url']}.patch",
        "issue_url": as_issue["url"],
        "number": item.number,
        "state": as_issue["state"],
        "locked": False,
        "title": item.title,
        "user": as_issue["user"],
        "body": item.description,
        "created_at": as_issue["created_at"],
        "updated_at": as_issue["updated_at"],
        "closed_at": as_issue["closed_at"],
        "merged_at": as_issue["closed_at"],
        "merge_commit_sha": sha("merge", initiative.key, item.number),
        "assignee": as_issue["assignee"],
        "assignees": as_issue["assignees"],
        "requested_reviewers": [] if merged else [simple_user(api, login(initiative.lead), person_id(initiative.lead))],
        "requested_teams": [],
        "labels": as_issue["labels"],
        "milestone": None,
        "draft": as_issue["draft"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": as_issue["comments_url"],
        "statuses_url": links["statuses"],
        "head": {
            "label": f"{ORG}:{branch_name(item)}",
            "ref": branch_name(item),
            "sha": head_sha,
            "user": org,
            "repo": repo,
        },
        "base": {"label": f"{ORG}:main", "ref": "main", "sha": sha("base", initiative.key), "user": org, "repo": repo},
        "_links": {name: {"href": href} for name, href in links.items()},
        "author_association": "MEMBER",
        "auto_merge": None,
        "active_lock_reason": None,
    }


def person_id(person: Person) -> int:
    return stable_int("github-user", person.key, digits=8)


@dataclass(frozen=True)
class RestWorld:
    users: dict[str, dict[str, Any]]  # person key -> simple user
    org_user: dict[str, Any]
    organization: dict[str, Any]
    repos: list[dict[str, Any]]
    issues: dict[str, list[dict[str, Any]]]  # repo name -> issues and pull requests, newest first
    pulls: dict[str, list[dict[str, Any]]]  # repo name -> pull requests, newest first


@lru_cache(maxsize=8)
def rest_world(api: str) -> RestWorld:
    """The REST objects, with API URLs under `api` (the base URL the request came to)."""
    users = {p.key: simple_user(api, login(p), person_id(p)) for p in PEOPLE}
    org_id = stable_int("github-org", ORG, digits=8)
    org_user = simple_user(api, ORG, org_id, "Organization")
    repos: list[dict[str, Any]] = []
    issues: dict[str, list[dict[str, Any]]] = {}
    pulls: dict[str, list[dict[str, Any]]] = {}
    for initiative in initiatives():
        listed = [issue(api, initiative, item, users) for item in initiative.items]
        repo = repository(api, initiative, org_user, sum(i["state"] == "open" for i in listed))
        repos.append(repo)
        issues[repo["name"]] = sorted(listed, key=lambda i: i["created_at"], reverse=True)
        pulls[repo["name"]] = sorted(
            (
                pull_request(api, initiative, item, as_issue, repo)
                for item, as_issue in zip(initiative.items, listed, strict=True)
                if "pull_request" in as_issue
            ),
            key=lambda p: p["created_at"],
            reverse=True,
        )
    org_url = f"{api}/orgs/{ORG}"
    organization = {
        "login": ORG,
        "id": org_id,
        "node_id": org_user["node_id"],
        "url": org_url,
        "repos_url": f"{org_url}/repos",
        "events_url": f"{org_url}/events",
        "hooks_url": f"{org_url}/hooks",
        "issues_url": f"{org_url}/issues",
        "members_url": f"{org_url}/members{{/member}}",
        "public_members_url": f"{org_url}/public_members{{/member}}",
        "avatar_url": org_user["avatar_url"],
        "description": f"{COMPANY}: autonomous mobile robots for logistics, health care and industry.",
        "name": COMPANY,
        "company": None,
        "blog": "https://northwind.example",
        "location": None,
        "email": None,
        "twitter_username": None,
        "is_verified": False,
        "has_organization_projects": True,
        "has_repository_projects": True,
        "public_repos": sum(not r["private"] for r in repos),
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "html_url": f"{WEB}/{ORG}",
        "created_at": iso(EPOCH.replace(year=2021)),
        "updated_at": iso(EPOCH),
        "archived_at": None,
        "type": "Organization",
        "total_private_repos": sum(r["private"] for r in repos),
        "owned_private_repos": sum(r["private"] for r in repos),
    }
    return RestWorld(users, org_user, organization, repos, issues, pulls)


# -- REST endpoints -------------------------------------------------------------------------------


def api_base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def choice(request: Request, name: str, allowed: Sequence[str], default: str, resource: str) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise Invalid(resource, name, value)
    return value


def timestamp(request: Request, name: str, resource: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(resource, name, value) from None
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def page_params(request: Request) -> tuple[int, int]:
    """`per_page` (default 30, at most 100) and `page` (from 1); GitHub ignores values it cannot read."""

    def number(name: str, default: int) -> int:
        try:
            return int(request.query_params.get(name, default))
        except ValueError:
            return default

    per_page = number("per_page", 30)
    return (min(100, per_page) if per_page > 0 else 30), max(1, number("page", 1))


def paginate(request: Request, items: Sequence[Any], cap: int | None = None) -> tuple[list[Any], dict[str, str]]:
    """One page of `items`, with GitHub's Link header (rel prev/next/last/first)."""
    per_page, page = page_params(request)
    reachable = len(items) if cap is None else min(len(items), cap)
    last = max(1, math.ceil(reachable / per_page))
    start = (page - 1) * per_page
    window = list(items[start : min(start + per_page, reachable)])

    def link(to: int) -> str:
        return str(request.url.include_query_params(page=to))

    rels = []
    if page > 1:
        rels += [f'<{link(min(page - 1, last))}>; rel="prev"']
    if page < last:
        rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
    if page > 1:
        rels += [f'<{link(1)}>; rel="first"']
    return window, {"Link": ", ".join(rels)} if rels else {}


Handler = Callable[[Request], Awaitable[Response]]


def sort_items(items: Iterable[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: (i.get(key) or "", i.get("number") or i.get("id")), reverse=descending)


async def org_repos(request: Request) -> Response:
    world = rest_world(api_base(request))
    if request.path_params["org"].lower() != ORG:
        return error_json(404, "Not Found", "https://docs.github.com/rest/repos/repos#list-organization-repositories")
    kind = choice(request, "type", ("all", "public", "private", "forks", "sources", "member"), "all", "Repository")
    repos = {
        "public": [r for r in world.repos if not r["private"]],
        "private": [r for r in world.repos if r["private"]],
        "forks": [],
    }.get(kind, world.repos)
    return repo_page(request, repos, default_sort="created")


async def user_repos(request: Request) -> Response:
    """The viewer is a member of the organization, so its repositories are the viewer's too."""
    world = rest_world(api_base(request))
    visibility = choice(request, "visibility", ("all", "public", "private"), "all", "Repository")
    kind = choice(request, "type", ("all", "owner", "public", "private", "member"), "all", "Repository")
    since, before = timestamp(request, "since", "Repository"), timestamp(request, "before", "Repository")
    if "type" in request.query_params and {"visibility", "affiliation"} & set(request.query_params):
        return error_json(
            422,
            "If you specify visibility or affiliation, you cannot specify type.",
            "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user",
        )
    affiliation = set(request.query_params.get("affiliation", "owner,collaborator,organization_member").split(","))
    repos = [
        r
        for r in world.repos
        if "organization_member" in affiliation
        and kind != "owner"
        and (visibility == "all" or (visibility == "public") != r["private"])
        and (kind not in ("public", "private") or (kind == "public") != r["private"])
        and (since is None or r["updated_at"] > since)
        and (before is None or r["updated_at"] < before)
    ]
    return repo_page(request, repos, default_sort="full_name")


def repo_page(request: Request, repos: list[dict[str, Any]], default_sort: str) -> Response:
    sort = choice(request, "sort", ("created", "updated", "pushed", "full_name"), default_sort, "Repository")
    default_direction = "asc" if sort == "full_name" else "desc"
    direction = choice(request, "direction", ("asc", "desc"), default_direction, "Repository")
    key = {"created": "created_at", "updated": "updated_at", "pushed": "pushed_at", "full_name": "full_name"}[sort]
    page, headers = paginate(request, sort_items(repos, key, direction == "desc"))
    return JSONResponse(page, headers=headers)


def find_repo(request: Request, doc: str) -> tuple[RestWorld, str] | Response:
    world = rest_world(api_base(request))
    owner, name = request.path_params["owner"].lower(), request.path_params["repo"].lower()
    if owner != ORG or name not in world.issues:
        return error_json(404, "Not Found", doc)
    return world, name


async def repo_issues(request: Request) -> Response:
    found = find_repo(request, "https://docs.github.com/rest/issues/issues#list-repository-issues")
    if isinstance(found, Response):
        return found
    world, name = found
    state = choice(request, "state", ("open", "closed", "all"), "open", "Issue")
    sort = choice(request, "sort", ("created", "updated", "comments"), "created", "Issue")
    direction = choice(request, "direction", ("asc", "desc"), "desc", "Issue")
    since = timestamp(request, "since", "Issue")
    wanted_labels = [x.strip().lower() for x in request.query_params.get("labels", "").split(",") if x.strip()]
    assignee = request.query_params.get("assignee")
    creator = request.query_params.get("creator")
    milestone = request.query_params.get("milestone")

    def keep(i: dict[str, Any]) -> bool:
        logins = {a["login"].lower() for a in i["assignees"]}
        return (
            (state == "all" or i["state"] == state)
            and all(w in {x["name"].lower() for x in i["labels"]} for w in wanted_labels)
            and (
                assignee is None
                or (assignee == "*" and bool(logins))
                or (assignee == "none" and not logins)
                or assignee.lower() in logins
            )
            and (creator is None or i["user"]["login"].lower() == creator.lower())
            and milestone in (None, "none")  # no issue here has a milestone
            and (since is None or i["updated_at"] >= since)
        )

    key = {"created": "created_at", "updated": "updated_at", "comments": "comments"}[sort]
    issues = sorted(
        (i for i in world.issues[name] if keep(i)), key=lambda i: (i[key], i["number"]), reverse=direction == "desc"
    )
    page, headers = paginate(request, issues)
    return JSONResponse(page, headers=headers)


async def repo_pulls(request: Request) -> Response:
    found = find_repo(request, "https://docs.github.com/rest/pulls/pulls#list-pull-requests")
    if isinstance(found, Response):
        return found
    world, name = found
    state = choice(request, "state", ("open", "closed", "all"), "open", "PullRequest")
    sort = choice(request, "sort", ("created", "updated", "popularity", "long-running"), "created", "PullRequest")
    direction = choice(request, "direction", ("asc", "desc"), "desc" if sort == "created" else "asc", "PullRequest")
    head, base = request.query_params.get("head"), request.query_params.get("base")
    pulls = [
        p
        for p in world.pulls[name]
        if (state == "all" or p["state"] == state)
        and (base is None or p["base"]["ref"] == base)
        and (head is None or p["head"]["label"] == (head if ":" in head else f"{ORG}:{head}"))
    ]
    comments = {i["number"]: i["comments"] for i in world.issues[name]}
    if sort == "popularity":
        pulls.sort(key=lambda p: (comments[p["number"]], p["number"]), reverse=direction == "desc")
    elif sort == "long-running":  # desc: open the longest first
        pulls.sort(key=lambda p: (p["created_at"], p["number"]), reverse=direction == "asc")
    else:
        pulls = sort_items(pulls, "created_at" if sort == "created" else "updated_at", direction == "desc")
    page, headers = paginate(request, pulls)
    return JSONResponse(page, headers=headers)


async def organization(request: Request) -> Response:
    world = rest_world(api_base(request))
    if request.path_params["org"].lower() != ORG:
        return error_json(404, "Not Found", "https://docs.github.com/rest/orgs/orgs#get-an-organization")
    return JSONResponse(world.organization)


async def single_repo(request: Request) -> Response:
    found = find_repo(request, "https://docs.github.com/rest/repos/repos#get-a-repository")
    if isinstance(found, Response):
        return found
    world, name = found
    repo = next(r for r in world.repos if r["name"] == name)
    return JSONResponse({**repo, "organization": world.org_user, "network_count": 0, "subscribers_count": 3})


async def single_issue(request: Request) -> Response:
    found = find_repo(request, "https://docs.github.com/rest/issues/issues#get-an-issue")
    if isinstance(found, Response):
        return found
    world, name = found
    number = request.path_params["number"]
    for item in world.issues[name]:
        if str(item["number"]) == number:
            return JSONResponse(item)
    return error_json(404, "Not Found", "https://docs.github.com/rest/issues/issues#get-an-issue")


# -- search ----------------------------------------------------------------------------------------

TERM = re.compile(r'(-?)([a-z-]+):("[^"]*"|\S+)|("[^"]*"|\S+)', re.IGNORECASE)


def date_matches(value: str, condition: str) -> bool:
    day = value[:10]
    if ".." in condition:
        low, high = condition.split("..", 1)
        return (low in ("", "*") or day >= low) and (high in ("", "*") or day <= high)
    for op, test in ((">=", str.__ge__), ("<=", str.__le__), (">", str.__gt__), ("<", str.__lt__)):
        if condition.startswith(op):
            return bool(test(day, condition[len(op) :]))
    return day == condition


def qualifier_holds(i: dict[str, Any], key: str, value: str) -> bool | None:
    """Whether issue `i` satisfies `key:value`; None for a qualifier this double does not apply."""
    logins = {a["login"].lower() for a in i["assignees"]}
    pull = "pull_request" in i
    if key == "is":
        merged = pull and bool(i["pull_request"]["merged_at"])
        return {
            "issue": not pull,
            "pr": pull,
            "pull-request": pull,
            "open": i["state"] == "open",
            "closed": i["state"] == "closed",
            "merged": merged,
            "unmerged": pull and not merged,
            "draft": bool(i.get("draft")),
        }.get(value)
    holds = {
        "type": lambda: pull == (value in ("pr", "pull-request")),
        "state": lambda: i["state"] == value,
        "repo": lambda: i["repository_url"].lower().endswith(f"/repos/{value}"),
        "org": lambda: f"/repos/{value}/" in i["repository_url"].lower(),
        "user": lambda: f"/repos/{value}/" in i["repository_url"].lower(),
        "label": lambda: bool({x.strip() for x in value.split(",")} & {x["name"].lower() for x in i["labels"]}),
        "author": lambda: i["user"]["login"].lower() == value,
        "assignee": lambda: value in logins,
        "involves": lambda: value in logins | {i["user"]["login"].lower()},
        "no": lambda: not i.get({"assignee": "assignees", "label": "labels"}.get(value, value)),
        "created": lambda: date_matches(i["created_at"], value),
        "updated": lambda: date_matches(i["updated_at"], value),
        "closed": lambda: bool(i["closed_at"]) and date_matches(i["closed_at"], value),
    }.get(key)
    return None if holds is None else bool(holds())


def search_filter(query: str, viewer: str) -> Callable[[dict[str, Any]], bool]:
    """GitHub issue search syntax: words (all must match), and the common qualifiers, `-` negates.
    Qualifiers this double cannot apply are ignored."""
    qualifiers: list[tuple[bool, str, str]] = []
    fields: tuple[str, ...] = ("title", "body")
    words: list[str] = []
    for negate, key, raw_value, word in TERM.findall(query):
        if word:
            if word.upper() not in ("AND", "OR", "NOT"):
                words.append(word.strip('"').lower())
            continue
        value = raw_value.strip('"').lower()
        if key.lower() == "in":
            fields = tuple(f for f in ("title", "body") if f in value.split(",")) or fields
        else:
            qualifiers.append((bool(negate), key.lower(), viewer if value == "@me" else value))

    def matches(i: dict[str, Any]) -> bool:
        text = " ".join(str(i.get(f) or "") for f in fields).lower()
        if not all(w in text for w in words):
            return False
        for negate, key, value in qualifiers:
            holds = qualifier_holds(i, key, value)
            if holds is not None and holds == negate:
                return False
        return True

    return matches


def names_issue_type(query: str) -> bool:
    """Whether a query asks for issues or pull requests only (GitHub reads type: as is:)."""
    return any(
        not negate and key.lower() in ("is", "type") and value.lower() in ("issue", "pr", "pull-request")
        for negate, key, value, _ in TERM.findall(query)
    )


async def search_issues(request: Request) -> Response:
    world = rest_world(api_base(request))
    doc = "https://docs.github.com/rest/search/search#search-issues-and-pull-requests"
    query = request.query_params.get("q", "").strip()
    if not query:
        return error_json(
            422, "Validation Failed", doc, errors=[{"resource": "Search", "field": "q", "code": "missing"}]
        )
    sort = choice(request, "sort", ("", *SEARCH_SORTS), "", "Search")
    order = choice(request, "order", ("asc", "desc"), "desc", "Search")
    per_page, page = page_params(request)
    if (page - 1) * per_page >= SEARCH_CAP:
        return error_json(
            422, "Cannot access beyond the first 1000 results, or the page you requested is beyond the last page.", doc
        )
    app_user = request.headers.get("authorization", "").partition(" ")[2].strip() == APP_USER_TOKEN
    if app_user and not names_issue_type(query):
        return error_json(422, "Query must include 'is:issue' or 'is:pull-request'", doc)
    matches = search_filter(query, login(next(p for p in PEOPLE if p.key == VIEWER)))
    words = [w for n, k, v, w in TERM.findall(query) if w]
    hits = []
    for items in world.issues.values():
        for i in items:
            if matches(i):
                score = 1.0 + sum(w.strip('"').lower() in i["title"].lower() for w in words)
                hits.append({**i, "score": score})
    if sort in ("created", "updated", "comments"):
        key = {"created": "created_at", "updated": "updated_at", "comments": "comments"}[sort]
        hits.sort(key=lambda h: (h[key], h["id"]), reverse=order == "desc")
    else:  # best match, then newest
        hits.sort(key=lambda h: (h["score"], h["updated_at"]), reverse=True)
    page_items, headers = paginate(request, hits, cap=SEARCH_CAP)
    body = {"total_count": len(hits), "incomplete_results": False, "search_type": "lexical", "items": page_items}
    return JSONResponse(body, headers=headers)


# -- GraphQL -----------------------------------------------------------------------------------------


def graphql_error(message: str, kind: str) -> graphql.GraphQLError:
    return graphql.GraphQLError(message, extensions={"type": kind})


def paged(name: str, nodes: Callable[[], Sequence[Node]]) -> Callable[..., Node]:
    """A GitHub connection: `first` or `last` is required and at most 100."""

    def resolve(info: Any = None, **args: Any) -> Node:
        if args.get("first") is None and args.get("last") is None:
            raise graphql_error(
                f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
                "MISSING_PAGINATION_BOUNDARIES",
            )
        for bound in ("first", "last"):
            if (args.get(bound) or 0) > 100:
                raise graphql_error(
                    f"Requesting {args[bound]} records on the `{name}` connection exceeds the `{bound}` limit of 100 "
                    "records.",
                    "EXCESSIVE_PAGINATION",
                )
        return connection(
            nodes(), first=args.get("first"), after=args.get("after"), last=args.get("last"), before=args.get("before")
        )

    return resolve


@dataclass(frozen=True)
class Graph:
    organization: Node
    users: dict[str, Node]
    projects: list[Node]
    repositories: dict[str, Node]
    index: dict[str, Node]


def single_select(field_node: Node, option: str, item_key: str) -> Node:
    return {
        "__typename": "ProjectV2ItemFieldSingleSelectValue",
        "id": node_id("PVTFSV", item_key, field_node["name"]),
        "name": option,
        "nameHTML": option,
        "optionId": next(o["id"] for o in field_node["options"] if o["name"] == option),
        "color": "GRAY",
        "field": field_node,
        "createdAt": iso(EPOCH),
        "updatedAt": iso(EPOCH),
    }


def project_fields(key: str) -> dict[str, Node]:
    def common(name: str, data_type: str, typename: str = "ProjectV2Field") -> Node:
        return {
            "__typename": typename,
            "id": node_id("PVTSSF" if typename == "ProjectV2SingleSelectField" else "PVTF", key, name),
            "name": name,
            "dataType": data_type,
            "databaseId": stable_int("github-field", key, name, digits=8),
            "createdAt": iso(EPOCH),
            "updatedAt": iso(EPOCH),
        }

    def options(names: Iterable[str]) -> list[Node]:
        return [
            {"id": sha("option", key, n)[:8], "name": n, "nameHTML": n, "color": "GRAY", "description": ""}
            for n in names
        ]

    return {
        "Title": common("Title", "TITLE"),
        "Status": {
            **common("Status", "SINGLE_SELECT", "ProjectV2SingleSelectField"),
            "options": options(dict.fromkeys(STATUS_OPTIONS.values())),
        },
        "Priority": {
            **common("Priority", "SINGLE_SELECT", "ProjectV2SingleSelectField"),
            "options": options(PRIORITY_OPTIONS[1:]),
        },
        "Target date": common("Target date", "DATE"),
    }


@cache
def graph() -> Graph:
    """The GraphQL objects (URLs are github.com's, as the real API's are)."""
    org_node: Node = {
        "__typename": "Organization",
        "id": node_id("O", ORG),
        "databaseId": stable_int("github-org", ORG, digits=8),
        "login": ORG,
        "name": COMPANY,
        "url": f"{WEB}/{ORG}",
        "resourcePath": f"/{ORG}",
    }
    users: dict[str, Node] = {
        p.key: {
            "__typename": "User",
            "id": node_id("U", login(p)),
            "databaseId": person_id(p),
            "login": login(p),
            "name": p.name,
            "url": f"{WEB}/{login(p)}",
            "resourcePath": f"/{login(p)}",
            "avatarUrl": f"https://avatars.githubusercontent.com/u/{person_id(p)}?v=4",
        }
        for p in PEOPLE
    }
    index: dict[str, Node] = {org_node["id"]: org_node, **{u["id"]: u for u in users.values()}}
    projects: list[Node] = []
    repositories: dict[str, Node] = {}
    for number, initiative in enumerate(initiatives(), start=1):
        repo: Node = {
            "__typename": "Repository",
            "id": node_id("R", initiative.key),
            "databaseId": stable_int("github-repo", initiative.key),
            "name": initiative.repo,
            "nameWithOwner": f"{ORG}/{initiative.repo}",
            "owner": org_node,
            "description": initiative.summary,
            "url": f"{WEB}/{ORG}/{initiative.repo}",
            "isPrivate": not is_public(initiative),
            "isArchived": initiative.status == "canceled",
            "createdAt": iso(initiative.created),
            "updatedAt": iso(initiative.updated),
        }
        repositories[initiative.repo] = repo
        project = _project(number, initiative, org_node, users, repo)
        projects.append(project)
        index.update({repo["id"]: repo, project["id"]: project})
        for item in project["_items"]:
            index[item["id"]] = item
            if item["content"]:
                index[item["content"]["id"]] = item["content"]
    org_node["projectV2"] = lambda info, number: _project_by_number(projects, number)
    org_node["projectsV2"] = _projects_resolver(projects)
    org_node["repositories"] = paged("repositories", lambda: list(repositories.values()))
    for user in users.values():
        user["projectsV2"] = paged("projectsV2", list)
        user["projectV2"] = lambda info, number: None
    return Graph(org_node, users, projects, repositories, index)


def _project(number: int, initiative: Initiative, org_node: Node, users: dict[str, Node], repo: Node) -> Node:
    closed = initiative.status in ("completed", "canceled")
    fields = project_fields(initiative.key)
    project: Node = {
        "__typename": "ProjectV2",
        "id": node_id("PVT", initiative.key),
        "databaseId": stable_int("github-project", initiative.key, digits=8),
        "number": number,
        "title": initiative.name,
        "shortDescription": initiative.summary,
        "readme": f"# {initiative.name}\n\n{initiative.summary}\n\nRepository: {repo['nameWithOwner']}",
        "url": f"{WEB}/orgs/{ORG}/projects/{number}",
        "resourcePath": f"/orgs/{ORG}/projects/{number}",
        "closed": closed,
        "closedAt": iso(initiative.updated) if closed else None,
        "public": is_public(initiative),
        "template": False,
        "createdAt": iso(initiative.created),
        "updatedAt": iso(initiative.updated),
        "creator": users[initiative.lead.key],
        "owner": org_node,
        "viewerCanUpdate": True,
        "viewerCanClose": True,
        "viewerCanReopen": True,
    }
    items: list[Node] = []
    for item in initiative.items:
        content = _content(initiative, item, users, repo)
        key = f"{initiative.key}/{item.number}"
        items.append(_item(project, fields, content, key, STATUS_OPTIONS[item.state], item.priority, item.due))
    if not closed:
        draft = {
            "__typename": "DraftIssue",
            "id": node_id("DI", initiative.key),
            "title": f"Plan the next milestone of {initiative.name}",
            "body": "Draft: agree scope and owners at the next planning meeting.",
            "createdAt": iso(initiative.updated),
            "updatedAt": iso(initiative.updated),
            "creator": users[initiative.lead.key],
        }
        items.append(_item(project, fields, draft, f"{initiative.key}/draft", "Todo"))
    project["_items"] = items
    project["items"] = paged("items", lambda: items)
    project["fields"] = paged("fields", lambda: list(fields.values()))
    project["field"] = lambda info, name: fields.get(name)
    project["repositories"] = paged("repositories", lambda: [repo])
    return project


def _content(initiative: Initiative, item: WorkItem, users: dict[str, Node], repo: Node) -> Node:
    pull = is_pull_request(item)
    closed = item.state in ("done", "canceled")
    common = {
        "id": node_id("PR" if pull else "I", initiative.key, item.number),
        "databaseId": stable_int("github-issue", initiative.key, item.number, digits=10),
        "number": item.number,
        "title": item.title,
        "body": item.description,
        "url": f"{repo['url']}/{'pull' if pull else 'issues'}/{item.number}",
        "resourcePath": f"/{repo['nameWithOwner']}/{'pull' if pull else 'issues'}/{item.number}",
        "closed": closed,
        "closedAt": iso(item.updated) if closed else None,
        "createdAt": iso(item.created),
        "updatedAt": iso(item.updated),
        "repository": repo,
        "author": users[(item.assignee or initiative.lead).key] if pull else users[initiative.lead.key],
    }
    if pull:
        return {
            **common,
            "__typename": "PullRequest",
            "state": "MERGED" if closed else "OPEN",
            "merged": closed,
            "mergedAt": common["closedAt"],
            "isDraft": item.state == "in_review" and item.number % 2 == 0,
            "baseRefName": "main",
            "headRefName": branch_name(item),
        }
    return {
        **common,
        "__typename": "Issue",
        "state": "CLOSED" if closed else "OPEN",
        "stateReason": ("COMPLETED" if item.state == "done" else "NOT_PLANNED") if closed else None,
    }


def _item(
    project: Node, fields: dict[str, Node], content: Node, key: str, status: str, priority: int = 0, due: Any = None
) -> Node:
    """A board item with its field values: Title and Status always, Priority and Target date when set."""
    created, updated = content["createdAt"], content["updatedAt"]
    values: list[Node] = [
        {
            "__typename": "ProjectV2ItemFieldTextValue",
            "id": node_id("PVTFTV", key),
            "text": content["title"],
            "field": fields["Title"],
            "createdAt": created,
            "updatedAt": updated,
        },
        single_select(fields["Status"], status, key),
    ]
    if priority:
        values.append(single_select(fields["Priority"], PRIORITY_OPTIONS[priority], key))
    if due is not None:
        values.append(
            {
                "__typename": "ProjectV2ItemFieldDateValue",
                "id": node_id("PVTFDV", key),
                "date": due.isoformat(),
                "field": fields["Target date"],
                "createdAt": created,
                "updatedAt": updated,
            }
        )
    item: Node = {
        "__typename": "ProjectV2Item",
        "id": node_id("PVTI", key),
        "databaseId": stable_int("github-item", key, digits=9),
        "type": {"Issue": "ISSUE", "PullRequest": "PULL_REQUEST", "DraftIssue": "DRAFT_ISSUE"}[content["__typename"]],
        "content": content,
        "isArchived": False,
        "createdAt": created,
        "updatedAt": updated,
        "creator": content.get("author") or content.get("creator"),
        "project": project,
        "fieldValues": paged("fieldValues", lambda: values),
        "fieldValueByName": lambda info, name: next((v for v in values if v["field"]["name"] == name), None),
    }
    for value in values:
        value["item"] = item
    return item


def _project_by_number(projects: list[Node], number: int) -> Node:
    for project in projects:
        if project["number"] == number:
            return project
    raise graphql_error(f"Could not resolve to a ProjectV2 with the number {number}.", "NOT_FOUND")


def _projects_resolver(projects: list[Node]) -> Callable[..., Node]:
    def resolve(info: Any = None, *, query: str | None = None, orderBy: Node | None = None, **args: Any) -> Node:
        chosen = list(projects)
        for term in (query or "").lower().split():
            if term in ("is:open", "is:closed"):
                chosen = [p for p in chosen if p["closed"] == (term == "is:closed")]
            elif term == "is:template":
                chosen = [p for p in chosen if p["template"]]
            else:
                chosen = [p for p in chosen if term.strip('"') in p["title"].lower()]
        order = orderBy or {"field": "NUMBER", "direction": "DESC"}
        key = {"NUMBER": "number", "TITLE": "title", "CREATED_AT": "createdAt", "UPDATED_AT": "updatedAt"}[
            order["field"]
        ]
        chosen.sort(key=lambda p: (p[key], p["number"]), reverse=order["direction"] == "DESC")
        return paged("projectsV2", lambda: chosen)(info, **{k: v for k, v in args.items() if k != "minPermissionLevel"})

    return resolve


def graphql_root(window: RateWindow) -> Node:
    world = graph()

    def organization_by_login(info: Any, login: str) -> Node:
        if login.lower() != ORG:
            raise graphql_error(f"Could not resolve to an Organization with the login of '{login}'.", "NOT_FOUND")
        return world.organization

    def node(info: Any, id: str) -> Node:
        if id not in world.index:
            raise graphql_error(f"Could not resolve to a node with the global id of '{id}'", "NOT_FOUND")
        return world.index[id]

    def repository_by_name(info: Any, owner: str, name: str, followRenames: bool = True) -> Node:
        if owner.lower() != ORG or name.lower() not in world.repositories:
            raise graphql_error(f"Could not resolve to a Repository with the name '{owner}/{name}'.", "NOT_FOUND")
        return world.repositories[name.lower()]

    def user_by_login(info: Any, login: str) -> Node:
        for user in world.users.values():
            if user["login"] == login.lower():
                return user
        raise graphql_error(f"Could not resolve to a User with the login of '{login}'.", "NOT_FOUND")

    return {
        "viewer": world.users[VIEWER],
        "organization": organization_by_login,
        "repositoryOwner": lambda info, login: world.organization if login.lower() == ORG else None,
        "node": node,
        "nodes": lambda info, ids: [world.index.get(i) for i in ids],
        "repository": repository_by_name,
        "user": user_by_login,
        "rateLimit": lambda info, dryRun=False: {
            "cost": 1,
            "limit": window.limit,
            "nodeCount": 100,
            "remaining": window.remaining,
            "used": window.used,
            "resetAt": iso(datetime.fromtimestamp(window.reset, UTC)),
        },
    }


def github_errors(result: dict[str, Any]) -> dict[str, Any]:
    """graphql-core's errors in GitHub's form: the error class as a top-level `type`."""
    for error in result.get("errors", []):
        extensions = error.pop("extensions", None) or {}
        if "type" in extensions:
            error["type"] = extensions.pop("type")
        if extensions:
            error["extensions"] = extensions
    return result


# -- the app -----------------------------------------------------------------------------------------


def build(state: SandboxState) -> Starlette:
    def guarded(resource: str | None, handler: Handler) -> Handler:
        """Auth, API version and rate budget checks around one endpoint, as GitHub applies them."""

        async def endpoint(request: Request) -> Response:
            if not request.headers.get("user-agent"):
                return error_json(
                    403,
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header "
                    "(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
                )
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if not scheme:
                if request.url.path.endswith("/graphql"):
                    return error_json(
                        401,
                        "This endpoint requires you to be authenticated.",
                        "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
                    )
                return error_json(401, "Requires authentication")
            if scheme.lower() not in ("bearer", "token") or token.strip() not in (TOKEN, APP_USER_TOKEN):
                return error_json(401, "Bad credentials")
            version = request.headers.get("x-github-api-version")
            if version is not None and version not in API_VERSIONS:
                return error_json(
                    400,
                    f"API version {version} is not supported.",
                    "https://docs.github.com/rest/about-the-rest-api/api-versions",
                )
            window = rate_windows(state)[resource or "core"]
            if resource is not None and not window.take():
                return rate_limited(resource, window)
            try:
                response = await handler(request)
            except Invalid as invalid:
                response = error_json(422, "Validation Failed", errors=[invalid.error])
            response.headers.update(
                {
                    **window.headers(resource or "core"),
                    "X-GitHub-Api-Version-Selected": version or API_VERSIONS[0],
                    "X-GitHub-Media-Type": "github.v3; format=json",
                    "X-GitHub-Request-Id": f"0400:{state.calls['github']:04X}:5E6F7A:8B9C0D:6740B9C1",
                }
            )
            return response

        return endpoint

    def rate_limited(resource: str, window: RateWindow) -> Response:
        user_id = person_id(next(p for p in PEOPLE if p.key == VIEWER))
        message = (
            f"API rate limit exceeded for user ID {user_id}. If you reach out to GitHub Support for help, please "
            "include the request ID 0400:1C2D:5E6F7A:8B9C0D:6740B9C1 and timestamp 2026-11-20 09:00:00 UTC."
        )
        headers = window.headers(resource)
        if resource == "graphql":  # GraphQL answers 200, with the error in the body
            return JSONResponse({"errors": [{"type": "RATE_LIMITED", "message": message}]}, headers=headers)
        return error_json(
            403,
            message,
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit",
            headers=headers,
        )

    async def graphql_endpoint(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(
                {"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"},
                status_code=400,
            )
        schema = await anyio.to_thread.run_sync(load_schema, "github")
        result = await execute(schema, body, graphql_root(rate_windows(state)["graphql"]))
        return JSONResponse(github_errors(result))

    async def rate_limit(request: Request) -> Response:
        windows = rate_windows(state)
        resources = {name: window.overview() for name, window in windows.items()}
        return JSONResponse({"resources": resources, "rate": resources["core"]})

    routes = [
        ("/orgs/{org}/repos", "core", org_repos),
        ("/user/repos", "core", user_repos),
        ("/repos/{owner}/{repo}/issues", "core", repo_issues),
        ("/repos/{owner}/{repo}/pulls", "core", repo_pulls),
        ("/search/issues", "search", search_issues),
        ("/rate_limit", None, rate_limit),  # does not count against the rate limit
        # not among the connector's operations; PyGithub may ask for them while completing objects
        ("/orgs/{org}", "core", organization),
        ("/repos/{owner}/{repo}", "core", single_repo),
        ("/repos/{owner}/{repo}/issues/{number}", "core", single_issue),
    ]
    return Starlette(
        routes=[
            *(Route(path, guarded(resource, handler), methods=["GET"]) for path, resource, handler in routes),
            Route("/graphql", guarded("graphql", graphql_endpoint), methods=["POST"]),
        ]
    )
