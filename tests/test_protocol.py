"""MCP beyond tools, on real sandbox data: resources and subscriptions, prompts, completions, logging,
progress, and over HTTP the JSON-or-SSE choice and DNS-rebinding protection (bound to 0.0.0.0 too)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from inline_snapshot import snapshot
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    LoggingMessageNotificationParams,
    PromptReference,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
)
from pydantic import SecretStr

from sophia_mcp.app import create_app
from sophia_mcp.cache import Cache, CacheKey
from sophia_mcp.config import PLATFORMS
from sophia_mcp.models import Project, ProjectPage, ToolOutput
from sophia_mcp.registry import PageInput, ToolSpec, all_tools
from sophia_mcp.resources import ResourceSubscriptions, changed_uris
from sophia_mcp.sandbox import Fault
from sophia_mcp.server import build_mcp_server
from sophia_mcp.service import Service, progress_reporter
from tests.conftest import Sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]

ERAS = ["legacy", "2026-07-28"]


def text_of(result: Any) -> str:
    return result.contents[0].text if hasattr(result, "contents") else result.messages[0].content.text


# -- resources ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_resources_list_each_configured_platforms_projects_and_two_templates(
    mcp_server: Any, mode: str
) -> None:
    async with Client(mcp_server, mode=mode) as client:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates

    assert [(r.uri, r.name, r.mime_type) for r in resources] == snapshot(
        [
            ("sophia://linear/projects", "linear-projects", "application/json"),
            ("sophia://asana/projects", "asana-projects", "application/json"),
            ("sophia://notion/projects", "notion-projects", "application/json"),
            ("sophia://hubspot/projects", "hubspot-projects", "application/json"),
            ("sophia://gong/projects", "gong-projects", "application/json"),
            ("sophia://slack/projects", "slack-projects", "application/json"),
            ("sophia://github/projects", "github-projects", "application/json"),
        ]
    )
    assert all(r.description for r in resources)
    assert [t.uri_template for t in templates] == ["sophia://{platform}/projects", "sophia://{platform}/projects/{id}"]


async def test_an_unconfigured_platform_has_no_projects_resource(sandbox: Sandbox) -> None:
    service = sandbox.service(hubspot_token=None)
    async with Client(build_mcp_server(service, all_tools())) as client:
        uris = [r.uri for r in (await client.list_resources()).resources]
    assert "sophia://hubspot/projects" not in uris and len(uris) == 6


async def test_a_platforms_projects_resource_holds_the_same_projects_as_the_list_projects_tool(
    mcp_client: Client,
) -> None:
    tool = await mcp_client.call_tool("list_projects", {"platforms": ["asana"], "limit": 200})
    body = json.loads(text_of(await mcp_client.read_resource("sophia://asana/projects")))

    assert body["platform"] == "asana" and "next_cursor" not in body
    assert [p["id"] for p in body["projects"]] == [p["id"] for p in tool.structured_content["projects"]]
    assert len(body["projects"]) >= 12
    assert body["source"] in ("live", "cache") and "fetched_at" in body


async def test_a_project_resource_is_one_project_read_through_the_cache(
    sandbox: Sandbox, mcp_client: Client
) -> None:
    everything = json.loads(text_of(await mcp_client.read_resource("sophia://linear/projects")))
    calls = sandbox.state.calls["linear"]
    first = everything["projects"][0]

    result = await mcp_client.read_resource(f"sophia://linear/projects/{first['id']}")
    body = json.loads(text_of(result))

    assert result.contents[0].mime_type == "application/json"
    assert body["project"] == first
    assert body["source"] == "cache" and sandbox.state.calls["linear"] == calls


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sophia://linear/projects/no-such-project", "no linear project has the id or name 'no-such-project'"),
        ("sophia://jira/projects", "unknown platform 'jira'"),
    ],
)
async def test_reading_a_resource_that_does_not_exist_says_so(mcp_client: Client, uri: str, message: str) -> None:
    with pytest.raises(MCPError) as error:
        await mcp_client.read_resource(uri)
    assert error.value.error.code == INVALID_PARAMS
    assert message in error.value.error.message


# -- subscriptions -----------------------------------------------------------------------------


def page(*projects: tuple[str, str]) -> ProjectPage:
    return ProjectPage(items=[Project(platform="linear", id=i, name=name) for i, name in projects])


LINEAR_PAGE = CacheKey(platform="linear", operation="list_projects", arguments="{}", credential="x")


def test_a_change_names_the_platforms_projects_and_each_project_that_changed() -> None:
    before = page(("a", "Alpha"), ("b", "Beta"), ("c", "Gamma"))
    after = page(("a", "Alpha"), ("b", "Beta, renamed"), ("d", "Delta"))
    assert changed_uris(LINEAR_PAGE, before, after) == {
        "sophia://linear/projects",
        "sophia://linear/projects/b",
        "sophia://linear/projects/c",
        "sophia://linear/projects/d",
    }
    assert changed_uris(CacheKey("linear", "linear_list_issues", "{}", "x"), before, after) == set()


async def test_a_2025_client_subscribed_over_stdio_hears_of_changes_until_it_unsubscribes(service: Service) -> None:
    server = build_mcp_server(service, all_tools())
    subscriptions = subscriptions_of(server)
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(message.params.uri)

    async with Client(server, mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.resources and client.server_capabilities.resources.subscribe
        await client.subscribe_resource("sophia://linear/projects/b")
        await client.subscribe_resource("sophia://linear/projects")
        await subscriptions.data_changed(LINEAR_PAGE, page(("a", "A"), ("b", "B")), page(("a", "A"), ("b", "B2")))
        await client.unsubscribe_resource("sophia://linear/projects")
        await subscriptions.data_changed(LINEAR_PAGE, page(("b", "B2")), page(("b", "B3")))
        await client.send_ping()  # the notifications were sent before the ping's answer

    assert updates == ["sophia://linear/projects", "sophia://linear/projects/b", "sophia://linear/projects/b"]


async def test_a_2026_client_listening_hears_of_changes_to_the_resources_it_named(service: Service) -> None:
    server = build_mcp_server(service, all_tools())
    async with (
        Client(server, mode="2026-07-28") as client,
        client.listen(resource_subscriptions=["sophia://linear/projects/b"]) as listening,
    ):
        await subscriptions_of(server).data_changed(LINEAR_PAGE, page(("b", "B")), page(("b", "B2")))
        with anyio.fail_after(5):
            event = await anext(aiter(listening))
    assert event.uri == "sophia://linear/projects/b"  # type: ignore[union-attr]


async def test_a_background_refresh_that_changes_a_project_notifies_its_subscribers(sandbox: Sandbox) -> None:
    clock = FakeClock()
    cache = Cache(ttl=300, clock=clock)
    service = Service(sandbox.settings(), transports=dict.fromkeys(PLATFORMS, sandbox.transport), cache=cache)
    await service.start()
    linear = service.connector("linear")
    original = linear.list_projects
    updates: list[str] = []

    async def renamed_first(*args: Any) -> ProjectPage:
        page = await original(*args)
        page.items[0] = page.items[0].model_copy(update={"name": "Fleet Navigation v3"})
        return page

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(message.params.uri)

    async with Client(build_mcp_server(service, all_tools()), mode="legacy", message_handler=on_message) as client:
        projects = json.loads(text_of(await client.read_resource("sophia://linear/projects")))["projects"]
        await client.subscribe_resource(f"sophia://linear/projects/{projects[0]['id']}")
        await client.subscribe_resource(f"sophia://linear/projects/{projects[1]['id']}")
        clock.now += 10
        await client.read_resource("sophia://linear/projects")  # read again within the TTL: kept warm
        linear.list_projects = renamed_first  # type: ignore[method-assign]
        clock.now += 300 * 0.85
        assert await cache.refresh_due() == 1
        await asyncio.gather(*cache._announcements)
        await client.send_ping()
    await service.aclose()

    assert updates == [f"sophia://linear/projects/{projects[0]['id']}"]


class FakeClock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def subscriptions_of(server: Any) -> ResourceSubscriptions:
    handler = server._lowlevel_server.get_request_handler("resources/subscribe").handler
    assert isinstance(handler.__self__, ResourceSubscriptions)
    return handler.__self__


# -- prompts -----------------------------------------------------------------------------------


async def test_prompts_are_listed_with_their_arguments(mcp_client: Client) -> None:
    prompts = (await mcp_client.list_prompts()).prompts
    assert [(p.name, p.title, [(a.name, a.required) for a in p.arguments or []]) for p in prompts] == snapshot(
        [
            ("weekly_status_report", "Weekly cross-platform status report", [("platforms", False), ("period", False)]),
            ("project_brief", "Project brief", [("platform", True), ("project", True)]),
            ("triage", "Triage open issues and tasks", [("platform", True), ("project", False), ("team", False)]),
        ]
    )
    assert all(p.description for p in prompts) and all(a.description for p in prompts for a in p.arguments or [])


async def test_the_weekly_report_embeds_every_project_and_marks_what_changed_in_the_period(
    sandbox: Sandbox, service: Service, mcp_client: Client
) -> None:
    sandbox.state.faults["github"] = Fault(kind="status", status=503)
    linear = (await service.all_platform_projects("linear")).projects

    result = await mcp_client.get_prompt(
        "weekly_status_report", {"platforms": "linear,github", "period": "2026-11-19..2026-11-20"}
    )
    text = text_of(result)
    changed = text.split("Changed in the period (")[1].split("Other open projects")[0]

    assert result.messages[0].role == "user"
    assert text.startswith("Write the weekly status report for 2026-11-19 to 2026-11-20 across Linear, GitHub.")
    assert all(p.name in text for p in linear if p.status in ("active", "planned", "paused"))
    for project in linear:
        in_period = project.updated_at is not None and "2026-11-19" <= project.updated_at[:10] <= "2026-11-20"
        assert (f"- {project.name}:" in changed) == in_period, project.name
    assert "## GitHub\nNo data: GitHub answered 503" in text


async def test_the_project_brief_embeds_the_project_its_detail_and_mentions_on_other_platforms(
    mcp_client: Client,
) -> None:
    arguments = {"platform": "linear", "project": "fleet navigation v2"}  # a name, in any case, or an id
    text = text_of(await mcp_client.get_prompt("project_brief", arguments))

    assert 'the Linear project "Fleet Navigation v2"' in text
    assert "- Fleet Navigation v2: active (In Progress) · owner Ben Lindqvist" in text
    assert '## linear_get_project\n{"project":{"platform":"linear"' in text and '"issues_by_state"' in text
    mentions = text.split("## Mentions across platforms")[1]
    assert {line.split()[1][1:] for line in mentions.splitlines()[1:]} >= {"linear", "asana", "notion"}


@pytest.mark.parametrize(
    ("arguments", "scope", "closed"),
    [
        ({"platform": "linear", "team": "AUT"}, "Linear team AUT", ("state Done", "state Canceled")),
        ({"platform": "asana", "project": "Fleet Navigation v2"}, 'Asana project "Fleet Navigation v2"', ()),
        ({"platform": "github", "project": "northwind/fleet-navigation"}, "repository northwind/fleet-navigation",
         ("state closed",)),
    ],
)
async def test_triage_embeds_only_the_open_issues_or_tasks(
    mcp_client: Client, arguments: dict[str, str], scope: str, closed: tuple[str, ...]
) -> None:
    text = text_of(await mcp_client.get_prompt("triage", arguments))
    items = [line for line in text.split("## Open ")[1].splitlines()[1:] if line.startswith("- ")]

    assert scope in text.splitlines()[0]
    assert items and f"Triage the {len(items)} open" in text
    assert not [line for line in items if any(state in line for state in closed)]


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("weekly_status_report", {"period": "last sprint"}, "period 'last sprint': use 7d, 2w, or a range"),
        ("weekly_status_report", {"platforms": "linear,jira"}, "unknown platform 'jira'"),
        ("project_brief", {"platform": "asana", "project": "Nope"}, "no asana project has the id or name 'Nope'"),
        ("triage", {"platform": "slack"}, "triage covers linear, asana, github, not 'slack'"),
        ("triage", {"platform": "github"}, "github triage needs a project"),
        ("project_brief", {"platform": "linear"}, "prompt 'project_brief' needs: project"),
        ("project_brief", {"platform": "linear", "project": " "}, "prompt 'project_brief' needs: project"),
        ("triage", {"platform": "github", "project": " "}, "github triage needs a project"),
        ("test_simple_prompt", {}, "unknown prompt 'test_simple_prompt'; prompts/list shows them"),
        ("weekly_status_report", {"bogus": "1"},
         "prompt 'weekly_status_report' has no argument 'bogus'; it takes: platforms, period"),
        ("project_brief", {"platform": "linear", "project": "x", "bogus": "1"},
         "prompt 'project_brief' has no argument 'bogus'; it takes: platform (required), project (required)"),
        ("triage", {"platform": "linear", "bogus": "1", "repo": "x"},
         "prompt 'triage' has no argument 'bogus', 'repo'; it takes: platform (required), project, team"),
        ("weekly_status_report", {"period": "2026-02-30..2026-03-01"},
         "period '2026-02-30..2026-03-01': 2026-02-30 is not a date; use 7d, 2w, or a range such as 2026-11-13"),
        ("weekly_status_report", {"period": "2026-03-01..0000-01-01"}, "0000-01-01 is not a date"),
        ("weekly_status_report", {"period": "2026-03-02..2026-03-01"},
         "period '2026-03-02..2026-03-01' ends before it starts; use 7d, 2w, or a range"),
    ],
)
async def test_a_prompt_with_bad_arguments_says_what_is_wrong_without_a_traceback(
    mcp_client: Client, caplog: pytest.LogCaptureFixture, name: str, arguments: dict[str, str], message: str
) -> None:
    with pytest.raises(MCPError) as error:
        await mcp_client.get_prompt(name, arguments)
    assert error.value.error.code == INVALID_PARAMS
    assert message in error.value.error.message
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


async def test_the_weekly_report_names_a_platform_given_twice_once(mcp_client: Client) -> None:
    text = text_of(await mcp_client.get_prompt("weekly_status_report", {"platforms": "linear, github,linear"}))

    assert "across Linear, GitHub.\n" in text
    assert text.count("## Linear:") == 1


# -- completions -------------------------------------------------------------------------------


async def complete(client: Client, ref: Any, name: str, value: str, **given: str) -> list[str]:
    result = await client.complete(ref, {"name": name, "value": value}, context_arguments=given or None)
    assert result.completion.total == len(result.completion.values)
    return result.completion.values


WEEKLY = PromptReference(type="ref/prompt", name="weekly_status_report")
BRIEF = PromptReference(type="ref/prompt", name="project_brief")
TRIAGE = PromptReference(type="ref/prompt", name="triage")
PROJECT = ResourceTemplateReference(type="ref/resource", uri="sophia://{platform}/projects/{id}")


async def test_completions_offer_platforms_periods_teams_and_repositories(mcp_client: Client) -> None:
    assert await complete(mcp_client, WEEKLY, "platforms", "linear,g") == ["linear,gong", "linear,github"]
    assert await complete(mcp_client, WEEKLY, "period", "") == ["7d", "14d", "30d"]
    assert await complete(mcp_client, BRIEF, "platform", "h") == ["hubspot", "github"]
    assert await complete(mcp_client, TRIAGE, "platform", "") == ["linear", "asana", "github"]
    assert await complete(mcp_client, TRIAGE, "team", "a") == ["AUT", "SAL"]
    repositories = await complete(mcp_client, TRIAGE, "project", "fleet", platform="github")
    assert repositories[0] == "northwind/fleet-navigation"


async def test_completions_offer_project_names_for_prompts_and_ids_for_the_resource_template(
    service: Service, mcp_client: Client
) -> None:
    asana = (await service.all_platform_projects("asana")).projects

    assert await complete(mcp_client, BRIEF, "project", "fleet n", platform="linear") == ["Fleet Navigation v2"]
    assert await complete(mcp_client, PROJECT, "id", "", platform="asana") == [p.id for p in asana]
    assert await complete(mcp_client, PROJECT, "id", asana[3].id[:6], platform="asana") == [asana[3].id]


async def test_completing_an_argument_nothing_is_known_about_offers_nothing(mcp_client: Client) -> None:
    other = PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
    assert await complete(mcp_client, other, "arg1", "test") == []


# -- logging and progress ----------------------------------------------------------------------


@asynccontextmanager
async def logging_client(server: Any, **options: Any) -> AsyncIterator[tuple[Client, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        received.append((params.level, str(params.data)))

    async with Client(server, logging_callback=on_log, **options) as client:
        yield client, received


async def test_set_level_decides_which_log_messages_a_2025_client_gets(sandbox: Sandbox, mcp_server: Any) -> None:
    sandbox.state.faults["github"] = Fault(kind="status", status=503)
    async with logging_client(mcp_server, mode="legacy") as (client, received):
        await client.call_tool("list_projects", {})
        by_default = list(received)  # the server's own level, SOPHIA_LOG_LEVEL=INFO
        await client.set_logging_level("debug")
        received.clear()
        await client.call_tool("list_projects", {"platforms": ["github", "linear"]})
        at_debug = list(received)
        await client.set_logging_level("error")
        received.clear()
        await client.call_tool("list_projects", {"platforms": ["github"]})

    assert [level for level, _ in by_default] == ["warning"]
    assert "github: GitHub answered 503" in by_default[0][1]
    assert [level for level, _ in at_debug] == ["debug", "warning"]
    assert at_debug[0][1].startswith("list_projects: live in ")
    assert received == []


async def test_a_2026_client_gets_log_messages_only_at_the_level_its_requests_opt_into(
    sandbox: Sandbox, mcp_server: Any
) -> None:
    sandbox.state.faults["github"] = Fault(kind="status", status=503)
    async with logging_client(mcp_server, mode="2026-07-28") as (client, received):
        await client.call_tool("list_projects", {})
    async with logging_client(mcp_server, mode="2026-07-28", log_level="warning") as (client, opted_in):
        await client.call_tool("list_projects", {})

    assert received == []
    assert [level for level, _ in opted_in] == ["warning"]


async def test_stale_data_served_for_a_failing_platform_is_a_warning_to_the_client(sandbox: Sandbox) -> None:
    service = sandbox.service(cache_ttl=0)  # every read asks the platform
    async with logging_client(build_mcp_server(service, all_tools()), mode="legacy") as (client, received):
        await client.call_tool("linear_list_teams", {})
        sandbox.state.faults["linear"] = Fault(kind="status", status=503)
        result = await client.call_tool("linear_list_teams", {})

    assert result.structured_content["source"] == "stale"
    assert [message for level, message in received if level == "warning"] == [
        f"linear_list_teams: served data saved {result.structured_content['age_seconds']:.0f} s ago: "
        + result.structured_content["stale_reason"]
    ]


async def test_what_the_server_logs_while_serving_a_call_reaches_that_calls_client(service: Service) -> None:
    async def export(connector: Any, args: PageInput) -> ToolOutput:
        logging.getLogger("connectors.linear").warning("page 2 of the export was empty")
        return ToolOutput()

    spec = ToolSpec("linear_export", "linear", "Export", "Exports.", PageInput, ToolOutput, export)
    async with logging_client(build_mcp_server(service, [spec]), mode="legacy") as (client, received):
        await client.call_tool("linear_export", {})
    logging.getLogger("connectors.linear").warning("not while serving a call: nobody hears this")

    assert ("warning", "page 2 of the export was empty") in received
    assert all("nobody hears this" not in message for _, message in received)


@pytest.mark.parametrize("mode", ERAS)
async def test_list_projects_reports_progress_as_each_platform_answers(mcp_server: Any, mode: str) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with Client(mcp_server, mode=mode) as client:
        await client.call_tool("list_projects", {}, progress_callback=on_progress)

    assert [(done, total) for done, total, _ in progress] == [(n, 7.0) for n in range(1, 8)]
    platforms = ("linear", "asana", "notion", "hubspot", "gong", "slack", "github")
    assert {message for _, _, message in progress} == {f"{p} done" for p in platforms}


async def test_a_connector_handler_can_report_progress_through_the_service(service: Service) -> None:
    async def render(connector: Any, args: PageInput) -> ToolOutput:
        report = progress_reporter.get()
        assert report is not None
        for block in range(1, 4):
            await report(block, 3, f"block {block} of 3")
        return ToolOutput()

    spec = ToolSpec("linear_render", "linear", "Render", "Renders.", PageInput, ToolOutput, render)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message))

    async with Client(build_mcp_server(service, [spec])) as client:
        result = await client.call_tool("linear_render", {}, progress_callback=on_progress)

    assert not result.is_error
    assert progress == [(1, "block 1 of 3"), (2, "block 2 of 3"), (3, "block 3 of 3")]


# -- over HTTP ---------------------------------------------------------------------------------

LEGACY = {"mcp-protocol-version": "2025-11-25"}
MODERN = {"mcp-protocol-version": "2026-07-28"}
ACCEPT_BOTH = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
}


@asynccontextmanager
async def http_app(service: Service, *, host: str = "127.0.0.1") -> AsyncIterator[httpx2.AsyncClient]:
    specs = all_tools()
    app = create_app(service, build_mcp_server(service, specs), specs, host=host)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            yield client


def call(name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def sse_messages(body: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:") and line[5:].strip()]


async def test_over_http_a_call_is_answered_with_json_unless_it_asks_for_progress(sandbox: Sandbox) -> None:
    async with http_app(sandbox.service()) as http:
        plain = await http.post("/mcp", json=call("list_projects", {}), headers={**ACCEPT_BOTH, **LEGACY})
        progress = await http.post(
            "/mcp", json=call("list_projects", {}, {"progressToken": "p"}), headers={**ACCEPT_BOTH, **LEGACY}
        )

    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["result"]["structuredContent"]["projects"]
    assert progress.headers["content-type"].startswith("text/event-stream")
    messages = sse_messages(progress.text)
    # the first call warmed the cache: the second is answered at once, and says so in one notification
    assert [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"] == [7]
    assert messages[-1]["result"]["structuredContent"]["projects"]


async def test_over_http_a_2026_request_that_opts_into_log_messages_gets_them(sandbox: Sandbox) -> None:
    sandbox.state.faults["gong"] = Fault(kind="status", status=500)
    headers = {**ACCEPT_BOTH, **MODERN, "mcp-method": "tools/call", "mcp-name": "list_projects"}
    async with http_app(sandbox.service()) as http:
        quiet = await http.post("/mcp", json=call("list_projects", {}, MODERN_META), headers=headers)
        opted = await http.post(
            "/mcp",
            json=call("list_projects", {}, {**MODERN_META, "io.modelcontextprotocol/logLevel": "warning"}),
            headers=headers,
        )

    assert quiet.headers["content-type"] == "application/json" and quiet.json()["result"]["structuredContent"]
    logs = [m["params"] for m in sse_messages(opted.text) if m.get("method") == "notifications/message"]
    assert [(log["level"], log["data"].split(":")[0]) for log in logs] == [("warning", "gong")]


async def test_over_stateless_http_a_2025_subscription_is_acknowledged(sandbox: Sandbox) -> None:
    body = {"jsonrpc": "2.0", "id": 3, "method": "resources/subscribe", "params": {"uri": "sophia://linear/projects"}}
    async with http_app(sandbox.service()) as http:
        answer = await http.post("/mcp", json=body, headers={**ACCEPT_BOTH, **LEGACY})
    assert answer.json() == {"jsonrpc": "2.0", "id": 3, "result": {}}


async def test_over_http_resource_reads_prompts_and_tool_calls_are_audited_with_the_callers_identity(sandbox: Sandbox) -> None:
    entries: list[dict[str, Any]] = []

    async def audit(entry: dict[str, Any]) -> None:
        entries.append(entry)

    service = Service(
        sandbox.settings(api_keys=[SecretStr("k1")]), transports=dict.fromkeys(("linear",), sandbox.transport),
        audit=audit,
    )
    headers = {**ACCEPT_BOTH, **LEGACY, "authorization": "Bearer k1"}
    async with http_app(service) as http:
        read = {"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": {"uri": "sophia://linear/projects"}}
        prompt = {"jsonrpc": "2.0", "id": 5, "method": "prompts/get",
                  "params": {"name": "triage", "arguments": {"platform": "linear", "team": "AUT"}}}
        assert "result" in (await http.post("/mcp", json=read, headers=headers)).json()
        assert "result" in (await http.post("/mcp", json=prompt, headers=headers)).json()
        # 2026-07-28: a call answered with JSON, and one answered with SSE (it asks for progress)
        modern = {**ACCEPT_BOTH, **MODERN, "mcp-method": "tools/call", "mcp-name": "list_projects",
                  "authorization": "Bearer k1"}
        for meta in (MODERN_META, {**MODERN_META, "progressToken": "p"}):
            answer = await http.post("/mcp", json=call("list_projects", {}, meta), headers=modern)
            assert answer.status_code == 200 and "result" in answer.text

    assert [(e["tool"], e["transport"], e["outcome"]) for e in entries] == [
        ("resource:projects", "mcp", "ok"), ("linear_list_issues", "mcp", "ok"), ("prompt:triage", "mcp", "ok"),
        ("list_projects", "mcp", "ok"), ("list_projects", "mcp", "ok"),
    ]
    assert {e["principal"] for e in entries} == {entries[0]["principal"]} and entries[0]["principal"].startswith("key:")


# -- DNS-rebinding protection ------------------------------------------------------------------

PROD_HOST = "sophia-mcp.prod.svc"


@pytest.fixture
def production(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Service:
    """Settings as a Kubernetes deployment has them: from the environment, bound to 0.0.0.0."""
    from sophia_mcp.config import load_settings
    from sophia_mcp.sandbox import demo_settings

    monkeypatch.setenv("SOPHIA_ALLOWED_HOSTS", PROD_HOST)
    monkeypatch.setenv("SOPHIA_API_KEYS", "prod-key")
    settings = load_settings(_env_file=None, **demo_settings("http://sandbox.test"))
    return Service(settings, transports=dict.fromkeys(("linear",), sandbox.transport))


ROUTES = [
    ("/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    ("/api/v4/mcp/linear/projects?limit=2", None),
]


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["mcp", "api"])
async def test_bound_to_all_interfaces_an_unknown_host_is_refused_and_the_allowed_one_served(
    production: Service, path: str, body: dict[str, Any] | None
) -> None:
    headers = {**ACCEPT_BOTH, **LEGACY, "authorization": "Bearer prod-key"}

    async def send(host: str, **extra: str) -> httpx2.Response:
        if body is None:
            return await http.get(path, headers={**headers, "host": host, **extra})
        return await http.post(path, json=body, headers={**headers, "host": host, **extra})

    async with http_app(production, host="0.0.0.0") as http:
        evil = await send("evil.example")
        evil_origin = await send(PROD_HOST, origin="http://evil.example")
        loopback = await send("127.0.0.1:8000")
        served = await send(PROD_HOST)
        served_on_port = await send(f"{PROD_HOST}:8000")

    assert evil.status_code == 421
    assert evil.headers["content-type"] == "application/problem+json"
    assert "Host 'evil.example' is not allowed" in evil.json()["detail"]
    assert "SOPHIA_ALLOWED_HOSTS" in evil.json()["detail"]
    assert evil_origin.status_code == 403 and "SOPHIA_ALLOWED_ORIGINS" in evil_origin.json()["detail"]
    assert loopback.status_code == 421  # only the configured host, not loopback, once hosts are configured
    assert (served.status_code, served_on_port.status_code) == (200, 200)


async def test_probes_answer_whatever_the_host_so_kubelets_and_prometheus_reach_them(production: Service) -> None:
    async with http_app(production, host="0.0.0.0") as http:
        statuses = [(await http.get(path, headers={"host": "10.1.2.3:8000"})).status_code
                    for path in ("/health", "/ready", "/metrics")]
    assert statuses == [200, 200, 200]


async def test_a_refused_host_is_refused_before_authentication(production: Service) -> None:
    async with http_app(production, host="0.0.0.0") as http:
        anonymous = await http.get("/api/v4/mcp/linear/projects", headers={"host": "evil.example"})
        allowed_anonymous = await http.get("/api/v4/mcp/linear/projects", headers={"host": PROD_HOST})
    assert (anonymous.status_code, allowed_anonymous.status_code) == (421, 401)


async def test_api_keys_come_as_bearer_or_x_api_key_and_a_principal_sent_by_the_client_is_ignored(
    production: Service,
) -> None:
    path = "/api/v4/mcp/linear/projects?limit=2"
    async with http_app(production, host="0.0.0.0") as http:
        forged = {"x-sophia-principal": "admin"}  # the header an earlier version passed the principal in
        by_header = await http.get(path, headers={"host": PROD_HOST, "x-api-key": "prod-key", **forged})
        wrong = await http.get(path, headers={"host": PROD_HOST, "authorization": "Bearer nope", "x-api-key": "prod-key"})
    assert by_header.status_code == 200
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == 'Bearer realm="sophia-mcp"'
    audited = await production.store.read_audit()
    assert [(e.tool, e.principal.startswith("key:")) for e in audited] == [("rest:linear.projects", True)]


def test_the_gate_matches_a_projects_page_path_as_its_route_does() -> None:
    from starlette.routing import Route

    from sophia_mcp.rest import PROJECTS_PATH, projects_platform

    route = Route(PROJECTS_PATH, lambda request: None)
    for path in ["/api/v4/mcp/linear/projects", "/api/v4/mcp//projects", "/api/v4/mcp/projects",
                 "/api/v4/mcp/a/b/projects", "/api/v4/mcp/linear/projects/", "/api/v4/mcp/x%20y/projects"]:
        matched = route.path_regex.fullmatch(path)
        assert projects_platform(path) == (matched["platform"] if matched else None), path
