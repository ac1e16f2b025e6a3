"""GitHub: connector against the sandbox, both checked against GitHub's published REST description and
GraphQL schema; the connector's URLs and error handling checked against GitHub's documented behaviour."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import graphql
import httpx2
import jsonschema
import pytest
from inline_snapshot import snapshot
from mcp import Client

from connectors import github
from connectors.base import decode_cursor, encode_cursor
from sophia_mcp.errors import (
    BadInput,
    Forbidden,
    NotConfigured,
    NotFound,
    RateLimited,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from sophia_mcp.sandbox import Fault
from sophia_mcp.sandbox.github import APP_USER_TOKEN, TOKEN, github_errors, paged, rate_windows
from sophia_mcp.sandbox.graphql import Node, execute, load_schema
from tests.conftest import SANDBOX_URL, Sandbox
from tests.contract.openapi import OpenAPISpec

pytestmark = pytest.mark.anyio

API = f"{SANDBOX_URL}/github"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "sophia-mcp-tests", "X-GitHub-Api-Version": "2022-11-28"}


@pytest.fixture(scope="module")
def github_schema(specs_dir: Path) -> graphql.GraphQLSchema:
    return graphql.build_schema((specs_dir / "github" / "graphql" / "github.schema.graphql").read_text())


@pytest.fixture(scope="module")
def rest_spec(specs_dir: Path) -> OpenAPISpec:
    return OpenAPISpec(specs_dir / "github" / "rest" / "github-rest.trimmed.json", mount="/github")


def connector(sandbox: Sandbox, **overrides: object) -> github.GitHubConnector:
    return sandbox.service(**overrides).connector("github")  # type: ignore[return-value]


async def raw_get(sandbox: Sandbox, path: str, **params: Any) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=sandbox.transport, base_url=API, headers=HEADERS) as client:
        return await client.get(path, params=params)


@pytest.mark.parametrize("document", github.QUERIES, ids=lambda d: d.split("(")[0].split()[-1])
def test_every_query_the_connector_can_send_validates_against_githubs_schema(
    document: str, github_schema: graphql.GraphQLSchema
) -> None:
    assert graphql.validate(github_schema, graphql.parse(document)) == []


async def test_requests_sent_while_using_every_tool_are_documented_operations(
    sandbox: Sandbox, mcp_client: Client, rest_spec: OpenAPISpec, github_schema: graphql.GraphQLSchema
) -> None:
    projects = (await mcp_client.call_tool("list_projects", {"platforms": ["github"]})).structured_content["projects"]
    repos = await mcp_client.call_tool("github_list_repositories", {"limit": 5, "sort": "full_name"})
    calls: dict[str, dict[str, Any]] = {
        "github_list_repositories": {
            "limit": 5,
            "sort": "full_name",
            "cursor": repos.structured_content["next_cursor"],
        },
        "github_list_issues": {
            "repo": "battery-health",
            "state": "all",
            "labels": ["enhancement"],
            "assignee": "*",
            "since": "2026-01-01T00:00:00Z",
            "sort": "updated",
            "direction": "asc",
        },
        "github_list_pull_requests": {"repo": "northwind/battery-health", "state": "all", "base": "main"},
        "github_search_issues": {"query": "telemetry is:issue", "sort": "updated", "order": "asc"},
        "github_get_project_items": {"project": projects[0]["id"], "limit": 3},
        "search": {"query": "telemetry", "platforms": ["github"]},
        "platform_status": {"check": True},
    }
    for name, arguments in calls.items():
        result = await mcp_client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)
    assert not (await mcp_client.call_tool("github_get_project_items", {"project": "3"})).is_error

    exchanges = [(q, r) for q, r in sandbox.transport.exchanges if q.url.path.startswith("/github/")]
    paths = {q.url.path for q, _ in exchanges}
    assert {"/github/graphql", "/github/orgs/northwind/repos", "/github/search/issues", "/github/rate_limit"} <= paths
    for request, response in exchanges:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert response.status_code == 200, (request.url, response.text[:300])
        if request.url.path == "/github/graphql":
            assert request.method == "POST"
            document = json.loads(request.content)["query"]
            assert graphql.validate(github_schema, graphql.parse(document)) == [], document
            assert "errors" not in response.json()
        else:
            assert rest_spec.request_problems(request) == [], request.url
            assert rest_spec.response_problems(request, response) == [], request.url


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/orgs/northwind/repos", {"type": "private", "sort": "pushed", "per_page": 4, "page": 2}),
        ("/user/repos", {"visibility": "public"}),
        ("/repos/northwind/customer-portal/issues", {"state": "all", "per_page": 100}),
        ("/repos/northwind/customer-portal/pulls", {"state": "all", "sort": "long-running"}),
        ("/search/issues", {"q": "org:northwind is:pr is:merged", "sort": "created", "per_page": 3}),
        ("/rate_limit", {}),
    ],
)
async def test_sandbox_answers_validate_against_the_documented_response_schemas(
    sandbox: Sandbox, rest_spec: OpenAPISpec, path: str, params: dict[str, Any]
) -> None:
    response = await raw_get(sandbox, path, **params)
    assert response.status_code == 200
    assert rest_spec.request_problems(response.request) == []
    assert rest_spec.response_problems(response.request, response) == []
    assert response.headers["x-ratelimit-limit"] and response.headers["x-ratelimit-remaining"].isdigit()


async def test_sandbox_pages_with_link_headers_as_github_does(sandbox: Sandbox) -> None:
    first = await raw_get(sandbox, "/orgs/northwind/repos", per_page=5)
    assert first.headers["link"] == (
        f'<{API}/orgs/northwind/repos?per_page=5&page=2>; rel="next", <{API}/orgs/northwind/repos?per_page=5&page=3>; '
        'rel="last"'
    )
    last = await raw_get(sandbox, "/orgs/northwind/repos", per_page=5, page=3)
    assert len(last.json()) == 4 and 'rel="next"' not in last.headers["link"]
    assert 'rel="first"' in last.headers["link"] and 'rel="prev"' in last.headers["link"]
    assert len((await raw_get(sandbox, "/orgs/northwind/repos", per_page=500)).json()) == 14  # at most 100 a page
    beyond = await raw_get(sandbox, "/search/issues", q="org:northwind", per_page=100, page=11)
    assert beyond.status_code == 422 and "1000" in beyond.json()["message"]


async def test_repositories_page_through_link_headers_without_duplicates(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    names: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await github.list_repositories(gh, github.ListRepositoriesInput(limit=5, cursor=cursor))  # type: ignore[call-arg]
        names += [r.full_name for r in page.repositories]
        cursor, pages = page.next_cursor, pages + 1
        if cursor is None:
            break
    assert pages == 3 and len(names) == len(set(names)) == 14
    assert [r.url.params.get("page") for r in sandbox.transport.requests("github")] == ["1", "2", "3"]


async def test_search_pages_through_every_hit_without_duplicates(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    seen: list[str] = []
    cursor, total = None, 0
    while True:
        args = github.SearchIssuesInput(query="is:issue is:open", limit=10, cursor=cursor)  # type: ignore[call-arg]
        result = await github.search_issues(gh, args)
        seen += [f"{i.repo}#{i.number}" for i in result.items]
        cursor, total = result.next_cursor, result.total_count
        if cursor is None:
            break
    assert result.query == "is:issue is:open org:northwind"
    assert len(seen) == len(set(seen)) == total > 12
    assert all(i.kind == "issue" and i.state == "open" for i in result.items)


async def test_an_issue_search_names_the_issue_type_as_github_app_user_tokens_require(
    sandbox: Sandbox, rest_spec: OpenAPISpec
) -> None:
    async with httpx2.AsyncClient(transport=sandbox.transport, base_url=API) as client:
        app_user = {**HEADERS, "Authorization": f"Bearer {APP_USER_TOKEN}"}
        refused = await client.get("/search/issues", params={"q": "org:northwind telemetry"}, headers=app_user)
    assert refused.status_code == 422 and refused.json() == {
        "message": "Query must include 'is:issue' or 'is:pull-request'",
        "documentation_url": "https://docs.github.com/rest/search/search#search-issues-and-pull-requests",
        "status": "422",
    }
    assert rest_spec.response_problems(refused.request, refused) == []
    gh = connector(sandbox, github_token=APP_USER_TOKEN)
    result = await github.search_issues(gh, github.SearchIssuesInput(query="telemetry"))  # type: ignore[call-arg]
    assert result.query == "telemetry is:issue org:northwind"
    assert result.items and {i.kind for i in result.items} == {"issue"}
    for typed in ("telemetry is:pr", "telemetry type:issue", "telemetry IS:pull-request"):
        assert (await github.search_issues(gh, github.SearchIssuesInput(query=typed))).query == typed + " org:northwind"  # type: ignore[call-arg]
    assert {h.kind for h in await gh.search("telemetry", 20)} == {"issue", "pull_request"}


async def test_projects_page_through_all_fourteen_with_normalised_status(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    seen, cursor = [], None
    while True:
        page = await gh.list_projects(None, 5, cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({p.id for p in seen}) == 14
    assert {p.status for p in seen} == {"active", "completed"}
    warehouse = next(p for p in seen if p.name == "Polar Warehouse Pilot")
    assert warehouse.model_dump(exclude={"id", "created_at", "updated_at"}) == snapshot(
        {
            "platform": "github",
            "name": "Polar Warehouse Pilot",
            "url": "https://github.com/orgs/northwind/projects/5",
            "status": "completed",
            "status_raw": "closed (private)",
            "owner": "hana-sato",
            "team": "northwind",
            "description": "Ten-robot pilot in a -25 °C cold store.",
            "start_date": None,
            "target_date": None,
            "progress": None,
        }
    )


async def test_status_filter_is_sent_to_github_as_a_project_query(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    closed = await gh.list_projects("completed", 50, None)
    assert sorted(p.name for p in closed.items) == ["Harvest Assist", "Over-the-Air Updates", "Polar Warehouse Pilot"]
    assert json.loads(sandbox.transport.requests("github")[-1].content)["variables"]["query"] == "is:closed"
    assert (await gh.list_projects("paused", 50, None)).items == []  # GitHub projects are only open or closed
    assert len(sandbox.transport.requests("github")) == 1


async def test_cursors_are_opaque_and_only_work_where_they_came_from(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    page = await github.list_repositories(gh, github.ListRepositoriesInput(limit=5))  # type: ignore[call-arg]
    assert page.next_cursor and "page" not in page.next_cursor and "http" not in page.next_cursor
    with pytest.raises(BadInput, match="another listing"):
        await github.list_issues(gh, github.ListIssuesInput(repo="sim-lab", cursor=page.next_cursor))  # type: ignore[call-arg]
    projects = await gh.list_projects(None, 5, None)
    with pytest.raises(BadInput, match="another listing"):
        await gh.list_projects("completed", 5, projects.next_cursor)
    with pytest.raises(BadInput, match="another listing"):
        await github.get_project_items(gh, github.GetProjectItemsInput(project="1", cursor=projects.next_cursor))  # type: ignore[call-arg]
    with pytest.raises(BadInput, match="next_cursor"):
        await gh.list_projects(None, 5, encode_cursor("linear", {"after": "x"}))


async def test_pull_requests_are_left_out_of_issues(sandbox: Sandbox) -> None:
    raw = (await raw_get(sandbox, "/repos/northwind/customer-portal/issues", state="all")).json()
    raw_prs = {i["number"] for i in raw if "pull_request" in i}
    assert raw_prs  # GitHub's issues endpoint lists pull requests too
    gh = connector(sandbox)
    issues = await github.list_issues(gh, github.ListIssuesInput(repo="customer-portal", state="all"))  # type: ignore[call-arg]
    pulls = await github.list_pull_requests(gh, github.ListPullRequestsInput(repo="customer-portal", state="all"))  # type: ignore[call-arg]
    assert {i.number for i in issues.issues} == {i["number"] for i in raw} - raw_prs
    assert {p.number for p in pulls.pull_requests} == raw_prs
    assert issues.note is not None and "github_list_pull_requests" in issues.note
    assert pulls.pull_requests[0].model_dump(
        exclude={"created_at", "updated_at", "closed_at", "merged_at"}
    ) == snapshot(
        {
            "number": 7,
            "title": "Prototype on the test track",
            "state": "open",
            "draft": False,
            "url": "https://github.com/northwind/customer-portal/pull/7",
            "author": "eli-moreau",
            "head": "northwind:por-7-prototype-on-the-test-track",
            "base": "main",
            "assignees": ["eli-moreau"],
            "requested_reviewers": ["dara-nguyen"],
            "labels": ["enhancement", "priority: urgent"],
            "body": None,
        }
    )


async def test_issue_filters_are_applied_by_github(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    args = github.ListIssuesInput(repo="observability", state="closed", labels=["enhancement"], verbose=True)  # type: ignore[call-arg]
    result = await github.list_issues(gh, args)
    assert result.issues and all(i.state == "closed" and "enhancement" in i.labels and i.body for i in result.issues)
    assert sandbox.transport.requests("github")[-1].url.params["labels"] == "enhancement"


async def test_project_items_carry_the_boards_status(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    by_number = await github.get_project_items(gh, github.GetProjectItemsInput(project="2", limit=3))  # type: ignore[call-arg]
    assert by_number.title == "Battery Health Monitoring" and by_number.next_cursor
    rest = await github.get_project_items(
        gh,
        github.GetProjectItemsInput(project="2", limit=50, cursor=by_number.next_cursor),  # type: ignore[call-arg]
    )
    items = by_number.items + rest.items
    assert len(items) == len({i.id for i in items}) == 8  # seven work items and a draft
    assert {i.type for i in items} == {"ISSUE", "PULL_REQUEST", "DRAFT_ISSUE"}
    assert items[0].model_dump(exclude={"id", "updated_at"}) == snapshot(
        {
            "type": "ISSUE",
            "title": "Document the operator runbook",
            "number": 1,
            "state": "OPEN",
            "repo": "northwind/battery-health",
            "url": "https://github.com/northwind/battery-health/issues/1",
            "status": "In Progress",
            "fields": {"Priority": "High"},
        }
    )


async def test_cross_platform_search_finds_issues_and_pull_requests_of_the_org(sandbox: Sandbox) -> None:
    hits = await connector(sandbox).search("telemetry", 20)
    assert {h.kind for h in hits} == {"issue", "pull_request"}
    queries = [r.url.params["q"] for r in sandbox.transport.requests("github")]
    assert sorted(queries) == ["telemetry org:northwind is:issue", "telemetry org:northwind is:pr"]


async def test_every_search_request_spends_the_search_budget_of_thirty_a_minute(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    await gh.search("telemetry", 5)  # two searches, is:issue and is:pr
    assert gh.search_bucket.tokens < gh.search_rate.burst - 1.5  # two spent (less what a slow second earned back)
    gh.search_bucket.tokens = -10  # a burst already spent: the next search would wait about 20 s
    sent = len(sandbox.transport.requests("github"))
    with pytest.raises(RateLimited, match="GitHub search") as caught:
        await github.search_issues(gh, github.SearchIssuesInput(query="telemetry"))  # type: ignore[call-arg]
    assert caught.value.retry_after is not None and caught.value.retry_after > 10
    assert len(sandbox.transport.requests("github")) == sent  # refused before anything was sent
    assert (await github.list_repositories(gh, github.ListRepositoriesInput())).repositories  # type: ignore[call-arg]


async def test_a_wrong_token_says_which_setting_to_fix(sandbox: Sandbox) -> None:
    async with httpx2.AsyncClient(transport=sandbox.transport, base_url=API) as client:
        refused = await client.get("/orgs/northwind/repos", headers={**HEADERS, "Authorization": "Bearer ghp_wrong"})
    assert refused.status_code == 401 and refused.json()["message"] == "Bad credentials"
    assert refused.json()["documentation_url"].startswith("https://docs.github.com/")
    gh = connector(sandbox, github_token="ghp_wrong")
    with pytest.raises(UpstreamUnauthorized, match="SOPHIA_GITHUB_TOKEN"):
        await gh.list_projects(None, 5, None)
    with pytest.raises(UpstreamUnauthorized, match="Bad credentials"):
        await github.list_repositories(gh, github.ListRepositoriesInput())  # type: ignore[call-arg]


async def test_secondary_rate_limit_waits_for_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.faults["github"] = Fault(kind="rate_limit", retry_after=30)
    with pytest.raises(RateLimited, match="SOPHIA_GITHUB_TOKEN") as caught:
        await github.list_repositories(connector(sandbox), github.ListRepositoriesInput())  # type: ignore[call-arg]
    assert caught.value.retry_after == 30
    response = sandbox.transport.exchanges[-1][1]
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    assert "secondary rate limit" in response.json()["message"]


async def test_a_429_without_rate_limit_headers_waits_a_minute_instead_of_retrying(sandbox: Sandbox) -> None:
    sent: list[httpx2.Request] = []

    def too_many(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(429, json={"message": "Too Many Requests"})

    gh = github.GitHubConnector(sandbox.settings(http_max_retries=2), transport=httpx2.MockTransport(too_many))
    with pytest.raises(RateLimited, match="retry in 60 s") as caught:
        await github.list_repositories(gh, github.ListRepositoriesInput())  # type: ignore[call-arg]
    assert caught.value.retry_after == github.SECONDARY_LIMIT_WAIT == 60
    assert len(sent) == 1  # GitHub: without retry-after or a reset, wait at least a minute


async def test_spent_primary_rate_limit_waits_until_the_reset(sandbox: Sandbox) -> None:
    core = rate_windows(sandbox.state)["core"]
    core.used = core.limit
    with pytest.raises(RateLimited, match="SOPHIA_GITHUB_TOKEN") as caught:
        await github.list_repositories(connector(sandbox), github.ListRepositoriesInput())  # type: ignore[call-arg]
    response = sandbox.transport.exchanges[-1][1]
    assert response.status_code == 403 and response.headers["x-ratelimit-remaining"] == "0"
    wait = int(response.headers["x-ratelimit-reset"]) - time.time()
    assert caught.value.retry_after is not None and abs(caught.value.retry_after - wait) < 5
    status = await connector(sandbox).check()  # /rate_limit does not count against the limit
    assert status.startswith("token accepted; 0 of 5000 REST requests left")


async def test_spent_graphql_budget_is_rate_limited_not_a_query_error(sandbox: Sandbox) -> None:
    budget = rate_windows(sandbox.state)["graphql"]
    budget.used = budget.limit
    with pytest.raises(RateLimited, match="GraphQL budget") as caught:
        await connector(sandbox).list_projects(None, 5, None)
    response = sandbox.transport.exchanges[-1][1]
    assert response.status_code == 200 and response.json()["errors"][0]["type"] == "RATE_LIMITED"
    assert caught.value.retry_after is not None and caught.value.retry_after > 3000


async def test_a_plain_403_is_forbidden_not_a_rate_limit(sandbox: Sandbox) -> None:
    sandbox.state.faults["github"] = Fault(kind="status", status=403)
    with pytest.raises(Forbidden, match="Resource not accessible"):
        await github.list_repositories(connector(sandbox), github.ListRepositoriesInput())  # type: ignore[call-arg]


async def test_server_errors_are_retried_then_reported(sandbox: Sandbox) -> None:
    sandbox.state.faults["github"] = Fault(kind="status", status=502, times=1)
    page = await connector(sandbox, http_max_retries=1).list_projects(None, 5, None)
    assert len(page.items) == 5
    sandbox.state.faults["github"] = Fault(kind="status", status=503)
    with pytest.raises(UpstreamUnavailable, match="503"):
        await github.list_repositories(connector(sandbox), github.ListRepositoriesInput())  # type: ignore[call-arg]


async def test_malformed_body_is_an_upstream_failure_not_a_crash(sandbox: Sandbox) -> None:
    sandbox.state.faults["github"] = Fault(kind="malformed")
    with pytest.raises(UpstreamUnavailable, match="not valid JSON"):
        await github.list_repositories(connector(sandbox), github.ListRepositoriesInput())  # type: ignore[call-arg]
    with pytest.raises(UpstreamUnavailable, match="not valid JSON"):
        await connector(sandbox).list_projects(None, 5, None)


async def test_unknown_repository_project_and_org_are_not_found(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    with pytest.raises(NotFound, match="no repository northwind/no-such-repo"):
        await github.list_issues(gh, github.ListIssuesInput(repo="no-such-repo"))  # type: ignore[call-arg]
    with pytest.raises(NotFound, match="global id"):
        await github.get_project_items(gh, github.GetProjectItemsInput(project="PVT_nope"))  # type: ignore[call-arg]
    with pytest.raises(NotFound, match="SOPHIA_GITHUB_ORG"):
        await connector(sandbox, github_org="southwind").list_projects(None, 5, None)
    with pytest.raises(NotFound, match="organization southwind .*SOPHIA_GITHUB_ORG"):
        await github.list_repositories(connector(sandbox, github_org="southwind"), github.ListRepositoriesInput())  # type: ignore[call-arg]


async def test_without_an_org_repositories_are_the_users_and_projects_need_the_org(sandbox: Sandbox) -> None:
    gh = connector(sandbox, github_org=None)
    page = await github.list_repositories(gh, github.ListRepositoriesInput(visibility="public"))  # type: ignore[call-arg]
    assert sandbox.transport.requests("github")[-1].url.path == "/github/user/repos"
    assert page.note is not None and "SOPHIA_GITHUB_ORG" in page.note
    assert {r.visibility for r in page.repositories} == {"public"}
    with pytest.raises(NotConfigured, match="SOPHIA_GITHUB_ORG"):
        await gh.list_projects(None, 5, None)
    with pytest.raises(BadInput, match="owner/name"):
        await github.list_issues(gh, github.ListIssuesInput(repo="sim-lab"))  # type: ignore[call-arg]
    assert (await github.list_issues(gh, github.ListIssuesInput(repo="northwind/sim-lab"))).issues  # type: ignore[call-arg]


NOT_REPOSITORY_NAMES = ["..", ".", "../..", "northwind/..", "../battery-health", "./x", "a/b/c", "own.er/x", "a b"]


@pytest.mark.parametrize("tool", ["github_list_issues", "github_list_pull_requests"])
@pytest.mark.parametrize("repo", NOT_REPOSITORY_NAMES)
async def test_a_repo_that_is_not_a_github_name_is_refused_before_anything_is_sent(
    sandbox: Sandbox, mcp_client: Client, tool: str, repo: str
) -> None:
    # "../.." once became /repos/../../issues, which URL normalisation sends to /issues: the token owner's
    # issues across every repository, answered as if they were the requested repository's
    result = await mcp_client.call_tool(tool, {"repo": repo})
    assert result.is_error
    assert "owner/name" in result.content[0].text and "not just dots" in result.content[0].text
    assert sandbox.transport.exchanges == []


def test_repository_names_github_allows_are_accepted() -> None:
    for repo in ["battery-health", ".github", "..a", "northwind/.github", "north-wind/v1.2_beta", "mona_octocorp/x"]:
        assert github.ListIssuesInput(repo=repo).repo == repo  # type: ignore[call-arg]


async def test_the_connector_builds_no_path_from_a_name_github_would_not_have(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    for repo in ["../..", "..", "northwind/.", "x/y/z"]:  # also when the input model was not validated
        with pytest.raises(BadInput, match="owner/name"):
            await github.list_issues(gh, github.ListIssuesInput.model_construct(repo=repo, state="open", limit=5))
    odd_org = connector(sandbox, github_org="..")
    with pytest.raises(BadInput, match="SOPHIA_GITHUB_ORG"):
        await github.list_issues(odd_org, github.ListIssuesInput(repo="battery-health"))  # type: ignore[call-arg]
    with pytest.raises(BadInput, match="SOPHIA_GITHUB_ORG"):
        await github.list_repositories(odd_org, github.ListRepositoriesInput())  # type: ignore[call-arg]
    assert sandbox.transport.exchanges == []


def over_a_page(args: Any, limit: int = 200) -> Any:
    """`args` with a limit over GitHub's 100 a page (list_projects passes up to 200)."""
    return args.model_copy(update={"limit": limit})


