"""Notion: connector and tools against the sandbox; requests checked against Notion's OpenAPI, and
responses against the field names @notionhq/client's types declare (its 200 schemas are bare objects)."""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from inline_snapshot import snapshot
from mcp import Client
from notion_client import APIResponseError
from notion_client import Client as NotionClient
from notion_client.helpers import collect_paginated_api
from pydantic import SecretStr

from connectors import notion as connector
from connectors.base import encode_cursor
from sophia_mcp.config import Settings
from sophia_mcp.errors import BadInput, NotFound, RateLimited, UpstreamUnauthorized
from sophia_mcp.sandbox import Fault, running_sandbox
from sophia_mcp.sandbox.notion import TOKEN, dataset, nid
from tests.conftest import Sandbox
from tests.contract.openapi import OpenAPISpec

pytestmark = pytest.mark.anyio

BASE = "http://sandbox.test/notion"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Notion-Version": "2025-09-03"}


class SdkTypes:
    """Required keys per Notion object, read from the `type X = {...}` declarations of the SDK's .d.ts files."""

    def __init__(self, folder: Path) -> None:
        text = re.sub(
            r"/\*.*?\*/", "", "\n".join(p.read_text() for p in sorted(folder.glob("*.d.ts"))), flags=re.DOTALL
        )
        self.types: dict[str, str] = {}
        for match in re.finditer(r"^(?:export )?type (\w+) = ", text, re.MULTILINE):
            depth, end = 0, match.end()
            while depth or text[end] != ";":
                depth += (text[end] in "{([<") - (text[end] in "})]>")
                end += 1
            self.types[match.group(1)] = text[match.end() : end].strip()

    def members(self, name_or_body: str) -> dict[str, str] | None:
        """`{key: type}` of an object literal type (by name or inline), None for unions and the like."""
        body = self.types.get(name_or_body, name_or_body)
        if not body.startswith("{") or not body.endswith("}"):
            return None
        found, depth, start = {}, 0, 1
        for i, ch in enumerate(body):
            depth += (ch in "{([<") - (ch in "})]>")
            if (ch == ";" and depth == 1) or (ch == "}" and depth == 0):
                key, _, kind = body[start:i].strip().partition(":")
                if key:
                    found[key.strip()] = kind.strip()
                start = i + 1
        return found

    def required(self, name: str) -> dict[str, str]:
        return {k: v for k, v in (self.members(name) or {}).items() if not k.endswith("?")}

    @cached_property
    def block_types(self) -> dict[str, str]:
        union = [n.strip() for n in self.types["BlockObjectResponse"].split("|")]
        return {self.required(n)["type"].strip('"'): n for n in union}

    def expected(self, node: dict[str, Any]) -> list[str]:
        kind = node.get("object")
        if kind == "user":
            if set(node) == {"object", "id"}:
                return ["PartialUserObjectResponse"]
            return [
                "UserObjectResponseCommon",
                "PersonUserObjectResponse" if node.get("type") == "person" else "BotUserObjectResponse",
            ]
        if kind in ("page", "data_source", "database"):
            if set(node) == {"object", "id"}:
                return []
            return [
                {
                    "page": "PageObjectResponse",
                    "data_source": "DataSourceObjectResponse",
                    "database": "DatabaseObjectResponse",
                }[kind]
            ]
        if kind == "block":
            return [self.block_types[node["type"]]]
        if kind == "list":
            return [
                {
                    "block": "ListBlockChildrenResponse",
                    "user": "ListUsersResponse",
                    "page_or_data_source": "SearchResponse",
                    "property_item": "PropertyItemPropertyItemListResponse",
                }[node["type"]]
            ]
        if "plain_text" in node and "annotations" in node:
            rich = {
                "text": "TextRichTextItemResponse",
                "mention": "MentionRichTextItemResponse",
                "equation": "EquationRichTextItemResponse",
            }
            return ["RichTextItemResponseCommon", rich[node["type"]]]
        return []

    def problems(self, value: Any, where: str = "$") -> list[str]:
        if isinstance(value, list):
            return [p for i, v in enumerate(value) for p in self.problems(v, f"{where}[{i}]")]
        if not isinstance(value, dict):
            return []
        found = []
        for name in self.expected(value):
            for key, kind in self.required(name).items():
                if key not in value:
                    found.append(f"{where}: {name} requires {key!r}")
                elif kind.startswith('"') and value[key] != kind.strip('"'):
                    found.append(f"{where}.{key}: {name} declares {kind}, got {value[key]!r}")
            if value.get("object") == "block":
                content = self.members(self.required(name)[value["type"]]) or {}
                found += [
                    f"{where}.{value['type']}: requires {k!r}"
                    for k in content
                    if not k.endswith("?") and k not in value[value["type"]]
                ]
        if value.get("object") == "page" and "properties" in value:
            found += [
                f"{where}.properties.{n}: needs id, type and its value"
                for n, v in value["properties"].items()
                if not {"id", "type", v.get("type")} <= set(v)
            ]
        if value.get("object") == "data_source" and "properties" in value:
            common = set(self.required("DatabasePropertyConfigResponseCommon"))
            found += [
                f"{where}.properties.{n}: needs {common} and its type's config"
                for n, v in value["properties"].items()
                if not common | {"type", v.get("type")} <= set(v)
            ]
        if value.get("type") == "bot" and value.get("bot"):
            found += [
                f"{where}.bot: BotInfoResponse requires {k!r}"
                for k in self.required("BotInfoResponse")
                if k not in value["bot"]
            ]
        for key, child in value.items():
            found += self.problems(child, f"{where}.{key}")
        return found


