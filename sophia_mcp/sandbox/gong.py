"""Gong API v2 (`/v2/calls`, `/v2/calls/extensive`, `/v2/calls/transcript`, `/v2/users`, `/v2/workspaces`),
as ../shared/specs/gong/CONTRACT.md describes it.

HTTP Basic with the demo access key and secret. Pages hold 100 records, `records.cursor` only while
more remain; `/v2/calls` needs both ends of its time range and answers 404 when nothing happened in
it. Errors are `{"requestId", "errors": [str]}`; a 429 carries Retry-After in seconds.

Call dates: the dataset's EPOCH is fixed, but Gong is read by time range with "the last 7 days" as
the usual question, so calls are placed relative to the current UTC day (midnight today). Their ids,
titles, parties, briefs and transcripts never change; only `started` moves with the calendar, and every
call lies at least one day in the past. Calls span the last 84 days.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sophia_mcp.sandbox import SandboxState
from sophia_mcp.sandbox.dataset import (
    DOMAIN,
    EPOCH,
    PEOPLE,
    Customer,
    Initiative,
    Person,
    initiatives,
    person,
    stable_int,
)

ACCESS_KEY = "NWSANDBOXGONGACCESSKEY7Q2M"
ACCESS_KEY_SECRET = "eyJhbGciOiJIUzI1NiJ9.sandbox-northwind-demo-secret"
PAGE_SIZE = 100
HISTORY_DAYS = 84
NO_CALLS = "No calls found corresponding to the provided filters"

Node = dict[str, Any]


def demo_settings(base_url: str) -> dict[str, Any]:
    return {"gong_access_key": ACCESS_KEY, "gong_access_key_secret": ACCESS_KEY_SECRET, "gong_base_url": base_url}


def request_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=19))


def error_json(status: int, *errors: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"requestId": request_id(), "errors": list(errors)}, status_code=status, headers=headers)


def error_response(status: int, retry_after: float | None) -> Response:
    if status == 429:
        headers = {"Retry-After": str(max(1, round(retry_after or 1)))}
        return error_json(429, "API request rate limit exceeded: 3 calls per second", headers=headers)
    messages = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    return error_json(status, messages.get(status, "Internal server error"))


class GongError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


# -- the seeded company's Gong ----------------------------------------------------------------------

#: key, name, description: regional sales teams, customer success, and the teams around them
WORKSPACES = (
    ("americas-enterprise", "Americas – Enterprise Sales", "New business with enterprise accounts in the Americas."),
    ("americas-midmarket", "Americas – Mid-Market Sales", "New business with mid-market accounts in the Americas."),
    (
        "emea-enterprise",
        "EMEA – Enterprise Sales",
        "New business with enterprise accounts in Europe, the Middle East and Africa.",
    ),
    ("emea-midmarket", "EMEA – Mid-Market Sales", "New business with mid-market accounts in EMEA."),
    ("apac-enterprise", "APAC – Enterprise Sales", "New business with enterprise accounts in Asia-Pacific."),
    ("apac-midmarket", "APAC – Mid-Market Sales", "New business with mid-market accounts in Asia-Pacific."),
    (
        "success-americas",
        "Customer Success – Americas",
        "Onboarding, weekly syncs and escalations with live customers.",
    ),
    ("success-emea", "Customer Success – EMEA", "Onboarding, weekly syncs and escalations with live customers."),
    ("success-apac", "Customer Success – APAC", "Onboarding, weekly syncs and escalations with live customers."),
    ("renewals", "Renewals & Expansion", "Business reviews, renewals and upsell conversations."),
    ("solutions", "Solutions Engineering", "Technical deep dives, security reviews and pilot scoping."),
    ("product", "Product & Engineering", "Internal design reviews, planning and customer feedback sessions."),
)
REGIONS = {
    "harbor": "emea",
    "greenleaf": "americas",
    "metro": "americas",
    "polar": "emea",
    "summit": "apac",
    "bayview": "apac",
    "orchid": "emea",
    "atlas": "emea",
}
#: which calls each initiative has: (first day back, days between calls, last day back, kinds of call)
SCHEDULES: dict[str, tuple[int, int, int, tuple[str, ...]]] = {
    "planned": (
        1,
        5,
        35,
        ("Discovery call", "Technical deep dive", "Security review", "Pricing and proposal review", "Pilot scoping"),
    ),
    "active": (
        1,
        6,
        HISTORY_DAYS,
        (
            "Weekly sync",
            "Technical deep dive",
            "Weekly sync",
            "Steering committee",
            "Weekly sync",
            "Quarterly business review",
        ),
    ),
    "paused": (30, 9, HISTORY_DAYS, ("Weekly sync", "Site safety review", "Budget review", "Weekly sync")),
    "completed": (40, 8, HISTORY_DAYS, ("Weekly sync", "Go-live review", "Quarterly business review", "Pilot kickoff")),
    "canceled": (50, 10, HISTORY_DAYS, ("Weekly sync", "Budget review", "Pause and next steps", "Wind-down")),
    "internal": (3, 7, HISTORY_DAYS, ("Weekly sync", "Design review", "Planning", "Retro")),
}
TOPICS = (
    "Pricing",
    "Implementation",
    "Timeline",
    "Security",
    "Integration",
    "Support",
    "Safety",
    "Pilot scope",
    "ROI",
    "Hardware",
    "Staffing",
    "Next steps",
)
SPEAKER_LINES = {
    "host": (
        "Thanks everyone for joining, let's go through {topic} first.",
        "Last time we agreed to follow up on {topic}; here is where we are.",
        "From our side the plan for {initiative} is on track for the next milestone.",
        "I'll send a summary with the owners and dates right after this call.",
        "Let's make sure {customer} has what it needs before the next review.",
        "Can we agree on the date for the next checkpoint?",
    ),
    "lead": (
        "On {topic}, the team finished the latest build and we ran it on the test track.",
        "The main risk is still {topic}; we have a mitigation ready if the numbers slip.",
        "We measured about {number} percent improvement since the last release.",
        "I'd like to get field data from {customer} to tune the parameters.",
        "Engineering can support the rollout with two people on site.",
        "The design review for {initiative} is scheduled for next week.",
    ),
    "external": (
        "For us {topic} is the question the board keeps asking about.",
        "Our operators liked the last update, the routes are noticeably smoother.",
        "We need a clear answer on {topic} before we sign anything else.",
        "Can you share the numbers from the pilot in writing?",
        "Our site team reported {number} incidents last month, mostly minor.",
        "That timeline works for us if the training happens before go-live.",
    ),
    "internal": (
        "Quick update on {topic}: the change is merged and behind a flag.",
        "I think we should cut scope on {topic} to hit the date.",
        "The simulation runs show {number} percent fewer interventions.",
        "Let's capture that as an action item for {initiative}.",
    ),
}


def workspace_id(key: str) -> str:
    return str(stable_int("gong-workspace", key, digits=19))


def user_id(p: Person) -> str:
    return str(stable_int("gong-user", p.key, digits=19))


@cache
def users() -> tuple[Node, ...]:
    managers = {
        "Platform": "ada.okafor",
        "Autonomy": "chen.wei",
        "Fleet": "dara.nguyen",
        "Experience": "dara.nguyen",
        "Sales": "ada.okafor",
    }
    result = []
    for n, p in enumerate(PEOPLE):
        first, last = p.name.split(" ", 1)
        manager = person(managers[p.team])
        result.append(
            {
                "id": user_id(p),
                "emailAddress": p.email,
                "created": (EPOCH - timedelta(days=700 - n * 30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "active": True,
                "emailAliases": [],
                "trustedEmailAddress": p.email,
                "firstName": first,
                "lastName": last,
                "title": p.title,
                "phoneNumber": None,
                "extension": None,
                "personalMeetingUrls": [f"https://zoom.us/my/northwind.{p.handle}"],
                "settings": {
                    "webConferencesRecorded": True,
                    "preventWebConferenceRecording": False,
                    "telephonyCallsImported": False,
                    "emailsImported": True,
                    "preventEmailImport": False,
                    "nonRecordedMeetingsImported": True,
                    "gongConnectEnabled": True,
                },
                "managerId": None if manager.key == p.key else user_id(manager),
                "meetingConsentPageUrl": None,
                "spokenLanguages": [{"language": "en-US", "primary": True}],
            }
        )
    return tuple(result)


@cache
def workspaces() -> tuple[Node, ...]:
    return tuple({"id": workspace_id(key), "name": name, "description": text} for key, name, text in WORKSPACES)


@dataclass(frozen=True)
class Party:
    name: str
    email: str
    title: str
    role: str  # host, lead, external, internal
    person: Person | None


@dataclass(frozen=True)
class Call:
    """A call's fixed content; `days_back` and `minute_of_day` place it relative to today."""

    id: str
    initiative: Initiative
    kind: str
    title: str
    days_back: int
    minute_of_day: int
    duration: int  # seconds
    workspace: str
    parties: tuple[Party, ...]
    topics: tuple[str, ...]

    def started(self, today: datetime) -> datetime:
        return today - timedelta(days=self.days_back) + timedelta(minutes=self.minute_of_day)

    @property
    def customer(self) -> Customer | None:
        return self.initiative.customer

    @property
    def host(self) -> Party:
        return self.parties[0]