async def test_a_limit_over_githubs_hundred_asks_for_a_hundred_and_pages_on(
    sandbox: Sandbox, mcp_client: Client
) -> None:
    result = (await mcp_client.call_tool("list_projects", {"platforms": ["github"], "limit": 150})).structured_content
    assert result["platforms"]["github"].get("error") is None and len(result["projects"]) == 14
    gh = connector(sandbox)
    assert len((await gh.list_projects(None, 200, None)).items) == 14
    items = await github.get_project_items(gh, over_a_page(github.GetProjectItemsInput(project="2")))  # type: ignore[call-arg]
    assert len(items.items) == 8
    assert len((await github.list_repositories(gh, over_a_page(github.ListRepositoriesInput()))).repositories) == 14  # type: ignore[call-arg]
    assert (await github.list_issues(gh, over_a_page(github.ListIssuesInput(repo="customer-portal")))).issues  # type: ignore[call-arg]
    await github.list_pull_requests(gh, over_a_page(github.ListPullRequestsInput(repo="customer-portal")))  # type: ignore[call-arg]
    await github.search_issues(gh, over_a_page(github.SearchIssuesInput(query="telemetry")))  # type: ignore[call-arg]
    assert await gh.search("telemetry", 200)
    for request in sandbox.transport.requests("github"):
        if request.url.path.endswith("/graphql"):
            assert json.loads(request.content)["variables"]["first"] <= 100
        else:
            assert int(request.url.params["per_page"]) <= 100, request.url


