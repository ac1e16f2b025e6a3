"""HubSpot: CRM v3 at `https://api.hubapi.com`, `Authorization: Bearer <private app access token>`.

Deals are the "projects": a deal's `pipeline` and `dealstage` hold ids, turned into labels through
`GET /crm/v3/pipelines/deals`; a stage's metadata (`isClosed`, `probability`) gives the normalised
status: open → active, closed won (probability 1) → completed, closed lost (probability 0) → canceled.
List pages carry `paging.next.after`; search (`POST .../search`) takes at most 200 per page, stops at
10,000 results, and has its own limit of 5 requests a second. Errors are `{"status": "error",
"message", "correlationId", "category"}`; a 429 may carry Retry-After.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx2
from pydantic import Field, model_validator

from connectors.base import (
    Connector,
    RateSpec,
    TokenBucket,
    decode_cursor,
    encode_cursor,
    retry_after_seconds,
)
from sophia_mcp.config import Settings
from sophia_mcp.errors import (
    BadInput,
    Forbidden,
    NotFound,
    RateLimited,
    SophiaError,
    UpstreamUnauthorized,
)
from sophia_mcp.models import Model, Project, ProjectPage, ProjectStatus, SearchHit, ToolOutput
from sophia_mcp.registry import Cursor, PageInput, ToolInput, ToolSpec, Verbose

PLATFORM = "hubspot"
ObjectType = Literal["deals", "companies", "contacts"]
#: HubSpot's app redirects `/l/` links to the user's own portal, so no portal id is needed
RECORD_URL = "https://app.hubspot.com/l/contacts/record/{type_id}/{id}"
OBJECT_TYPE_IDS: dict[str, str] = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
HIT_KINDS: dict[ObjectType, str] = {"deals": "deal", "companies": "company", "contacts": "contact"}
PROPERTIES: dict[str, tuple[str, ...]] = {
    "deals": (
        "dealname",
        "amount",
        "dealstage",
        "pipeline",
        "closedate",
        "hubspot_owner_id",
        "hs_lastmodifieddate",
        "createdate",
    ),
    "companies": ("name", "domain", "industry", "hs_lastmodifieddate"),
    "contacts": ("firstname", "lastname", "email", "company", "jobtitle", "lastmodifieddate"),
}
#: HubSpot's own properties an agent asks for most (a portal may add its own): named when a search uses a
#: property HubSpot does not know
COMMON_PROPERTIES: dict[str, tuple[str, ...]] = {
    "deals": (*PROPERTIES["deals"], "dealtype", "description", "hs_object_id"),
    "companies": (
        *PROPERTIES["companies"],
        "website",
        "phone",
        "city",
        "country",
        "lifecyclestage",
        "hubspot_owner_id",
        "createdate",
        "hs_object_id",
    ),
    "contacts": (*PROPERTIES["contacts"], "phone", "lifecyclestage", "hubspot_owner_id", "createdate", "hs_object_id"),
}
ValueKind = Literal["number", "date"]
#: properties compared as numbers or dates: a filter value that is neither matches nothing, so it is refused
VALUE_KINDS: dict[str, dict[str, ValueKind]] = {
    "deals": {
        "amount": "number",
        "hs_object_id": "number",
        "closedate": "date",
        "createdate": "date",
        "hs_lastmodifieddate": "date",
    },
    "companies": {"hs_object_id": "number", "createdate": "date", "hs_lastmodifieddate": "date"},
    "contacts": {"hs_object_id": "number", "createdate": "date", "lastmodifieddate": "date"},
}
LIST_PAGE_MAX = 100
SEARCH_PAGE_MAX = 200
SEARCH_TOTAL_MAX = 10_000  # HubSpot's search returns no result past the 10,000th
SEARCH_FILTERS_MAX = 6
BATCH_READ_MAX = 100
PIPELINES_TTL = 300.0
Operator = Literal[
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
DealStatus = Literal["active", "completed", "canceled"]


def record_url(object_type: str, object_id: str) -> str:
    return RECORD_URL.format(type_id=OBJECT_TYPE_IDS[object_type], id=object_id)


def stage_status(is_closed: bool, probability: float | None) -> ProjectStatus:
    """Open stages are active; a closed stage is won (probability 1) or lost (probability 0)."""
    if not is_closed:
        return "active"
    if probability is None:
        return "unknown"
    return "completed" if probability >= 1 else "canceled" if probability <= 0 else "unknown"


@dataclass(frozen=True)
class Stage:
    id: str
    label: str
    display_order: int
    probability: float | None
    is_closed: bool

    @property
    def status(self) -> ProjectStatus:
        return stage_status(self.is_closed, self.probability)


@dataclass(frozen=True)
class Pipeline:
    id: str
    label: str
    display_order: int
    archived: bool
    stages: tuple[Stage, ...]

    def stage(self, stage_id: str | None) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


def to_pipeline(node: Mapping[str, Any]) -> Pipeline:
    stages = []
    for s in sorted(node.get("stages") or [], key=lambda s: s.get("displayOrder", 0)):
        metadata = s.get("metadata") or {}
        try:
            probability = float(metadata["probability"]) if metadata.get("probability") is not None else None
        except ValueError:
            probability = None
        stages.append(
            Stage(
                id=str(s["id"]),
                label=s.get("label") or str(s["id"]),
                display_order=int(s.get("displayOrder", 0)),
                probability=probability,
                is_closed=str(metadata.get("isClosed", "false")).lower() == "true",
            )
        )
    return Pipeline(
        id=str(node["id"]),
        label=node.get("label") or str(node["id"]),
        display_order=int(node.get("displayOrder", 0)),
        archived=bool(node.get("archived", False)),
        stages=tuple(stages),
    )


class HubSpotConnector(Connector):
    platform = PLATFORM
    title = "HubSpot"
    credential_fields = ("hubspot_token",)
    base_url_field = "hubspot_base_url"
    # private apps: 100 requests per 10 s (190 on Professional/Enterprise); stay under the lower one
    rate = RateSpec(per_second=9, burst=10)
    #: search endpoints: 5 requests a second, kept a little under so a window never holds six
    search_rate = RateSpec(per_second=4, burst=1)

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, transport)
        self.search_bucket = TokenBucket(self.search_rate)
        self._pipelines: tuple[float, dict[str, Pipeline]] | None = None

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.hubspot_token is not None
        return {"Authorization": f"Bearer {self.settings.hubspot_token.get_secret_value()}"}

    async def throttle(self, method: str, path: str) -> None:
        if method == "POST" and path.endswith("/search"):  # every attempt, retries too
            await self.search_bucket.take("HubSpot searches", PLATFORM)
        await super().throttle(method, path)

    def classify(self, response: httpx2.Response) -> SophiaError | None:
        status = response.status_code
        if status < 400 or status >= 500:
            return super().classify(response)
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or "").strip() or f"HTTP {status}"
        if status == 401:
            return UpstreamUnauthorized(
                f"HubSpot rejected the token ({message}). Check SOPHIA_HUBSPOT_TOKEN: it must be a private app "
                "access token (pat-...); OAuth access tokens expire within about 30 minutes and are not refreshed.",
                platform=PLATFORM,
            )
        if status == 403:
            scopes = sorted(
                {
                    scope
                    for error in body.get("errors") or []
                    if isinstance(error, dict)
                    for scope in ((error.get("context") or {}).get("requiredGranularScopes") or [])
                }
            )
            needed = (
                ", ".join(scopes)
                if scopes
                else "crm.objects.deals.read, crm.objects.companies.read, crm.objects.contacts.read"
            )
            return Forbidden(
                f"HubSpot refused access ({message}). Give the private app behind SOPHIA_HUBSPOT_TOKEN the scope(s) "
                f"{needed}.",
                platform=PLATFORM,
            )
        if status == 404:
            return NotFound(
                f"HubSpot found no such object ({message}). Check the id: hubspot_list_deals and hubspot_search_crm "
                "show valid ids.",
                platform=PLATFORM,
            )
        if status == 429:
            policy = str(body.get("policyName") or "").upper()
            retry_after = retry_after_seconds(response)
            if policy == "DAILY":
                return RateLimited(
                    "HubSpot's daily API limit for this account is spent; it resets at midnight in the account's "
                    "time zone.",
                    platform=PLATFORM,
                    retry_after=retry_after if retry_after is not None else 3600.0,
                )
            if retry_after is None:
                interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
                retry_after = 1.0 if policy == "SECONDLY" else int(interval) / 1000 if interval.isdigit() else None
            wait = f" Retry after {retry_after:g} s." if retry_after is not None else " Retry shortly."
            return RateLimited(
                f"HubSpot rate limit reached ({message}).{wait}", platform=PLATFORM, retry_after=retry_after
            )
        return BadInput(
            f"HubSpot refused the request ({status} {body.get('category') or ''}): {message}", platform=PLATFORM
        )

    # -- pipelines ---------------------------------------------------------------------------------

    async def pipelines(self) -> dict[str, Pipeline]:
        """Deal pipelines by id, read once per few minutes: they change rarely and label every deal."""
        if self._pipelines is not None and time.monotonic() - self._pipelines[0] < PIPELINES_TTL:
            return self._pipelines[1]
        body = await self.get_json("/crm/v3/pipelines/deals")
        pipelines = {p.id: p for p in (to_pipeline(n) for n in body.get("results") or [])}
        self._pipelines = (time.monotonic(), pipelines)
        return pipelines

    async def pipeline_id(self, name_or_id: str) -> str:
        pipelines = await self.pipelines()
        for p in pipelines.values():
            if name_or_id in (p.id, p.label) or name_or_id.casefold() == p.label.casefold():
                return p.id
        known = ", ".join(f"{p.label} ({p.id})" for p in pipelines.values())
        raise BadInput(f"HubSpot has no deal pipeline {name_or_id!r}; known pipelines: {known}.", platform=PLATFORM)

    async def stage_ids(self, status: ProjectStatus) -> list[str]:
        return [s.id for p in (await self.pipelines()).values() for s in p.stages if s.status == status]

    # -- reading objects ----------------------------------------------------------------------------

    async def list_page(
        self, object_type: ObjectType, properties: Sequence[str], limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        state = cursor_state(cursor, "list")
        params = {
            "limit": min(limit, LIST_PAGE_MAX),
            "after": state.get("after"),
            "properties": ",".join(properties),
            "archived": "false",
        }
        body = await self.get_json(f"/crm/v3/objects/{object_type}", params)
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        next_cursor = encode_cursor(PLATFORM, {"via": "list", "after": after}) if after else None
        return body.get("results") or [], next_cursor

    async def search_page(
        self,
        object_type: ObjectType,
        *,
        properties: Sequence[str],
        limit: int,
        cursor: str | None,
        query: str | None = None,
        filters: Sequence[Mapping[str, Any]] = (),
        sort: Mapping[str, str] | None = None,
    ) -> SearchPage:
        """One page of `POST /crm/v3/objects/{type}/search`: at most 200 results, none past the 10,000th."""
        state = cursor_state(cursor, "search")
        seen = int(state.get("seen", 0))
        body: dict[str, Any] = {
            "limit": min(limit, SEARCH_PAGE_MAX, SEARCH_TOTAL_MAX - seen),
            "properties": list(properties),
        }
        if query:
            body["query"] = query
        if filters:
            body["filterGroups"] = [{"filters": list(filters)}]
        if sort:
            body["sorts"] = [dict(sort)]
        if state.get("after"):
            body["after"] = state["after"]
        try:
            data = await self.post_json(f"/crm/v3/objects/{object_type}/search", body)
        except BadInput as refused:
            named = [f["propertyName"] for f in filters] + ([sort["propertyName"]] if sort else [])
            raise refused_search(object_type, refused, named) from None
        results = data.get("results") or []
        total = int(data.get("total", len(results)))
        seen += len(results)
        after = ((data.get("paging") or {}).get("next") or {}).get("after")
        capped = bool(after) and seen >= SEARCH_TOTAL_MAX
        next_cursor = (
            encode_cursor(PLATFORM, {"via": "search", "after": str(after), "seen": seen})
            if after and not capped
            else None
        )
        note = None
        if total > SEARCH_TOTAL_MAX and (capped or next_cursor is None):
            note = (
                f"HubSpot search stops at {SEARCH_TOTAL_MAX:,} results and {total:,} match: narrow the query or "
                "filters to reach the rest."
            )
        return SearchPage(results=results, total=total, next_cursor=next_cursor, note=note)

    async def get_object(
        self, object_type: ObjectType, object_id: str, properties: Sequence[str], associations: Sequence[str] = ()
    ) -> dict[str, Any]:
        params = {"properties": ",".join(properties), "archived": "false"}
        if associations:
            params["associations"] = ",".join(associations)
        return await self.get_json(f"/crm/v3/objects/{object_type}/{object_id}", params)  # type: ignore[no-any-return]

    async def batch_read(
        self, object_type: ObjectType, ids: Sequence[str], properties: Sequence[str]
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        body = {"inputs": [{"id": i} for i in ids[:BATCH_READ_MAX]], "properties": list(properties)}
        data = await self.post_json(f"/crm/v3/objects/{object_type}/batch/read", body)
        by_id = {r["id"]: r for r in data.get("results") or []}
        return [by_id[i] for i in ids if i in by_id]

    # -- the operations every platform has ------------------------------------------------------------

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        deals, next_cursor, _ = await self.deals_page(
            status=status, pipeline=None, limit=limit, cursor=cursor, extra_properties=("description",)
        )
        pipelines = await self.pipelines()
        return ProjectPage(items=[to_project(d, pipelines) for d in deals], next_cursor=next_cursor)

    async def deals_page(
        self,
        *,
        status: ProjectStatus | None,
        pipeline: str | None,
        limit: int,
        cursor: str | None,
        extra_properties: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        """Deals, filtered by HubSpot itself: the list endpoint, or search when a filter is given."""
        properties = [*PROPERTIES["deals"], *extra_properties]
        if status is None and pipeline is None:
            deals, next_cursor = await self.list_page("deals", properties, limit, cursor)
            return deals, next_cursor, None
        filters: list[dict[str, Any]] = []
        if pipeline is not None:
            filters.append({"propertyName": "pipeline", "operator": "EQ", "value": await self.pipeline_id(pipeline)})
        if status is not None:
            stage_ids = await self.stage_ids(status)
            if not stage_ids:  # HubSpot deals are open, won or lost: nothing else exists
                return [], None, 0
            filters.append({"propertyName": "dealstage", "operator": "IN", "values": stage_ids})
        page = await self.search_page(
            "deals",
            properties=properties,
            limit=limit,
            cursor=cursor,
            filters=filters,
            sort={"propertyName": "hs_object_id", "direction": "ASCENDING"},
        )
        return page.results, page.next_cursor, page.total

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        # one after the other: the search limit (5 a second) would serialise them anyway
        pages = {
            object_type: await self.search_page(
                object_type, properties=PROPERTIES[object_type], limit=limit, cursor=None, query=query
            )
            for object_type in HIT_KINDS
        }
        pipelines = await self.pipelines() if pages["deals"].results else {}
        hits = [
            SearchHit(
                platform=PLATFORM,
                kind=HIT_KINDS[object_type],
                id=record.id,
                title=record.name,
                url=record.url,
                snippet=record.summary,
                updated_at=record.updated_at,
            )
            for object_type in ("deals", "companies", "contacts")
            for record in (to_record(object_type, r, pipelines, False) for r in pages[object_type].results)
        ]
        return hits[:limit]

    async def check(self) -> str:
        await self.get_json("/crm/v3/objects/deals", {"limit": 1, "properties": "dealname", "archived": "false"})
        return "token accepted; deals are readable"


@dataclass(frozen=True)
class SearchPage:
    results: list[dict[str, Any]]
    total: int
    next_cursor: str | None
    note: str | None


def property_hint(object_type: str) -> str:
    return (
        f"Use internal property names (not labels), e.g. {', '.join(COMMON_PROPERTIES[object_type])}; HubSpot lists "
        "every property with its internal name under Settings > Properties."
    )


def refused_search(object_type: str, refused: BadInput, names: Sequence[str]) -> BadInput:
    """HubSpot answers a search on a property it does not know with a 400: name the property, and valid ones.
    The names HubSpot's message quotes are certain; failing those, the ones that are not common properties."""
    names = list(dict.fromkeys(names))
    quoted = [n for n in names if f'"{n}"' in refused.message or f"'{n}'" in refused.message]
    if quoted:
        blamed = f"HubSpot has no {object_type} property {' or '.join(map(repr, quoted))}."
    else:
        unusual = [n for n in names if n not in COMMON_PROPERTIES[object_type]]
        if not unusual:
            return refused
        blamed = f"Check that {' and '.join(map(repr, unusual))} exist: they are not common {object_type} properties."
    return BadInput(f"{refused.message} {blamed} {property_hint(object_type)}", platform=PLATFORM)


