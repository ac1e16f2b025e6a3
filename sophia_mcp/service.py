"""The service layer: one function per operation, behind both the MCP tools and the REST shim.

Every call passes here once: connector lookup, configuration check, cache, size budget, metrics
and audit. The fronts only translate (JSON-RPC or HTTP) in and out.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import anyio
import httpx2
from pydantic import Field

from connectors import load_connector_modules
from connectors.base import Connector, decode_cursor, encode_cursor
from sophia_mcp import metrics
from sophia_mcp.cache import Cache, CacheKey
from sophia_mcp.config import PLATFORMS, Settings
from sophia_mcp.errors import BadInput, NotFound, SophiaError, UnknownPlatform
from sophia_mcp.memo import IdentityMemo
from sophia_mcp.models import Freshness, Model, Project, ProjectPage, ProjectStatus, SearchHit, Source, ToolOutput
from sophia_mcp.registry import CORE_TOOLSET, Cursor, ToolInput, ToolSpec
from sophia_mcp.store import Store
from sophia_mcp.store.audit import AuditLog
from sophia_mcp.store.memory import MemoryStore

log = logging.getLogger("sophia_mcp")

PROJECT_PAGE_SIZE = 100  # the page size every platform accepts for its project list
MAX_RESULT_CHARS = 40_000  # about 10k tokens: a list result larger than this is cut, and says so

Platform = Literal["linear", "asana", "notion", "hubspot", "gong", "slack", "github"]

#: Called with (done, total, message) during slow fan-outs; set by the MCP front for progress.
progress_reporter: ContextVar[Callable[[float, float, str], Awaitable[None]] | None] = ContextVar(
    "progress_reporter", default=None
)

#: Who is calling, for the audit log: the HTTP front door (`app.Gate`) sets it from the API key; unset
#: (anonymous) over stdio and on an HTTP server without keys.
request_principal: ContextVar[str | None] = ContextVar("request_principal", default=None)

AuditSink = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WarmList:
    """A `list_projects` answer built only from fresh cache hits: valid while the cache's `version`
    is the same and until `until`, when one of its pages ages by a second or expires."""

    output: ProjectsOutput
    version: int
    until: float
    hit_counters: list[Any]  # the per-platform cache-hit counters a fan-out would have counted


class PlatformOutcome(Model):
    count: int = 0
    source: Source | None = None
    fetched_at: datetime | None = None
    age_seconds: int | None = None
    error: str | None = Field(default=None, description="Why this platform's part failed; other platforms still answered.")
    error_type: str | None = None


class ProjectsOutput(ToolOutput):
    projects: list[Project]
    next_cursor: str | None = None
    platforms: dict[str, PlatformOutcome] = Field(
        description="Per platform: how many projects came back, from where, or the error that kept them out."
    )


class PlatformProjects(ToolOutput):
    platform: str
    projects: list[Project]
    next_cursor: str | None = None


class PlatformProject(ToolOutput):
    platform: str
    project: Project


class SearchOutput(ToolOutput):
    hits: list[SearchHit]
    platforms: dict[str, PlatformOutcome]


class Hits(ToolOutput):
    hits: list[SearchHit]


class PlatformState(Model):
    platform: str
    title: str
    configured: bool
    missing_settings: list[str]
    base_url: str | None
    circuit: str
    tools: int
    check: str | None = Field(default=None, description="Result of a live credential check, when asked for.")


class StatusOutput(ToolOutput):
    platforms: list[PlatformState]


PlatformList = Annotated[
    list[Platform] | None,
    Field(description="Platforms to include; default: every configured platform."),
]


class ListProjectsInput(ToolInput):
    platforms: PlatformList = None
    status: Annotated[
        ProjectStatus | None, Field(description="Only projects with this normalised status.")
    ] = None
    limit: Annotated[
        int, Field(ge=1, le=200, description="Total projects to return, split evenly across platforms (at least one each).")
    ] = 50
    cursor: Cursor = None


class SearchInput(ToolInput):
    query: Annotated[str, Field(min_length=1, max_length=500, description="Words to look for.")]
    platforms: PlatformList = None
    limit: Annotated[int, Field(ge=1, le=50, description="Hits per platform.")] = 10


class PlatformStatusInput(ToolInput):
    check: Annotated[
        bool, Field(description="Also make one cheap authenticated call per configured platform.")
    ] = False


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        transports: Mapping[str, httpx2.AsyncBaseTransport] | None = None,
        cache: Cache | None = None,
        audit: AuditSink | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        # without a store (tests, embedding) snapshots and the audit log live in this process
        self.store = store if store is not None else MemoryStore()
        self.cache = cache or Cache.from_settings(settings, self.store)
        self.audit = audit if audit is not None else AuditLog(self.store, retention_days=settings.audit_retention_days)
        self.connectors: dict[str, Connector] = {}
        self.tool_counts: dict[str, int] = {}
        # warm reads rebuild nothing: keys, envelopes, merged pages and budget cuts are reused
        self._project_keys: dict[tuple[str, ProjectStatus | None, int, str | None], CacheKey] = {}
        self._envelopes: IdentityMemo[PlatformProjects] = IdentityMemo(max_keys=4096)
        self._merged: IdentityMemo[ProjectsOutput] = IdentityMemo()
        self._warm_lists: dict[Hashable, WarmList] = {}
        self._fitted: IdentityMemo[ToolOutput] = IdentityMemo()
        for module in load_connector_modules():
            cls: type[Connector] = module.CONNECTOR
            self.connectors[cls.platform] = cls(settings, (transports or {}).get(cls.platform))
            self.tool_counts[cls.platform] = len(module.TOOLS)

    async def start(self) -> None:
        await self.store.open()
        await self.cache.start()
        if isinstance(self.audit, AuditLog):
            await self.audit.start()

    async def readiness_problems(self) -> list[str]:
        """Why this replica should not take traffic yet; empty when ready."""
        return await self.cache.readiness_problems()

    async def aclose(self) -> None:
        for connector in self.connectors.values():
            await connector.aclose()
        await self.cache.aclose()
        if isinstance(self.audit, AuditLog):
            await self.audit.aclose()
        await self.store.aclose()

    # -- lookup -------------------------------------------------------------------------------

    def connector(self, platform: str) -> Connector:
        try:
            return self.connectors[platform]
        except KeyError:
            raise UnknownPlatform(
                f"unknown platform {platform!r}; use one of: {', '.join(self.connectors)}"
            ) from None

    def configured_platforms(self) -> list[str]:
        return [p for p, c in self.connectors.items() if c.configured]

    # -- the one read path ---------------------------------------------------------------------

    async def read(
        self,
        connector: Connector,
        operation: str,
        arguments: Mapping[str, Any],
        fetch: Callable[[], Awaitable[Any]],
        model: type[Any],
        *,
        fresh: bool = False,
    ) -> tuple[Any, Freshness]:
        connector.require_configured()
        return await self.cache.read(cache_key(connector, operation, arguments), fetch, model, fresh=fresh)

    async def observe(
        self,
        name: str,
        arguments: Mapping[str, Any],
        call: Callable[[], Awaitable[ToolOutput]],
        *,
        transport: str,
    ) -> ToolOutput:
        """Metrics and audit around one call, whichever front it came through (the caller is
        `request_principal`)."""
        started = time.perf_counter()
        outcome, source = "ok", None
        try:
            result = await call()
            source = result.source
            return result
        except SophiaError as exc:
            outcome = exc.type
            raise
        except Exception:
            outcome = "internal"
            raise
        finally:
            elapsed = time.perf_counter() - started
            try:
                if self.audit is not None:
                    await self.audit(
                        {
                            "at": datetime.now(UTC),
                            "principal": request_principal.get() or "anonymous",
                            "transport": transport,
                            "tool": name,
                            "arguments": dict(arguments),
                            "outcome": outcome,
                            "duration_ms": round(elapsed * 1000, 2),
                            "source": source,
                        }
                    )
            except Exception as exc:  # an answer withheld for want of its audit entry is not "ok"
                outcome = exc.type if isinstance(exc, SophiaError) else "internal"
                raise
            finally:
                metrics.child(metrics.TOOL_CALLS, name, outcome).inc()
                metrics.child(metrics.TOOL_CALL_DURATION, name).observe(elapsed)

    async def invoke(self, spec: ToolSpec, args: ToolInput, *, transport: str = "mcp") -> ToolOutput:
        """Run one tool: the MCP front calls this for every tool."""
        arguments = args.model_dump(mode="json", exclude_defaults=True)

        async def call() -> ToolOutput:
            page = PagePosition.of(spec.name, arguments, args)
            run_args = args
            if page is not None:
                resumed = {"cursor": page.cursor}
                if page.skip and hasattr(args, "limit"):  # the rest of a cut page: read it at its own size
                    resumed["limit"] = page.limit if page.limit is not None else type(args).model_fields["limit"].default
                run_args = args.model_copy(update=resumed)
            if spec.toolset == CORE_TOOLSET:
                output = await spec.handler(self, run_args)
            else:
                output = await platform_tool(run_args, page)
            if page is not None and page.skip:
                output = output.model_copy(update={page.items: getattr(output, page.items)[page.skip :]})
            fitted = self._fitted.get(spec.name, (output,))  # measuring the size costs a serialisation
            if fitted is None:
                fitted = self._fitted.put(spec.name, (output,), seal_cursor(spec.name, arguments, output, page))
            return fitted

        async def platform_tool(run_args: ToolInput, page: PagePosition | None) -> ToolOutput:
            connector = self.connector(spec.toolset)
            if spec.cacheable:
                # the platform's page, however it was reached; `fresh` gives the same data either way
                given = arguments if page is None else run_args.model_dump(mode="json", exclude_defaults=True)
                key_arguments = {k: v for k, v in given.items() if k != "fresh"}
                output, freshness = await self.read(
                    connector,
                    spec.name,
                    key_arguments,
                    lambda: spec.handler(connector, run_args),
                    spec.output_model,
                    fresh=args.fresh,
                )
                return output.with_freshness(freshness)
            return await spec.handler(connector, run_args)

        return await self.observe(spec.name, arguments, call, transport=transport)

    # -- operations ----------------------------------------------------------------------------

    async def platform_projects(
        self,
        platform: str,
        *,
        status: ProjectStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
        fresh: bool = False,
    ) -> PlatformProjects:
        """One platform's projects: the REST shim's `/api/v4/mcp/{platform}/projects`."""
        connector = self.connector(platform)
        connector.require_configured()
        key = self._projects_key(connector, status, limit, cursor)
        page, freshness = await self.cache.read(
            key, lambda: connector.list_projects(status, limit, cursor), ProjectPage, fresh=fresh
        )
        return self._projects_envelope(key, page, freshness)

    def warm_platform_projects(
        self, platform: str, status: ProjectStatus | None, limit: int, cursor: str | None
    ) -> PlatformProjects | None:
        """`platform_projects` when the cache holds the page fresh, else None, without awaiting."""
        connector = self.connector(platform)
        if not connector.configured:
            return None
        key = self._projects_key(connector, status, limit, cursor)
        hit = self.cache.fresh_hit(key)
        return None if hit is None else self._projects_envelope(key, *hit)

    def _projects_key(
        self, connector: Connector, status: ProjectStatus | None, limit: int, cursor: str | None
    ) -> CacheKey:
        memo = (connector.platform, status, limit, cursor)
        key = self._project_keys.get(memo)
        if key is None:
            if len(self._project_keys) >= 4096:
                self._project_keys.clear()
            arguments = {"status": status, "limit": limit, "cursor": cursor}
            key = self._project_keys[memo] = cache_key(connector, "list_projects", arguments)
        return key

    def _projects_envelope(self, key: CacheKey, page: ProjectPage, freshness: Freshness) -> PlatformProjects:
        envelope = self._envelopes.get(key, (page, freshness))
        if envelope is None:
            envelope = self._envelopes.put(key, (page, freshness), projects_envelope(key.platform, page, freshness))
        return envelope

    async def all_platform_projects(self, platform: str, *, max_pages: int = 20) -> PlatformProjects:
        """Every project of one platform, page by page, each page read through the cache: what the
        `sophia://{platform}/projects` resource, the prompts and completions serve."""
        pages: list[PlatformProjects] = []
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.platform_projects(platform, limit=PROJECT_PAGE_SIZE, cursor=cursor)
            pages.append(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        projects = [project for page in pages for project in page.projects]
        note = f"Only the first {len(projects)} projects; page with list_projects for more." if cursor else None
        return PlatformProjects(
            platform=platform, projects=projects, next_cursor=cursor, truncated=cursor is not None, note=note,
            **combined_freshness(pages),  # type: ignore[arg-type]
        )

    async def platform_project(self, platform: str, project: str) -> PlatformProject:
        """One project by id, or by its exact name (case-insensitive), from the platform's cached
        project pages: the `sophia://{platform}/projects/{id}` resource and the project brief prompt."""
        every = await self.all_platform_projects(platform)
        found = next((p for p in every.projects if p.id == project), None) or next(
            (p for p in every.projects if p.name.casefold() == project.casefold()), None
        )
        if found is None:
            raise NotFound(
                f"no {platform} project has the id or name {project!r}; list_projects shows them.", platform=platform
            )
        return PlatformProject(
            platform=platform, project=found, source=every.source, fetched_at=every.fetched_at,
            age_seconds=every.age_seconds, stale_reason=every.stale_reason,
        )

    def _targets(self, platforms: list[str] | None) -> tuple[list[str], dict[str, PlatformOutcome]]:
        """The platforms to fan out to, and an outcome for each one left out (never silently)."""
        skipped: dict[str, PlatformOutcome] = {}
        if platforms:
            for p in platforms:
                self.connector(p)
            return list(dict.fromkeys(platforms)), skipped
        targets = []
        for p, c in self.connectors.items():
            if c.configured:
                targets.append(p)
            else:
                skipped[p] = PlatformOutcome(
                    error=f"not configured: set {' and '.join(c.missing_settings())}", error_type="not-configured"
                )
        return targets, skipped

    async def fan_out(
        self,
        targets: list[str],
        call: Callable[[str], Awaitable[ToolOutput]],
        warm: Callable[[str], ToolOutput | None] | None = None,
    ) -> dict[str, ToolOutput | SophiaError]:
        """Run `call` for every platform at once; one platform's failure never fails the others.
        `warm(platform)` may answer from the cache first, so warm platforms need no task."""
        results: dict[str, ToolOutput | SophiaError] = {}
        if warm is not None:
            for platform in targets:
                if (ready := warm(platform)) is not None:
                    results[platform] = ready
        report = progress_reporter.get()
        if len(results) == len(targets):
            if report is not None and targets:
                await report(len(targets), len(targets), "all answered from the cache")
            return results
        if report is not None and results:  # progress counts every platform, the cached ones first
            await report(len(results), len(targets), f"{len(results)} answered from the cache")

        async def one(platform: str) -> None:
            try:
                results[platform] = await call(platform)
            except SophiaError as exc:
                results[platform] = exc
            except Exception as exc:  # a connector bug must not take the other platforms down
                log.exception("%s failed unexpectedly", platform)
                results[platform] = SophiaError(f"{platform} failed unexpectedly ({type(exc).__name__})")
            if report is not None:
                await report(len(results), len(targets), f"{platform} done")

        async with anyio.create_task_group() as tg:
            for platform in targets:
                if platform not in results:
                    tg.start_soon(one, platform)
        return {p: results[p] for p in targets}

    async def list_projects(self, args: ListProjectsInput) -> ProjectsOutput:
        memo_key = (tuple(args.platforms or ()), args.status, args.limit, args.cursor)
        warm_list = None if args.fresh else self._warm_lists.get(memo_key)
        if warm_list is not None and warm_list.version == self.cache.version and self.cache.clock() < warm_list.until:
            # every platform's page is still the one the cache held, at the same age: the same answer
            for hits in warm_list.hit_counters:
                hits.inc()
            if (report := progress_reporter.get()) is not None:
                await report(len(warm_list.hit_counters), len(warm_list.hit_counters), "all answered from the cache")
            return warm_list.output
        version = self.cache.version
        cursors = decode_cursor("*", args.cursor) if args.cursor else {}
        requested = args.platforms or (list(cursors) if cursors else None)
        targets, outcomes = self._targets(requested)
        if cursors:  # a later page: only the platforms that still have more
            targets = [p for p in targets if p in cursors]
        per_platform = max(1, args.limit // max(1, len(targets)))

        async def one(platform: str) -> ToolOutput:
            return await self.platform_projects(
                platform, status=args.status, limit=per_platform, cursor=cursors.get(platform), fresh=args.fresh
            )

        def warm(platform: str) -> ToolOutput | None:
            return self.warm_platform_projects(platform, args.status, per_platform, cursors.get(platform))

        results = await self.fan_out(targets, one, None if args.fresh else warm)
        # the same page objects as last time (warm, within the same second of age): the same answer
        parts = tuple(results.values())
        merged = self._merged.get(memo_key, parts)
        if merged is None:
            merged = self._merged.put(memo_key, parts, merge_projects(results, outcomes))
        if self.cache.version == version and all(
            isinstance(part, PlatformProjects) and part.source == "cache" for part in parts
        ):  # every page came from the cache, which did not change meanwhile: remember until a page ages
            keys = [
                (self._projects_key(self.connectors[p], args.status, per_platform, cursors.get(p)), part.age_seconds)
                for p, part in results.items()
                if isinstance(part, PlatformProjects)
            ]
            if len(self._warm_lists) >= 1024:
                self._warm_lists.clear()
            self._warm_lists[memo_key] = WarmList(
                merged, version, self.cache.stable_until(keys),
                [metrics.child(metrics.CACHE_LOOKUPS, p, "fresh") for p in results],
            )
        return merged

    async def search(self, args: SearchInput) -> SearchOutput:
        targets, outcomes = self._targets(args.platforms)

        async def one(platform: str) -> ToolOutput:
            connector = self.connector(platform)
            arguments = {"query": args.query, "limit": args.limit}

            async def fetch() -> Hits:
                return Hits(hits=await connector.search(args.query, args.limit))

            hits, freshness = await self.read(connector, "search", arguments, fetch, Hits, fresh=args.fresh)
            return hits.with_freshness(freshness)

        ranked: list[list[SearchHit]] = []
        sources: list[ToolOutput] = []
        for platform, result in (await self.fan_out(targets, one)).items():
            if isinstance(result, SophiaError):
                outcomes[platform] = PlatformOutcome(error=result.message, error_type=result.type)
                continue
            assert isinstance(result, Hits)
            ranked.append(result.hits)
            sources.append(result)
            outcomes[platform] = PlatformOutcome(
                count=len(result.hits), source=result.source, fetched_at=result.fetched_at,
                age_seconds=result.age_seconds,
            )
        # each platform's best first, in turn: a result cut to the size budget keeps some of every platform
        hits = [hit for rank in itertools.zip_longest(*ranked) for hit in rank if hit is not None]
        return SearchOutput(
            hits=hits, platforms={p: outcomes[p] for p in PLATFORMS if p in outcomes}, **combined_freshness(sources)
        )

    async def platform_status(self, args: PlatformStatusInput) -> StatusOutput:
        checks: dict[str, str] = {}
        if args.check:

            async def one(platform: str) -> ToolOutput:
                checks[platform] = "ok: " + await self.connector(platform).check()
                return ToolOutput()

            for platform, result in (await self.fan_out(self.configured_platforms(), one)).items():
                if isinstance(result, SophiaError):
                    checks[platform] = f"failed: {result.message}"
        return StatusOutput(
            platforms=[
                PlatformState(
                    platform=p,
                    title=c.title,
                    configured=c.configured,
                    missing_settings=c.missing_settings(),
                    base_url=c.base_url,
                    circuit=c.breaker.state,
                    tools=self.tool_counts[p],
                    check=checks.get(p),
                )
                for p, c in self.connectors.items()
            ],
            fetched_at=datetime.now(UTC),
        )


def cache_key(connector: Connector, operation: str, arguments: Mapping[str, Any]) -> CacheKey:
    return CacheKey(
        platform=connector.platform,
        operation=operation,
        arguments=json.dumps(arguments, sort_keys=True, default=str, separators=(",", ":")),
        credential=connector.credential_identity(),
    )


def projects_envelope(platform: str, page: ProjectPage, freshness: Freshness) -> PlatformProjects:
    # built without re-validating what the connector or the store already validated, so a cache hit
    # keeps the cached list itself
    return PlatformProjects.model_construct(
        platform=platform,
        projects=page.items,
        next_cursor=page.next_cursor,
        source=freshness.source,
        fetched_at=freshness.fetched_at,
        age_seconds=freshness.age_seconds,
        stale_reason=freshness.stale_reason,
    )


def merge_projects(
    results: Mapping[str, ToolOutput | SophiaError], outcomes: dict[str, PlatformOutcome]
) -> ProjectsOutput:
    """One page of `list_projects` from each platform's page (or error), in platform order."""
    projects: list[Project] = []
    next_cursors: dict[str, str] = {}
    sources: list[ToolOutput] = []
    for platform, result in results.items():
        if isinstance(result, SophiaError):
            outcomes[platform] = PlatformOutcome(error=result.message, error_type=result.type)
            continue
        assert isinstance(result, PlatformProjects)
        projects.extend(result.projects)
        sources.append(result)
        if result.next_cursor:
            next_cursors[platform] = result.next_cursor
        outcomes[platform] = PlatformOutcome(
            count=len(result.projects), source=result.source, fetched_at=result.fetched_at,
            age_seconds=result.age_seconds,
        )
    return ProjectsOutput(
        projects=projects,
        next_cursor=encode_cursor("*", next_cursors) if next_cursors else None,
        platforms={p: outcomes[p] for p in PLATFORMS if p in outcomes},
        **combined_freshness(sources),
    )


