"""Linear: connector against the sandbox, and both checked against Linear's published schema."""

from __future__ import annotations

import json
import time
from pathlib import Path

import graphql
import httpx2
import pytest
from inline_snapshot import snapshot
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from connectors import linear
from sophia_mcp.config import Settings
from sophia_mcp.errors import BadInput, NotFound, RateLimited, UpstreamUnauthorized, UpstreamUnavailable
from sophia_mcp.sandbox import Fault
from sophia_mcp.sandbox.graphql import connection_field
from sophia_mcp.sandbox.linear import API_KEY, dataset
from tests.conftest import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def linear_schema(specs_dir: Path) -> graphql.GraphQLSchema:
    return graphql.build_schema((specs_dir / "linear" / "linear.schema.graphql").read_text())


@pytest.mark.parametrize("document", linear.QUERIES, ids=lambda d: d.split("(")[0].split()[-1])
def test_every_query_the_connector_can_send_validates_against_linears_schema(
    document: str, linear_schema: graphql.GraphQLSchema
) -> None:
    assert graphql.validate(linear_schema, graphql.parse(document)) == []


async def test_requests_sent_while_using_every_tool_are_documented_graphql(
    sandbox: Sandbox, mcp_client: Client, linear_schema: graphql.GraphQLSchema
) -> None:
    project_id = (await mcp_client.call_tool("list_projects", {"platforms": ["linear"]})).structured_content[
        "projects"
    ][0]["id"]
    calls = {
        "linear_list_issues": {"team": "AUT", "state": "started", "assignee": "ben", "limit": 5},
        "linear_get_issue": {"id": "AUT-1"},
        "linear_get_project": {"id": project_id},
        "linear_list_teams": {},
        "linear_search_issues": {"query": "telemetry"},
    }
    for name, arguments in calls.items():
        result = await mcp_client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)

    requests = sandbox.transport.requests("linear")
    assert len(requests) >= len(calls) + 1
    for request in requests:
        assert (request.method, request.url.path) == ("POST", "/linear/graphql")
        assert request.headers["authorization"] == API_KEY  # personal API keys go without "Bearer"
        body = json.loads(request.content)
        errors = graphql.validate(linear_schema, graphql.parse(body["query"]))
        assert errors == [], body["query"]


