"""Slack: the connector against the sandbox, both checked against Slack's published Web API spec, and the
sandbox checked with Slack's own Python client."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jsonschema
import pytest
from inline_snapshot import snapshot
from mcp import Client
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from connectors import slack
from connectors.base import encode_cursor
from sophia_mcp.errors import (
    BadInput,
    Forbidden,
    NotConfigured,
    NotFound,
    RateLimited,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from sophia_mcp.registry import all_tools
from sophia_mcp.sandbox import Fault, running_sandbox
from sophia_mcp.sandbox.slack import BOT_TOKEN, LIMITED_TOKEN, USER_TOKEN, workspace
from sophia_mcp.server import build_mcp_server
from tests.conftest import Sandbox
from tests.contract.openapi import OpenAPISpec

pytestmark = pytest.mark.anyio

KEPT_METHODS = {
    "conversations.list",
    "conversations.history",
    "conversations.replies",
    "conversations.info",
    "search.messages",
    "users.list",
    "users.info",
}
#: the methods whose 200 schemas forbid extra properties yet omit the response_metadata real responses carry
WITHOUT_RESPONSE_METADATA = {"conversations.history", "conversations.replies"}


@pytest.fixture(scope="module")
def slack_spec(specs_dir: Path) -> OpenAPISpec:
    return OpenAPISpec(specs_dir / "slack" / "slack-web.trimmed.normalized.json", mount="/slack")


def slack_connector(sandbox: Sandbox, **overrides: Any) -> slack.SlackConnector:
    connector = sandbox.service(**overrides).connector("slack")
    assert isinstance(connector, slack.SlackConnector)
    return connector


def method_of(request: httpx2.Request) -> str:
    return request.url.path.rsplit("/", 1)[-1]


def schema_problems(instance: Any, schema: dict[str, Any]) -> list[str]:
    problems = []
    for error in jsonschema.Draft202012Validator(schema).iter_errors(instance):
        error = jsonschema.exceptions.best_match([error, *error.context]) or error  # the alternative that came closest
        problems.append(f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}")
    return problems


def sdk_fields(specs_dir: Path, response: str, interface: str) -> set[str]:
    """Field names of one interface (or the response type itself) in @slack/web-api's response types."""
    source = (specs_dir / "slack" / "sdk-types" / f"{response}.d.ts").read_text()
    opening = (
        f"export type {response} = WebAPICallResult & {{"
        if interface == response
        else f"export interface {interface} {{"
    )
    body = source.split(opening, 1)[1].split("\n}", 1)[0]
    return set(re.findall(r"^\s+(\w+)\??:", body, re.MULTILINE))


async def exercise_every_tool(mcp_client: Client) -> None:
    """Call every Slack tool (and the core tools on Slack) once, each successfully."""

    async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await mcp_client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)
        assert result.structured_content is not None
        return result.structured_content

    await call("list_projects", {"platforms": ["slack"], "status": "active"})
    await call("search", {"query": "telemetry", "platforms": ["slack"]})
    await call("platform_status", {"check": True})
    channels = (await call("slack_list_channels", {"include_archived": True, "limit": 5}))["channels"]
    history = await call("slack_channel_history", {"channel": "#proj-fleet-navigation", "oldest": "2026-08-01"})
    await call("slack_channel_history", {"channel": channels[1]["id"], "limit": 3, "verbose": True})
    await call("slack_channel_history", {"channel": workspace().ims[0].object["id"], "limit": 2})  # a DM
    thread_ts = next(m["thread_ts"] for m in history["messages"] if m.get("reply_count"))
    await call("slack_thread_replies", {"channel": history["channel"]["id"], "thread_ts": thread_ts})
    await call("slack_list_users", {"limit": 5, "include_bots": True})
    await call("slack_search_messages", {"query": "review from:@ben-lindqvist", "sort": "timestamp", "limit": 3})