def cursor_state(cursor: str | None, via: str) -> dict[str, Any]:
    state = decode_cursor(PLATFORM, cursor)
    if state and state.get("via") != via:
        raise BadInput(
            "cursor is not valid here: it belongs to a differently filtered HubSpot listing; pass back "
            "`next_cursor` with the same filters, or omit it for the first page.",
            platform=PLATFORM,
        )
    return state


def date_part(value: str | None) -> str | None:
    return value[:10] if value else None


def number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def deal_stage(props: Mapping[str, Any], pipelines: Mapping[str, Pipeline]) -> tuple[Pipeline | None, Stage | None]:
    pipeline = pipelines.get(props.get("pipeline") or "")
    stage = pipeline.stage(props.get("dealstage")) if pipeline else None
    if stage is None:  # a deal whose pipeline id is unknown: look the stage up anywhere
        stage = next((s for p in pipelines.values() for s in p.stages if s.id == props.get("dealstage")), None)
    return pipeline, stage


def to_project(deal: Mapping[str, Any], pipelines: Mapping[str, Pipeline]) -> Project:
    props = deal.get("properties") or {}
    pipeline, stage = deal_stage(props, pipelines)
    amount = number(props.get("amount"))
    return Project(
        platform=PLATFORM,
        id=str(deal["id"]),
        name=props.get("dealname") or f"Deal {deal['id']}",
        url=record_url("deals", str(deal["id"])),
        status=stage.status if stage else "unknown",
        status_raw=stage.label if stage else props.get("dealstage"),
        owner=None,  # only the owner id is in the deal; owner names need the owners API
        team=pipeline.label if pipeline else props.get("pipeline"),
        description=" ".join(
            p for p in (f"Amount {amount:,.0f}." if amount is not None else None, props.get("description")) if p
        )
        or None,
        start_date=date_part(props.get("createdate") or deal.get("createdAt")),
        target_date=date_part(props.get("closedate")),
        created_at=deal.get("createdAt"),
        updated_at=deal.get("updatedAt"),
    )