async def test_projects_page_through_all_fourteen_with_normalised_status(sandbox: Sandbox) -> None:
    connector = sandbox.service().connector("linear")
    seen, cursor = [], None
    while True:
        page = await connector.list_projects(None, 5, cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({p.id for p in seen}) == 14
    assert {p.status for p in seen} == {"planned", "active", "paused", "completed", "canceled"}
    first = seen[0]
    assert first.model_dump(exclude={"id", "url", "created_at", "updated_at"}) == snapshot(
        {
            "platform": "linear",
            "name": "Fleet Navigation v2",
            "status": "active",
            "status_raw": "In Progress",
            "owner": "Ben Lindqvist",
            "team": "Autonomy",
            "description": "Rebuild path planning for mixed indoor/outdoor fleets.",
            "start_date": "2026-07-23",
            "target_date": "2026-12-20",
            "progress": 0.62,
        }
    )
    assert first.url is not None and first.url.startswith("https://linear.app/northwind/project/")


async def test_status_filter_is_applied_by_linear_not_after_the_fact(sandbox: Sandbox) -> None:
    page = await sandbox.service().connector("linear").list_projects("paused", 50, None)
    assert [p.name for p in page.items] == ["Underground Haulage"]
    body = json.loads(sandbox.transport.requests("linear")[-1].content)
    assert body["variables"]["filter"] == {"status": {"type": {"in": ["paused"]}}}


async def test_issue_filters_narrow_the_list(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("linear_list_issues", {"team": "PLT", "state": "completed", "limit": 50})
    issues = result.structured_content["issues"]
    assert issues and all(i["team"] == "PLT" and i["state_type"] == "completed" for i in issues)
    assert all("description" not in i or i["description"] is None for i in issues)


async def test_an_unknown_team_is_not_found_and_names_the_teams_that_exist(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("linear_list_issues", {"team": "ZZZ"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "no team 'ZZZ'" in text and "linear_list_teams" in text
    assert all(team in text for team in ("AUT (Autonomy)", "PLT (Platform)", "SAL (Sales)"))


async def test_a_team_by_key_or_name_in_any_case_is_found(sandbox: Sandbox) -> None:
    connector = sandbox.service().connector("linear")
    for team in ("aut", "autonomy", "AUTONOMY"):
        issues = await linear.list_issues(connector, linear.ListIssuesInput(team=team))  # type: ignore[arg-type, call-arg]
        assert issues.issues and {i.team for i in issues.issues} == {"AUT"}


async def test_checking_the_team_costs_a_query_only_when_nothing_matched(sandbox: Sandbox) -> None:
    connector = sandbox.service().connector("linear")
    found = await linear.list_issues(connector, linear.ListIssuesInput(team="PLT"))  # type: ignore[arg-type, call-arg]
    assert found.issues and len(sandbox.transport.requests("linear")) == 1
    # a team that exists but has no such issues: an empty list, not an error
    args = linear.ListIssuesInput(team="Sales", assignee="nobody-at-all")  # type: ignore[call-arg]
    empty = await linear.list_issues(connector, args)  # type: ignore[arg-type]
    assert empty.issues == [] and empty.next_cursor is None
    assert ["teams" in json.loads(r.content)["query"] for r in sandbox.transport.requests("linear")] == [
        False,
        False,
        True,
    ]


async def test_triage_of_an_unknown_team_names_the_teams_that_exist(mcp_client: Client) -> None:
    with pytest.raises(MCPError) as error:
        await mcp_client.get_prompt("triage", {"platform": "linear", "team": "ZZZ"})
    assert error.value.error.code == INVALID_PARAMS
    assert "no team 'ZZZ'" in error.value.error.message and "AUT (Autonomy)" in error.value.error.message


async def test_a_wrong_api_key_says_which_setting_to_fix(sandbox: Sandbox) -> None:
    connector = sandbox.service(linear_api_key="lin_api_wrong").connector("linear")
    with pytest.raises(UpstreamUnauthorized, match="SOPHIA_LINEAR_API_KEY"):
        await connector.list_projects(None, 5, None)


async def test_unknown_issue_is_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(NotFound):
        await linear.get_issue(sandbox.service().connector("linear"), linear.GetIssueInput(id="NOPE-1"))  # type: ignore[arg-type]


async def test_rate_limit_reads_linears_reset_header(sandbox: Sandbox) -> None:
    sandbox.state.faults["linear"] = Fault(kind="rate_limit", retry_after=30)
    with pytest.raises(RateLimited) as caught:
        await sandbox.service().connector("linear").list_projects(None, 5, None)
    assert caught.value.retry_after is not None and 25 < caught.value.retry_after <= 30


@pytest.mark.parametrize(
    ("resets", "low", "high"),
    [
        # the request budget is fine; complexity (or one endpoint's budget) ran out
        ({"Requests": -5, "Complexity": 40, "Endpoint-Requests": 20}, 35, 40),
        ({"Endpoint-Requests": 25}, 20, 25),
        ({}, 60, 60),  # no reset header: wait a minute rather than retry at once
    ],
    ids=["complexity", "endpoint", "no-header"],
)
async def test_a_rate_limit_waits_for_the_latest_of_linears_reset_headers(
    resets: dict[str, int], low: float, high: float
) -> None:
    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        now_ms = int(time.time() * 1000)
        headers = {f"X-RateLimit-{name}-Reset": str(now_ms + s * 1000) for name, s in resets.items()}
        body = {"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]}
        return httpx2.Response(400, json=body, headers=headers)

    settings = Settings(_env_file=None, linear_api_key="lin_api_x", http_max_retries=3)  # type: ignore[call-arg]
    connector = linear.LinearConnector(settings, httpx2.MockTransport(handler))
    with pytest.raises(RateLimited) as caught:
        await connector.list_projects(None, 5, None)
    assert caught.value.retry_after is not None and low <= caught.value.retry_after <= high
    assert len(sent) == 1  # too long to wait out here: reported, not retried
    await connector.aclose()


@pytest.mark.parametrize(("count", "counted", "truncated"), [(600, 600, False), (1100, 1000, True)])
async def test_project_issue_counts_page_past_the_first_hundred(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, count: int, counted: int, truncated: bool
) -> None:
    project = dataset()["projects"][0]
    kinds = ("backlog", "unstarted", "started", "completed")
    issues = [{"id": f"issue-{n}", "state": {"type": kinds[n % 4]}} for n in range(count)]
    monkeypatch.setitem(project, "issues", connection_field(lambda: issues))
    detail = await linear.get_project(
        sandbox.service().connector("linear"),  # type: ignore[arg-type]
        linear.GetProjectInput(id=project["id"]),
    )
    assert sum(detail.issues_by_state.values()) == counted
    assert detail.issues_by_state["backlog"] == counted // 4
    assert detail.truncated is truncated
    assert (detail.note is not None and f"first {counted:,}" in detail.note) is truncated


async def test_issue_search_keeps_to_its_own_limit_of_thirty_a_minute(sandbox: Sandbox) -> None:
    connector = sandbox.service().connector("linear")
    assert isinstance(connector, linear.LinearConnector)
    connector.search_bucket.tokens = -10  # a burst already spent: the next search would wait about 20 s
    with pytest.raises(RateLimited, match="30 a minute"):
        await linear.search_issues(connector, linear.SearchIssuesInput(query="telemetry"))  # type: ignore[call-arg]
    assert sandbox.transport.requests("linear") == []


async def test_server_errors_are_retried_then_reported(sandbox: Sandbox) -> None:
    sandbox.state.faults["linear"] = Fault(kind="status", status=502, times=1)
    page = await sandbox.service(http_max_retries=1).connector("linear").list_projects(None, 5, None)
    assert len(page.items) == 5
    sandbox.state.faults["linear"] = Fault(kind="status", status=503)
    with pytest.raises(UpstreamUnavailable, match="503"):
        await sandbox.service().connector("linear").list_projects(None, 5, None)


async def test_malformed_body_is_an_upstream_failure_not_a_crash(sandbox: Sandbox) -> None:
    sandbox.state.faults["linear"] = Fault(kind="malformed")
    with pytest.raises(UpstreamUnavailable, match="not valid JSON"):
        await sandbox.service().connector("linear").list_projects(None, 5, None)


async def test_a_cursor_from_another_platform_is_refused(sandbox: Sandbox) -> None:
    from connectors.base import encode_cursor

    with pytest.raises(BadInput, match="next_cursor"):
        await sandbox.service().connector("linear").list_projects(None, 5, encode_cursor("github", {"page": 2}))


def test_packaged_schema_is_the_published_one(specs_dir: Path) -> None:
    packaged = Path(linear.__file__).parents[1] / "sophia_mcp" / "sandbox" / "schemas" / "linear.graphql"
    assert packaged.read_bytes() == (specs_dir / "linear" / "linear.schema.graphql").read_bytes()