async def test_requests_sent_while_using_every_tool_are_documented_methods_with_the_bearer_token(
    sandbox: Sandbox, mcp_client: Client, slack_spec: OpenAPISpec
) -> None:
    await exercise_every_tool(mcp_client)
    requests = sandbox.transport.requests("slack")
    assert {method_of(r) for r in requests} == KEPT_METHODS
    for request in requests:
        method = method_of(request)
        # Slack's spec lists `token` as a required query parameter of users.info and search.messages; Slack
        # documents the Authorization header instead and refuses query-string tokens from newer apps.
        problems = [p for p in slack_spec.request_problems(request) if "'token' missing" not in p]
        assert problems == [], (request.url, problems)
        assert "token" not in request.url.params
        token = USER_TOKEN if method == "search.messages" else BOT_TOKEN
        assert request.headers["authorization"] == f"Bearer {token}", method
        assert request.method == "GET" and not request.content
        _, operation = slack_spec.operation("GET", request.url.path) or ("", {})
        types = {p["name"]: p["type"] for p in operation["parameters"]}
        for name, value in request.url.params.multi_items():
            pattern = {"boolean": r"true|false", "integer": r"\d+", "number": r"\d+(\.\d+)?"}.get(types[name], r".+")
            assert re.fullmatch(pattern, value), (method, name, value)


async def test_sandbox_responses_validate_against_slacks_schemas(
    sandbox: Sandbox, mcp_client: Client, slack_spec: OpenAPISpec, specs_dir: Path
) -> None:
    await exercise_every_tool(mcp_client)
    exchanges = [(q, r) for q, r in sandbox.transport.exchanges if q.url.path.startswith("/slack/")]
    assert {method_of(q) for q, _ in exchanges} == KEPT_METHODS
    for request, response in exchanges:
        method = method_of(request)
        body = response.json()
        assert response.status_code == 200 and body["ok"] is True, (method, body)
        if method in WITHOUT_RESPONSE_METADATA:  # the spec's documented defect: check that part on its own
            metadata = body.pop("response_metadata", None)
            assert metadata is None or (set(metadata) == {"next_cursor"} and metadata["next_cursor"]), metadata
            assert (metadata is not None) is body["has_more"]
        schema = slack_spec.response_schema("GET", request.url.path)
        assert schema is not None
        assert schema_problems(body, schema) == [], method
        if method == "search.messages":  # its spec schema is just {ok}: hold it to the SDK's field names
            response_type = "SearchMessagesResponse"
            assert set(body) <= sdk_fields(specs_dir, response_type, response_type)
            assert set(body["messages"]) <= sdk_fields(specs_dir, response_type, "Messages")
            assert set(body["messages"]["paging"]) <= sdk_fields(specs_dir, response_type, "Paging")
            assert set(body["messages"]["pagination"]) <= sdk_fields(specs_dir, response_type, "Pagination")
            for match in body["messages"]["matches"]:
                assert set(match) <= sdk_fields(specs_dir, response_type, "Match")
                assert set(match["channel"]) <= sdk_fields(specs_dir, response_type, "Channel")


async def test_channels_page_through_every_cursor_without_duplicates(sandbox: Sandbox) -> None:
    connector = slack_connector(sandbox)
    seen, cursor = [], None
    while True:
        page = await connector.list_projects(None, 4, cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({p.id for p in seen}) == len(workspace().channels) == 15
    assert {p.name for p in seen if p.status == "completed"} == {
        "#proj-warehouse-pilot",
        "#proj-farm-harvest",
        "#proj-ota-updates",
    }
    assert seen[1].model_dump(exclude={"id", "url"}) == snapshot(
        {
            "platform": "slack",
            "name": "#proj-fleet-navigation",
            "status": "active",
            "status_raw": "active",
            "owner": None,
            "team": None,
            "description": "Rebuild path planning for mixed indoor/outdoor fleets. Customer: Harbor Logistics.",
            "start_date": None,
            "target_date": None,
            "progress": None,
            "created_at": "2026-07-13T09:00:00Z",
            "updated_at": None,
        }
    )
    assert seen[1].url == f"https://northwind.slack.com/archives/{seen[1].id}"
    sent = [r.url.params.get("cursor") for r in sandbox.transport.requests("slack")]
    assert sent[0] is None and len(sent) == 4
    assert [base64.b64decode(c).decode().split(":")[0] for c in sent[1:]] == ["team"] * 3  # Slack's own cursors
    assert sandbox.transport.exchanges[-1][1].json()["response_metadata"] == {"next_cursor": ""}


async def test_status_filter_active_leaves_archived_channels_to_slack(sandbox: Sandbox) -> None:
    page = await slack_connector(sandbox).list_projects("active", 100, None)
    assert len(page.items) == 12 and {p.status for p in page.items} == {"active"}
    assert sandbox.transport.requests("slack")[-1].url.params["exclude_archived"] == "true"
    assert (await slack_connector(sandbox).list_projects("planned", 100, None)).items == []


async def test_channel_history_by_name_resolves_authors_and_counts_thread_replies(mcp_client: Client) -> None:
    result = await mcp_client.call_tool(
        "slack_channel_history",
        {"channel": "#proj-fleet-navigation", "oldest": "2026-08-28", "latest": "2026-09-07T07:30:00Z", "limit": 3},
    )
    content = result.structured_content
    assert content is not None
    assert content["channel"]["name"] == "#proj-fleet-navigation" and content["channel"]["is_archived"] is False
    assert content["next_cursor"] is not None
    assert [
        {k: m.get(k) for k in ("time", "user_name", "text", "reply_count")} for m in content["messages"]
    ] == snapshot(
        [
            {
                "time": "2026-09-07T07:00:00Z",
                "user_name": "Ivan Petrov",
                "text": "✅ NAV-2 is done: Accessibility pass on the console",
                "reply_count": 1,
            },
            {
                "time": "2026-08-29T03:00:00Z",
                "user_name": "Ada Okafor",
                "text": "Started on NAV-6.",
                "reply_count": None,
            },
            {
                "time": "2026-08-28T05:00:00Z",
                "user_name": "Ben Lindqvist",
                "text": "@Ada Okafor can you take *NAV-6*: Document the operator runbook?",
                "reply_count": None,
            },
        ]
    )


async def test_channel_history_pages_through_every_message_once(sandbox: Sandbox) -> None:
    connector = slack_connector(sandbox)
    channel = workspace().channels[1].object
    seen: list[str] = []
    cursor = None
    while True:
        page = await slack.channel_history(
            connector, slack.ChannelHistoryInput(channel=channel["id"], limit=7, cursor=cursor)
        )
        seen.extend(m.ts for m in page.messages)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [m["ts"] for m in workspace().channels[1].history]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) > 14