@pytest.fixture(scope="module")
def sdk(specs_dir: Path) -> SdkTypes:
    return SdkTypes(specs_dir / "notion" / "sdk-types")


@pytest.fixture(scope="module")
def spec(specs_dir: Path) -> OpenAPISpec:
    return OpenAPISpec(specs_dir / "notion" / "notion.trimmed.json", mount="/notion")


def notion_of(sandbox: Sandbox, **settings: object) -> connector.NotionConnector:
    found = sandbox.service(**settings).connector("notion")
    assert isinstance(found, connector.NotionConnector)
    return found


def initiative_page(key: str) -> str:
    return nid("page", "initiative", key)


def data_source(title: str) -> str:
    return next(s["id"] for s in dataset()["sources"].values() if s["title"][0]["plain_text"] == title)


def test_the_shape_check_reads_the_sdk_types_and_catches_a_missing_field(sdk: SdkTypes) -> None:
    assert set(sdk.required("PageObjectResponse")) == snapshot(
        {
            "object",
            "id",
            "created_time",
            "last_edited_time",
            "in_trash",
            "archived",
            "is_archived",
            "is_locked",
            "url",
            "public_url",
            "parent",
            "properties",
            "icon",
            "cover",
            "created_by",
            "last_edited_by",
        }
    )
    assert len(sdk.block_types) == 37
    page = dict(next(iter(dataset()["pages"].values())))
    assert sdk.problems(page) == []
    del page["is_locked"]
    assert sdk.problems(page) == ["$: PageObjectResponse requires 'is_locked'"]
    paragraph = next(b for b in dataset()["blocks"].values() if b["type"] == "paragraph")
    broken = {**paragraph, "paragraph": {"rich_text": paragraph["paragraph"]["rich_text"], "color": "default"}}
    assert sdk.problems(broken) == ["$.paragraph: requires 'icon'"]


async def test_requests_sent_while_using_every_tool_are_documented_and_answers_have_the_sdk_fields(
    sandbox: Sandbox, mcp_client: Client, spec: OpenAPISpec, sdk: SdkTypes
) -> None:
    projects = data_source("Northwind Projects")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_projects", {"platforms": ["notion"], "limit": 5}),
        ("search", {"query": "fleet", "platforms": ["notion"]}),
        ("notion_search", {"query": "meeting", "kind": "page", "limit": 3}),
        (
            "notion_query_data_source",
            {
                "data_source_id": projects,
                "filter_property": "Status",
                "filter_value": "Active",
                "sort_property": "Name",
                "limit": 3,
            },
        ),
        ("notion_get_page", {"page_id": initiative_page("fleet-navigation")}),
        ("notion_get_page_markdown", {"page_id": initiative_page("fleet-navigation")}),
        ("notion_list_users", {"limit": 5}),
    ]
    for name, arguments in calls:
        result = await mcp_client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)
    assert await notion_of(sandbox).check()

    exchanges = [(r, a) for r, a in sandbox.transport.exchanges if r.url.path.startswith("/notion/")]
    operations = set()
    for request, response in exchanges:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["notion-version"] == "2025-09-03"
        assert spec.request_problems(request) == [], request.url
        operations.add(spec.operation(request.method, request.url.path)[1]["operationId"])  # type: ignore[index]
        assert response.status_code == 200, response.text
        assert sdk.problems(response.json()) == [], request.url
    assert operations == {
        "post-search",
        "retrieve-a-data-source",
        "query-data-source",
        "retrieve-a-page",
        "get-block-children",
        "get-users",
        "get-self",
    }