# -- tools ----------------------------------------------------------------------------------------


class HubSpotDeal(Model):
    id: str
    name: str
    url: str
    amount: float | None = None
    pipeline: str | None = Field(default=None, description="Pipeline label.")
    stage: str | None = Field(default=None, description="Deal stage label.")
    status: ProjectStatus = Field(description="active (open stage), completed (closed won), canceled (closed lost).")
    close_date: str | None = None
    owner_id: str | None = Field(default=None, description="HubSpot owner id (hubspot_owner_id).")
    updated_at: str | None = None
    pipeline_id: str | None = None
    stage_id: str | None = None
    probability: float | None = Field(default=None, description="Win probability of the stage (0-1).")
    created_at: str | None = None
    description: str | None = None


def to_deal(deal: Mapping[str, Any], pipelines: Mapping[str, Pipeline], verbose: bool) -> HubSpotDeal:
    props = deal.get("properties") or {}
    pipeline, stage = deal_stage(props, pipelines)
    return HubSpotDeal(
        id=str(deal["id"]),
        name=props.get("dealname") or f"Deal {deal['id']}",
        url=record_url("deals", str(deal["id"])),
        amount=number(props.get("amount")),
        pipeline=pipeline.label if pipeline else props.get("pipeline"),
        stage=stage.label if stage else props.get("dealstage"),
        status=stage.status if stage else "unknown",
        close_date=date_part(props.get("closedate")),
        owner_id=props.get("hubspot_owner_id") or None,
        updated_at=deal.get("updatedAt"),
        pipeline_id=props.get("pipeline") if verbose else None,
        stage_id=props.get("dealstage") if verbose else None,
        probability=stage.probability if verbose and stage else None,
        created_at=deal.get("createdAt") if verbose else None,
        description=props.get("description") if verbose else None,
    )