async def test_thread_replies_come_parent_first_with_names(mcp_client: Client) -> None:
    history = await mcp_client.call_tool("slack_channel_history", {"channel": "#proj-fleet-navigation", "limit": 1})
    parent = history.structured_content["messages"][0]  # type: ignore[index]
    result = await mcp_client.call_tool(
        "slack_thread_replies", {"channel": "proj-fleet-navigation", "thread_ts": parent["thread_ts"]}
    )
    assert [(m["user_name"], m["text"]) for m in result.structured_content["messages"]] == snapshot(  # type: ignore[index]
        [
            (
                "Ben Lindqvist",
                "Weekly update: 5 of 6 tasks done, 62% overall. Next up: NAV-4 Ship beta to Harbor Logistics.",
            ),
            ("Ada Okafor", "Anything blocking the target date?"),
            ("Ben Lindqvist", "Not right now; I'll flag it here if that changes."),
        ]
    )


async def test_a_direct_message_reads_by_its_d_id_named_after_the_person(sandbox: Sandbox) -> None:
    dm = workspace().ims[0].object
    assert "name" not in dm and dm["is_im"]  # Slack's IM objects carry `user` instead
    page = await slack.channel_history(slack_connector(sandbox), slack.ChannelHistoryInput(channel=dm["id"]))
    assert (page.channel.name, page.channel.is_private) == ("@Dara Nguyen", True)
    assert [(m.user_name, m.text) for m in page.messages][-1] == (
        "Dara Nguyen",
        "Hi Sophia, which initiatives are at risk this week?",
    )
    unnamed = slack.to_channel({**dm, "user": "U0GONE0001"}, None)  # a name that was not looked up
    assert unnamed.name == "@U0GONE0001"


async def test_reading_a_dm_needs_the_im_scopes_as_on_slack(sandbox: Sandbox) -> None:
    async with httpx2.AsyncClient(transport=sandbox.transport, base_url="http://sandbox.test/slack/api") as client:
        refused = await client.get(
            "/conversations.info",
            params={"channel": workspace().ims[0].object["id"]},
            headers={"Authorization": f"Bearer {LIMITED_TOKEN}"},
        )
        listed = await client.get(
            "/conversations.list", params={"types": "im"}, headers={"Authorization": f"Bearer {BOT_TOKEN}"}
        )
    assert refused.json() == {"ok": False, "error": "missing_scope", "needed": "im:read", "provided": "channels:read"}
    assert [c["id"] for c in listed.json()["channels"]] == [workspace().ims[0].object["id"]]


