"""Gong: REST v2 at the company's own API host (`SOPHIA_GONG_BASE_URL`, e.g. https://us-11211.api.gong.io;
there is no default), HTTP Basic with the access key and its secret.

Workspaces are the "projects"; calls are the main data. Lists come 100 records a page with
`records.cursor` present only while more pages exist (no page size parameter: smaller pages are cut
here, and the opaque cursor remembers where). `GET /v2/calls` needs a time range and answers 404 when
nothing happened in it. Parties, topics and the brief come from `POST /v2/calls/extensive`, sentences
from `POST /v2/calls/transcript`, keyed by `speakerId`. Errors are `{"requestId", "errors": [str]}`;
3 calls a second per company, and a 429 carries Retry-After in seconds.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx2
from pydantic import Field

from connectors.base import Connector, PageGuard, RateSpec, decode_cursor, encode_cursor
from sophia_mcp.config import Settings
from sophia_mcp.errors import BadInput, NotFound, SophiaError, UpstreamUnauthorized
from sophia_mcp.models import Model, Project, ProjectPage, ProjectStatus, SearchHit, ToolOutput
from sophia_mcp.registry import Cursor, Limit, PageInput, ToolInput, ToolSpec, Verbose

PLATFORM = "gong"
DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=90)
#: around a call's start, the window `/v2/calls/extensive` is asked about (it filters by time range)
CALL_LOOKUP_MARGIN = timedelta(hours=1)
USERS_TTL = 900.0
USERS_MAX_PAGES = 10
SEARCH_MAX_PAGES = 5
TRANSCRIPT_DEFAULT_CHARS = 8_000
TRANSCRIPT_MAX_CHARS = 30_000
TRANSCRIPT_TTL = 600.0
TRANSCRIPTS_KEPT = 8
CallId = Annotated[str, Field(pattern=r"^\d{1,20}$", description="Gong call id (digits), from gong_list_calls.")]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_time(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value))


def call_window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The time range to read calls in: the last 7 days by default, at most 90 days."""
    end = as_utc(end) if end else now
    start = as_utc(start) if start else end - DEFAULT_WINDOW
    if start >= end:
        raise BadInput(f"`since` ({iso(start)}) must be before `until` ({iso(end)}).", platform=PLATFORM)
    if end - start > MAX_WINDOW:
        days = (end - start).total_seconds() / 86_400
        raise BadInput(
            f"the range {iso(start)} to {iso(end)} spans {days:.0f} days; Gong calls are read at most "
            f"{MAX_WINDOW.days} days at a time. Narrow `since`/`until` and ask for each range separately.",
            platform=PLATFORM,
        )
    return start, end