class ListDealsInput(PageInput):
    pipeline: Annotated[
        str | None,
        Field(max_length=200, description="Only deals in this pipeline (label or id, see hubspot_list_pipelines)."),
    ] = None
    status: Annotated[
        DealStatus | None,
        Field(description="Only open deals (active), closed won (completed) or closed lost (canceled)."),
    ] = None
    verbose: Verbose = False


class DealList(ToolOutput):
    deals: list[HubSpotDeal]
    total: int | None = Field(default=None, description="Matching deals in all pages (when filtered).")
    next_cursor: str | None = None


async def list_deals(hubspot: HubSpotConnector, args: ListDealsInput) -> DealList:
    extra = ("description",) if args.verbose else ()
    deals, next_cursor, total = await hubspot.deals_page(
        status=args.status, pipeline=args.pipeline, limit=args.limit, cursor=args.cursor, extra_properties=extra
    )
    pipelines = await hubspot.pipelines()
    return DealList(deals=[to_deal(d, pipelines, args.verbose) for d in deals], total=total, next_cursor=next_cursor)


class GetDealInput(ToolInput):
    id: Annotated[str, Field(pattern=r"^\d{1,20}$", description="HubSpot deal id (digits), from hubspot_list_deals.")]


class HubSpotCompany(Model):
    id: str
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    url: str