def users_and_history(authors: int, users_info: Any) -> httpx2.MockTransport:
    """Slack answering one channel whose history has `authors` distinct authors; users.info as given."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        method = method_of(request)
        if method == "conversations.info":
            channel = {"id": "C0123ABCD9", "name": "busy", "is_channel": True, "created": 1_700_000_000}
            return httpx2.Response(200, json={"ok": True, "channel": channel})
        if method == "conversations.history":
            messages = [
                {
                    "type": "message",
                    "user": f"U{n:09d}",
                    "text": f"hi <@U{(n + 1) % authors:09d}>",
                    "ts": f"17000{n:05d}.000100",
                }
                for n in range(authors)
            ]
            return httpx2.Response(200, json={"ok": True, "messages": messages, "has_more": False})
        assert method == "users.info", method
        return httpx2.Response(200, json=users_info(request.url.params["user"]))

    return httpx2.MockTransport(handler)


async def test_author_names_past_the_users_info_budget_stay_ids_without_waiting(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(anyio, "sleep", record_sleep)
    transport = users_and_history(80, lambda user: {"ok": True, "user": {"id": user, "real_name": f"Name {user}"}})
    connector = slack.SlackConnector(sandbox.settings(), transport)
    page = await slack.channel_history(connector, slack.ChannelHistoryInput(channel="C0123ABCD9", limit=100))
    named = [m for m in page.messages if m.user_name == f"Name {m.user}"]
    # users.info's burst: 50 at once, then 100 a minute (a slow machine may have earned one or two more)
    assert len(page.messages) == 80 and 50 <= len(named) <= 52
    assert {m.user_name for m in page.messages if m not in named} == {m.user for m in page.messages if m not in named}
    assert page.note is not None and f"{80 - len(named)} users are shown by their id" in page.note
    assert [w for w in waits if w > 1] == []


async def test_author_names_need_users_read_and_without_it_the_history_still_comes(sandbox: Sandbox) -> None:
    refused = {"ok": False, "error": "missing_scope", "needed": "users:read", "provided": "channels:history"}
    connector = slack.SlackConnector(sandbox.settings(), users_and_history(3, lambda user: refused))
    page = await slack.channel_history(connector, slack.ChannelHistoryInput(channel="C0123ABCD9"))
    assert [(m.user, m.user_name) for m in page.messages] == [(f"U{n:09d}",) * 2 for n in range(3)]
    assert page.messages[0].text == "hi @U000000001"
    assert page.note is not None and "lacks the scope users:read" in page.note
    revoked = slack.SlackConnector(
        sandbox.settings(), users_and_history(3, lambda user: {"ok": False, "error": "token_revoked"})
    )
    with pytest.raises(UpstreamUnauthorized):  # a bad token is no reason to carry on
        await slack.channel_history(revoked, slack.ChannelHistoryInput(channel="C0123ABCD9"))


async def test_users_list_skips_bots_unless_asked(mcp_client: Client) -> None:
    people = (await mcp_client.call_tool("slack_list_users", {"limit": 100})).structured_content
    everyone = (await mcp_client.call_tool("slack_list_users", {"limit": 100, "include_bots": True})).structured_content
    assert len(people["users"]) == 10 and len(everyone["users"]) == 12  # type: ignore[index]
    assert people["users"][0] == snapshot(  # type: ignore[index]
        {
            "id": "U091CC8121",
            "handle": "ada-okafor",
            "name": "Ada Okafor",
            "title": "VP Engineering",
            "email": "ada.okafor@northwind.example",
            "timezone": "America/Los_Angeles",
            "is_bot": False,
            "is_admin": True,
            "deleted": False,
        }
    )


async def test_search_understands_slack_modifiers_and_pages(sandbox: Sandbox) -> None:
    connector = slack_connector(sandbox)
    query = '"can you take" in:#proj-customer-portal from:@dara-nguyen'
    first = await slack.search_messages(connector, slack.SearchMessagesInput(query=query, limit=2))
    assert first.total >= 3 and len(first.matches) == 2 and first.next_cursor
    second = await slack.search_messages(
        connector,
        slack.SearchMessagesInput(query=query, limit=2, cursor=first.next_cursor),
    )
    matches = first.matches + second.matches
    assert len({m.ts for m in matches}) == len(matches)
    assert all(m.channel == "#proj-customer-portal" and m.user_name == "dara-nguyen" for m in matches)
    assert all("can you take" in m.text for m in matches)
    assert matches[0].permalink and matches[0].permalink.startswith("https://northwind.slack.com/archives/C")
    sent = sandbox.transport.requests("slack")[-1].url.params
    assert (sent["page"], sent["count"], sent["query"]) == ("2", "2", query)


@pytest.mark.parametrize(
    ("overrides", "tool", "arguments", "error", "says"),
    [
        ({"slack_bot_token": "xoxb-revoked"}, "slack_list_channels", {}, UpstreamUnauthorized, "SOPHIA_SLACK_BOT_TOKEN"),
        ({"slack_user_token": "xoxp-revoked"}, "slack_search_messages", {"query": "x"}, UpstreamUnauthorized,
         "SOPHIA_SLACK_USER_TOKEN"),
        ({"slack_user_token": BOT_TOKEN}, "slack_search_messages", {"query": "x"}, UpstreamUnauthorized,
         "Set SOPHIA_SLACK_USER_TOKEN to a user token"),
        ({"slack_bot_token": LIMITED_TOKEN}, "slack_channel_history", {"channel": "C0A27055C1"}, Forbidden,
         "lacks one of the scopes channels:history, groups:history, mpim:history, im:history, which conversations.history needs (it has: channels:read)"),
        ({}, "slack_channel_history", {"channel": "C0NOSUCHCHAN"}, NotFound, "slack_list_channels"),
        ({}, "slack_thread_replies", {"channel": "C0A27055C1", "thread_ts": "1700000000.000001"}, NotFound,
         "no such thread"),
        ({}, "slack_channel_history", {"channel": "#no-such-channel"}, NotFound, "No Slack channel named #no-such"),
    ],
    ids=["invalid_auth", "invalid_user_token", "bot_token_for_search", "missing_scope", "channel_not_found",
         "thread_not_found", "unknown_channel_name"],
)  # fmt: skip
async def test_ok_false_answers_become_errors_that_say_what_to_do(
    sandbox: Sandbox,
    overrides: dict[str, Any],
    tool: str,
    arguments: dict[str, Any],
    error: type[Exception],
    says: str,
) -> None:
    spec = next(s for s in all_tools() if s.name == tool)
    connector = slack_connector(sandbox, **overrides)
    with pytest.raises(error, match=re.escape(says)):
        await spec.handler(connector, spec.input_model(**arguments))


@pytest.mark.parametrize("code", ["no_permission", "access_denied", "team_access_not_granted"])
async def test_a_valid_token_without_access_is_forbidden_not_a_bad_token(sandbox: Sandbox, code: str) -> None:
    request = httpx2.Request("GET", "https://slack.com/api/conversations.history")
    answer = httpx2.Response(200, json={"ok": False, "error": code}, request=request)
    error = slack_connector(sandbox).classify(answer)
    assert isinstance(error, Forbidden) and "Invite the app" in error.message


async def test_a_tool_error_reads_as_advice_to_the_model(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("slack_channel_history", {"channel": "C0NOSUCHCHAN"})
    assert result.is_error
    assert result.content[0].text == snapshot(  # type: ignore[union-attr]
        "Error executing tool slack_channel_history: Slack found no such channel (channel_not_found). Check the id: slack_list_channels and slack_list_users show valid ones; private channels are visible only to members."
    )


async def test_search_without_a_user_token_names_the_variable_and_sends_nothing(sandbox: Sandbox) -> None:
    service = sandbox.service(slack_user_token=None)
    await service.start()
    try:
        async with Client(build_mcp_server(service, all_tools())) as client:
            result = await client.call_tool("slack_search_messages", {"query": "telemetry"})
            across = await client.call_tool("search", {"query": "telemetry", "platforms": ["slack", "linear"]})
            channels = await client.call_tool("slack_list_channels", {})
    finally:
        await service.aclose()
    assert result.is_error
    assert "set SOPHIA_SLACK_USER_TOKEN to a user token (xoxp-...)" in result.content[0].text  # type: ignore[union-attr]
    outcome = across.structured_content["platforms"]  # type: ignore[index]
    assert outcome["slack"]["error_type"] == "not-configured" and "SOPHIA_SLACK_USER_TOKEN" in outcome["slack"]["error"]
    assert outcome["linear"]["count"] > 0  # one platform's gap never hides another's results
    assert not channels.is_error  # the bot token alone still serves the other tools
    assert "search.messages" not in {method_of(r) for r in sandbox.transport.requests("slack")}
    with pytest.raises(NotConfigured, match="SOPHIA_SLACK_USER_TOKEN"):
        await slack_connector(sandbox, slack_user_token=None).search("telemetry", 5)


async def test_429_waits_exactly_retry_after_then_succeeds(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(anyio, "sleep", record_sleep)
    sandbox.state.faults["slack"] = Fault(kind="rate_limit", retry_after=3, times=1)
    page = await slack_connector(sandbox, http_max_retries=1).list_projects(None, 5, None)
    assert len(page.items) == 5
    assert waits == [pytest.approx(3.0, abs=0.1)]  # the bucket holds every caller off for Retry-After
    first = sandbox.transport.exchanges[0][1]
    assert (first.status_code, first.headers["retry-after"], first.json()) == (
        429,
        "3",
        {"ok": False, "error": "ratelimited"},
    )


async def test_a_long_retry_after_is_reported_not_waited_out(sandbox: Sandbox) -> None:
    sandbox.state.faults["slack"] = Fault(kind="rate_limit", retry_after=45)
    with pytest.raises(RateLimited, match="Retry after 45 s") as caught:
        await slack_connector(sandbox, http_max_retries=3).list_projects(None, 5, None)
    assert caught.value.retry_after == 45
    assert sandbox.state.calls["slack"] == 1


async def test_server_errors_are_retried_then_reported(sandbox: Sandbox) -> None:
    sandbox.state.faults["slack"] = Fault(kind="status", status=503, times=1)
    page = await slack_connector(sandbox, http_max_retries=1).list_projects(None, 5, None)
    assert len(page.items) == 5
    sandbox.state.faults["slack"] = Fault(kind="status", status=500)
    with pytest.raises(UpstreamUnavailable, match="500"):
        await slack_connector(sandbox).list_projects(None, 5, None)
    assert sandbox.transport.exchanges[-1][1].json() == {"ok": False, "error": "internal_error"}


async def test_malformed_body_is_an_upstream_failure_not_a_crash(sandbox: Sandbox) -> None:
    sandbox.state.faults["slack"] = Fault(kind="malformed")
    with pytest.raises(UpstreamUnavailable, match="not valid JSON"):
        await slack_connector(sandbox).list_projects(None, 5, None)


async def test_time_bounds_accept_iso_dates_or_slack_ts_and_refuse_the_rest(sandbox: Sandbox) -> None:
    assert slack.to_slack_ts("2026-11-01", "oldest") == "1793491200.000000"
    assert slack.to_slack_ts("2026-11-01T10:00:00+01:00", "oldest") == "1793523600.000000"
    assert slack.to_slack_ts("1793491200.000100", "oldest") == "1793491200.000100"
    connector = slack_connector(sandbox)
    with pytest.raises(BadInput, match="ISO 8601"):
        await slack.channel_history(connector, slack.ChannelHistoryInput(channel="#general", oldest="last week"))


@pytest.mark.parametrize(
    ("oldest", "latest", "refusal"),
    [
        ("2026-09-07", "2026-08-28", r"`oldest` \(2026-09-07\) must be before `latest` \(2026-08-28\)"),
        (
            "1793491200.000200",
            "2026-11-01T00:00:00Z",
            r"`oldest` \(1793491200.000200, 2026-11-01T00:00:00.000200Z\) must be before `latest` \(2026-11-01T00:00",
        ),
        ("2026-11-01T01:00:00+01:00", "1793491200", r"`oldest` .* must be before `latest`"),
        ("1793491200.000200", "1793491200.000100", r"`oldest` .* must be before `latest`"),
    ],
)
async def test_a_time_range_ending_before_it_starts_is_refused_before_asking_slack(
    sandbox: Sandbox, oldest: str, latest: str, refusal: str
) -> None:
    with pytest.raises(BadInput, match=refusal):
        await slack.channel_history(
            slack_connector(sandbox), slack.ChannelHistoryInput(channel="#general", oldest=oldest, latest=latest)
        )
    assert sandbox.transport.requests("slack") == []


def test_message_markup_is_made_readable() -> None:
    text = "<@U1|ann> and <@U2> see <#C1|general>, <https://x.example|the doc> <!here>"
    assert slack.plain_text(text, {"U2": "Bo"}) == "@ann and @Bo see #general, the doc (https://x.example) @here"


async def test_sandbox_reads_post_forms_and_refuses_what_slack_refuses(sandbox: Sandbox) -> None:
    async with httpx2.AsyncClient(transport=sandbox.transport, base_url="http://sandbox.test/slack/api") as client:
        form = await client.post("/users.info", data={"token": BOT_TOKEN, "user": "USLACKBOT"})
        anonymous = await client.get("/users.list")
        stale_cursor = await client.get(
            "/conversations.list",
            params={"cursor": "dXNlcjpVMDYxTkZUVDI="},
            headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        )
        unknown = await client.get("/chat.postMessage", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    assert form.json()["user"]["name"] == "slackbot"
    assert [r.json() for r in (anonymous, stale_cursor, unknown)] == [
        {"ok": False, "error": "not_authed"},
        {"ok": False, "error": "invalid_cursor"},
        {"ok": False, "error": "unknown_method", "req_method": "chat.postMessage"},
    ]
    assert {r.status_code for r in (form, anonymous, stale_cursor, unknown)} == {200}


async def test_slacks_own_python_client_works_against_the_sandbox() -> None:
    """The sandbox is a double of Slack, not of our connector: slack_sdk's WebClient reads it as Slack."""
    async with running_sandbox() as (base_url, _):
        bot = WebClient(token=BOT_TOKEN, base_url=f"{base_url}/slack/api/")
        user = WebClient(token=USER_TOKEN, base_url=f"{base_url}/slack/api/")

        def use_the_client() -> dict[str, Any]:
            # the iterator follows response_metadata.next_cursor, reusing one response object: read each page now
            pages = [
                page["channels"] for page in bot.conversations_list(limit=4, types="public_channel,private_channel")
            ]
            channel_ids = [c["id"] for channels in pages for c in channels]
            history = bot.conversations_history(channel=channel_ids[1], limit=5)
            members = [m["name"] for page in bot.users_list(limit=5) for m in page["members"]]
            found = user.search_messages(query="telemetry in:#proj-battery-health", count=5)
            try:
                bot.search_messages(query="telemetry")
                refused = ""
            except SlackApiError as exc:
                refused = exc.response["error"]
            return {
                "pages": len(pages),
                "channels": len(channel_ids),
                "distinct": len(set(channel_ids)),
                "history": (
                    len(history["messages"]),
                    history["has_more"],
                    bool(history["response_metadata"]["next_cursor"]),
                ),
                "members": len(members),
                "search": (
                    found["messages"]["total"] > 0,
                    {m["channel"]["name"] for m in found["messages"]["matches"]},
                ),
                "bot_search": refused,
            }

        seen = await anyio.to_thread.run_sync(use_the_client)
    assert seen == snapshot(
        {
            "pages": 4,
            "channels": 15,
            "distinct": 15,
            "history": (5, True, True),
            "members": 12,
            "search": (True, {"proj-battery-health"}),
            "bot_search": "not_allowed_token_type",
        }
    )