async def test_every_sandbox_endpoint_answers_with_the_sdk_fields(
    sandbox: Sandbox, spec: OpenAPISpec, sdk: SdkTypes
) -> None:
    client = notion_of(sandbox).client
    database = next(iter(dataset()["databases"]))
    some_user = dataset()["users"][0]["id"]
    table = next(b["id"] for b in dataset()["blocks"].values() if b["type"] == "table")
    for method, path, body in (
        ("GET", f"/v1/databases/{database}", None),
        ("GET", f"/v1/data_sources/{data_source('Northwind Projects')}", None),
        ("GET", f"/v1/blocks/{table}", None),
        ("GET", f"/v1/blocks/{initiative_page('sim-lab')}", None),
        ("GET", f"/v1/blocks/{table}/children?page_size=2", None),
        ("GET", f"/v1/users/{some_user}", None),
        ("GET", "/v1/users/me", None),
        (
            "POST",
            "/v1/search",
            {"query": "tasks", "filter": {"property": "object", "value": "data_source"}, "page_size": 3},
        ),
        (
            "POST",
            f"/v1/data_sources/{data_source('Simulation Lab Tasks')}/query",
            {"sorts": [{"property": "Due", "direction": "descending"}], "page_size": 4},
        ),
    ):
        response = await client.request(method, f"{BASE}{path}", json=body, headers=HEADERS)
        assert response.status_code == 200, (path, response.text)
        assert spec.request_problems(response.request) == [], path
        assert sdk.problems(response.json()) == [], path


async def test_data_sources_are_the_projects_and_page_without_duplicates(sandbox: Sandbox) -> None:
    notion = notion_of(sandbox)
    seen, cursor = [], None
    while True:
        page = await notion.list_projects(None, 4, cursor)
        seen.extend(page.items)
        if (cursor := page.next_cursor) is None:
            break
        assert not re.fullmatch(r"[0-9a-f-]{36}", cursor)  # ours wraps Notion's, it is not Notion's
    assert len(seen) == len({p.id for p in seen}) == 15
    assert {p.status for p in seen} == {"active"}
    projects = next(p for p in seen if p.name == "Northwind Projects")
    assert projects.model_dump(exclude={"id", "url"}) == snapshot(
        {
            "platform": "notion",
            "name": "Northwind Projects",
            "status": "active",
            "status_raw": None,
            "owner": None,
            "team": None,
            "description": None,
            "start_date": None,
            "target_date": None,
            "progress": None,
            "created_at": "2025-10-16T09:00:00.000Z",
            "updated_at": "2025-10-16T09:00:00.000Z",
        }
    )
    bodies = [r.content for r in sandbox.transport.requests("notion")]
    assert all(b'"filter":{"property":"object","value":"data_source"}' in b for b in bodies)


def test_a_data_source_in_the_trash_counts_as_canceled() -> None:
    record = {**dataset()["sources"][data_source("Northwind Projects")], "in_trash": True}
    assert (connector.to_project(record).status, connector.to_project(record).status_raw) == ("canceled", "in trash")


async def test_search_pages_through_everything_once(mcp_client: Client) -> None:
    ids, cursor, calls = [], None, 0
    while True:
        result = (
            await mcp_client.call_tool("notion_search", {"kind": "page", "limit": 50, "cursor": cursor})
        ).structured_content
        ids += [r["id"] for r in result["results"]]
        calls += 1
        if (cursor := result["next_cursor"]) is None:
            break
    assert len(ids) == len(set(ids)) == len(dataset()["pages"]) and calls == 3