async def test_a_page_cut_at_a_hundred_continues_where_it_stopped(sandbox: Sandbox) -> None:
    double = GitHubDouble(search_total=4321)
    gh = double_connector(sandbox, double, "https://api.github.com")
    first = await github.list_repositories(gh, over_a_page(github.ListRepositoriesInput()))  # type: ignore[call-arg]
    assert decode_cursor("github", first.next_cursor)["per_page"] == 100
    await github.list_repositories(gh, over_a_page(github.ListRepositoriesInput(cursor=first.next_cursor)))  # type: ignore[call-arg]
    made_for_200 = encode_cursor("github", {**decode_cursor("github", first.next_cursor), "per_page": 200})
    await github.list_repositories(gh, over_a_page(github.ListRepositoriesInput(cursor=made_for_200)))  # type: ignore[call-arg]
    sent = [(r.url.params["per_page"], r.url.params["page"]) for r in double.requests]
    assert sent == [("100", "1"), ("100", "2"), ("100", "2")]
    search = github.SearchIssuesInput(query="is:pr flaky")  # type: ignore[call-arg]
    state = decode_cursor("github", (await github.search_issues(gh, over_a_page(search))).next_cursor)
    assert state["per_page"] == 100
    last_page = encode_cursor("github", {**state, "page": 10})  # results 901-1000: GitHub's last
    last = await github.search_issues(gh, over_a_page(search.model_copy(update={"cursor": last_page})))
    assert last.next_cursor is None and last.note is not None and "first 1000" in last.note
    await gh.aclose()