async def test_search_pages_keep_their_size_when_the_limit_changes_between_pages(mcp_client: Client) -> None:
    async def every_match(limits: list[int]) -> list[str]:
        seen: list[str] = []
        cursor = None
        for turn in range(200):
            arguments = {"query": "the", "limit": limits[turn % len(limits)], **({"cursor": cursor} if cursor else {})}
            page = (await mcp_client.call_tool("slack_search_messages", arguments)).structured_content or {}
            seen += [f"{m['channel_id']}:{m['ts']}" for m in page["matches"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return seen
        raise AssertionError("never reached the last page")

    steady = await every_match([20])
    assert len(steady) > 40 and len(set(steady)) == len(steady)
    assert await every_match([20, 7, 50]) == steady  # nothing skipped or repeated


async def test_search_stops_at_slacks_hundredth_page_and_says_so(sandbox: Sandbox) -> None:
    """search.messages serves page 100 for any later page: the cursor ends there, with a note."""
    connector = slack_connector(sandbox)
    at = {n: encode_cursor(slack.PLATFORM, {"page": n, "count": 1}) for n in (99, 100)}
    before = await slack.search_messages(connector, slack.SearchMessagesInput(query="the", limit=1, cursor=at[99]))
    last = await slack.search_messages(connector, slack.SearchMessagesInput(query="the", limit=1, cursor=at[100]))
    assert last.total > 100, "the search should match more than 100 messages, or this test proves nothing"
    assert before.next_cursor and not before.truncated
    assert last.next_cursor is None and last.truncated and "first 100 pages" in (last.note or "")