class HubSpotContact(Model):
    id: str
    name: str | None = None
    email: str | None = None
    job_title: str | None = None
    company: str | None = None
    url: str


class DealDetail(ToolOutput):
    deal: HubSpotDeal
    companies: list[HubSpotCompany]
    contacts: list[HubSpotContact]


def associated_ids(node: Mapping[str, Any], object_type: str) -> tuple[list[str], bool]:
    """The associated ids of one type, and whether HubSpot has more: an object read returns the first
    100 association rows per type, with `paging.next` when there are more."""
    block = (node.get("associations") or {}).get(object_type) or {}
    # HubSpot lists an association once per label (e.g. primary and unlabeled): keep each id once
    ids = list(dict.fromkeys(str(r["id"]) for r in block.get("results") or []))
    return ids, bool((block.get("paging") or {}).get("next")) or len(ids) > BATCH_READ_MAX


def contact_name(props: Mapping[str, Any]) -> str | None:
    return " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p) or None


async def get_deal(hubspot: HubSpotConnector, args: GetDealInput) -> DealDetail:
    properties = [*PROPERTIES["deals"], "description"]
    node = await hubspot.get_object("deals", args.id, properties, ("companies", "contacts"))
    found: dict[str, list[dict[str, Any]]] = {}
    cut: list[str] = []
    associated: tuple[ObjectType, ...] = ("companies", "contacts")
    for object_type in associated:
        ids, more = associated_ids(node, object_type)
        found[object_type] = await hubspot.batch_read(object_type, ids, PROPERTIES[object_type])
        if more:
            cut.append(f"the first {len(found[object_type])} associated {object_type}")
    pipelines = await hubspot.pipelines()
    return DealDetail(
        deal=to_deal(node, pipelines, verbose=True),
        companies=[
            HubSpotCompany(
                id=c["id"],
                name=c["properties"].get("name"),
                domain=c["properties"].get("domain"),
                industry=c["properties"].get("industry"),
                url=record_url("companies", c["id"]),
            )
            for c in found["companies"]
        ],
        contacts=[
            HubSpotContact(
                id=c["id"],
                name=contact_name(c["properties"]),
                email=c["properties"].get("email"),
                job_title=c["properties"].get("jobtitle"),
                company=c["properties"].get("company"),
                url=record_url("contacts", c["id"]),
            )
            for c in found["contacts"]
        ],
        truncated=bool(cut),
        note=f"Showing {' and '.join(cut)} only; the deal in HubSpot lists the rest." if cut else None,
    )