def internal_party(p: Person, role: str) -> Party:
    return Party(p.name, p.email, p.title, role, p)


def call_workspace(initiative: Initiative, kind: str, host: Person) -> str:
    if initiative.customer is None:
        return "product"
    if kind in ("Technical deep dive", "Security review", "Pilot scoping", "Site safety review"):
        return "solutions"
    if kind == "Quarterly business review":
        return "renewals"
    region = REGIONS[initiative.customer.key]
    if host.key == "hana.sato":
        return f"success-{region}"
    return f"{region}-{'enterprise' if initiative.deal_amount >= 400_000 else 'midmarket'}"


@cache
def calls() -> tuple[Call, ...]:
    """Every call, newest first by days back; deterministic from the dataset."""
    result = []
    for i, initiative in enumerate(initiatives()):
        customer = initiative.customer
        first, every, last, kinds = SCHEDULES["internal" if customer is None else initiative.status]
        first += i % 4
        teammates = [p for p in PEOPLE if p.team == initiative.team and p.key != initiative.lead.key]
        for n, days_back in enumerate(range(first, last + 1, every)):
            rng = random.Random(f"gong-call-{initiative.key}-{n}")
            kind = kinds[n % len(kinds)]
            if customer is None:
                host = internal_party(initiative.lead, "host")
                others = [internal_party(p, "internal") for p in teammates[:2]] or [
                    internal_party(person("ada.okafor"), "internal")
                ]
                parties = (host, *others)
                title = f"{initiative.name}: {kind}"
            else:
                seller = person("gus.romero" if initiative.status in ("planned", "paused") else "hana.sato")
                first_name, last_name = customer.contact_name.split(" ", 1)
                external = Party(
                    customer.contact_name,
                    f"{first_name}.{last_name}@{customer.domain}".lower(),
                    customer.contact_title,
                    "external",
                    None,
                )
                parties = (internal_party(seller, "host"), internal_party(initiative.lead, "lead"), external)
                title = f"{customer.name} / Northwind – {initiative.name}: {kind}"
            call_id = str(stable_int("gong-call", initiative.key, n, digits=19))
            result.append(
                Call(
                    id=call_id,
                    initiative=initiative,
                    kind=kind,
                    title=title,
                    days_back=days_back,
                    minute_of_day=(14 + i % 5) * 60 + (30 if n % 2 else 0),
                    duration=rng.randint(25, 55) * 60 + rng.randint(0, 59),
                    workspace=call_workspace(initiative, kind, parties[0].person),  # type: ignore[arg-type]
                    parties=parties,
                    topics=tuple(rng.sample(TOPICS, 3 + n % 2)),
                )
            )
    return tuple(result)


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def gong_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def speaker_id(call: Call, party: Party) -> str:
    return str(stable_int("gong-speaker", call.id, party.email, digits=16))


