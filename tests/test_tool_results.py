"""Every tool's structured content conforms to the output schema it advertises, and its text is the
same data as compact JSON. (The server does not re-validate outputs per call; this test does.)"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from mcp import Client

from sophia_mcp import service as service_module

pytestmark = pytest.mark.anyio

CALLS = {
    "list_projects": {"limit": 30},
    "search": {"query": "telemetry"},
    "platform_status": {},
    "linear_list_issues": {"limit": 5, "verbose": True},
    "linear_list_teams": {},
    "github_list_repositories": {"limit": 5},
    "github_search_issues": {"query": "telemetry"},
    "slack_list_channels": {"limit": 5},
    "slack_list_users": {},
    "asana_list_workspaces": {},
    "notion_search": {"query": "fleet"},
    "notion_list_users": {},
    "hubspot_list_deals": {"limit": 5},
    "hubspot_list_pipelines": {},
    "gong_list_calls": {"limit": 5},
    "gong_list_users": {},
}


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


async def test_structured_content_matches_the_advertised_output_schema(mcp_client: Client) -> None:
    schemas = {t.name: t.output_schema for t in (await mcp_client.list_tools()).tools}
    for name, arguments in CALLS.items():
        result = await mcp_client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)
        jsonschema.validate(result.structured_content, schemas[name])
        text = json.loads(result.content[0].text)  # type: ignore[union-attr]
        assert text == without_nulls(result.structured_content), name


def test_a_reused_result_dumps_once_and_hands_each_caller_its_own_top_level() -> None:
    from mcp_types import CallToolResult, TextContent

    from sophia_mcp.server import WIRE_DUMP, ReusedResult

    fields = {"content": [TextContent(type="text", text="{}")], "structured_content": {"projects": [{"id": "1"}]}}
    reused, plain = ReusedResult(**fields), CallToolResult(**fields)
    first = reused.model_dump(**WIRE_DUMP)
    assert first == plain.model_dump(**WIRE_DUMP)
    first["_meta"] = {"stamped": True}  # what the SDK writes into the dump it sends
    second = reused.model_dump(**WIRE_DUMP)
    assert second == plain.model_dump(**WIRE_DUMP) and "_meta" not in second
    assert second["structuredContent"] is first["structuredContent"]  # dumped once
    assert reused.model_dump() == plain.model_dump()  # any other dump is made as usual


async def test_paging_after_the_size_budget_cut_a_page_misses_nothing_and_repeats_nothing(mcp_client: Client) -> None:
    async def every_issue(arguments: dict[str, Any]) -> tuple[list[str], int]:
        seen, cut, cursor = [], 0, None
        while True:
            result = await mcp_client.call_tool("linear_list_issues", {**arguments, **({"cursor": cursor} if cursor else {})})
            assert not result.is_error, result.content
            page = result.structured_content or {}
            seen += [issue["identifier"] for issue in page["issues"]]
            cut += page["truncated"]
            cursor = page.get("next_cursor")
            if not cursor:
                return seen, cut

    compact, _ = await every_issue({"limit": 25})
    verbose, cut = await every_issue({"limit": 100, "verbose": True})  # long descriptions: over the budget
    assert cut, "the verbose pages should exceed the size budget, or this test proves nothing"
    assert verbose == compact and len(set(verbose)) == len(verbose)


async def test_a_cursor_is_refused_by_another_tool_or_with_other_arguments(mcp_client: Client) -> None:
    first = await mcp_client.call_tool("linear_list_issues", {"limit": 5})
    cursor = (first.structured_content or {})["next_cursor"]
    elsewhere = await mcp_client.call_tool("linear_list_teams", {"cursor": cursor})
    assert elsewhere.is_error and "not valid here" in elsewhere.content[0].text  # type: ignore[union-attr]
    other_filter = await mcp_client.call_tool("linear_list_issues", {"limit": 5, "state": "started", "cursor": cursor})
    assert other_filter.is_error and "other arguments" in other_filter.content[0].text  # type: ignore[union-attr]
    more = await mcp_client.call_tool("linear_list_issues", {"limit": 10, "cursor": cursor})  # limit may change
    assert not more.is_error


async def test_a_cross_platform_search_cut_to_the_budget_keeps_hits_of_every_platform(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("search", {"query": "the", "limit": 50})
    found = result.structured_content or {}
    assert found["truncated"], "the search should exceed the size budget, or this test proves nothing"
    answered = {p for p, outcome in found["platforms"].items() if outcome["count"]}
    assert {hit["platform"] for hit in found["hits"]} == answered
    assert all(found["platforms"][p]["fetched_at"] and found["platforms"][p]["age_seconds"] is not None for p in answered)


async def test_cross_platform_project_pages_cut_to_the_budget_still_page_through_everything(
    mcp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def every_project(limit: int) -> tuple[list[tuple[str, str]], int]:
        seen, cut, cursor = [], 0, None
        while True:
            result = await mcp_client.call_tool("list_projects", {"limit": limit, **({"cursor": cursor} if cursor else {})})
            page = result.structured_content or {}
            seen += [(p["platform"], p["id"]) for p in page["projects"]]
            cut += page["truncated"]
            cursor = page.get("next_cursor")
            if not cursor:
                return seen, cut

    small, _ = await every_project(35)
    fit = service_module.fit_within_budget
    monkeypatch.setattr(service_module, "fit_within_budget", lambda output: fit(output, 6_000))  # the sandbox is small
    large, cut = await every_project(200)
    assert cut, "a 200-project page should exceed the size budget, or this test proves nothing"
    assert sorted(large) == sorted(small) and len(set(large)) == len(large)


async def test_the_rest_of_a_cut_page_comes_whole_even_when_the_limit_changes(mcp_client: Client) -> None:
    first = (await mcp_client.call_tool("linear_list_issues", {"limit": 100, "verbose": True})).structured_content or {}
    assert first["truncated"], "the verbose page should exceed the size budget, or this test proves nothing"
    seen, cursor, limits = [i["identifier"] for i in first["issues"]], first["next_cursor"], iter([50, 1, 1, 7] + [100] * 20)
    while cursor:
        arguments = {"limit": next(limits), "verbose": True, "cursor": cursor}
        page = (await mcp_client.call_tool("linear_list_issues", arguments)).structured_content or {}
        seen += [i["identifier"] for i in page["issues"]]
        cursor = page.get("next_cursor")
    everything, cursor = [], None
    while True:
        page = (await mcp_client.call_tool("linear_list_issues", {"limit": 25, **({"cursor": cursor} if cursor else {})})).structured_content or {}
        everything += [i["identifier"] for i in page["issues"]]
        if not (cursor := page.get("next_cursor")):
            break
    assert seen == everything
