"""HubSpot: connector against the sandbox, both checked against ../shared/specs/hubspot/CONTRACT.md
(restated below as a table), and HubSpot's official Python client against the sandbox."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import httpx2
import pytest
from inline_snapshot import snapshot
from mcp import Client
from pydantic import SecretStr, ValidationError

from connectors import hubspot
from connectors.base import TokenBucket, encode_cursor
from sophia_mcp.errors import BadInput, Forbidden, NotFound, RateLimited, UpstreamUnauthorized, UpstreamUnavailable
from sophia_mcp.sandbox import Fault, running_sandbox
from sophia_mcp.sandbox.hubspot import DEALS_ONLY_TOKEN, TOKEN, crm
from tests.conftest import SANDBOX_URL, Sandbox
from tests.contract.prose import BOOLEAN, DATE_TIME, INTEGER, STRING, Operation, ProseContract, array, obj

pytestmark = pytest.mark.anyio

# -- CONTRACT.md, restated as data ----------------------------------------------------------------

OBJECT_TYPE = r"deals|companies|contacts|0-\d+"
OPERATORS = [
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
]
PROPERTY_VALUES = {"type": "object", "additionalProperties": {"type": ["string", "null"]}}
CRM_OBJECT = obj(
    {"id": STRING, "properties": PROPERTY_VALUES, "createdAt": DATE_TIME, "updatedAt": DATE_TIME, "archived": BOOLEAN},
    {"archivedAt": DATE_TIME, "associations": {"type": "object"}},
)
PAGING = obj({"next": obj({"after": STRING, "link": STRING})})
LIST_PAGE = obj({"results": array(CRM_OBJECT)}, {"paging": PAGING})
SEARCH_PAGE = obj({"total": INTEGER, "results": array(CRM_OBJECT)}, {"paging": PAGING})
FILTER = obj(
    {"propertyName": STRING, "operator": {"enum": OPERATORS}},
    {"value": STRING, "values": array(STRING), "highValue": STRING},
    closed=True,
)
SEARCH_BODY = obj(
    {},
    {
        "query": STRING,
        "filterGroups": array(obj({"filters": array(FILTER)}, closed=True), max_items=6),
        "sorts": array(
            {
                "anyOf": [
                    STRING,
                    obj({"propertyName": STRING, "direction": {"enum": ["ASCENDING", "DESCENDING"]}}, closed=True),
                ]
            }
        ),
        "properties": array(STRING),
        "limit": {"type": "integer", "minimum": 1, "maximum": 200},
        "after": STRING,
    },
    closed=True,
)
BATCH_READ_BODY = obj(
    {"inputs": array(obj({"id": STRING}, closed=True), min_items=1)}, {"properties": array(STRING)}, closed=True
)
STAGE = obj(
    {
        "id": STRING,
        "label": STRING,
        "displayOrder": INTEGER,
        "metadata": obj(
            {
                "probability": {"type": "string", "pattern": r"^(0(\.\d+)?|1(\.0+)?)$"},
                "isClosed": {"enum": ["true", "false"]},
            }
        ),
    }
)
PIPELINE = obj(
    {
        "id": STRING,
        "label": STRING,
        "displayOrder": INTEGER,
        "archived": BOOLEAN,
        "stages": array(STAGE),
        "createdAt": DATE_TIME,
        "updatedAt": DATE_TIME,
    }
)
ERROR = obj(
    {
        "status": {"const": "error"},
        "message": STRING,
        "correlationId": {
            "type": "string",
            "pattern": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        },
        "category": STRING,
    },
    {"errors": array({"type": "object"}), "context": {"type": "object"}},
)
LIST_LIMIT = r"^(100|[1-9]\d?)$"  # default 10, at most 100
OPERATIONS = (
    Operation(
        "GET",
        "/crm/v3/objects/{objectType}",
        query=frozenset({"limit", "after", "properties", "archived", "associations"}),
        response=LIST_PAGE,
        path_params={"objectType": OBJECT_TYPE},
        query_values={"limit": LIST_LIMIT, "archived": "true|false"},
    ),
    Operation(
        "GET",
        "/crm/v3/objects/{objectType}/{objectId}",
        query=frozenset({"properties", "associations", "archived"}),
        response=CRM_OBJECT,
        path_params={"objectType": OBJECT_TYPE, "objectId": r"\d+"},
        query_values={"archived": "true|false"},
    ),
    Operation(
        "POST",
        "/crm/v3/objects/{objectType}/search",
        body=SEARCH_BODY,
        response=SEARCH_PAGE,
        path_params={"objectType": OBJECT_TYPE},
    ),
    Operation(
        "POST",
        "/crm/v3/objects/{objectType}/batch/read",
        body=BATCH_READ_BODY,
        response=obj({"results": array(CRM_OBJECT)}),  # CONTRACT gives no shape beyond objects
        path_params={"objectType": OBJECT_TYPE},
    ),
    Operation(
        "GET",
        "/crm/v3/pipelines/{objectType}",
        response=obj({"results": array(PIPELINE)}),
        path_params={"objectType": OBJECT_TYPE},
    ),
    Operation(
        "GET", "/crm/v3/pipelines/{objectType}/{pipelineId}", response=PIPELINE, path_params={"objectType": OBJECT_TYPE}
    ),
    Operation(
        "GET",
        "/crm/v3/pipelines/{objectType}/{pipelineId}/stages",
        response=obj({"results": array(STAGE)}),
        path_params={"objectType": OBJECT_TYPE},
    ),
)
CONTRACT = ProseContract(
    OPERATIONS, mount="/hubspot", auth=lambda header: re.fullmatch(r"Bearer \S+", header) is not None, error=ERROR
)


def connector_of(sandbox: Sandbox, **settings: object) -> hubspot.HubSpotConnector:
    connector = sandbox.service(**settings).connector("hubspot")
    assert isinstance(connector, hubspot.HubSpotConnector)
    return connector


def raw_client(sandbox: Sandbox, token: str = TOKEN) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=sandbox.transport, base_url=f"{SANDBOX_URL}/hubspot", headers={"Authorization": f"Bearer {token}"}
    )


# -- the connector sends only documented requests, and the sandbox answers as documented ------------


async def test_requests_sent_while_using_every_tool_follow_the_contract(sandbox: Sandbox, mcp_client: Client) -> None:
    projects = await mcp_client.call_tool("list_projects", {"platforms": ["hubspot"], "limit": 5})
    deal_id = projects.structured_content["projects"][0]["id"]
    first = await mcp_client.call_tool("hubspot_list_deals", {"limit": 4})
    calls: list[tuple[str, dict[str, Any]]] = [
        ("hubspot_list_deals", {"limit": 4, "cursor": first.structured_content["next_cursor"]}),
        ("hubspot_list_deals", {"status": "completed", "limit": 3}),
        ("hubspot_list_deals", {"pipeline": "Renewals & Expansion", "status": "active", "verbose": True}),
        ("hubspot_get_deal", {"id": deal_id}),
        (
            "hubspot_search_crm",
            {
                "object_type": "deals",
                "query": "Polar",
                "filters": [
                    {"property": "amount", "operator": "BETWEEN", "value": "100000", "high_value": "2000000"},
                    {"property": "closedate", "operator": "HAS_PROPERTY"},
                ],
                "sort_by": "amount",
                "properties": ["dealtype"],
                "limit": 200,
            },
        ),
        (
            "hubspot_search_crm",
            {
                "object_type": "companies",
                "filters": [{"property": "industry", "operator": "IN", "values": ["WAREHOUSING", "RETAIL"]}],
            },
        ),
        (
            "hubspot_search_crm",
            {"object_type": "contacts", "query": "maya", "sort_direction": "ASCENDING", "sort_by": "lastname"},
        ),
        ("hubspot_list_pipelines", {}),
        ("search", {"query": "Harbor", "platforms": ["hubspot"]}),
    ]
    for name, arguments in calls:
        result = await mcp_client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)
    assert "accepted" in await connector_of(sandbox).check()  # what platform_status(check=true) calls

    exchanges = [(q, r) for q, r in sandbox.transport.exchanges if q.url.path.startswith("/hubspot/")]
    used = set()
    for request, response in exchanges:
        assert CONTRACT.request_problems(request) == [], request.url
        assert CONTRACT.response_problems(request, response) == [], request.url
        assert response.status_code == 200, (request.url, response.text)
        used.add(CONTRACT.find(request)[0].name)  # type: ignore[index]
    assert used == {
        "GET /crm/v3/objects/{objectType}",
        "GET /crm/v3/objects/{objectType}/{objectId}",
        "POST /crm/v3/objects/{objectType}/search",
        "POST /crm/v3/objects/{objectType}/batch/read",
        "GET /crm/v3/pipelines/{objectType}",
    }


@pytest.mark.parametrize(
    ("token", "method", "path", "body", "status", "category"),
    [
        ("pat-na1-wrong", "GET", "/crm/v3/objects/deals", None, 401, "INVALID_AUTHENTICATION"),
        (DEALS_ONLY_TOKEN, "GET", "/crm/v3/objects/contacts", None, 403, "MISSING_SCOPES"),
        (TOKEN, "GET", "/crm/v3/objects/deals/12345", None, 404, "OBJECT_NOT_FOUND"),
        (TOKEN, "GET", "/crm/v3/objects/deals?limit=101", None, 400, "VALIDATION_ERROR"),
        (TOKEN, "POST", "/crm/v3/objects/deals/search", {"limit": 201}, 400, "VALIDATION_ERROR"),
        (
            TOKEN,
            "POST",
            "/crm/v3/objects/deals/search",
            {"filterGroups": [{"filters": []}] * 7},
            400,
            "VALIDATION_ERROR",
        ),
        (
            TOKEN,
            "POST",
            "/crm/v3/objects/deals/search",
            {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "LIKE", "value": "1"}]}]},
            400,
            "VALIDATION_ERROR",
        ),
        (
            TOKEN,
            "POST",
            "/crm/v3/objects/deals/search",
            {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]},
            400,
            "VALIDATION_ERROR",
        ),
        (
            TOKEN,
            "POST",
            "/crm/v3/objects/contacts/search",
            {"sorts": [{"propertyName": "nope", "direction": "ASCENDING"}]},
            400,
            "VALIDATION_ERROR",
        ),
        (TOKEN, "POST", "/crm/v3/objects/companies/search", {"sorts": ["-nope"]}, 400, "VALIDATION_ERROR"),
    ],
    ids=[
        "bad-token",
        "missing-scope",
        "unknown-object",
        "list-limit-over-100",
        "search-limit-over-200",
        "seven-filter-groups",
        "unknown-operator",
        "unknown-filter-property",
        "unknown-sort-property",
        "unknown-sort-property-as-text",
    ],
)
async def test_sandbox_errors_have_hubspots_body(
    sandbox: Sandbox, token: str, method: str, path: str, body: Any, status: int, category: str
) -> None:
    async with raw_client(sandbox, token) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == status
    assert CONTRACT.response_problems(response.request, response) == []
    assert response.json()["category"] == category


async def test_list_pages_carry_after_and_link_until_the_last(sandbox: Sandbox) -> None:
    seen: list[str] = []
    async with raw_client(sandbox) as client:
        params: dict[str, Any] = {"limit": 7}
        while True:
            page = (await client.get("/crm/v3/objects/deals", params=params)).json()
            seen.extend(d["id"] for d in page["results"])
            if "paging" not in page:
                break
            assert page["paging"]["next"]["link"].startswith(f"{SANDBOX_URL}/hubspot/crm/v3/objects/deals?")
            params = {"limit": 7, "after": page["paging"]["next"]["after"]}
        default = (await client.get("/crm/v3/objects/deals")).json()
    assert len(seen) == len(set(seen)) == 18
    assert seen == sorted(seen, key=int)
    assert len(default["results"]) == 10  # CONTRACT: limit defaults to 10
    assert set(default["results"][0]["properties"]) >= {"dealname", "amount", "dealstage", "pipeline", "closedate"}


# -- behaviour ----------------------------------------------------------------------------------------


async def test_deals_page_through_with_stage_labels_and_normalised_status(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    seen, cursor = [], None
    while True:
        page = await connector.list_projects(None, 5, cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({p.id for p in seen}) == 18
    assert {p.status for p in seen} == {"active", "completed", "canceled"}
    assert {p.team for p in seen} == {"Sales Pipeline", "Renewals & Expansion"}
    navigation = next(p for p in seen if "Fleet Navigation" in p.name)
    assert navigation.model_dump(exclude={"id", "url"}) == snapshot(
        {
            "platform": "hubspot",
            "name": "Harbor Logistics – Fleet Navigation v2",
            "status": "completed",
            "status_raw": "Closed won",
            "owner": None,
            "team": "Sales Pipeline",
            "description": "Amount 480,000. Rebuild path planning for mixed indoor/outdoor fleets.",
            "start_date": "2026-05-29",
            "target_date": "2026-07-23",
            "progress": None,
            "created_at": "2026-05-29T09:00:00.000Z",
            "updated_at": "2026-11-20T09:00:00.000Z",
        }
    )
    assert navigation.url == f"https://app.hubspot.com/l/contacts/record/0-3/{navigation.id}"


async def test_status_filter_is_a_hubspot_search_on_the_stages_with_that_outcome(sandbox: Sandbox) -> None:
    page = await connector_of(sandbox).list_projects("canceled", 50, None)
    assert sorted(p.name for p in page.items) == [
        "Bayview Airports – Terminal Cleaning Robots",
        "Greenleaf Farms – Harvest Assist",
        "Greenleaf Farms – Service Contract Renewal",
    ]
    search = [r for r in sandbox.transport.requests("hubspot") if r.url.path.endswith("/search")]
    body = json.loads(search[-1].content)
    churned = next(s["id"] for p in hubspot_pipelines() for s in p["stages"] if s["label"] == "Churned")
    assert body["filterGroups"] == [
        {"filters": [{"propertyName": "dealstage", "operator": "IN", "values": ["closedlost", churned]}]}
    ]


def hubspot_pipelines() -> list[dict[str, Any]]:
    return crm().pipelines


async def test_planned_or_paused_deals_do_not_exist_and_cost_no_search(sandbox: Sandbox) -> None:
    page = await connector_of(sandbox).list_projects("paused", 10, None)
    assert page.items == [] and page.next_cursor is None
    assert not [r for r in sandbox.transport.requests("hubspot") if r.url.path.endswith("/search")]


async def test_get_deal_brings_its_companies_and_contacts_once_each(mcp_client: Client) -> None:
    found = await mcp_client.call_tool("hubspot_search_crm", {"object_type": "deals", "query": "Fleet Navigation"})
    deal_id = found.structured_content["results"][0]["id"]
    result = (await mcp_client.call_tool("hubspot_get_deal", {"id": deal_id})).structured_content
    assert result["deal"]["name"] == "Harbor Logistics – Fleet Navigation v2"
    assert result["deal"]["probability"] == 1.0 and result["deal"]["stage_id"] == "closedwon"
    assert [(c["name"], c["domain"], c["industry"]) for c in result["companies"]] == [
        ("Harbor Logistics", "harborlogistics.example", "LOGISTICS_AND_SUPPLY_CHAIN")
    ]
    assert [(c["name"], c["email"], c["job_title"]) for c in result["contacts"]] == [
        ("Maya Chen", "maya.chen@harborlogistics.example", "Director of Ops")
    ]


async def test_get_deal_says_when_hubspot_pages_its_associations(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = crm()
    deal_id = next(iter(data.objects["deals"]))
    template = next(iter(data.objects["companies"].values()))
    extra = {str(90_000_000_000 + n): {**template, "id": str(90_000_000_000 + n)} for n in range(60)}
    monkeypatch.setitem(data.objects, "companies", {**data.objects["companies"], **extra})
    # 60 companies, each listed twice (labelled and unlabelled): 120 rows, past HubSpot's 100 a page
    rows = [(i, label) for i in extra for label in ("deal_to_company", "deal_to_company_unlabeled")]
    monkeypatch.setitem(
        data.associations, ("deals", deal_id), {**data.associations[("deals", deal_id)], "companies": rows}
    )
    detail = await hubspot.get_deal(connector_of(sandbox), hubspot.GetDealInput(id=deal_id))
    assert len(detail.companies) == 50 and len(detail.contacts) == 1
    assert detail.truncated
    assert detail.note is not None and "companies" in detail.note and "contacts" not in detail.note


async def test_search_crm_combines_query_filters_and_sort(mcp_client: Client) -> None:
    result = await mcp_client.call_tool(
        "hubspot_search_crm",
        {
            "object_type": "deals",
            "filters": [{"property": "amount", "operator": "GTE", "value": "500000"}],
            "sort_by": "amount",
            "sort_direction": "DESCENDING",
        },
    )
    content = result.structured_content
    assert content["total"] == len(content["results"]) == 5
    assert [r["summary"] for r in content["results"][:2]] == snapshot(
        ["Contract sent · 1,200,000 · closes 2026-12-15", "Decision maker bought-In · 950,000 · closes 2027-01-04"]
    )
    assert all(r["properties"] is None for r in content["results"])  # compact unless asked

    contacts = await mcp_client.call_tool(
        "hubspot_search_crm", {"object_type": "contacts", "query": "polarcold", "verbose": True}
    )
    [lars] = contacts.structured_content["results"]
    assert lars["name"] == "Lars Holm" and lars["properties"]["jobtitle"] == "Head of Automation"


async def test_search_pages_follow_hubspots_after(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    args = hubspot.SearchCrmInput(object_type="deals", query="Polar", limit=2)
    first = await hubspot.search_crm(connector, args)
    second = await hubspot.search_crm(connector, args.model_copy(update={"cursor": first.next_cursor}))
    assert first.total == second.total == 3
    assert len(first.results) == 2 and len(second.results) == 1 and second.next_cursor is None
    bodies = [json.loads(r.content) for r in sandbox.transport.requests("hubspot") if r.url.path.endswith("/search")]
    assert "after" not in bodies[0] and bodies[1]["after"] == "2"


@pytest.mark.parametrize(
    ("arguments", "common"),
    [
        ({"filters": [{"property": "nope", "value": "x"}]}, "dealname, amount, dealstage"),
        ({"object_type": "companies", "query": "Harbor", "sort_by": "nope"}, "name, domain, industry"),
        ({"object_type": "contacts", "properties": ["jobtitle", "nope"]}, "firstname, lastname, email"),
    ],
    ids=["filter", "sort", "properties"],
)
async def test_an_unknown_property_is_an_error_naming_it_and_the_common_ones(
    mcp_client: Client, arguments: dict[str, Any], common: str
) -> None:
    result = await mcp_client.call_tool("hubspot_search_crm", arguments)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    object_type = arguments.get("object_type", "deals")
    assert f"no {object_type} property 'nope'" in text
    assert common in text and "internal name" in text
    assert "'jobtitle'" not in text  # only the unknown one is blamed


async def test_hubspots_refusal_names_the_property_it_does_not_know_even_when_its_message_does_not() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = {"status": "error", "message": "There was a problem with the request.", "category": "VALIDATION_ERROR"}
        return httpx2.Response(400, json={**body, "correlationId": "00000000-0000-0000-0000-000000000000"})

    from sophia_mcp.config import Settings

    settings = Settings(_env_file=None, hubspot_token=SecretStr("pat-na1-x"))  # type: ignore[call-arg]
    connector = hubspot.HubSpotConnector(settings, httpx2.MockTransport(handler))
    args = hubspot.SearchCrmInput(
        filters=[
            hubspot.CrmFilter(property="dealname", value="Polar"),
            hubspot.CrmFilter(property="my_custom_score", operator="HAS_PROPERTY"),
        ]
    )
    with pytest.raises(BadInput) as caught:
        await hubspot.search_crm(connector, args)
    assert "There was a problem with the request." in caught.value.message
    assert "'my_custom_score'" in caught.value.message and "'dealname'" not in caught.value.message
    await connector.aclose()


@pytest.mark.parametrize(
    ("flt", "problem"),
    [
        ({"property": "amount", "operator": "GT", "value": "abc"}, "amount is a number"),
        ({"property": "closedate", "operator": "LT", "value": "next week"}, "closedate is a date"),
        ({"property": "amount", "operator": "BETWEEN", "value": "1", "high_value": "lots"}, "'lots'"),
        ({"property": "createdate", "operator": "IN", "values": ["2026-01-01", "soon"]}, "'soon'"),
    ],
    ids=["gt-text-on-number", "lt-text-on-date", "between-high-value", "in-values"],
)
async def test_a_value_that_is_no_number_or_date_is_refused_before_searching(
    sandbox: Sandbox, flt: dict[str, Any], problem: str
) -> None:
    args = hubspot.SearchCrmInput(filters=[hubspot.CrmFilter(**flt)])
    with pytest.raises(BadInput, match=r"needs a (number|date)") as caught:
        await hubspot.search_crm(connector_of(sandbox), args)
    assert problem in caught.value.message
    assert not [r for r in sandbox.transport.requests("hubspot") if r.url.path.endswith("/search")]


@pytest.mark.parametrize("value", ["2026-01-01", "2026-01-01T00:00:00Z", "1767225600000"])
async def test_dates_as_iso_or_epoch_milliseconds_are_accepted(sandbox: Sandbox, value: str) -> None:
    args = hubspot.SearchCrmInput(filters=[hubspot.CrmFilter(property="closedate", operator="GTE", value=value)])
    found = await hubspot.search_crm(connector_of(sandbox), args)
    assert found.total > 0


def test_search_limit_and_filters_are_bounded_by_the_schema() -> None:
    with pytest.raises(ValidationError):
        hubspot.SearchCrmInput(limit=201)
    with pytest.raises(ValidationError):
        hubspot.SearchCrmInput(filters=[hubspot.CrmFilter(property="amount", value="1")] * 7)
    with pytest.raises(ValidationError, match="IN needs `values`"):
        hubspot.CrmFilter(property="dealstage", operator="IN")
    with pytest.raises(ValidationError, match="BETWEEN needs"):
        hubspot.CrmFilter(property="amount", operator="BETWEEN", value="1")


async def test_search_stops_at_hubspots_ten_thousand_results_and_says_so() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        sent.append(body)
        results = [
            {
                "id": str(n),
                "properties": {"dealname": f"Deal {n}"},
                "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
                "archived": False,
            }
            for n in range(body["limit"])
        ]
        return httpx2.Response(
            200,
            json={"total": 25_000, "results": results, "paging": {"next": {"after": "10000", "link": "?after=10000"}}},
        )

    from sophia_mcp.config import Settings

    settings = Settings(_env_file=None, hubspot_token=SecretStr("pat-na1-x"))  # type: ignore[call-arg]
    connector = hubspot.HubSpotConnector(settings, httpx2.MockTransport(handler))
    cursor = encode_cursor("hubspot", {"via": "search", "after": "9900", "seen": 9_900})
    page = await connector.search_page("companies", properties=["name"], limit=200, cursor=cursor)
    assert sent[0]["limit"] == 100  # no request past the 10,000th result
    assert page.next_cursor is None
    assert page.note is not None and "10,000" in page.note and "25,000" in page.note
    await connector.aclose()


async def test_pipelines_list_stages_in_order_with_their_outcome(mcp_client: Client) -> None:
    result = (await mcp_client.call_tool("hubspot_list_pipelines", {})).structured_content
    renewals = result["pipelines"][1]
    assert [(s["label"], s["status"]) for s in renewals["stages"]] == snapshot(
        [
            ("Renewal identified", "active"),
            ("Renewal proposal sent", "active"),
            ("Renewed", "completed"),
            ("Churned", "canceled"),
        ]
    )


async def test_unknown_pipeline_name_lists_the_known_ones(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("hubspot_list_deals", {"pipeline": "Enterprise"})
    assert result.is_error
    assert "Sales Pipeline (default)" in result.content[0].text  # type: ignore[union-attr]


async def test_core_search_covers_deals_companies_and_contacts(sandbox: Sandbox) -> None:
    hits = await connector_of(sandbox).search("Harbor", 10)
    assert [h.kind for h in hits] == ["deal", "deal", "deal", "company", "contact"]  # the contact by its company
    hits = await connector_of(sandbox).search("maya", 10)
    assert [(h.kind, h.title) for h in hits] == [("contact", "Maya Chen")]


# -- errors -------------------------------------------------------------------------------------------


async def test_a_wrong_token_says_which_setting_to_fix(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox, hubspot_token="pat-na1-wrong")
    with pytest.raises(UpstreamUnauthorized, match="SOPHIA_HUBSPOT_TOKEN") as caught:
        await connector.list_projects(None, 5, None)
    assert "private app access token" in str(caught.value)
    assert "or an OAuth" not in str(caught.value)  # OAuth tokens expire in about 30 minutes; nothing refreshes them


async def test_a_missing_scope_is_named(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox, hubspot_token=DEALS_ONLY_TOKEN)
    deal_id = (await connector.list_projects(None, 1, None)).items[0].id
    with pytest.raises(Forbidden, match=r"crm\.objects\.(companies|contacts)\.read"):
        await hubspot.get_deal(connector, hubspot.GetDealInput(id=deal_id))


async def test_unknown_deal_is_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(NotFound, match="hubspot_list_deals"):
        await hubspot.get_deal(connector_of(sandbox), hubspot.GetDealInput(id="1"))


async def test_a_429_with_retry_after_is_reported_with_the_wait(sandbox: Sandbox) -> None:
    sandbox.state.faults["hubspot"] = Fault(kind="rate_limit", retry_after=42)
    with pytest.raises(RateLimited) as caught:
        await connector_of(sandbox).list_projects(None, 5, None)
    assert caught.value.retry_after == 42


async def test_the_sandbox_enforces_the_ten_second_limit_with_hubspots_headers(sandbox: Sandbox) -> None:
    async with raw_client(sandbox) as client:
        first = await client.get("/crm/v3/pipelines/deals")
        for _ in range(189):
            await client.get("/crm/v3/pipelines/deals")
        limited = await client.get("/crm/v3/pipelines/deals")
    assert first.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    error = hubspot.HubSpotConnector.classify(connector_of(sandbox), limited)
    assert isinstance(error, RateLimited) and error.retry_after is not None


def test_a_429_without_retry_after_waits_out_the_policy_window() -> None:
    connector = hubspot.HubSpotConnector.__new__(hubspot.HubSpotConnector)
    secondly = httpx2.Response(429, json={"status": "error", "message": "secondly", "policyName": "SECONDLY"})
    daily = httpx2.Response(429, json={"status": "error", "message": "daily", "policyName": "DAILY"})
    rolling = httpx2.Response(
        429,
        json={"status": "error", "message": "ten", "policyName": "TEN_SECONDLY_ROLLING"},
        headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
    )
    waits = [connector.classify(r).retry_after for r in (secondly, rolling, daily)]  # type: ignore[union-attr]
    assert waits == [1.0, 10.0, 3600.0]  # a spent daily budget is reported, not waited out


async def test_server_errors_are_retried_then_reported(sandbox: Sandbox) -> None:
    sandbox.state.faults["hubspot"] = Fault(kind="status", status=502, times=1)
    page = await connector_of(sandbox, http_max_retries=1).list_projects(None, 5, None)
    assert len(page.items) == 5
    sandbox.state.faults["hubspot"] = Fault(kind="status", status=503)
    with pytest.raises(UpstreamUnavailable, match="503"):
        await connector_of(sandbox).list_projects(None, 5, None)


async def test_malformed_body_is_an_upstream_failure_not_a_crash(sandbox: Sandbox) -> None:
    sandbox.state.faults["hubspot"] = Fault(kind="malformed")
    with pytest.raises(UpstreamUnavailable, match="not valid JSON"):
        await connector_of(sandbox).list_projects(None, 5, None)


async def test_cursors_are_opaque_and_bound_to_their_listing(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    page = await connector.list_projects(None, 5, None)
    assert page.next_cursor is not None and "after" not in page.next_cursor
    with pytest.raises(BadInput, match="differently filtered"):
        await connector.list_projects("completed", 5, page.next_cursor)
    with pytest.raises(BadInput, match="next_cursor"):
        await connector.list_projects(None, 5, encode_cursor("gong", {"o": 5}))


# -- HubSpot's official client against the sandbox -----------------------------------------------------


async def test_hubspots_official_python_client_lists_and_searches_deals_in_the_sandbox() -> None:
    from hubspot import HubSpot  # type: ignore[import-untyped]
    from hubspot.crm.deals import Filter, FilterGroup, PublicObjectSearchRequest  # type: ignore[import-untyped]

    async with running_sandbox() as (base_url, _):

        def use_the_client() -> tuple[Any, Any, Any]:
            client = HubSpot(access_token=TOKEN, host=f"{base_url}/hubspot")
            first = client.crm.deals.basic_api.get_page(limit=10, properties=["dealname", "amount", "dealstage"])
            second = client.crm.deals.basic_api.get_page(limit=10, after=first.paging.next.after)
            found = client.crm.deals.search_api.do_search(
                public_object_search_request=PublicObjectSearchRequest(
                    query="Polar",
                    filter_groups=[
                        FilterGroup(filters=[Filter(property_name="amount", operator="GT", value="200000")])
                    ],
                    sorts=["amount"],
                    properties=["dealname", "amount"],
                    limit=10,
                )
            )
            return first, second, found

        first, second, found = await anyio.to_thread.run_sync(use_the_client)
    assert len(first.results) == 10 and len(second.results) == 8 and second.paging is None
    assert first.results[0].properties["dealname"]
    assert found.total == 3
    assert [d.properties["amount"] for d in found.results] == ["220000", "390000", "1200000"]


async def test_a_search_backlog_too_long_to_wait_out_is_reported_and_costs_no_token() -> None:
    from sophia_mcp.config import Settings

    settings = Settings(_env_file=None, hubspot_token=SecretStr("pat-na1-x"))  # type: ignore[call-arg]
    connector = hubspot.HubSpotConnector(settings, httpx2.MockTransport(lambda r: httpx2.Response(500)))
    connector.search_bucket.tokens = -100.0  # a hundred searches already queued
    with pytest.raises(RateLimited, match="budget for HubSpot searches is spent") as caught:
        await connector.search_page("deals", properties=["dealname"], limit=1, cursor=None)
    assert caught.value.retry_after is not None and caught.value.retry_after > 10
    assert connector.search_bucket.tokens > -100.5  # the refused search gave its token back
    await connector.aclose()


async def test_every_attempt_of_a_search_waits_for_the_search_limit() -> None:
    from sophia_mcp.config import Settings

    class CountingBucket(TokenBucket):
        taken = 0

        async def take(self, budget: str, platform: str) -> None:
            self.taken += 1
            await super().take(budget, platform)

    answers = iter([httpx2.Response(502), httpx2.Response(200, json={"total": 0, "results": []})])
    settings = Settings(_env_file=None, hubspot_token=SecretStr("pat-na1-x"), http_max_retries=1)  # type: ignore[call-arg]
    connector = hubspot.HubSpotConnector(settings, httpx2.MockTransport(lambda r: next(answers)))
    connector.search_bucket = CountingBucket(connector.search_rate)
    page = await connector.search_page("deals", properties=["dealname"], limit=1, cursor=None)
    assert page.total == 0
    assert connector.search_bucket.taken == 2  # the retry too, not only the first attempt
    await connector.aclose()