def basic_data(call: Call, now: datetime) -> Node:
    started = call.started(now)
    return {
        "id": call.id,
        "url": f"https://app.gong.io/call?id={call.id}",
        "title": call.title,
        "scheduled": gong_time(started - timedelta(minutes=started.minute % 30)),
        "started": gong_time(started),
        "duration": call.duration,
        "primaryUserId": user_id(call.host.person),  # type: ignore[arg-type]
        "direction": "Conference",
        "system": "Zoom",
        "scope": "Internal" if call.customer is None else "External",
        "media": "Video",
        "language": "eng",
        "workspaceId": workspace_id(call.workspace),
        "sdrDisposition": None,
        "clientUniqueId": str(stable_int("gong-zoom", call.id, digits=11)),
        "customData": None,
        "purpose": call.kind,
        "meetingUrl": f"https://zoom.us/j/{stable_int('gong-zoom', call.id, digits=11)}",
        "isPrivate": False,
        "calendarEventId": hashlib.sha1(call.id.encode()).hexdigest()[:26],
    }


def parties(call: Call) -> list[Node]:
    return [
        {
            "id": str(stable_int("gong-party", call.id, p.email, digits=19)),
            "emailAddress": p.email,
            "name": p.name,
            "title": p.title,
            **({"userId": user_id(p.person)} if p.person else {}),
            "speakerId": speaker_id(call, p),
            "affiliation": "Internal" if p.email.endswith("@" + DOMAIN) else "External",
            "methods": ["Invitee"] if p.role != "host" else ["Organizer", "Invitee"],
        }
        for p in call.parties
    ]


