"""Gong: connector against the sandbox, both checked against ../shared/specs/gong/CONTRACT.md (restated
below as a table). Gong has no official Python client."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from inline_snapshot import snapshot
from mcp import Client

from connectors import gong
from connectors.base import encode_cursor
from sophia_mcp.errors import BadInput, NotConfigured, NotFound, RateLimited, UpstreamUnauthorized, UpstreamUnavailable
from sophia_mcp.sandbox import Fault
from sophia_mcp.sandbox import gong as gong_sandbox
from sophia_mcp.sandbox.gong import ACCESS_KEY, ACCESS_KEY_SECRET
from tests.conftest import SANDBOX_URL, Sandbox
from tests.contract.prose import BOOLEAN, DATE_TIME, INTEGER, ISO_8601, STRING, Operation, ProseContract, array, obj

pytestmark = pytest.mark.anyio

# -- CONTRACT.md, restated as data ----------------------------------------------------------------

GONG_ID = r"\d{1,20}"
ID: dict[str, Any] = {"type": "string", "pattern": f"^{GONG_ID}$"}
NULLABLE_STRING = {"type": ["string", "null"]}
RECORDS = obj({"totalRecords": INTEGER, "currentPageSize": INTEGER, "currentPageNumber": INTEGER}, {"cursor": STRING})
CALL_BASIC_DATA = obj(
    {
        "id": ID,
        "url": {"type": "string", "pattern": r"^https://([a-z0-9-]+\.)?app\.gong\.io/"},
        "title": STRING,
        "scheduled": DATE_TIME,
        "started": DATE_TIME,
        "duration": {"type": "number", "minimum": 0},
        "primaryUserId": STRING,
        "direction": {"enum": ["Inbound", "Outbound", "Conference", "Unknown"]},
        "scope": {"enum": ["Internal", "External", "Unknown"]},
        "media": {"enum": ["Video", "Audio"]},
        "language": STRING,
        "workspaceId": STRING,
    },
    {
        name: NULLABLE_STRING
        for name in ("system", "sdrDisposition", "clientUniqueId", "purpose", "meetingUrl", "calendarEventId")
    }
    | {"customData": {}, "isPrivate": BOOLEAN},
    closed=True,
)
PARTY = obj(
    {
        "id": STRING,
        "emailAddress": STRING,
        "name": STRING,
        "title": STRING,
        "speakerId": STRING,
        "affiliation": {"enum": ["Internal", "External", "Unknown"]},
        "methods": array(STRING),
    },
    {"userId": STRING},
    closed=True,
)
SENTENCE = obj({"start": INTEGER, "end": INTEGER, "text": STRING}, closed=True)
USER = obj(
    {
        "id": ID,
        "emailAddress": STRING,
        "firstName": STRING,
        "lastName": STRING,
        "title": STRING,
        "active": BOOLEAN,
        "created": DATE_TIME,
    }
)
CONTENT_FIELDS = ("topics", "trackers", "brief", "outline", "highlights", "keyPoints", "callOutcome")
EXTENSIVE_BODY = obj(
    {
        "filter": obj(
            {"fromDateTime": DATE_TIME, "toDateTime": DATE_TIME},
            {"workspaceId": STRING, "callIds": array(ID), "primaryUserIds": array(STRING)},
            closed=True,
        ),
        "contentSelector": obj(
            {},
            {
                "exposedFields": obj(
                    {},
                    {
                        "parties": BOOLEAN,
                        "content": obj({}, dict.fromkeys(CONTENT_FIELDS, BOOLEAN), closed=True),
                        "interaction": {"type": "object"},
                        "collaboration": {"type": "object"},
                        "media": BOOLEAN,
                    },
                    closed=True,
                ),
                "context": {"enum": ["None", "Basic", "Extended"]},
            },
            closed=True,
        ),
    },
    {"cursor": STRING},
    closed=True,
)
TRANSCRIPT_BODY = obj(
    {"filter": obj({}, {"fromDateTime": DATE_TIME, "toDateTime": DATE_TIME, "callIds": array(ID)}, closed=True)},
    {"cursor": STRING},
    closed=True,
)
OPERATIONS = (
    Operation(
        "GET",
        "/v2/calls",
        query=frozenset({"fromDateTime", "toDateTime", "workspaceId", "cursor"}),
        required_query=frozenset({"fromDateTime", "toDateTime"}),
        query_values={"fromDateTime": ISO_8601, "toDateTime": ISO_8601, "workspaceId": GONG_ID},
        response=obj({"requestId": STRING, "records": RECORDS, "calls": array(CALL_BASIC_DATA)}),
    ),
    Operation(
        "GET",
        "/v2/calls/{id}",
        path_params={"id": GONG_ID},
        response=obj({"requestId": STRING, "call": CALL_BASIC_DATA}),
    ),
    Operation(
        "POST",
        "/v2/calls/extensive",
        body=EXTENSIVE_BODY,
        response=obj(
            {
                "requestId": STRING,
                "records": RECORDS,
                "calls": array(
                    obj({"metaData": CALL_BASIC_DATA}, {"parties": array(PARTY), "content": {"type": "object"}})
                ),
            }
        ),
    ),
    Operation(
        "POST",
        "/v2/calls/transcript",
        body=TRANSCRIPT_BODY,
        response=obj(
            {
                "requestId": STRING,
                "records": RECORDS,
                "callTranscripts": array(
                    obj(
                        {
                            "callId": ID,
                            "transcript": array(
                                obj(
                                    {"speakerId": STRING, "sentences": array(SENTENCE)},
                                    {"topic": NULLABLE_STRING},
                                    closed=True,
                                )
                            ),
                        }
                    )
                ),
            }
        ),
    ),
    Operation(
        "GET",
        "/v2/users",
        query=frozenset({"cursor", "includeAvatars"}),
        response=obj({"requestId": STRING, "records": RECORDS, "users": array(USER)}),
    ),
    Operation("GET", "/v2/users/{id}", path_params={"id": GONG_ID}, response=obj({"requestId": STRING, "user": USER})),
    Operation(
        "GET",
        "/v2/workspaces",
        response=obj(
            {"requestId": STRING, "workspaces": array(obj({"id": ID, "name": STRING, "description": NULLABLE_STRING}))}
        ),
    ),
)


def basic_or_bearer(header: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme == "Bearer":
        return bool(value)
    try:
        return scheme == "Basic" and ":" in base64.b64decode(value, validate=True).decode()
    except ValueError:
        return False


CONTRACT = ProseContract(
    OPERATIONS,
    mount="/gong",
    auth=basic_or_bearer,
    error=obj({"requestId": STRING, "errors": array(STRING, min_items=1)}, closed=True),
)
RATE_PER_SECOND = 3


def connector_of(sandbox: Sandbox, **settings: object) -> gong.GongConnector:
    connector = sandbox.service(**settings).connector("gong")
    assert isinstance(connector, gong.GongConnector)
    return connector


def raw_client(sandbox: Sandbox, key: str = ACCESS_KEY, secret: str = ACCESS_KEY_SECRET) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=sandbox.transport, base_url=f"{SANDBOX_URL}/gong", auth=httpx2.BasicAuth(key, secret)
    )


def sandbox_call(initiative: str, n: int = 0) -> gong_sandbox.Call:
    return next(
        c
        for c in gong_sandbox.calls()
        if c.initiative.key == initiative
        and c.id == str(gong_sandbox.stable_int("gong-call", initiative, n, digits=19))
    )


# -- the connector sends only documented requests, and the sandbox answers as documented ------------


async def test_requests_sent_while_using_every_tool_follow_the_contract(sandbox: Sandbox, mcp_client: Client) -> None:
    workspaces = await mcp_client.call_tool("list_projects", {"platforms": ["gong"], "limit": 50})
    solutions = next(p["id"] for p in workspaces.structured_content["projects"] if p["name"] == "Solutions Engineering")
    recent = await mcp_client.call_tool("gong_list_calls", {"limit": 5})
    call_id = recent.structured_content["calls"][0]["id"]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("gong_list_calls", {"limit": 5, "cursor": recent.structured_content["next_cursor"]}),
        ("gong_list_calls", {"since": "2026-09-15", "until": "2026-11-29T12:00:00+01:00", "workspace_id": solutions}),
        ("gong_get_call", {"id": call_id, "verbose": True}),
        ("gong_get_transcript", {"id": call_id, "max_chars": 2000}),
        ("gong_list_users", {"limit": 3}),
        ("search", {"query": "weekly sync", "platforms": ["gong"]}),
    ]
    for name, arguments in calls:
        result = await mcp_client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)
    assert "accepted" in await connector_of(sandbox).check()  # what platform_status(check=true) calls

    exchanges = [(q, r) for q, r in sandbox.transport.exchanges if q.url.path.startswith("/gong/")]
    used = set()
    for request, response in exchanges:
        assert CONTRACT.request_problems(request) == [], request.url
        assert (
            request.headers["authorization"]
            == "Basic " + base64.b64encode(f"{ACCESS_KEY}:{ACCESS_KEY_SECRET}".encode()).decode()
        )
        assert CONTRACT.response_problems(request, response) == [], request.url
        used.add(CONTRACT.find(request)[0].name)  # type: ignore[index]
    assert used == {
        "GET /v2/calls",
        "GET /v2/calls/{id}",
        "POST /v2/calls/extensive",
        "POST /v2/calls/transcript",
        "GET /v2/users",
        "GET /v2/workspaces",
    }


@pytest.mark.parametrize(
    ("credentials", "method", "path", "body", "status"),
    [
        (("WRONG", "key"), "GET", "/v2/workspaces", None, 401),
        ((ACCESS_KEY, ACCESS_KEY_SECRET), "GET", "/v2/calls/12345", None, 404),
        ((ACCESS_KEY, ACCESS_KEY_SECRET), "GET", "/v2/calls?toDateTime=2026-11-20T00:00:00Z", None, 400),
        (
            (ACCESS_KEY, ACCESS_KEY_SECRET),
            "GET",
            "/v2/calls?fromDateTime=2020-01-01T00:00:00Z&toDateTime=2020-01-02T00:00:00Z",
            None,
            404,
        ),
        (
            (ACCESS_KEY, ACCESS_KEY_SECRET),
            "POST",
            "/v2/calls/extensive",
            {"filter": {"callIds": ["1"]}, "contentSelector": {}},
            400,
        ),
        ((ACCESS_KEY, ACCESS_KEY_SECRET), "POST", "/v2/calls/transcript", {"filter": {"callIds": ["1"]}}, 404),
        ((ACCESS_KEY, ACCESS_KEY_SECRET), "GET", "/v2/users?cursor=forged", None, 400),
    ],
    ids=[
        "bad-credentials",
        "unknown-call",
        "range-without-start",
        "empty-range",
        "extensive-without-range",
        "no-transcript",
        "forged-cursor",
    ],
)
async def test_sandbox_errors_have_gongs_body(
    sandbox: Sandbox, credentials: tuple[str, str], method: str, path: str, body: Any, status: int
) -> None:
    async with raw_client(sandbox, *credentials) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == status
    assert CONTRACT.response_problems(response.request, response) == []


async def test_gong_pages_hold_a_hundred_with_a_cursor_only_while_more_remain(sandbox: Sandbox) -> None:
    now = datetime.now(UTC)
    params = {"fromDateTime": gong.iso(now - timedelta(days=89)), "toDateTime": gong.iso(now)}
    async with raw_client(sandbox) as client:
        first = (await client.get("/v2/calls", params=params)).json()
        second = (await client.get("/v2/calls", params={**params, "cursor": first["records"]["cursor"]})).json()
        elsewhere = await client.get(
            "/v2/calls", params={**params, "workspaceId": "1", "cursor": first["records"]["cursor"]}
        )
    total = len(gong_sandbox.calls())
    assert first["records"] == {
        "totalRecords": total,
        "currentPageSize": 100,
        "currentPageNumber": 0,
        "cursor": first["records"]["cursor"],
    }
    assert second["records"] == {"totalRecords": total, "currentPageSize": total - 100, "currentPageNumber": 1}
    assert elsewhere.status_code in (400, 404)  # a cursor belongs to its query


def test_the_connector_keeps_to_gongs_rate_limit() -> None:
    assert gong.GongConnector.rate.per_second == RATE_PER_SECOND and gong.GongConnector.rate.burst == 1


# -- configuration ----------------------------------------------------------------------------------


async def test_without_a_base_url_gong_is_not_configured_and_says_which_setting(sandbox: Sandbox) -> None:
    service = sandbox.service(gong_base_url=None)
    connector = service.connector("gong")
    assert not connector.configured
    assert connector.missing_settings() == ["SOPHIA_GONG_BASE_URL"]
    with pytest.raises(NotConfigured, match="SOPHIA_GONG_BASE_URL"):
        await service.platform_projects("gong")
    assert not sandbox.transport.requests("gong")


def test_the_web_app_host_follows_the_companys_api_host(sandbox: Sandbox) -> None:
    assert connector_of(sandbox, gong_base_url="https://us-11211.api.gong.io").app_url == "https://us-11211.app.gong.io"
    assert connector_of(sandbox).app_url == "https://app.gong.io"


# -- behaviour ----------------------------------------------------------------------------------------


async def test_workspaces_are_the_projects(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    first = await connector.list_projects(None, 10, None)
    rest = await connector.list_projects(None, 10, first.next_cursor)
    workspaces = first.items + rest.items
    assert len(workspaces) == len({w.id for w in workspaces}) == 12 and rest.next_cursor is None
    assert {w.status for w in workspaces} == {"active"}
    assert workspaces[0].model_dump() == snapshot(
        {
            "platform": "gong",
            "id": "9158542471364728676",
            "name": "Americas – Enterprise Sales",
            "url": "https://app.gong.io/conversations?workspace-id=9158542471364728676",
            "status": "active",
            "status_raw": None,
            "owner": None,
            "team": None,
            "description": "New business with enterprise accounts in the Americas.",
            "start_date": None,
            "target_date": None,
            "progress": None,
            "created_at": None,
            "updated_at": None,
        }
    )
    assert (await connector.list_projects("completed", 10, None)).items == []


async def test_calls_default_to_the_last_seven_days(mcp_client: Client, sandbox: Sandbox) -> None:
    result = (await mcp_client.call_tool("gong_list_calls", {"limit": 100})).structured_content
    start, end = gong.parse_time(result["range_from"]), gong.parse_time(result["range_to"])
    assert end - start == timedelta(days=7) and abs(datetime.now(UTC) - end) < timedelta(minutes=5)
    assert result["total"] == len(result["calls"]) >= 10
    assert all(start <= gong.parse_time(c["started"]) < end for c in result["calls"])
    assert [c["started"] for c in result["calls"]] == sorted(c["started"] for c in result["calls"])
    assert {c["host"] for c in result["calls"]} <= {p.name for p in gong_sandbox.PEOPLE}
    [request] = [r for r in sandbox.transport.requests("gong") if r.url.path == "/gong/v2/calls"]
    assert request.url.params["fromDateTime"] == result["range_from"]


async def test_a_range_over_ninety_days_is_refused_before_asking_gong(mcp_client: Client, sandbox: Sandbox) -> None:
    result = await mcp_client.call_tool("gong_list_calls", {"since": "2026-01-01", "until": "2026-06-01"})
    assert result.is_error
    assert "151 days" in result.content[0].text and "at most 90 days" in result.content[0].text  # type: ignore[union-attr]
    result = await mcp_client.call_tool("gong_list_calls", {"since": "2026-06-01", "until": "2026-01-01"})
    assert result.is_error and "must be before" in result.content[0].text  # type: ignore[union-attr]
    assert not sandbox.transport.requests("gong")


async def test_a_range_without_calls_is_an_empty_list_not_an_error(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    args = gong.ListCallsInput(since=datetime(2025, 1, 1, tzinfo=UTC), until=datetime(2025, 2, 1, tzinfo=UTC))
    result = await gong.list_calls(connector, args)
    assert result.calls == [] and result.total == 0 and result.next_cursor is None
    assert sandbox.transport.exchanges[-1][1].status_code == 404  # Gong's answer for an empty range


async def test_calls_page_through_gongs_cursor_in_smaller_pages(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    args = gong.ListCallsInput(since=datetime.now(UTC) - timedelta(days=89), limit=60)
    seen: list[gong.GongCall] = []
    cursor = None
    while True:
        page = await gong.list_calls(connector, args.model_copy(update={"cursor": cursor}))
        seen.extend(page.calls)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({c.id for c in seen}) == len(gong_sandbox.calls()) == page.total
    gong_cursors = [
        r.url.params.get("cursor") for r in sandbox.transport.requests("gong") if r.url.path == "/gong/v2/calls"
    ]
    assert gong_cursors[:2] == [None, None] and gong_cursors[2] is not None  # 60 + 40 from page one, then page two


async def test_one_call_has_parties_topics_and_brief(mcp_client: Client) -> None:
    call = sandbox_call("fleet-navigation")
    result = (await mcp_client.call_tool("gong_get_call", {"id": call.id})).structured_content
    assert result["call"]["started"] == gong.iso(call.started(gong_sandbox.today()))
    del result["call"]["started"], result["fetched_at"]
    assert result == snapshot(
        {
            "source": "live",
            "age_seconds": 0.0,
            "stale_reason": None,
            "truncated": False,
            "note": None,
            "call": {
                "id": "7687902310862260333",
                "title": "Harbor Logistics / Northwind – Fleet Navigation v2: Weekly sync",
                "url": "https://app.gong.io/call?id=7687902310862260333",
                "duration_minutes": 29.2,
                "direction": "Conference",
                "scope": "External",
                "host": "Hana Sato",
                "workspace_id": "4040849105546743774",
                "purpose": "Weekly sync",
                "language": "eng",
                "media": "Video",
            },
            "participants": [
                {
                    "name": "Hana Sato",
                    "email": "hana.sato@northwind.example",
                    "title": "Customer Success Lead",
                    "affiliation": "Internal",
                },
                {
                    "name": "Ben Lindqvist",
                    "email": "ben.lindqvist@northwind.example",
                    "title": "Staff Engineer",
                    "affiliation": "Internal",
                },
                {
                    "name": "Maya Chen",
                    "email": "maya.chen@harborlogistics.example",
                    "title": "Director of Ops",
                    "affiliation": "External",
                },
            ],
            "brief": "Maya Chen (Harbor Logistics) met Hana Sato and Ben Lindqvist for the weekly sync on Fleet Navigation v2. Rebuild path planning for mixed indoor/outdoor fleets. They covered implementation, hardware, support, and agreed that Hana sends a written summary with owners and dates.",
            "key_points": [
                "Implementation is the first concern for Harbor Logistics.",
                "Fleet Navigation v2 is 62% done.",
                "Next checkpoint in 7 days.",
            ],
            "topics": [
                {"name": "Implementation", "minutes": 7.8},
                {"name": "Hardware", "minutes": 7.8},
                {"name": "Support", "minutes": 7.8},
            ],
            "outline": None,
        }
    )


async def test_transcript_names_the_speakers_and_is_capped_then_continued(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    call = sandbox_call("fleet-navigation")
    whole = await gong.get_transcript(connector, gong.GetTranscriptInput(id=call.id, max_chars=30_000))
    assert not whole.truncated and whole.next_segment is None
    assert whole.segment_count == len(whole.segments) == len(gong_sandbox.transcript(call))
    assert {s.speaker for s in whole.segments} <= {"Hana Sato", "Ben Lindqvist", "Maya Chen"}
    assert whole.segments[0].model_dump() == snapshot(
        {
            "speaker": "Hana Sato",
            "affiliation": "Internal",
            "start": "0:05",
            "topic": "Implementation",
            "text": "Thanks everyone for joining, let's go through implementation first. Last time we agreed to follow up on implementation; here is where we are. From our side the plan for Fleet Navigation v2 is on track for the next milestone. I'll send a summary with the owners and dates right after this call.",
        }
    )

    parts, start = [], 0
    while True:
        page = await gong.get_transcript(
            connector, gong.GetTranscriptInput(id=call.id, max_chars=1_500, from_segment=start)
        )
        parts.extend(page.segments)
        assert sum(len(s.text) for s in page.segments) <= 1_500
        if page.next_segment is None:
            break
        assert page.truncated and f"from_segment={page.next_segment}" in (page.note or "")
        start = page.next_segment
    assert parts == whole.segments


async def test_users_are_the_companys_people(mcp_client: Client) -> None:
    first = (await mcp_client.call_tool("gong_list_users", {"limit": 6})).structured_content
    rest = (
        await mcp_client.call_tool("gong_list_users", {"limit": 6, "cursor": first["next_cursor"]})
    ).structured_content
    names = [u["name"] for u in first["users"] + rest["users"]]
    assert names == [p.name for p in gong_sandbox.PEOPLE] and first["total"] == 10 and rest["next_cursor"] is None


async def test_core_search_finds_recent_calls_by_title_or_brief(sandbox: Sandbox) -> None:
    hits = await connector_of(sandbox).search("Maya Chen", 10)  # only in briefs
    assert hits and all(h.kind == "call" and "Harbor Logistics" in h.title for h in hits)
    assert all(datetime.now(UTC) - gong.parse_time(h.updated_at or "") <= timedelta(days=7) for h in hits)
    body = json.loads(sandbox.transport.requests("gong")[0].content)
    assert body["contentSelector"]["exposedFields"] == {"content": {"brief": True}}


# -- errors -------------------------------------------------------------------------------------------


async def test_wrong_credentials_name_the_settings_to_fix(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox, gong_access_key="WRONG", gong_access_key_secret="nope")
    with pytest.raises(UpstreamUnauthorized, match="SOPHIA_GONG_ACCESS_KEY and SOPHIA_GONG_ACCESS_KEY_SECRET"):
        await connector.list_projects(None, 5, None)


async def test_unknown_call_is_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(NotFound, match="Call 42 not found"):
        await gong.get_call(connector_of(sandbox), gong.GetCallInput(id="42"))


async def test_a_429_carries_the_wait_gong_asks_for(sandbox: Sandbox) -> None:
    sandbox.state.faults["gong"] = Fault(kind="rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await connector_of(sandbox).list_projects(None, 5, None)
    assert caught.value.retry_after == 7


async def test_server_errors_are_retried_then_reported(sandbox: Sandbox) -> None:
    sandbox.state.faults["gong"] = Fault(kind="status", status=502, times=1)
    page = await connector_of(sandbox, http_max_retries=1).list_projects(None, 5, None)
    assert len(page.items) == 5
    sandbox.state.faults["gong"] = Fault(kind="status", status=503)
    with pytest.raises(UpstreamUnavailable, match="503"):
        await connector_of(sandbox).list_projects(None, 5, None)


async def test_cursors_are_opaque_and_refused_elsewhere(sandbox: Sandbox) -> None:
    connector = connector_of(sandbox)
    page = await gong.list_calls(connector, gong.ListCallsInput(limit=2))
    assert page.next_cursor is not None and not re.search(r"\d{4}-\d{2}-\d{2}", page.next_cursor)
    with pytest.raises(BadInput, match="next_cursor"):
        await connector.list_projects(None, 5, encode_cursor("hubspot", {"via": "list", "after": "x"}))