async def test_query_filters_use_the_property_type_notion_expects(sandbox: Sandbox, mcp_client: Client) -> None:
    projects, tasks = data_source("Northwind Projects"), data_source("Fleet Navigation v2 Tasks")
    owner = dataset()["users"][1]["id"]  # Ben Lindqvist
    cases = [
        (projects, {"filter_property": "status", "filter_value": "Paused"}),
        (projects, {"filter_property": "Customer", "filter_value": "harbor", "match": "contains"}),
        (projects, {"filter_property": "Owner", "filter_value": owner}),
        (projects, {"filter_property": "Progress", "filter_value": "1"}),
        (
            tasks,
            {
                "filter_property": "Status",
                "filter_value": "Done",
                "sort_property": "Due",
                "sort_direction": "descending",
            },
        ),
        (tasks, {"filter_property": "ID", "filter_value": "3"}),
    ]
    found = []
    for source, arguments in cases:
        result = (
            await mcp_client.call_tool("notion_query_data_source", {"data_source_id": source, **arguments})
        ).structured_content
        found.append([p["title"] for p in result["pages"]])
    assert found == snapshot(
        [
            ["Underground Haulage"],
            ["Fleet Navigation v2", "Over-the-Air Updates"],
            ["Fleet Navigation v2", "Underground Haulage"],
            ["Polar Warehouse Pilot", "Over-the-Air Updates"],
            [
                "Prototype on the test track",
                "Fix flaky integration test",
                "Accessibility pass on the console",
                "Load test with 50 robots",
                "Document the operator runbook",
            ],
            ["Fix flaky integration test"],
        ]
    )
    sent = [
        json.loads(r.content)["filter"] for r in sandbox.transport.requests("notion") if r.url.path.endswith("/query")
    ]
    assert sent == snapshot(
        [
            {"property": "Status", "select": {"equals": "Paused"}},
            {"property": "Customer", "rich_text": {"contains": "harbor"}},
            {"property": "Owner", "people": {"contains": owner}},
            {"property": "Progress", "number": {"equals": 1}},
            {"property": "Status", "status": {"equals": "Done"}},
            {"property": "ID", "unique_id": {"equals": 3}},
        ]
    )


async def test_a_database_id_or_url_queries_its_one_data_source(sandbox: Sandbox) -> None:
    notion = notion_of(sandbox)
    database = next(d for d in dataset()["databases"].values() if d["title"][0]["plain_text"] == "Northwind Projects")
    by_source = await connector.query_data_source(
        notion, connector.QueryInput(data_source_id=data_source("Northwind Projects"), limit=5)
    )
    by_database = await connector.query_data_source(
        notion, connector.QueryInput(data_source_id=database["url"] + "?v=148104cd477e80bb928f000ce197ddf2", limit=5)
    )
    assert by_database.pages == by_source.pages and len(by_source.pages) == 5
    with pytest.raises(NotFound, match="Could not find data source"):
        await connector.query_data_source(notion, connector.QueryInput(data_source_id="0" * 32))


async def test_query_refuses_unknown_properties_and_impossible_filters_plainly(sandbox: Sandbox) -> None:
    notion = notion_of(sandbox)
    projects = data_source("Northwind Projects")
    with pytest.raises(BadInput, match="no property 'Stage'.*Name, Status, Owner"):
        await connector.query_data_source(
            notion, connector.QueryInput(data_source_id=projects, filter_property="Stage", filter_value="x")
        )
    with pytest.raises(BadInput, match="select property, which this tool cannot filter with 'contains'"):
        await connector.query_data_source(
            notion,
            connector.QueryInput(
                data_source_id=projects, filter_property="Status", filter_value="Act", match="contains"
            ),
        )
    with pytest.raises(BadInput, match="Could not find property with name or id: Nope"):
        await connector.query_data_source(notion, connector.QueryInput(data_source_id=projects, sort_property="Nope"))


@pytest.mark.parametrize(
    ("source", "name", "value", "refusal"),
    [
        ("Fleet Navigation v2 Tasks", "Due", "notadate", r"'Due' is a date property.*'notadate'.*2026-11-01"),
        ("Fleet Navigation v2 Tasks", "due", "2026-13-45", r"'Due' is a date property.*'2026-13-45'.*2026-11-01"),
        ("Northwind Projects", "Progress", "ten", r"'Progress' is a number property.*'ten'.*0\.5 for 50%"),
        ("Northwind Projects", "Deal size", "nan", r"'Deal size' is a number property.*'nan'.*42"),
        ("Fleet Navigation v2 Tasks", "ID", "NAV-3", r"'ID' is a unique_id property.*'NAV-3'.*3 for NAV-3"),
    ],
)
async def test_a_filter_value_the_property_cannot_hold_is_refused_with_an_example_before_querying(
    sandbox: Sandbox, source: str, name: str, value: str, refusal: str
) -> None:
    with pytest.raises(BadInput, match=refusal):
        await connector.query_data_source(
            notion_of(sandbox),
            connector.QueryInput(data_source_id=data_source(source), filter_property=name, filter_value=value),
        )
    assert not [r for r in sandbox.transport.requests("notion") if r.url.path.endswith("/query")]