class CrmFilter(Model):
    property: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            pattern=r"^[A-Za-z0-9_.]+$",
            description="Internal property name, e.g. dealname, amount, dealstage, closedate, domain, email.",
        ),
    ]
    operator: Annotated[
        Operator, Field(description="How to compare. IN/NOT_IN take `values`; BETWEEN takes `value` and `high_value`.")
    ] = "EQ"
    value: Annotated[
        str | None,
        Field(max_length=500, description="Value to compare with (dates as YYYY-MM-DD or epoch milliseconds)."),
    ] = None
    values: Annotated[list[str] | None, Field(max_length=100, description="Values for IN / NOT_IN.")] = None
    high_value: Annotated[str | None, Field(max_length=500, description="Upper bound for BETWEEN.")] = None

    @model_validator(mode="after")
    def _operands_fit_the_operator(self) -> CrmFilter:
        if self.operator in ("IN", "NOT_IN") and not self.values:
            raise ValueError(f"{self.operator} needs `values`")
        if self.operator == "BETWEEN" and (self.value is None or self.high_value is None):
            raise ValueError("BETWEEN needs `value` and `high_value`")
        if self.operator not in ("IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY") and self.value is None:
            raise ValueError(f"{self.operator} needs `value`")
        return self

    def as_hubspot(self) -> dict[str, Any]:
        body: dict[str, Any] = {"propertyName": self.property, "operator": self.operator}
        if self.operator in ("IN", "NOT_IN"):
            body["values"] = self.values
        elif self.operator not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            body["value"] = self.value
            if self.operator == "BETWEEN":
                body["highValue"] = self.high_value
        return body