RATE_LIMITING_DISABLED = {  # GitHub Enterprise Server with rate limiting off
    "message": "Rate limiting is not enabled.",
    "documentation_url": "https://docs.github.com/enterprise-server@3.14/rest/rate-limit/rate-limit",
}


class GitHubDouble:
    """Answers like api.github.com (or a GitHub Enterprise Server) with canned bodies, recording requests."""

    def __init__(self, search_total: int = 3, rate_limiting: bool = True) -> None:
        self.requests: list[httpx2.Request] = []
        self.search_total = search_total
        self.rate_limiting = rate_limiting

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path.endswith("graphql"):
            return httpx2.Response(
                200,
                json={
                    "data": {
                        "organization": {
                            "login": "acme",
                            "projectsV2": {
                                "totalCount": 0,
                                "pageInfo": {"hasNextPage": False, "endCursor": None},
                                "nodes": [],
                            },
                        }
                    }
                },
            )
        if request.url.path.endswith("/rate_limit") and not self.rate_limiting:
            return httpx2.Response(404, json=RATE_LIMITING_DISABLED)
        page = int(request.url.params.get("page", "1"))
        link = f'<https://api.github.com/organizations/1/repos?page={page + 1}>; rel="next"'
        if request.url.path.endswith("/search/issues"):
            return httpx2.Response(
                200,
                json={"total_count": self.search_total, "incomplete_results": False, "items": []},
                headers={"link": link},
            )
        return httpx2.Response(200, json=[], headers={"link": link})