def test_filter_values_are_read_as_the_property_type_holds_them() -> None:
    due, done = {"name": "Due", "type": "date", "date": {}}, {"name": "Done", "type": "checkbox", "checkbox": {}}
    size = {"name": "Size", "type": "number", "number": {"format": "number"}}
    assert [
        connector.filter_condition(due, "equals", "2026-09-07"),
        connector.filter_condition(due, "equals", "2026-09-07T09:30:00Z"),
        connector.filter_condition(done, "equals", "Yes"),
        connector.filter_condition(done, "equals", "unchecked"),
        connector.filter_condition(size, "equals", "2.5"),
        connector.filter_condition(size, "equals", "-3"),
    ] == [
        {"property": "Due", "date": {"equals": "2026-09-07"}},
        {"property": "Due", "date": {"equals": "2026-09-07T09:30:00+00:00"}},
        {"property": "Done", "checkbox": {"equals": True}},
        {"property": "Done", "checkbox": {"equals": False}},
        {"property": "Size", "number": {"equals": 2.5}},
        {"property": "Size", "number": {"equals": -3}},
    ]
    with pytest.raises(BadInput, match=r"'Done' is a checkbox property.*'maybe'.*true or false"):
        connector.filter_condition(done, "equals", "maybe")


async def test_properties_to_show_must_be_the_data_sources_own(sandbox: Sandbox) -> None:
    notion, projects = notion_of(sandbox), data_source("Northwind Projects")
    with pytest.raises(
        BadInput, match=r"no property 'Nope' or 'Stage' in this data source; it has: Name, Status, Owner"
    ):
        await connector.query_data_source(
            notion, connector.QueryInput(data_source_id=projects, properties=["Status", "Nope", "Stage"])
        )
    shown = await connector.query_data_source(
        notion, connector.QueryInput(data_source_id=projects, properties=["status", "progress"], limit=3)
    )
    assert [set(p.properties) for p in shown.pages] == [{"Status", "Progress"}] * 3


async def test_query_results_page_without_duplicates_and_can_show_only_some_properties(mcp_client: Client) -> None:
    arguments = {"data_source_id": data_source("Northwind Projects"), "limit": 5, "properties": ["Status"]}
    titles, cursor = [], None
    while True:
        result = (
            await mcp_client.call_tool("notion_query_data_source", {**arguments, "cursor": cursor})
        ).structured_content
        titles += [p["title"] for p in result["pages"]]
        assert all(set(p["properties"]) == {"Status"} for p in result["pages"])
        if (cursor := result["next_cursor"]) is None:
            break
    assert len(titles) == len(set(titles)) == 14


async def test_a_page_comes_with_its_properties_as_short_text(mcp_client: Client) -> None:
    result = (
        await mcp_client.call_tool("notion_get_page", {"page_id": initiative_page("warehouse-pilot").replace("-", "")})
    ).structured_content
    assert result["page"]["properties"] == snapshot(
        {
            "Name": "Polar Warehouse Pilot",
            "Status": "Completed",
            "Owner": "Hana Sato",
            "Team": "Fleet",
            "Dates": "2026-08-20 → 2027-02-26",
            "Customer": "Polar Cold Storage",
            "Code": "WHP",
            "Progress": "1",
            "Deal size": "390000",
        }
    )
    assert result["page"]["url"].startswith("https://www.notion.so/Polar-Warehouse-Pilot-")
    assert result["parent"] == f"data source {data_source('Northwind Projects')}"


def long_lists(monkeypatch: pytest.MonkeyPatch, page_id: str, related: int, owners: int) -> None:
    """Give a sandbox page `related` Initiative relations (task pages) or `owners` Owner people (project pages)."""
    properties = dataset()["pages"][page_id]["properties"]
    if "Initiative" in properties:
        value = [{"id": nid("page", "related", n)} for n in range(related)]
        monkeypatch.setitem(properties, "Initiative", {**properties["Initiative"], "relation": value})
    if "Owner" in properties:
        people = [dataset()["users"][n % 10] for n in range(owners)]
        monkeypatch.setitem(properties, "Owner", {**properties["Owner"], "people": people})


async def test_list_properties_past_notions_25_come_whole_from_the_property_endpoint(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, spec: OpenAPISpec, sdk: SdkTypes
) -> None:
    task, project = nid("page", "task", "NAV-1"), initiative_page("fleet-navigation")
    long_lists(monkeypatch, task, related=130, owners=0)
    long_lists(monkeypatch, project, related=0, owners=30)
    served = (await notion_of(sandbox).client.get(f"{BASE}/v1/pages/{task}", headers=HEADERS)).json()
    assert (len(served["properties"]["Initiative"]["relation"]), served["properties"]["Initiative"]["has_more"]) == (
        25,
        True,
    )
    notion = notion_of(sandbox)
    relation = (await connector.get_page(notion, connector.GetPageInput(page_id=task))).page.properties["Initiative"]
    owners = (await connector.get_page(notion, connector.GetPageInput(page_id=project))).page.properties["Owner"]
    assert relation and relation.endswith("… (130 in all)") and relation.startswith(nid("page", "related", 0))
    assert owners and owners.endswith("… (30 in all)")
    reads = [(r, a) for r, a in sandbox.transport.exchanges if "/properties/" in r.url.path]
    assert [r.url.params.get("start_cursor") for r, _ in reads] == [None, "100", None]
    for request, answer in reads:
        assert spec.request_problems(request) == [] and sdk.problems(answer.json()) == []