class SearchCrmInput(ToolInput):
    object_type: Annotated[ObjectType, Field(description="What to search: deals, companies or contacts.")] = "deals"
    query: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=300,
            description="Free text matched against the default searchable properties (deal name; company name, "
            "domain; contact name, email).",
        ),
    ] = None
    filters: Annotated[
        list[CrmFilter],
        Field(max_length=SEARCH_FILTERS_MAX, description="Conditions that must all hold (AND), up to 6."),
    ] = Field(default_factory=list)
    sort_by: Annotated[
        str | None,
        Field(
            max_length=100, pattern=r"^[A-Za-z0-9_.]+$", description="Property to sort by, e.g. amount or closedate."
        ),
    ] = None
    sort_direction: Annotated[Literal["ASCENDING", "DESCENDING"], Field(description="Sort direction.")] = "DESCENDING"
    properties: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]+$", max_length=100)]] | None,
        Field(max_length=20, description="Extra properties to return for each record (shown under `properties`)."),
    ] = None
    limit: Annotated[int, Field(ge=1, le=SEARCH_PAGE_MAX, description="Results per page (1-200).")] = 20
    cursor: Cursor = None
    verbose: Verbose = False


class CrmRecord(Model):
    id: str
    name: str
    url: str
    summary: str | None = Field(
        default=None, description="Stage and amount of a deal; domain of a company; email of a contact."
    )
    updated_at: str | None = None
    properties: dict[str, str | None] | None = None


def to_record(
    object_type: str, node: Mapping[str, Any], pipelines: Mapping[str, Pipeline], with_properties: bool
) -> CrmRecord:
    props = node.get("properties") or {}
    object_id = str(node["id"])
    if object_type == "deals":
        _, stage = deal_stage(props, pipelines)
        amount = number(props.get("amount"))
        parts = [
            stage.label if stage else props.get("dealstage"),
            f"{amount:,.0f}" if amount is not None else None,
            f"closes {date_part(props.get('closedate'))}" if props.get("closedate") else None,
        ]
        name = props.get("dealname") or f"Deal {object_id}"
    elif object_type == "companies":
        parts = [props.get("domain"), props.get("industry")]
        name = props.get("name") or props.get("domain") or f"Company {object_id}"
    else:
        parts = [props.get("email"), props.get("jobtitle"), props.get("company")]
        name = contact_name(props) or props.get("email") or f"Contact {object_id}"
    return CrmRecord(
        id=object_id,
        name=name,
        url=record_url(object_type, object_id),
        summary=" · ".join(p for p in parts if p) or None,
        updated_at=node.get("updatedAt"),
        properties=dict(props) if with_properties else None,
    )


class CrmSearchResult(ToolOutput):
    object_type: ObjectType
    total: int = Field(description="How many records match, in all pages.")
    results: list[CrmRecord]
    next_cursor: str | None = None


def is_a(kind: ValueKind, value: str) -> bool:
    try:
        if kind == "number":
            return math.isfinite(float(value))
        if not value.isdigit():  # digits are epoch milliseconds
            datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


def check_filter_values(object_type: str, filters: Sequence[CrmFilter]) -> None:
    """A number or date property compared with something else matches nothing in HubSpot: say so instead."""
    for flt in filters:
        kind = VALUE_KINDS[object_type].get(flt.property)
        if kind is None:
            continue
        sent = flt.as_hubspot()
        for value in [*(sent.get("values") or []), sent.get("value"), sent.get("highValue")]:
            if value is None or is_a(kind, value):
                continue
            example = "a number such as 50000" if kind == "number" else "a date as YYYY-MM-DD or epoch milliseconds"
            raise BadInput(
                f"{flt.property} is a {kind}: {flt.operator} needs {example}, not {value!r}.", platform=PLATFORM
            )