def double_connector(sandbox: Sandbox, double: GitHubDouble, base_url: str) -> github.GitHubConnector:
    settings = sandbox.settings(github_base_url=base_url, github_org="acme")
    return github.GitHubConnector(settings, transport=httpx2.MockTransport(double))


@pytest.mark.parametrize(
    ("base_url", "rest", "graphql_url"),
    [
        ("https://api.github.com", "https://api.github.com/orgs/acme/repos", "https://api.github.com/graphql"),
        (
            "https://ghe.example.com/api/v3",
            "https://ghe.example.com/api/v3/orgs/acme/repos",
            "https://ghe.example.com/api/graphql",
        ),
    ],
)
async def test_urls_are_githubs_and_enterprise_servers(
    sandbox: Sandbox, base_url: str, rest: str, graphql_url: str
) -> None:
    double = GitHubDouble()
    gh = double_connector(sandbox, double, base_url)
    first = await github.list_repositories(gh, github.ListRepositoriesInput(limit=30))  # type: ignore[call-arg]
    # the next page is asked of the configured host, whatever host the Link header names
    await github.list_repositories(gh, github.ListRepositoriesInput(cursor=first.next_cursor))  # type: ignore[call-arg]
    await gh.list_projects(None, 10, None)
    assert [str(r.url) for r in double.requests] == [
        f"{rest}?sort=updated&type=all&per_page=30&page=1",
        f"{rest}?sort=updated&type=all&per_page=30&page=2",
        graphql_url,
    ]
    await gh.aclose()


