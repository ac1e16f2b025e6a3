"""Every tool's structured content conforms to the output schema it advertises, and its text is the
same data as compact JSON. (The server does not re-validate outputs per call; this test does.)"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from mcp import Client

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
