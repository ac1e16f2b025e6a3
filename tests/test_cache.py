"""The cache on the one read path: freshness, stale fallback, coalescing, leases, background refresh."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import httpx2
import pytest
from mcp import Client
from pydantic import BaseModel

from sophia_mcp import metrics
from sophia_mcp.app import create_app
from sophia_mcp.cache import Cache, CacheKey
from sophia_mcp.config import PLATFORMS
from sophia_mcp.errors import UpstreamUnauthorized, UpstreamUnavailable
from sophia_mcp.memo import IdentityMemo
from sophia_mcp.registry import all_tools
from sophia_mcp.sandbox import Fault
from sophia_mcp.server import build_mcp_server
from sophia_mcp.service import ListProjectsInput, Service
from sophia_mcp.store.memory import MemoryStore
from tests.conftest import Sandbox

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def service_with(sandbox: Sandbox, cache: Cache | None = None, **settings: object) -> Service:
    return Service(sandbox.settings(**settings), transports=dict.fromkeys(PLATFORMS, sandbox.transport), cache=cache)


@pytest.fixture
async def rest(service: Service) -> AsyncIterator[httpx2.AsyncClient]:
    specs = all_tools()
    app = create_app(service, build_mcp_server(service, specs), specs)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        yield client


def lookups(platform: str, result: str) -> float:
    return metrics.REGISTRY.get_sample_value(
        "sophia_cache_lookups_total", {"platform": platform, "result": result}
    ) or 0.0


async def test_a_repeated_read_within_the_ttl_comes_from_the_cache_without_a_platform_call(
    sandbox: Sandbox, service: Service
) -> None:
    fresh_before, miss_before = lookups("linear", "fresh"), lookups("linear", "miss")
    first = await service.platform_projects("linear", limit=5)
    second = await service.platform_projects("linear", limit=5)

    assert (first.source, second.source) == ("live", "cache")
    assert second.projects == first.projects
    assert second.fetched_at == first.fetched_at and second.age_seconds >= 0
    assert sandbox.state.calls["linear"] == 1
    assert (lookups("linear", "fresh") - fresh_before, lookups("linear", "miss") - miss_before) == (1, 1)


async def test_fresh_true_asks_the_platform_again(sandbox: Sandbox, service: Service) -> None:
    await service.platform_projects("linear", limit=5)
    again = await service.platform_projects("linear", limit=5, fresh=True)
    assert again.source == "live"
    assert sandbox.state.calls["linear"] == 2


async def test_rest_cache_control_no_cache_asks_the_platform_again(
    sandbox: Sandbox, rest: httpx2.AsyncClient
) -> None:
    cached = (await rest.get("/api/v4/mcp/linear/projects")).json()
    cached = (await rest.get("/api/v4/mcp/linear/projects")).json()
    assert cached["source"] == "cache" and cached["fetched_at"] and cached["age_seconds"] >= 0
    fresh = (await rest.get("/api/v4/mcp/linear/projects", headers={"Cache-Control": "No-Cache"})).json()  # any case
    assert fresh["source"] == "live"
    assert sandbox.state.calls["linear"] == 2


async def test_different_arguments_or_credentials_are_different_entries(sandbox: Sandbox, service: Service) -> None:
    await service.platform_projects("linear", limit=5)
    await service.platform_projects("linear", limit=6)
    await service.platform_projects("linear", limit=5, status="active")
    other_key = service_with(sandbox, linear_api_key="lin_api_someoneElse")
    other_key.cache = service.cache
    with pytest.raises(UpstreamUnauthorized):
        await other_key.platform_projects("linear", limit=5)
    assert sandbox.state.calls["linear"] == 4


async def test_503_after_one_good_read_the_same_rest_call_and_tool_call_return_stale_data(
    sandbox: Sandbox,
) -> None:
    service = service_with(sandbox, cache_ttl=0)  # every read goes to the platform
    await service.start()
    specs = all_tools()
    mcp_server = build_mcp_server(service, specs)
    app = create_app(service, mcp_server, specs)
    sandbox.state.faults["linear"] = Fault(kind="status", status=503, after=1)
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as rest:
            live = (await rest.get("/api/v4/mcp/linear/projects")).json()
            assert live["source"] == "live"

            stale = await rest.get("/api/v4/mcp/linear/projects")
            assert stale.status_code == 200
            body = stale.json()
            assert body["source"] == "stale" and "503" in body["stale_reason"]
            assert body["projects"] == live["projects"] and body["fetched_at"] == live["fetched_at"]

        async with Client(mcp_server) as client:
            result = await client.call_tool("list_projects", {"platforms": ["linear"]})
            assert not result.is_error
            content = result.structured_content
            assert content is not None
            assert content["source"] == "stale" and "503" in content["stale_reason"]
            assert [p["id"] for p in content["projects"]] == [p["id"] for p in live["projects"]]
            assert content["platforms"]["linear"]["source"] == "stale"

            # nothing was ever cached for this read: the platform's error, not made-up data
            issues = await client.call_tool("linear_list_teams", {})
            assert issues.is_error and "503" in issues.content[0].text  # type: ignore[union-attr]
    finally:
        await service.aclose()
    assert sandbox.state.calls["linear"] == 4


async def test_a_tool_read_goes_stale_too_when_the_platform_fails(sandbox: Sandbox) -> None:
    service = service_with(sandbox, cache_ttl=0)
    await service.start()
    try:
        async with Client(build_mcp_server(service, all_tools())) as client:
            live = await client.call_tool("linear_list_teams", {})
            sandbox.state.faults["linear"] = Fault(kind="status", status=502)
            stale = await client.call_tool("linear_list_teams", {})
    finally:
        await service.aclose()
    assert live.structured_content and stale.structured_content
    assert (live.structured_content["source"], stale.structured_content["source"]) == ("live", "stale")
    assert stale.structured_content["teams"] == live.structured_content["teams"]


async def test_stale_data_is_not_served_past_max_stale(sandbox: Sandbox) -> None:
    service = service_with(sandbox, cache_ttl=0, cache_max_stale=0)
    await service.platform_projects("linear", limit=5)
    sandbox.state.faults["linear"] = Fault(kind="status", status=503)
    with pytest.raises(UpstreamUnavailable, match="503"):
        await service.platform_projects("linear", limit=5)


async def test_an_error_the_platform_means_is_not_hidden_behind_stale_data(sandbox: Sandbox) -> None:
    service = service_with(sandbox, cache_ttl=0)
    await service.platform_projects("linear", limit=5)
    sandbox.state.faults["linear"] = Fault(kind="status", status=401)
    with pytest.raises(UpstreamUnauthorized):
        await service.platform_projects("linear", limit=5)


async def test_200_concurrent_identical_cold_reads_make_one_upstream_call(sandbox: Sandbox, service: Service) -> None:
    sources: list[str] = []

    async def read(fresh: bool) -> None:
        sources.append((await service.platform_projects("linear", limit=10, fresh=fresh)).source)

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(read, False)
    assert sandbox.state.calls["linear"] == 1
    assert sources == ["live"] * 200

    async with anyio.create_task_group() as tg:  # fresh reads skip the entry but still share one call
        for _ in range(200):
            tg.start_soon(read, True)
    assert sandbox.state.calls["linear"] == 2


async def test_200_concurrent_identical_rest_requests_make_one_upstream_call(
    sandbox: Sandbox, rest: httpx2.AsyncClient
) -> None:
    statuses: list[int] = []

    async def get() -> None:
        statuses.append((await rest.get("/api/v4/mcp/linear/projects", params={"limit": 7})).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(get)
    assert statuses == [200] * 200
    assert sandbox.state.calls["linear"] == 1


async def test_a_restarted_process_serves_the_stored_snapshot_without_a_platform_call(sandbox: Sandbox) -> None:
    store = MemoryStore()
    first = Service(sandbox.settings(), transports=dict.fromkeys(PLATFORMS, sandbox.transport), store=store)
    live = await first.platform_projects("linear", limit=5)
    second = Service(sandbox.settings(), transports=dict.fromkeys(PLATFORMS, sandbox.transport), store=store)
    again = await second.platform_projects("linear", limit=5)
    assert again.source == "cache" and again.projects == live.projects
    assert sandbox.state.calls["linear"] == 1


class Page(BaseModel):
    items: list[int]


def key(name: str = "k", platform: str = "linear") -> CacheKey:
    return CacheKey(platform, "op", name, "cred")


class SharedMemoryStore(MemoryStore):
    """A memory store standing in for PostgreSQL: two caches on it behave like two replicas."""

    shared = True


async def test_two_replicas_on_a_shared_store_make_one_upstream_call_for_concurrent_cold_reads() -> None:
    store = SharedMemoryStore()
    replicas = [Cache(store), Cache(store)]
    calls = 0
    release = anyio.Event()

    async def fetch() -> Page:
        nonlocal calls
        calls += 1
        await release.wait()
        return Page(items=[1, 2, 3])

    results: list[tuple[str, list[int]]] = []

    async def read(cache: Cache) -> None:
        value, freshness = await cache.read(key(), fetch, Page)
        results.append((freshness.source, value.items))

    async with anyio.create_task_group() as tg:
        for replica in replicas:
            for _ in range(50):
                tg.start_soon(read, replica)
        while calls == 0:
            await anyio.lowlevel.checkpoint()
        for _ in range(20):  # let the second replica find the lease taken and start waiting
            await anyio.lowlevel.checkpoint()
        release.set()
    assert calls == 1
    assert sorted({source for source, _ in results}) == ["cache", "live"]
    assert all(items == [1, 2, 3] for _, items in results)
    assert store.leases == {}


async def test_while_another_replica_refreshes_a_key_the_stored_snapshot_is_served() -> None:
    clock = Clock()
    store = SharedMemoryStore()
    this, other = Cache(store, clock=clock), Cache(store, clock=clock)
    await this.read(key(), lambda: _page([1]), Page)
    clock.now += 301  # expired
    assert await store.try_lease(key().store_key, other.replica, 60)

    async def must_not_be_called() -> Page:
        raise AssertionError("the lease holder calls the platform, not this replica")

    value, freshness = await this.read(key(), must_not_be_called, Page)
    assert value.items == [1]
    assert freshness.source == "stale" and freshness.stale_reason and "another replica" in freshness.stale_reason


async def _page(items: list[int]) -> Page:
    return Page(items=items)


async def test_recently_used_entries_are_refreshed_before_they_expire_and_unused_ones_are_not() -> None:
    clock = Clock()
    cache = Cache(MemoryStore(), clock=clock)
    fetched: list[str] = []

    def fetch_for(name: str):  # type: ignore[no-untyped-def]
        async def fetch() -> Page:
            fetched.append(name)
            return Page(items=[len(fetched)])

        return fetch

    await cache.read(key("used"), fetch_for("used"), Page)
    await cache.read(key("unused"), fetch_for("unused"), Page)
    clock.now += 100
    await cache.read(key("used"), fetch_for("used"), Page)  # a cache hit marks it used
    clock.now += 150  # both are 250 s old: past 80% of the TTL
    assert await cache.refresh_due() == 1
    assert fetched == ["used", "unused", "used"]

    clock.now += 200  # the refreshed entry is still fresh for a reader
    value, freshness = await cache.read(key("used"), fetch_for("used"), Page)
    assert (freshness.source, value.items, freshness.age_seconds) == ("cache", [3], 200)
    assert fetched == ["used", "unused", "used"]

    clock.now += 400  # nobody read it since: no more refreshes
    assert await cache.refresh_due() == 0


async def test_background_refresh_runs_a_bounded_number_of_calls_per_platform_at_once() -> None:
    clock = Clock()
    cache = Cache(MemoryStore(), clock=clock, refresh_concurrency=2)
    running = peak = 0
    release = anyio.Event()

    async def slow() -> Page:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return Page(items=[])

    async def instant() -> Page:
        return Page(items=[])

    for i in range(6):
        await cache.read(key(f"l{i}", "linear"), instant, Page)
    await cache.read(key("g", "github"), instant, Page)
    clock.now += 250
    for k in list(cache.hot):
        cache.hot[k].fetch = slow
        cache.hot[k].used_at = clock.now

    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.refresh_due)
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        assert (running, peak) == (3, 3)  # two linear keys and the github one
        release.set()
    assert peak == 3


async def test_a_failed_background_refresh_keeps_the_entry_and_a_reader_gets_it_stale() -> None:
    clock = Clock()
    cache = Cache(MemoryStore(), clock=clock)
    await cache.read(key(), lambda: _page([7]), Page)
    clock.now += 250

    async def down() -> Page:
        raise UpstreamUnavailable("Linear answered 503", platform="linear")

    cache.hot[key()].fetch = down
    assert await cache.refresh_due() == 0
    clock.now += 100
    value, freshness = await cache.read(key(), down, Page)
    assert (value.items, freshness.source, freshness.stale_reason) == ([7], "stale", "Linear answered 503")


def test_an_identity_memo_answers_only_for_the_very_same_inputs() -> None:
    memo: IdentityMemo[str] = IdentityMemo(max_keys=2)
    a, b = [1], [1]
    memo.put("k", (a,), "built from a")
    assert memo.get("k", (a,)) == "built from a"
    assert memo.get("k", (b,)) is None  # equal, but not the same object
    assert memo.get("k", (a, a)) is None
    memo.put("j", (a,), "j")
    memo.put("l", (a,), "l")  # a third key: the memo starts over
    assert memo.get("k", (a,)) is None and memo.get("l", (a,)) == "l"


async def test_warm_reads_within_one_second_of_age_reuse_what_was_built_from_them(sandbox: Sandbox) -> None:
    clock = Clock()
    service = service_with(sandbox, cache=Cache(MemoryStore(), clock=clock))
    await service.platform_projects("linear", limit=3)
    clock.now += 10.2
    hit = await service.platform_projects("linear", limit=3)
    clock.now += 0.5
    assert await service.platform_projects("linear", limit=3) is hit
    assert (hit.source, hit.age_seconds) == ("cache", 10)
    clock.now += 0.5
    later = await service.platform_projects("linear", limit=3)
    assert later is not hit and later.age_seconds == 11 and later.projects is hit.projects

    await service.list_projects(ListProjectsInput())  # fills every platform
    merged = await service.list_projects(ListProjectsInput())
    assert await service.list_projects(ListProjectsInput()) is merged
    assert await service.list_projects(ListProjectsInput(limit=20)) is not merged
    clock.now += 1
    older = await service.list_projects(ListProjectsInput())
    assert older is not merged and older.age_seconds == merged.age_seconds + 1
    assert older.model_dump(exclude={"age_seconds", "platforms"}) == merged.model_dump(exclude={"age_seconds", "platforms"})


async def test_a_remembered_cross_platform_page_gives_way_as_soon_as_a_platform_page_changes(
    sandbox: Sandbox,
) -> None:
    clock = Clock()
    service = service_with(sandbox, cache=Cache(MemoryStore(), clock=clock))
    await service.list_projects(ListProjectsInput())  # cold: every platform live
    warm = await service.list_projects(ListProjectsInput())
    fresh_hits = lookups("linear", "fresh")
    assert await service.list_projects(ListProjectsInput()) is warm
    assert lookups("linear", "fresh") == fresh_hits + 1  # still counted as a cache hit per platform
    calls = dict(sandbox.state.calls)

    clock.now += 0.3  # the same second of age: only a changed page can end the reuse
    await service.platform_projects("linear", limit=7, fresh=True)
    after = await service.list_projects(ListProjectsInput())
    assert after is not warm
    assert after.platforms["linear"].fetched_at > warm.platforms["linear"].fetched_at
    assert {p: n - calls.get(p, 0) for p, n in sandbox.state.calls.items() if n != calls.get(p, 0)} == {"linear": 1}


async def test_the_rest_body_is_the_envelopes_own_json_and_says_its_age(sandbox: Sandbox) -> None:
    clock = Clock()
    service = service_with(sandbox, cache=Cache(MemoryStore(), clock=clock))
    specs = all_tools()
    app = create_app(service, build_mcp_server(service, specs), specs)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        live = (await client.get("/api/v4/mcp/linear/projects?limit=3")).json()
        clock.now += 42.9
        cached = await client.get("/api/v4/mcp/linear/projects?limit=3")
        again = await client.get("/api/v4/mcp/linear/projects?limit=3")
    envelope = await service.platform_projects("linear", limit=3)
    assert cached.content == again.content == envelope.model_dump_json().encode()
    assert (live["source"], live["age_seconds"]) == ("live", 0)
    assert (cached.json()["source"], cached.json()["age_seconds"]) == ("cache", 42)


async def test_a_tool_called_with_fresh_asks_the_platform_again(sandbox: Sandbox, mcp_client: Client) -> None:
    for arguments in ({}, {}, {"fresh": True}):
        result = await mcp_client.call_tool("linear_list_teams", arguments)
        assert not result.is_error
    assert result.structured_content["source"] == "live"  # type: ignore[index]
    assert sandbox.state.calls["linear"] == 2
    across = await mcp_client.call_tool("list_projects", {"platforms": ["linear"], "fresh": True})
    assert across.structured_content["platforms"]["linear"]["source"] == "live"  # type: ignore[index]