async def test_list_properties_left_at_25_say_so(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    task = nid("page", "task", "NAV-1")
    long_lists(monkeypatch, task, related=30, owners=0)
    monkeypatch.setattr(connector, "PROPERTY_REQUESTS", 0)  # a request budget already spent
    found = await connector.query_data_source(
        notion_of(sandbox),
        connector.QueryInput(data_source_id=dataset()["pages"][task]["parent"]["data_source_id"], limit=100),
    )
    row = next(p for p in found.pages if p.id == task)
    assert row.properties["Initiative"] and row.properties["Initiative"].endswith("(the first 25; more not loaded)")
    assert found.truncated and found.note and "notion_get_page" in found.note


@pytest.mark.parametrize("kind", ["formula", "rollup"])
def test_a_computed_date_reads_like_a_date(kind: str) -> None:
    span = {
        "type": kind,
        kind: {"type": "date", "date": {"start": "2026-11-01", "end": "2026-11-05", "time_zone": None}},
    }
    day = {"type": kind, kind: {"type": "date", "date": {"start": "2026-11-01", "end": None, "time_zone": None}}}
    assert connector.property_text(span) == "2026-11-01 → 2026-11-05"
    assert connector.property_text(day) == "2026-11-01"


async def test_a_page_reads_as_markdown_with_nested_blocks(mcp_client: Client) -> None:
    meeting = nid("page", "meeting", "ota-updates")
    result = (await mcp_client.call_tool("notion_get_page_markdown", {"page_id": meeting})).structured_content
    assert (result["title"], result["truncated"], result["note"], result["blocks"]) == (
        "Meeting notes: Over-the-Air Updates",
        False,
        None,
        4,
    )
    assert result["markdown"] == snapshot(
        """\
## Kickoff, 2026-10-08

Attendees: @Ivan Petrov, @Ada Okafor

- Decision: Signed, staged firmware rollouts with automatic rollback.
- [x] Share the spec with the customer\
"""
    )


async def test_long_nested_lists_are_read_through_notions_pages(sandbox: Sandbox, mcp_client: Client) -> None:
    result = (
        await mcp_client.call_tool("notion_get_page_markdown", {"page_id": initiative_page("fleet-navigation")})
    ).structured_content
    assert result["markdown"].count("\n  Run ") == 0 and result["markdown"].count("Run ") == 130
    assert result["note"] is None and not result["truncated"]
    toggle = next(
        b["id"]
        for b in dataset()["blocks"].values()
        if b["type"] == "toggle" and b["toggle"]["rich_text"][0]["plain_text"] == "Field test log"
    )
    pages = [r for r in sandbox.transport.requests("notion") if r.url.path == f"/notion/v1/blocks/{toggle}/children"]
    assert [r.url.params.get("start_cursor") is not None for r in pages] == [False, True]
    assert all(r.url.params["page_size"] == "100" for r in pages)


async def test_depth_and_request_limits_cut_plainly(mcp_client: Client) -> None:
    page = initiative_page("fleet-navigation")
    shallow = (
        await mcp_client.call_tool("notion_get_page_markdown", {"page_id": page, "max_depth": 1})
    ).structured_content
    assert shallow["truncated"] and "nested content below depth 1 (raise max_depth)" in shallow["note"]
    assert (
        "- Move from 62% to 100% by **2026-12-20**\n  *(nested content below depth 1 not loaded)*"
        in shallow["markdown"]
    )
    assert "Run 1:" not in shallow["markdown"]
    thrifty = (
        await mcp_client.call_tool("notion_get_page_markdown", {"page_id": page, "max_requests": 3})
    ).structured_content
    assert "the budget of 3 requests ran out (raise max_requests)" in thrifty["note"]
    assert "*(more nested content not loaded: request budget spent)*" in thrifty["markdown"]
    assert thrifty["blocks"] < result_blocks(page)


def result_blocks(page_id: str) -> int:
    children = dataset()["children"]

    def count(block_id: str) -> int:
        return sum(
            1 + (count(b["id"]) if b["type"] not in ("child_page", "child_database") else 0)
            for b in children.get(block_id, [])
        )

    return count(page_id)


async def test_users_page_through_people_and_bots(mcp_client: Client) -> None:
    users, cursor = [], None
    while True:
        result = (await mcp_client.call_tool("notion_list_users", {"limit": 5, "cursor": cursor})).structured_content
        users += result["users"]
        if (cursor := result["next_cursor"]) is None:
            break
    assert len(users) == len({u["id"] for u in users}) == 12
    assert [u["name"] for u in users if u["type"] == "bot"] == ["Sophia (Northwind)", "Slack sync"]
    assert users[0] == {
        "id": users[0]["id"],
        "name": "Ada Okafor",
        "type": "person",
        "email": "ada.okafor@northwind.example",
    }


async def test_a_limit_over_notions_hundred_asks_for_a_hundred_and_pages_on(sandbox: Sandbox) -> None:
    service = sandbox.service()
    projects = await service.platform_projects("notion", limit=101)  # GET /api/v4/mcp/notion/projects?limit=101
    assert len(projects.projects) == 15 and projects.next_cursor is None
    notion = service.connector("notion")
    assert isinstance(notion, connector.NotionConnector)
    assert len((await notion.list_projects(None, 200, None)).items) == 15
    assert len(await notion.search("", 200)) == 100
    ids, cursor, calls = [], None, 0
    while True:  # a limit over 100 gets pages of 100, each continuing where the last stopped
        args = connector.SearchInput(kind="page", cursor=cursor).model_copy(update={"limit": 200})  # type: ignore[call-arg]
        found = await connector.search(notion, args)
        ids += [r.id for r in found.results]
        calls += 1
        if (cursor := found.next_cursor) is None:
            break
    assert len(ids) == len(set(ids)) == len(dataset()["pages"]) and calls == 2
    query = connector.QueryInput(data_source_id=data_source("Northwind Projects"))  # type: ignore[call-arg]
    assert len((await connector.query_data_source(notion, query.model_copy(update={"limit": 200}))).pages) == 14
    users = connector.PageInput().model_copy(update={"limit": 200})  # type: ignore[call-arg]
    assert len((await connector.list_users(notion, users)).users) == 12
    for request in sandbox.transport.requests("notion"):
        size = json.loads(request.content).get("page_size") if request.content else request.url.params.get("page_size")
        assert size is None or int(size) <= 100, request.url


@pytest.mark.parametrize(
    "value",
    [
        "3602d3c0-fb3b-5cf3-8acf-cbc9a43f5c53",
        "3602d3c0fb3b5cf38acfcbc9a43f5c53",
        "https://www.notion.so/northwind/Fleet-Navigation-v2-3602d3c0fb3b5cf38acfcbc9a43f5c53?pvs=4",
        "https://www.notion.so/northwind/3602d3c0fb3b5cf38acfcbc9a43f5c53?v=148104cd477e80bb928f000ce197ddf2",
        "https://www.notion.so/northwind/Spec-3602d3c0fb3b5cf38acfcbc9a43f5c53#248104cd477e80fdb757e945d38000bd",
        "https://www.notion.so/northwind/248104cd477e80fdb757e945d38000bd?v=1481&p=3602d3c0fb3b5cf38acfcbc9a43f5c53&pm=s",
    ],
)
def test_ids_come_with_or_without_dashes_or_inside_a_url(value: str) -> None:
    assert connector.notion_id(value) == "3602d3c0-fb3b-5cf3-8acf-cbc9a43f5c53"


def test_a_non_id_is_refused() -> None:
    with pytest.raises(BadInput, match="not a Notion page id"):
        connector.notion_id("Fleet Navigation", "page id")


async def test_a_wrong_token_says_which_setting_to_fix(sandbox: Sandbox) -> None:
    with pytest.raises(UpstreamUnauthorized, match="API token is invalid.*SOPHIA_NOTION_TOKEN"):
        await notion_of(sandbox, notion_token="ntn_wrong").list_projects(None, 5, None)


async def test_an_unshared_or_missing_page_is_not_found_with_notions_hint(sandbox: Sandbox) -> None:
    with pytest.raises(NotFound, match="shared with your integration"):
        await connector.get_page(notion_of(sandbox), connector.GetPageInput(page_id="0" * 32))


async def test_rate_limit_reports_notions_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.faults["notion"] = Fault(kind="rate_limit", retry_after=30)
    with pytest.raises(RateLimited, match="Retry after 30 s") as caught:
        await notion_of(sandbox).list_projects(None, 5, None)
    assert caught.value.retry_after == 30


async def test_the_sandbox_insists_on_the_notion_version_header_as_notion_does(sandbox: Sandbox) -> None:
    client = notion_of(sandbox).client
    missing = await client.get(f"{BASE}/v1/users", headers={"Authorization": f"Bearer {TOKEN}"})
    old = await client.get(f"{BASE}/v1/users", headers={**HEADERS, "Notion-Version": "2022-06-28"})
    assert (missing.status_code, missing.json()["code"]) == (400, "missing_version")
    assert (old.status_code, old.json()["code"]) == (400, "validation_error")
    too_big = await client.get(f"{BASE}/v1/users?page_size=101", headers=HEADERS)
    assert (too_big.status_code, too_big.json()["object"], too_big.json()["code"]) == (400, "error", "validation_error")


async def test_a_cursor_from_another_platform_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(BadInput, match="next_cursor"):
        await notion_of(sandbox).list_projects(None, 5, encode_cursor("asana", {"o": "x"}))


async def test_the_official_notion_client_works_against_the_sandbox() -> None:
    def use(base: str) -> tuple[int, list[str], int, int, str]:
        with NotionClient(auth=TOKEN, base_url=f"{base}/notion") as notion:
            sources = collect_paginated_api(
                notion.search, filter={"property": "object", "value": "data_source"}, page_size=4
            )
            projects = next(s for s in sources if s["title"][0]["plain_text"] == "Northwind Projects")
            active: dict[str, Any] = notion.data_sources.query(  # type: ignore[assignment]
                data_source_id=projects["id"],
                filter={"property": "Status", "select": {"equals": "Active"}},
                sorts=[{"property": "Name", "direction": "ascending"}],
            )
            names = [p["properties"]["Name"]["title"][0]["plain_text"] for p in active["results"]]
            navigation = next(
                p for p in active["results"] if p["properties"]["Code"]["rich_text"][0]["plain_text"] == "NAV"
            )
            blocks = collect_paginated_api(notion.blocks.children.list, block_id=navigation["id"], page_size=10)
            users = collect_paginated_api(notion.users.list, page_size=5)
        with (
            NotionClient(auth="ntn_wrong", base_url=f"{base}/notion") as stranger,
            pytest.raises(APIResponseError) as refused,
        ):
            stranger.users.me()
        return len(sources), names, len(blocks), len(users), refused.value.code.value

    async with running_sandbox() as (base, _):
        sources, names, blocks, users, refused = await anyio.to_thread.run_sync(use, base)
    assert sources == 15
    assert names == snapshot(
        [
            "Battery Health Monitoring",
            "Customer Portal",
            "Fleet Navigation v2",
            "Fleet Observability",
            "ISO 3691-4 Safety Certification",
            "Operator Console Design System",
            "Simulation Lab",
        ]
    )
    assert (blocks, users) == (26, 12)
    assert refused == "unauthorized"


async def test_a_nested_block_that_cannot_be_read_is_marked_not_fatal() -> None:
    page, synced = "1" * 32, "2" * 32

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == f"/v1/blocks/{connector.notion_id(page)}/children":
            results = [
                {
                    "object": "block",
                    "id": connector.notion_id(synced),
                    "type": "synced_block",
                    "has_children": True,
                    "synced_block": {"synced_from": {"type": "block_id", "block_id": "3" * 32}},
                },
                {
                    "object": "block",
                    "id": "4" * 32,
                    "type": "paragraph",
                    "has_children": False,
                    "paragraph": {"rich_text": [{"type": "text", "plain_text": "Still here"}]},
                },
            ]
            return httpx2.Response(
                200, json={"object": "list", "results": results, "has_more": False, "next_cursor": None}
            )
        message = "Could not find block with ID: 3333. Make sure the relevant pages and databases are shared."
        return httpx2.Response(
            404, json={"object": "error", "status": 404, "code": "object_not_found", "message": message}
        )

    settings = Settings(_env_file=None, notion_token=SecretStr("ntn_x"))  # type: ignore[call-arg]
    notion = connector.NotionConnector(settings, httpx2.MockTransport(handler))
    result = await connector.get_page_markdown(notion, connector.MarkdownInput(page_id=page))
    assert result.markdown == snapshot("""\
*(nested content not loaded: Notion answered 404 (not found); it may not be shared with the integration)*

Still here\
""")