async def test_a_token_passes_check_on_an_enterprise_server_without_rate_limiting(
    sandbox: Sandbox, rest_spec: OpenAPISpec
) -> None:
    schema = rest_spec.response_schema("GET", "/github/rate_limit", 404)
    assert schema is not None
    jsonschema.validate(RATE_LIMITING_DISABLED, schema)  # the spec documents a 404 for /rate_limit
    double = GitHubDouble(rate_limiting=False)
    gh = double_connector(sandbox, double, "https://ghe.example.com/api/v3")
    status = await gh.check()
    assert status == "token accepted; rate limiting is disabled on this server; organization acme"
    assert [r.url.path for r in double.requests] == ["/api/v3/rate_limit", "/api/v3/orgs/acme/repos"]
    await gh.aclose()


async def test_search_stops_at_githubs_first_thousand_results(sandbox: Sandbox) -> None:
    double = GitHubDouble(search_total=4321)
    gh = double_connector(sandbox, double, "https://api.github.com")
    first = await github.search_issues(gh, github.SearchIssuesInput(query="is:pr flaky", limit=100))  # type: ignore[call-arg]
    state = decode_cursor("github", first.next_cursor)
    assert state == {"of": state["of"], "page": 2, "per_page": 100}
    last_page = encode_cursor("github", {**state, "page": 10})
    last = await github.search_issues(gh, github.SearchIssuesInput(query="is:pr flaky", cursor=last_page))  # type: ignore[call-arg]
    assert last.next_cursor is None and last.note is not None and "first 1000" in last.note
    assert first.note is not None and "4321" in first.note
    scoped = await github.search_issues(gh, github.SearchIssuesInput(query="is:pr repo:acme/x flaky"))  # type: ignore[call-arg]
    assert scoped.query == "is:pr repo:acme/x flaky"  # a scoped query is sent as written
    await gh.aclose()