def combined_freshness(parts: list[ToolOutput]) -> dict[str, Any]:
    """The freshness of a merged result is that of its oldest part."""
    if not parts:
        return {"source": "live", "fetched_at": datetime.now(UTC), "age_seconds": 0}
    rank = {"live": 0, "cache": 1, "stale": 2}
    worst = max(parts, key=lambda p: (rank[p.source], p.age_seconds))
    reasons = sorted({p.stale_reason for p in parts if p.stale_reason})
    return {
        "source": worst.source,
        "fetched_at": min((p.fetched_at for p in parts if p.fetched_at), default=None),
        "age_seconds": worst.age_seconds,
        "stale_reason": "; ".join(reasons) or None,
    }


#: arguments that may change from one page of a listing to the next
PAGE_ARGUMENTS = frozenset({"cursor", "limit", "fresh", "verbose"})


@dataclass(frozen=True, slots=True)
class PagePosition:
    """Where a platform tool's `cursor` points: the platform's own cursor for a page, less the first `skip`
    entries of its `items` list, which an earlier answer already showed before the size budget cut it.
    Tied to the tool and to its arguments, so a cursor used elsewhere is refused, not misread."""

    cursor: str | None
    skip: int = 0
    items: str = ""
    limit: int | None = None  # the size of the page the entries were cut from: it is read again at that size

    @staticmethod
    def of(tool: str, arguments: Mapping[str, Any], args: ToolInput) -> PagePosition | None:
        cursor = getattr(args, "cursor", None)
        if not cursor:
            return None
        state = decode_cursor(tool, cursor)
        if state.get("a") != listing_digest(arguments):
            raise BadInput(
                f"this cursor belongs to a {tool} call with other arguments: repeat that call's arguments "
                "(limit may change) with the cursor, or omit the cursor for the first page.",
            )
        try:
            return PagePosition(state.get("c"), int(state.get("k", 0)), str(state.get("l", "")), state.get("n"))
        except (TypeError, ValueError):
            raise BadInput(f"cursor is not valid here: pass the `next_cursor` value exactly as {tool} returned it.") from None