def clock(ms: float) -> str:
    seconds = int(ms // 1000)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


class GongConnector(Connector):
    platform = PLATFORM
    title = "Gong"
    credential_fields = ("gong_access_key", "gong_access_key_secret")
    base_url_field = "gong_base_url"
    rate = RateSpec(per_second=3, burst=1)  # 3 calls a second per company, never 4 in one second

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, transport)
        self._users: tuple[float, dict[str, Mapping[str, Any]]] | None = None
        self._transcripts: dict[
            str, tuple[float, tuple[Mapping[str, Any], dict[str, Mapping[str, Any]], list[Any]]]
        ] = {}

    def auth_headers(self) -> dict[str, str]:
        key, secret = self.settings.gong_access_key, self.settings.gong_access_key_secret
        assert key is not None and secret is not None
        pair = f"{key.get_secret_value()}:{secret.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    @property
    def app_url(self) -> str:
        """The web app beside the API host: us-11211.api.gong.io → us-11211.app.gong.io."""
        host = urlsplit(self.base_url or "").hostname or ""
        if host.endswith(".api.gong.io"):
            return f"https://{host.removesuffix('.api.gong.io')}.app.gong.io"
        return "https://app.gong.io"

    def classify(self, response: httpx2.Response) -> SophiaError | None:
        error = super().classify(response)
        if isinstance(error, UpstreamUnauthorized):
            detail = self.error_detail(response)
            return UpstreamUnauthorized(
                f"Gong rejected the credentials ({detail or 'HTTP 401'}). Check SOPHIA_GONG_ACCESS_KEY and "
                "SOPHIA_GONG_ACCESS_KEY_SECRET (Gong: Company settings → API), and that SOPHIA_GONG_BASE_URL is "
                "your company's API host.",
                platform=PLATFORM,
            )
        return error

    # -- reading ----------------------------------------------------------------------------------

    async def records_page(
        self,
        fetch: Callable[[str | None], Awaitable[Mapping[str, Any]]],
        key: str,
        state: Mapping[str, Any],
        limit: int,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        """`limit` records from where `state` points (Gong's cursor `c` and an offset `o` into its page);
        returns them, the state of the next page (or None) and Gong's total."""
        gong_cursor, offset = state.get("c"), int(state.get("o", 0))
        data = await fetch(gong_cursor)
        items = list(data.get(key) or [])
        records = data.get("records") or {}
        if offset + limit < len(items):
            next_state: dict[str, Any] | None = {"c": gong_cursor, "o": offset + limit}
        elif records.get("cursor"):
            next_state = {"c": records["cursor"], "o": 0}
        else:
            next_state = None
        return items[offset : offset + limit], next_state, int(records.get("totalRecords", len(items)))

    async def get_calls(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return await self.get_json("/v2/calls", params)  # type: ignore[no-any-return]
        except NotFound:  # Gong's answer for a time range without calls
            return {"calls": [], "records": {"totalRecords": 0}}

    async def post_extensive(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return await self.post_json("/v2/calls/extensive", body)  # type: ignore[no-any-return]
        except NotFound:
            return {"calls": [], "records": {"totalRecords": 0}}

    async def user_directory(self) -> dict[str, Mapping[str, Any]]:
        """Users by id, for names; read at most every 15 minutes and at most 1,000 users."""
        if self._users is not None and time.monotonic() - self._users[0] < USERS_TTL:
            return self._users[1]
        users: dict[str, Mapping[str, Any]] = {}
        guard, cursor = PageGuard(PLATFORM), None
        for _ in range(USERS_MAX_PAGES):
            data = await self.get_json("/v2/users", {"cursor": cursor})
            users.update({str(u["id"]): u for u in data.get("users") or []})
            cursor = (data.get("records") or {}).get("cursor")
            if not guard.next(cursor):
                break
        self._users = (time.monotonic(), users)
        return users

    async def call_meta(self, call_id: str) -> Mapping[str, Any]:
        return (await self.get_json(f"/v2/calls/{call_id}"))["call"]  # type: ignore[no-any-return]

    async def call_extensive(self, meta: Mapping[str, Any], content: Mapping[str, bool]) -> Mapping[str, Any]:
        """The extensive record of one call: `/v2/calls/extensive` filters by time range, so ask about
        the hour around the call's start together with its id."""
        started = parse_time(meta["started"])
        body = {
            "filter": {
                "fromDateTime": iso(started - CALL_LOOKUP_MARGIN),
                "toDateTime": iso(started + CALL_LOOKUP_MARGIN),
                "callIds": [str(meta["id"])],
            },
            "contentSelector": {"context": "None", "exposedFields": {"parties": True, "content": dict(content)}},
        }
        data = await self.post_extensive(body)
        for call in data.get("calls") or []:
            if str(call["metaData"]["id"]) == str(meta["id"]):
                return call  # type: ignore[no-any-return]
        raise NotFound(f"Gong has no details for call {meta['id']}.", platform=PLATFORM)

    async def transcript(self, call_id: str) -> tuple[Mapping[str, Any], dict[str, Mapping[str, Any]], list[Any]]:
        """A call's metadata, its parties by speaker id and its monologues; kept a few minutes so that
        reading a long transcript page by page costs Gong three calls, not three a page."""
        kept = self._transcripts.get(call_id)
        if kept is not None and time.monotonic() - kept[0] < TRANSCRIPT_TTL:
            return kept[1]
        meta = await self.call_meta(call_id)
        call = await self.call_extensive(meta, {})
        data = await self.post_json("/v2/calls/transcript", {"filter": {"callIds": [call_id]}})
        monologues = next(
            (t.get("transcript") or [] for t in data.get("callTranscripts") or [] if str(t.get("callId")) == call_id),
            [],
        )
        speakers = {str(p["speakerId"]): p for p in call.get("parties") or [] if p.get("speakerId")}
        self._transcripts[call_id] = (time.monotonic(), (meta, speakers, monologues))
        while len(self._transcripts) > TRANSCRIPTS_KEPT:
            self._transcripts.pop(next(iter(self._transcripts)))
        return meta, speakers, monologues

    # -- the operations every platform has ------------------------------------------------------------

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        offset = int(decode_cursor(PLATFORM, cursor).get("o", 0))
        if status not in (None, "active"):  # a Gong workspace has no lifecycle: each one is in use
            return ProjectPage(items=[])
        workspaces = (await self.get_json("/v2/workspaces")).get("workspaces") or []
        page = workspaces[offset : offset + limit]
        more = offset + limit < len(workspaces)
        return ProjectPage(
            items=[
                Project(
                    platform=PLATFORM,
                    id=str(w["id"]),
                    name=w["name"],
                    url=f"{self.app_url}/conversations?workspace-id={w['id']}",
                    status="active",
                    description=w.get("description") or None,
                )
                for w in page
            ],
            next_cursor=encode_cursor(PLATFORM, {"o": offset + limit}) if more else None,
        )

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        """Calls of the last 7 days whose title or brief holds every word of the query."""
        start, end = call_window(None, None, datetime.now(UTC))
        words = query.casefold().split()
        hits: list[SearchHit] = []
        guard, cursor = PageGuard(PLATFORM), None
        for _ in range(SEARCH_MAX_PAGES):
            body: dict[str, Any] = {
                "filter": {"fromDateTime": iso(start), "toDateTime": iso(end)},
                "contentSelector": {"context": "None", "exposedFields": {"content": {"brief": True}}},
            }
            if cursor:
                body["cursor"] = cursor
            data = await self.post_extensive(body)
            for call in data.get("calls") or []:
                meta, brief = call["metaData"], (call.get("content") or {}).get("brief") or ""
                text = f"{meta.get('title') or ''} {brief}".casefold()
                if all(w in text for w in words):
                    hits.append(
                        SearchHit(
                            platform=PLATFORM,
                            kind="call",
                            id=str(meta["id"]),
                            title=meta.get("title") or f"Call {meta['id']}",
                            url=meta.get("url"),
                            snippet=shorten(brief, 200) or None,
                            updated_at=meta.get("started"),
                        )
                    )
            cursor = (data.get("records") or {}).get("cursor")
            if len(hits) >= limit or not guard.next(cursor):
                break
        return hits[:limit]

    async def check(self) -> str:
        workspaces = (await self.get_json("/v2/workspaces")).get("workspaces") or []
        return f"credentials accepted; {len(workspaces)} workspaces visible"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- tools ----------------------------------------------------------------------------------------


class GongCall(Model):
    id: str
    title: str
    url: str | None = None
    started: str
    duration_minutes: float = Field(description="Length of the recording, in minutes.")
    direction: str | None = Field(default=None, description="Inbound, Outbound, Conference or Unknown.")
    scope: str | None = Field(default=None, description="Internal (only your company), External or Unknown.")
    host: str | None = Field(default=None, description="The call's primary user (Gong user name or id).")
    workspace_id: str | None = None
    purpose: str | None = None
    language: str | None = None
    media: str | None = None


def to_call(meta: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]], verbose: bool) -> GongCall:
    host_id = str(meta.get("primaryUserId") or "")
    host = users.get(host_id)
    return GongCall(
        id=str(meta["id"]),
        title=meta.get("title") or f"Call {meta['id']}",
        url=meta.get("url"),
        started=meta.get("started") or "",
        duration_minutes=round(float(meta.get("duration") or 0) / 60, 1),
        direction=meta.get("direction"),
        scope=meta.get("scope"),
        host=user_name(host) if host else host_id or None,
        workspace_id=str(meta["workspaceId"]) if meta.get("workspaceId") else None,
        purpose=meta.get("purpose") if verbose else None,
        language=meta.get("language") if verbose else None,
        media=meta.get("media") if verbose else None,
    )


def user_name(user: Mapping[str, Any]) -> str:
    return " ".join(p for p in (user.get("firstName"), user.get("lastName")) if p) or str(
        user.get("emailAddress") or user["id"]
    )


class ListCallsInput(ToolInput):
    since: Annotated[
        datetime | None,
        Field(
            description="Start of the range (inclusive), ISO-8601 date or date-time; UTC unless an offset is "
            "given. Default: 7 days before `until`.",
        ),
    ] = None
    until: Annotated[
        datetime | None,
        Field(description="End of the range (exclusive), ISO-8601; default: now. The range may span 90 days at most."),
    ] = None
    workspace_id: Annotated[
        str | None,
        Field(pattern=r"^\d{1,20}$", description="Only calls of this Gong workspace (id from list_projects)."),
    ] = None
    limit: Limit = 25
    cursor: Cursor = None
    verbose: Verbose = False


class CallList(ToolOutput):
    calls: list[GongCall]
    range_from: str = Field(description="Start of the time range read (inclusive).")
    range_to: str = Field(description="End of the time range read (exclusive).")
    total: int = Field(description="Calls in the range, in all pages.")
    next_cursor: str | None = None


async def list_calls(gong: GongConnector, args: ListCallsInput) -> CallList:
    state = decode_cursor(PLATFORM, args.cursor)
    if state:  # a later page continues the range and workspace of the first one
        start, end, workspace = parse_time(state["from"]), parse_time(state["to"]), state.get("ws")
    else:
        start, end = call_window(args.since, args.until, datetime.now(UTC))
        workspace = args.workspace_id
    window = {"from": iso(start), "to": iso(end), "ws": workspace}

    async def fetch(gong_cursor: str | None) -> Mapping[str, Any]:
        return await gong.get_calls(
            {
                "fromDateTime": window["from"],
                "toDateTime": window["to"],
                "workspaceId": workspace,
                "cursor": gong_cursor,
            }
        )

    calls, next_state, total = await gong.records_page(fetch, "calls", state, args.limit)
    users = await gong.user_directory() if calls else {}
    return CallList(
        calls=[to_call(c, users, args.verbose) for c in calls],
        range_from=iso(start),
        range_to=iso(end),
        total=total,
        next_cursor=encode_cursor(PLATFORM, {**window, **next_state}) if next_state else None,
    )


class GetCallInput(ToolInput):
    id: CallId
    verbose: Annotated[bool, Field(description="Also include the call outline (sections and their items).")] = False


class Participant(Model):
    name: str | None = None
    email: str | None = None
    title: str | None = None
    affiliation: str | None = Field(default=None, description="Internal (your company), External or Unknown.")


class Topic(Model):
    name: str
    minutes: float


class OutlineSection(Model):
    section: str
    items: list[str]


class CallDetail(ToolOutput):
    call: GongCall
    participants: list[Participant]
    brief: str | None = None
    key_points: list[str] = Field(default_factory=list)
    topics: list[Topic] = Field(default_factory=list)
    outline: list[OutlineSection] | None = None


def participants(call: Mapping[str, Any]) -> list[Participant]:
    return [
        Participant(
            name=p.get("name"), email=p.get("emailAddress"), title=p.get("title"), affiliation=p.get("affiliation")
        )
        for p in call.get("parties") or []
    ]


async def get_call(gong: GongConnector, args: GetCallInput) -> CallDetail:
    meta = await gong.call_meta(args.id)
    content_fields = {"brief": True, "topics": True, "keyPoints": True, "outline": args.verbose}
    call = await gong.call_extensive(meta, content_fields)
    content = call.get("content") or {}
    users = await gong.user_directory()
    return CallDetail(
        call=to_call(call.get("metaData") or meta, users, verbose=True),
        participants=participants(call),
        brief=content.get("brief") or None,
        key_points=[k["text"] for k in content.get("keyPoints") or [] if k.get("text")],
        topics=[
            Topic(name=t["name"], minutes=round(float(t.get("duration") or 0) / 60, 1))
            for t in content.get("topics") or []
            if t.get("duration")
        ],
        outline=[
            OutlineSection(section=s.get("section") or "", items=[i.get("text") or "" for i in s.get("items") or []])
            for s in content.get("outline") or []
        ]
        if args.verbose
        else None,
    )


class GetTranscriptInput(ToolInput):
    id: CallId
    max_chars: Annotated[
        int,
        Field(
            ge=500,
            le=TRANSCRIPT_MAX_CHARS,
            description="Stop after about this many characters of text; the note says where to continue.",
        ),
    ] = TRANSCRIPT_DEFAULT_CHARS
    from_segment: Annotated[
        int, Field(ge=0, le=100_000, description="First segment to return (from `next_segment` of a previous call).")
    ] = 0


class TranscriptSegment(Model):
    speaker: str
    affiliation: str | None = None
    start: str = Field(description="Offset from the start of the call, m:ss.")
    topic: str | None = None
    text: str


class Transcript(ToolOutput):
    call_id: str
    title: str
    started: str
    speakers: list[Participant]
    segments: list[TranscriptSegment]
    segment_count: int = Field(description="Segments (one speaker talking) in the whole transcript.")
    next_segment: int | None = Field(default=None, description="Pass as `from_segment` to read on; null at the end.")


async def get_transcript(gong: GongConnector, args: GetTranscriptInput) -> Transcript:
    meta, speakers, monologues = await gong.transcript(args.id)
    segments: list[TranscriptSegment] = []
    used, cut = 0, False
    for monologue in monologues[args.from_segment :]:
        sentences = monologue.get("sentences") or []
        text = " ".join(s.get("text", "").strip() for s in sentences).strip()
        if used + len(text) > args.max_chars:
            if segments:  # the next page starts with it
                break
            text, cut = shorten(text, args.max_chars), True  # one segment longer than the cap
        party = speakers.get(str(monologue.get("speakerId")))
        segments.append(
            TranscriptSegment(
                speaker=(party.get("name") or party.get("emailAddress") or "Unknown speaker")
                if party
                else f"Unknown speaker {monologue.get('speakerId')}",
                affiliation=party.get("affiliation") if party else None,
                start=clock(sentences[0].get("start", 0)) if sentences else "0:00",
                topic=monologue.get("topic") or None,
                text=text,
            )
        )
        used += len(text)
    next_segment = args.from_segment + len(segments)
    more = next_segment < len(monologues)
    note = None
    if more or cut:
        shown = (
            f"segments {args.from_segment}-{next_segment - 1} of {len(monologues)} shown"
            if segments
            else "no segment shown"
        )
        note = (
            f"Transcript capped at about {args.max_chars:,} characters: {shown}"
            + ("; the last one is cut short" if cut else "")
            + (f". Call again with from_segment={next_segment} for more." if more else ".")
        )
    return Transcript(
        call_id=args.id,
        title=meta.get("title") or f"Call {args.id}",
        started=meta.get("started") or "",
        speakers=[participants({"parties": [p]})[0] for p in speakers.values()],
        segments=segments,
        segment_count=len(monologues),
        next_segment=next_segment if more else None,
        truncated=more or cut,
        note=note,
    )


class GongUser(Model):
    id: str
    name: str
    email: str | None = None
    title: str | None = None
    active: bool | None = None
    manager_id: str | None = None


class UserList(ToolOutput):
    users: list[GongUser]
    total: int
    next_cursor: str | None = None


async def list_users(gong: GongConnector, args: PageInput) -> UserList:
    state = decode_cursor(PLATFORM, args.cursor)

    async def fetch(gong_cursor: str | None) -> Mapping[str, Any]:
        return await gong.get_json("/v2/users", {"cursor": gong_cursor})  # type: ignore[no-any-return]

    users, next_state, total = await gong.records_page(fetch, "users", state, args.limit)
    return UserList(
        users=[
            GongUser(
                id=str(u["id"]),
                name=user_name(u),
                email=u.get("emailAddress"),
                title=u.get("title"),
                active=u.get("active"),
                manager_id=str(u["managerId"]) if u.get("managerId") else None,
            )
            for u in users
        ],
        total=total,
        next_cursor=encode_cursor(PLATFORM, next_state) if next_state else None,
    )


CONNECTOR = GongConnector
TOOLS = [
    ToolSpec(
        "gong_list_calls",
        PLATFORM,
        "List Gong calls",
        "Recorded Gong calls in a time range (default: the last 7 days; at most 90 days at once), oldest first, "
        "optionally in one workspace. Returns id, title, start, length in minutes, host, scope (Internal or "
        "External) and the link to the recording. Use gong_get_call for the brief and gong_get_transcript for "
        "what was said.",
        ListCallsInput,
        CallList,
        list_calls,
    ),
    ToolSpec(
        "gong_get_call",
        PLATFORM,
        "Get a Gong call",
        "One Gong call by id: who took part (name, title, company side), Gong's brief, key points and the topics "
        "discussed with their minutes; verbose adds the outline.",
        GetCallInput,
        CallDetail,
        get_call,
    ),
    ToolSpec(
        "gong_get_transcript",
        PLATFORM,
        "Get a Gong call transcript",
        "What was said on a Gong call, as segments with the speaker's name, company side, time offset and "
        "topic. Long transcripts are capped (max_chars, default 8,000): the note and `next_segment` say where to "
        "continue.",
        GetTranscriptInput,
        Transcript,
        get_transcript,
    ),
    ToolSpec(
        "gong_list_users",
        PLATFORM,
        "List Gong users",
        "The Gong users of the company (the people whose calls are recorded): name, email, title, active.",
        PageInput,
        UserList,
        list_users,
    ),
]