HIDDEN_ITEM = {
    "data": {
        "node": {
            "id": "PVT_x",
            "title": "Roadmap",
            "url": "https://github.com/orgs/acme/projects/1",
            "closed": False,
            "items": {
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "nodes": [
                    {
                        "id": "PVTI_x",
                        "type": "REDACTED",
                        "updatedAt": "2026-01-01T00:00:00Z",
                        "content": None,
                        "fieldValues": {"nodes": []},
                    }
                ],
            },
        }
    },
    "errors": [
        {
            "type": "FORBIDDEN",
            "path": ["node", "items", "nodes", 0, "content"],
            "message": "Resource not accessible by personal access token",
        }
    ],
}
MISSING_SCOPE = {
    "errors": [
        {
            "type": "INSUFFICIENT_SCOPES",
            "locations": [{"line": 3, "column": 3}],
            "message": "Your token has not been granted the required scopes to execute this query. The 'projectsV2' "
            "field requires one of the following scopes: ['read:project'], but your token has only been granted the: "
            "['repo'] scopes.",
        }
    ]
}


async def test_graphql_errors_below_the_top_level_leave_partial_data_but_a_missing_scope_is_forbidden(
    sandbox: Sandbox,
) -> None:
    gh = github.GitHubConnector(
        sandbox.settings(), transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json=HIDDEN_ITEM))
    )
    items = await github.get_project_items(gh, github.GetProjectItemsInput(project="PVT_x"))  # type: ignore[call-arg]
    assert [(i.type, i.title) for i in items.items] == [("REDACTED", None)]
    gh = github.GitHubConnector(
        sandbox.settings(), transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json=MISSING_SCOPE))
    )
    with pytest.raises(Forbidden, match="read:project"):
        await gh.list_projects(None, 5, None)