async def search_crm(hubspot: HubSpotConnector, args: SearchCrmInput) -> CrmSearchResult:
    check_filter_values(args.object_type, args.filters)
    properties = list(dict.fromkeys([*PROPERTIES[args.object_type], *(args.properties or ())]))
    page = await hubspot.search_page(
        args.object_type,
        properties=properties,
        limit=args.limit,
        cursor=args.cursor,
        query=args.query,
        filters=[f.as_hubspot() for f in args.filters],
        sort={"propertyName": args.sort_by, "direction": args.sort_direction} if args.sort_by else None,
    )
    returned = {name for r in page.results for name in r.get("properties") or {}}
    unknown = [p for p in args.properties or () if page.results and p not in returned]
    if unknown:  # HubSpot leaves a property it does not know out of every record, where others come back null
        raise BadInput(
            f"HubSpot has no {args.object_type} property {' or '.join(map(repr, unknown))}. "
            f"{property_hint(args.object_type)}",
            platform=PLATFORM,
        )
    pipelines = await hubspot.pipelines() if args.object_type == "deals" and page.results else {}
    with_properties = args.verbose or bool(args.properties)
    return CrmSearchResult(
        object_type=args.object_type,
        total=page.total,
        results=[to_record(args.object_type, r, pipelines, with_properties) for r in page.results],
        next_cursor=page.next_cursor,
        truncated=page.note is not None,
        note=page.note,
    )


class ListPipelinesInput(ToolInput):
    include_archived: Annotated[bool, Field(description="Also list archived pipelines.")] = False


class DealStage(Model):
    id: str
    label: str
    probability: float | None = None
    is_closed: bool
    status: ProjectStatus = Field(
        description="What deals in this stage count as: active, completed (won), canceled (lost)."
    )


class DealPipeline(Model):
    id: str
    label: str
    archived: bool = False
    stages: list[DealStage]


class PipelineList(ToolOutput):
    pipelines: list[DealPipeline]


async def list_pipelines(hubspot: HubSpotConnector, args: ListPipelinesInput) -> PipelineList:
    pipelines = sorted((await hubspot.pipelines()).values(), key=lambda p: (p.display_order, p.label))
    return PipelineList(
        pipelines=[
            DealPipeline(
                id=p.id,
                label=p.label,
                archived=p.archived,
                stages=[
                    DealStage(id=s.id, label=s.label, probability=s.probability, is_closed=s.is_closed, status=s.status)
                    for s in p.stages
                ],
            )
            for p in pipelines
            if args.include_archived or not p.archived
        ]
    )


CONNECTOR = HubSpotConnector
TOOLS = [
    ToolSpec(
        "hubspot_list_deals",
        PLATFORM,
        "List HubSpot deals",
        "List HubSpot deals with pipeline and stage names, amount, close date, owner id and a status: active "
        "(open), completed (closed won) or canceled (closed lost). Filter by pipeline (label or id) and status. "
        "verbose adds stage probability, ids and the deal description.",
        ListDealsInput,
        DealList,
        list_deals,
    ),
    ToolSpec(
        "hubspot_get_deal",
        PLATFORM,
        "Get a HubSpot deal",
        "One HubSpot deal by id, with its pipeline, stage, amount, close date and description, plus the companies "
        "and contacts associated with it (name, domain, email, job title).",
        GetDealInput,
        DealDetail,
        get_deal,
    ),
    ToolSpec(
        "hubspot_search_crm",
        PLATFORM,
        "Search the HubSpot CRM",
        "Search HubSpot deals, companies or contacts by free text and/or property filters (EQ, NEQ, LT, LTE, GT, "
        "GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN; all must "
        "hold), sorted by one property. Up to 200 results a page; HubSpot stops at 10,000 results. Ask for extra "
        "`properties` to see their raw values.",
        SearchCrmInput,
        CrmSearchResult,
        search_crm,
    ),
    ToolSpec(
        "hubspot_list_pipelines",
        PLATFORM,
        "List HubSpot deal pipelines",
        "HubSpot deal pipelines with their stages in order: stage id, label, win probability, whether the stage "
        "is closed, and the status deals in it get (active, completed = won, canceled = lost).",
        ListPipelinesInput,
        PipelineList,
        list_pipelines,
    ),
]