def listing_digest(arguments: Mapping[str, Any]) -> str:
    listing = {k: v for k, v in arguments.items() if k not in PAGE_ARGUMENTS}
    return hashlib.sha256(json.dumps(listing, sort_keys=True, default=str).encode()).hexdigest()[:16]


def seal_cursor(tool: str, arguments: Mapping[str, Any], output: ToolOutput, page: PagePosition | None) -> ToolOutput:
    """Fit `output` to the size budget and give it a `next_cursor` of this tool's own: to the entries the
    budget cut from this page, if any, else to the platform's next page."""
    fitted, cut = fit_within_budget(output)
    if not hasattr(fitted, "next_cursor"):
        return fitted
    state: dict[str, Any] = {"a": listing_digest(arguments)}
    if cut:
        skip = page.skip if page is not None else 0
        state |= {"c": page.cursor if page is not None else None, "k": skip + len(getattr(fitted, cut)), "l": cut}
        if page is not None and page.limit is not None:
            state["n"] = page.limit
        elif "limit" in arguments:
            state["n"] = arguments["limit"]
    elif fitted.next_cursor:  # type: ignore[attr-defined]
        state["c"] = fitted.next_cursor  # type: ignore[attr-defined]
    else:
        return fitted
    return fitted.model_copy(update={"next_cursor": encode_cursor(tool, state)})