def words(call: Call, rng: random.Random, role: str, topic: str) -> str:
    lines = SPEAKER_LINES["internal" if call.customer is None and role != "host" else role]
    if role == "host":
        lines = lines[1:]  # the greeting opens the call, once
    return rng.choice(lines).format(
        topic=topic.lower(),
        initiative=call.initiative.name,
        customer=call.customer.name if call.customer else "the pilot site",
        number=rng.randint(3, 40),
    )


@cache
def transcript(call: Call) -> tuple[Node, ...]:
    """Monologues (one speaker at a time) with sentences timed in milliseconds from the call's start."""
    rng = random.Random(f"gong-transcript-{call.id}")
    monologues, at = [], 5_000
    count = call.duration // 45
    for n in range(count):
        party = call.parties[0] if n == 0 else rng.choice(call.parties)
        topic = call.topics[min(len(call.topics) - 1, n * len(call.topics) // count)]
        sentences = []
        for k in range(rng.randint(1, 4)):
            text = (
                SPEAKER_LINES["host"][0].format(topic=topic.lower())
                if n == k == 0
                else words(call, rng, party.role, topic)
            )
            length = 1_500 + len(text) * 55
            sentences.append({"start": at, "end": at + length, "text": text})
            at += length + rng.randint(200, 900)
        monologues.append({"speakerId": speaker_id(call, party), "topic": topic, "sentences": sentences})
    return tuple(monologues)


def content(call: Call, wanted: Mapping[str, Any]) -> Node:
    minutes = call.duration // 60
    share = call.duration * 4 // 5 // len(call.topics)
    host, names = call.host, ", ".join(t if t.isupper() else t.lower() for t in call.topics)
    if call.customer:
        external = call.parties[-1]
        brief = (
            f"{external.name} ({call.customer.name}) met {host.name} and {call.parties[1].name} for the "
            f"{call.kind.lower()} on {call.initiative.name}. {call.initiative.summary} They covered {names}, and "
            f"agreed that {host.name.split()[0]} sends a written summary with owners and dates."
        )
    else:
        brief = (
            f"The {call.initiative.team} team's {call.kind.lower()} on {call.initiative.name}, led by {host.name}. "
            f"{call.initiative.summary} Discussed {names}."
        )
    body: Node = {}
    if wanted.get("brief"):
        body["brief"] = brief
    if wanted.get("topics"):
        body["topics"] = [{"name": t, "duration": share} for t in call.topics] + [{"name": "Call Setup", "duration": 0}]
    if wanted.get("keyPoints"):
        body["keyPoints"] = [
            {
                "text": f"{call.topics[0]} is the first concern for {call.customer.name if call.customer else 'the team'}."
            },
            {"text": f"{call.initiative.name} is {int(call.initiative.progress * 100)}% done."},
            {"text": f"Next checkpoint in {7 if minutes % 2 else 14} days."},
        ]
    if wanted.get("outline"):
        body["outline"] = [
            {
                "section": t,
                "startTime": n * share,
                "duration": share,
                "items": [{"text": f"Discussed {t.lower()}.", "startTime": n * share}],
            }
            for n, t in enumerate(call.topics)
        ]
    if wanted.get("trackers"):
        body["trackers"] = [
            {"id": str(stable_int("gong-tracker", t)), "name": t, "count": 1 + len(t) % 4, "type": "KEYWORD"}
            for t in call.topics[:2]
        ]
    if wanted.get("highlights"):
        body["highlights"] = [
            {
                "title": "Next steps",
                "items": [{"text": f"{host.name} sends the summary.", "startTimes": [call.duration - 120]}],
            }
        ]
    if wanted.get("callOutcome"):
        body["callOutcome"] = {"id": "1", "category": "Answered", "name": "Meeting held"}
    return body


# -- request handling -------------------------------------------------------------------------------


def parse_time(raw: Any, name: str) -> datetime:
    if not isinstance(raw, str):
        raise GongError(400, f"{name}: must be an ISO-8601 date-time")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise GongError(400, f"{name}: '{raw}' is not a valid ISO-8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select_calls(
    now: datetime,
    start: datetime | None,
    end: datetime | None,
    workspace: str | None = None,
    call_ids: Sequence[str] | None = None,
    primary_users: Sequence[str] | None = None,
) -> list[Call]:
    chosen = [
        c
        for c in calls()
        if (start is None or c.started(now) >= start)
        and (end is None or c.started(now) < end)
        and (workspace is None or workspace_id(c.workspace) == workspace)
        and (call_ids is None or c.id in call_ids)
        and (primary_users is None or user_id(c.host.person) in primary_users)  # type: ignore[arg-type]
    ]
    return sorted(chosen, key=lambda c: (c.started(now), c.id))


def page_of(items: Sequence[Any], query: Any, cursor: str | None) -> tuple[Sequence[Any], Node]:
    """One page of 100 and Gong's `records`; the cursor is bound to the query it came from."""
    fingerprint = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:12]
    offset = 0
    if cursor:
        try:
            state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            offset, ok = int(state["o"]), state["q"] == fingerprint
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise GongError(400, "cursor: invalid cursor for this request")
    page = items[offset : offset + PAGE_SIZE]
    records: Node = {"totalRecords": len(items), "currentPageSize": len(page), "currentPageNumber": offset // PAGE_SIZE}
    if offset + PAGE_SIZE < len(items):
        raw = json.dumps({"o": offset + PAGE_SIZE, "q": fingerprint}).encode()
        records["cursor"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return page, records


def string_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise GongError(400, f"{name}: must be a list of ids")
    return [str(v) for v in value]


async def json_body(request: Request) -> Node:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise GongError(400, "Malformed JSON request body") from None
    if not isinstance(body, dict):
        raise GongError(400, "Request body must be a JSON object")
    return body


Handler = Callable[[Request], Awaitable[Node]]
VALID_AUTH = "Basic " + base64.b64encode(f"{ACCESS_KEY}:{ACCESS_KEY_SECRET}".encode()).decode()


def build(state: SandboxState) -> Starlette:
    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            if request.headers.get("authorization") != VALID_AUTH:
                return error_json(401, "Unauthorized: the access key or access key secret is not valid")
            try:
                return JSONResponse({"requestId": request_id(), **await handler(request)})
            except GongError as error:
                return error_json(error.status, error.message)

        return run

    async def list_calls(request: Request) -> Node:
        params = request.query_params
        for name in ("fromDateTime", "toDateTime"):
            if not params.get(name):
                raise GongError(400, f"{name}: must not be null")
        start, end = parse_time(params["fromDateTime"], "fromDateTime"), parse_time(params["toDateTime"], "toDateTime")
        now = today()
        found = select_calls(now, start, end, params.get("workspaceId"))
        if not found:
            raise GongError(404, NO_CALLS)
        query = {k: params.get(k) for k in ("fromDateTime", "toDateTime", "workspaceId")}
        page, records = page_of(found, query, params.get("cursor"))
        return {"records": records, "calls": [basic_data(c, now) for c in page]}

    async def get_call(request: Request) -> Node:
        ident = request.path_params["call_id"]
        call = next((c for c in calls() if c.id == ident), None)
        if call is None:
            raise GongError(404, f"Call {ident} not found")
        return {"call": basic_data(call, today())}

    async def calls_extensive(request: Request) -> Node:
        body = await json_body(request)
        flt = body.get("filter")
        if not isinstance(flt, dict):
            raise GongError(400, "filter: must not be null")
        for name in ("fromDateTime", "toDateTime"):
            if not flt.get(name):
                raise GongError(400, f"filter.{name}: must not be null")
        selector = body.get("contentSelector") or {}
        if not isinstance(selector, dict):
            raise GongError(400, "contentSelector: must be an object")
        exposed = selector.get("exposedFields") or {}
        if selector.get("context", "None") not in ("None", "Basic", "Extended"):
            raise GongError(400, "contentSelector.context: must be one of None, Basic, Extended")
        now = today()
        found = select_calls(
            now,
            parse_time(flt["fromDateTime"], "filter.fromDateTime"),
            parse_time(flt["toDateTime"], "filter.toDateTime"),
            flt.get("workspaceId"),
            string_list(flt.get("callIds"), "filter.callIds"),
            string_list(flt.get("primaryUserIds"), "filter.primaryUserIds"),
        )
        if not found:
            raise GongError(404, NO_CALLS)
        page, records = page_of(found, {"filter": flt, "contentSelector": selector}, body.get("cursor"))
        wanted = exposed.get("content") or {}
        result = []
        for call in page:
            item: Node = {"metaData": basic_data(call, now)}
            if exposed.get("parties"):
                item["parties"] = parties(call)
            if isinstance(wanted, dict) and any(wanted.values()):
                item["content"] = content(call, wanted)
            result.append(item)
        return {"records": records, "calls": result}

    async def calls_transcript(request: Request) -> Node:
        body = await json_body(request)
        flt = body.get("filter") or {}
        if not isinstance(flt, dict):
            raise GongError(400, "filter: must be an object")
        now = today()
        found = select_calls(
            now,
            parse_time(flt["fromDateTime"], "filter.fromDateTime") if flt.get("fromDateTime") else None,
            parse_time(flt["toDateTime"], "filter.toDateTime") if flt.get("toDateTime") else None,
            call_ids=string_list(flt.get("callIds"), "filter.callIds"),
        )
        if not found:
            raise GongError(404, NO_CALLS)
        page, records = page_of(found, {"filter": flt}, body.get("cursor"))
        return {
            "records": records,
            "callTranscripts": [{"callId": c.id, "transcript": list(transcript(c))} for c in page],
        }

    async def list_users(request: Request) -> Node:
        page, records = page_of(users(), "users", request.query_params.get("cursor"))
        return {"records": records, "users": list(page)}

    async def get_user(request: Request) -> Node:
        ident = request.path_params["user_id"]
        user = next((u for u in users() if u["id"] == ident), None)
        if user is None:
            raise GongError(404, f"User {ident} not found")
        return {"user": user}

    async def list_workspaces(request: Request) -> Node:
        return {"workspaces": list(workspaces())}

    async def not_found(request: Request) -> Node:
        raise GongError(404, f"No API endpoint {request.method} {request.url.path}")

    return Starlette(
        routes=[
            Route("/v2/calls", endpoint(list_calls), methods=["GET"]),
            Route("/v2/calls/extensive", endpoint(calls_extensive), methods=["POST"]),
            Route("/v2/calls/transcript", endpoint(calls_transcript), methods=["POST"]),
            Route("/v2/calls/{call_id}", endpoint(get_call), methods=["GET"]),
            Route("/v2/users", endpoint(list_users), methods=["GET"]),
            Route("/v2/users/{user_id}", endpoint(get_user), methods=["GET"]),
            Route("/v2/workspaces", endpoint(list_workspaces), methods=["GET"]),
            Route("/{path:path}", endpoint(not_found), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]
    )