def schema_double(root: Node) -> httpx2.MockTransport:
    """Answers GraphQL as GitHub does for `root`: executed against its schema, errors in its form."""

    async def answer(request: httpx2.Request) -> httpx2.Response:
        result = await execute(load_schema("github"), json.loads(request.content), root)
        return httpx2.Response(200, json=github_errors(result))

    return httpx2.MockTransport(answer)


def refuse(*args: Any, **kwargs: Any) -> Any:
    raise graphql.GraphQLError("Resource not accessible by personal access token", extensions={"type": "FORBIDDEN"})


def board(items: list[Node]) -> Node:
    url = "https://github.com/orgs/acme/projects/1"
    project = {"__typename": "ProjectV2", "id": "PVT_x", "title": "Roadmap", "url": url, "closed": False}
    return {"node": lambda info, id: {**project, "items": paged("items", lambda: items)}}


def draft(key: str, values: list[Node]) -> Node:
    def by_name(info: Any, name: str) -> Node | None:
        return next((v for v in values if v["field"]["name"] == name), None)

    return {
        "__typename": "ProjectV2Item",
        "id": f"PVTI_{key}",
        "type": "DRAFT_ISSUE",
        "updatedAt": "2026-01-01T00:00:00Z",
        "content": {"__typename": "DraftIssue", "title": f"Draft {key}"},
        "fieldValues": paged("fieldValues", lambda: values),
        "fieldValueByName": by_name,
    }


def field_value(kind: str, field_name: str, **value: str) -> Node:
    field = {"__typename": f"ProjectV2{'SingleSelect' if kind == 'SingleSelect' else ''}Field", "name": field_name}
    return {"__typename": f"ProjectV2ItemField{kind}Value", "id": f"PVTFV_{field_name}", "field": field, **value}


async def test_a_refused_projects_connection_is_forbidden_not_a_crash(sandbox: Sandbox) -> None:
    root = {"organization": lambda info, login: {"login": login, "projectsV2": refuse}}
    gh = github.GitHubConnector(sandbox.settings(), transport=schema_double(root))
    with pytest.raises(Forbidden, match="read:project"):  # projectsV2 is non-null: the error nulls organization
        await gh.list_projects(None, 5, None)


async def test_board_items_github_withholds_are_noted_or_forbidden(sandbox: Sandbox) -> None:
    hidden = {**draft("hidden", []), "id": refuse}  # id is non-null: the error nulls the whole item
    gh = github.GitHubConnector(sandbox.settings(), transport=schema_double(board([hidden, draft("seen", [])])))
    page = await github.get_project_items(gh, github.GetProjectItemsInput(project="PVT_x"))  # type: ignore[call-arg]
    assert [i.id for i in page.items] == ["PVTI_seen"]
    assert page.note is not None and page.note.startswith("1 item") and "Resource not accessible" in page.note
    gh = github.GitHubConnector(sandbox.settings(), transport=schema_double(board([hidden])))
    with pytest.raises(Forbidden, match="Resource not accessible"):
        await github.get_project_items(gh, github.GetProjectItemsInput(project="PVT_x"))  # type: ignore[call-arg]


async def test_status_is_read_on_a_board_with_more_fields_than_a_page_of_values(sandbox: Sandbox) -> None:
    values = [field_value("Text", f"Field {n}", text=str(n)) for n in range(1, 31)]
    values.append(field_value("SingleSelect", "Status", name="Done"))
    gh = github.GitHubConnector(sandbox.settings(), transport=schema_double(board([draft("busy", values)])))
    page = await github.get_project_items(gh, github.GetProjectItemsInput(project="PVT_x"))  # type: ignore[call-arg]
    assert page.items[0].status == "Done"


def test_packaged_schema_is_the_published_one(specs_dir: Path) -> None:
    packaged = Path(github.__file__).parents[1] / "sophia_mcp" / "sandbox" / "schemas" / "github.graphql"
    assert packaged.read_bytes() == (specs_dir / "github" / "graphql" / "github.schema.graphql").read_bytes()


async def test_a_refused_cross_platform_search_reports_its_own_error(sandbox: Sandbox) -> None:
    gh = connector(sandbox)
    gh.search_bucket.tokens = -100  # the search budget spent for minutes: both searches are refused
    with pytest.raises(RateLimited, match="GitHub search"):
        await gh.search("telemetry", 5)  # not an ExceptionGroup, which the service reports as an internal error