def fit_within_budget(output: ToolOutput, max_chars: int = MAX_RESULT_CHARS) -> tuple[ToolOutput, str | None]:
    """Cut the longest list in a result until it fits the budget, and say so plainly; also the name of
    the list it cut (None when it fits)."""
    size = len(output.model_dump_json(exclude_none=True))
    if size <= max_chars:
        return output, None
    lists = {name: value for name, value in output if isinstance(value, list) and value}
    if not lists:
        return output, None
    name, items = max(lists.items(), key=lambda kv: len(kv[1]))
    keep = max(1, int(len(items) * max_chars / size * 0.9))
    while keep > 1 and len(output.model_copy(update={name: items[:keep]}).model_dump_json(exclude_none=True)) > max_chars:
        keep = int(keep * 0.8)
    cut = output.model_copy(
        update={
            name: items[:keep],
            "truncated": True,
            "note": f"Showing {keep} of {len(items)} {name} to stay within the response size budget; "
            "ask for fewer (limit), narrow the filters, or page with the cursor.",
        }
    )
    return cut, name


def _core(name: str, title: str, description: str, input_model: type[ToolInput], output_model: type[ToolOutput],
          method: Callable[[Service, Any], Awaitable[ToolOutput]]) -> ToolSpec:
    return ToolSpec(name, CORE_TOOLSET, title, description, input_model, output_model, method)


CORE_TOOLS: list[ToolSpec] = [
    _core(
        "list_projects",
        "List projects across platforms",
        "List projects from every configured platform at once (Linear and Asana projects, Notion data sources, "
        "HubSpot deals, Gong workspaces, Slack channels, GitHub Projects and repositories), each with its URL and "
        "a normalised status (planned, active, paused, completed, canceled, unknown). Filter by platforms and "
        "status. A platform that fails is reported under `platforms` with the reason; the others still answer. "
        "Pass `next_cursor` back as `cursor` for more.",
        ListProjectsInput,
        ProjectsOutput,
        Service.list_projects,
    ),
    _core(
        "search",
        "Search across platforms",
        "Full-text search across the configured platforms (issues, pull requests, messages, tasks, pages, deals, "
        "calls). Returns hits with title, URL and a snippet; per-platform failures are listed under `platforms`.",
        SearchInput,
        SearchOutput,
        Service.search,
    ),
    _core(
        "platform_status",
        "Platform status",
        "Which platforms are configured, which settings are missing, and whether each is healthy (circuit "
        "breaker state). With check=true, also verifies each platform's credentials with one cheap call.",
        PlatformStatusInput,
        StatusOutput,
        Service.platform_status,
    ),
]
