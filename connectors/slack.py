"""Slack: the Web API, `GET {base}/<method>` (base https://slack.com/api), `Authorization: Bearer <token>`.

A bot token (xoxb-, SOPHIA_SLACK_BOT_TOKEN) for conversations.* and users.*; search.messages accepts only a
user token (xoxp-, SOPHIA_SLACK_USER_TOKEN, scope search:read). Failures are HTTP 200 with
`{"ok": false, "error": "<code>"}` (plus `needed`/`provided` for missing_scope); rate limiting is HTTP 429
with `Retry-After` seconds. Cursor pagination: `cursor`/`limit` in, `response_metadata.next_cursor` out
(empty string at the end); search.messages pages with `page`/`count`. Rate limits are per method and
workspace, in tiers (Tier 2 about 20 calls a minute, Tier 3 50, Tier 4 100).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import anyio
import httpx2
from pydantic import Field

from connectors.base import (
    Connector,
    PageGuard,
    RateSpec,
    TokenBucket,
    decode_cursor,
    encode_cursor,
    filter_status,
    retry_after_seconds,
)
from sophia_mcp.config import ENV_PREFIX, Settings
from sophia_mcp.errors import (
    BadInput,
    Forbidden,
    NotConfigured,
    NotFound,
    RateLimited,
    SophiaError,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from sophia_mcp.models import Model, Project, ProjectPage, ProjectStatus, SearchHit, ToolOutput
from sophia_mcp.registry import Cursor, Limit, PageInput, ToolInput, ToolSpec, Verbose

PLATFORM = "slack"
BOT_TOKEN_VAR = ENV_PREFIX + "SLACK_BOT_TOKEN"
USER_TOKEN_VAR = ENV_PREFIX + "SLACK_USER_TOKEN"
CHANNEL_TYPES = "public_channel,private_channel"
#: calls a minute per method, as Slack's tiers document them (Tier 2: 20, Tier 3: 50, Tier 4: 100)
TIER_PER_MINUTE = {
    "conversations.list": 20,
    "users.list": 20,
    "search.messages": 20,
    "conversations.history": 50,
    "conversations.replies": 50,
    "conversations.info": 50,
    "users.info": 100,
}
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")
SLACK_TS = re.compile(r"^\d{9,10}(\.\d{1,6})?$")
MENTION = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>|<(https?://[^>|]+)(?:\|([^>]*))?>")
MAX_TEXT = 400  # characters of message text shown when not verbose
BAD_TOKEN = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
#: the token is valid but its app or user may not read this (Slack's method docs list these per method)
NO_ACCESS = {"no_permission", "access_denied", "team_access_not_granted", "ekm_access_denied", "org_login_required"}
GONE = {"channel_not_found", "thread_not_found", "user_not_found", "user_not_visible", "message_not_found"}
SLACK_SIDE = {"fatal_error", "internal_error", "service_unavailable", "request_timeout"}


class SearchNeedsUserToken(NotConfigured):
    def __init__(self) -> None:
        SophiaError.__init__(
            self,
            f"Slack search needs a user token: set {USER_TOKEN_VAR} to a user token (xoxp-...) with the "
            "search:read scope. Slack's search.messages refuses bot tokens, so SOPHIA_SLACK_BOT_TOKEN cannot "
            "be used for it; the other Slack tools work without it.",
            platform=PLATFORM,
            missing=[USER_TOKEN_VAR],
        )


class SlackConnector(Connector):
    platform = PLATFORM
    title = "Slack"
    credential_fields = ("slack_bot_token",)
    identity_fields = ("slack_user_token",)  # search results depend on whose user token asks
    base_url_field = "slack_base_url"
    #: a ceiling across methods; Slack's real limits are per method (TIER_PER_MINUTE, one bucket each)
    rate = RateSpec(per_second=5, burst=50)

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings, transport)
        #: the workspace's subdomain (northwind for northwind.slack.com), for archive links; no method we call
        #: returns it, so it comes from settings
        self.workspace = settings.slack_workspace
        self.tiers = {
            method: TokenBucket(RateSpec(per_second=per_minute / 60, burst=per_minute // 2))
            for method, per_minute in TIER_PER_MINUTE.items()
        }

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.slack_bot_token is not None
        return {"Authorization": f"Bearer {self.settings.slack_bot_token.get_secret_value()}"}

    def user_token_headers(self) -> dict[str, str]:
        if self.settings.slack_user_token is None:
            raise SearchNeedsUserToken()
        return {"Authorization": f"Bearer {self.settings.slack_user_token.get_secret_value()}"}

    # -- errors -------------------------------------------------------------------------------

    def classify(self, response: httpx2.Response) -> SophiaError | None:
        """Slack answers most failures with HTTP 200 and `ok: false`; 429 and 5xx are HTTP statuses."""
        if response.status_code == 429 or response.status_code >= 500:
            return super().classify(response)
        try:
            body = response.json()
        except ValueError:
            return super().classify(response)
        if not isinstance(body, dict) or body.get("ok") is not False:
            return super().classify(response)
        return self.slack_error(response, body)

    def slack_error(self, response: httpx2.Response, body: dict[str, Any]) -> SophiaError:
        error = str(body.get("error") or "unknown_error")
        method = response.request.url.path.rsplit("/", 1)[-1]
        variable = USER_TOKEN_VAR if method == "search.messages" else BOT_TOKEN_VAR
        kind = "user token (xoxp-...)" if variable == USER_TOKEN_VAR else "bot token (xoxb-...)"
        if error in BAD_TOKEN:
            return UpstreamUnauthorized(
                f"Slack rejected the token for {method} ({error}). Check {variable}: it must be a valid, "
                f"unrevoked {kind} of an app installed in the workspace.",
                platform=PLATFORM,
            )
        if error == "not_allowed_token_type":
            return UpstreamUnauthorized(
                f"Slack's {method} does not accept this kind of token. Set {variable} to a {kind}.",
                platform=PLATFORM,
            )
        if error == "missing_scope":
            scopes = [s for s in str(body.get("needed") or "").split(",") if s]
            needed = (
                f"one of the scopes {', '.join(scopes)}"
                if len(scopes) > 1
                else f"the scope {scopes[0] if scopes else '(not named)'}"
            )
            provided = f" (it has: {body['provided']})" if body.get("provided") else ""
            return Forbidden(
                f"The Slack token in {variable} lacks {needed}, which {method} needs{provided}. Add it under "
                "OAuth & Permissions in the Slack app's settings, reinstall the app, and update the token.",
                platform=PLATFORM,
            )
        if error in NO_ACCESS:
            return Forbidden(
                f"Slack refused {method} ({error}): the token in {variable} is valid but may not read this workspace "
                "or conversation. Invite the app to the conversation, or ask a Slack admin to grant the app access.",
                platform=PLATFORM,
            )
        if error == "not_in_channel":
            return Forbidden(
                "The Slack app is not a member of that channel: invite it there (`/invite @<app name>`) and retry.",
                platform=PLATFORM,
            )
        if error in GONE:
            what = error.removesuffix("_not_found").removesuffix("_not_visible")
            return NotFound(
                f"Slack found no such {what} ({error}). Check the id: slack_list_channels and slack_list_users "
                "show valid ones; private channels are visible only to members.",
                platform=PLATFORM,
            )
        if error in ("ratelimited", "rate_limited"):
            seconds = retry_after_seconds(response)
            return RateLimited("Slack rate limit reached; retry later.", platform=PLATFORM, retry_after=seconds)
        if error in SLACK_SIDE:
            return UpstreamUnavailable(f"Slack failed on its side ({error}); try again shortly.", platform=PLATFORM)
        if error == "invalid_cursor":
            return BadInput("The Slack cursor is no longer valid: start again without `cursor`.", platform=PLATFORM)
        return BadInput(
            f"Slack refused {method}: {error}. Check the arguments against Slack's documentation of {method}.",
            platform=PLATFORM,
        )

    # -- calls --------------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any], *, user_token: bool = False) -> dict[str, Any]:
        """One Web API method as a GET with query parameters; the token goes in the Authorization header."""
        headers = self.user_token_headers() if user_token else None
        await self.tiers[method].take(f"Slack's {method}", PLATFORM)
        response = await self.request("GET", f"/{method}", params=params, headers=headers)
        body = self.parse_json(response)
        if not isinstance(body, dict) or body.get("ok") is not True:
            raise UpstreamUnavailable(f"Slack answered {method} without `ok: true`; try again.", platform=PLATFORM)
        return body

    async def page(
        self, method: str, field: str, params: dict[str, Any], limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a cursor-paginated method: its items and our opaque cursor for the next page."""
        state = decode_cursor(PLATFORM, cursor)
        body = await self.call(method, {**params, "limit": limit, "cursor": state.get("cursor")})
        return body.get(field) or [], next_cursor(body)

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        """Channels as projects: archived ones are completed, the others active."""
        if status not in (None, "active", "completed"):
            return ProjectPage(items=[])
        params = {"types": CHANNEL_TYPES, "exclude_archived": True if status == "active" else None}
        channels, following = await self.page("conversations.list", "channels", params, limit, cursor)
        return ProjectPage(
            items=filter_status([to_project(c, self.workspace) for c in channels], status), next_cursor=following
        )

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        body = await self.call("search.messages", {"query": query, "count": limit}, user_token=True)
        hits = []
        for match in (body.get("messages") or {}).get("matches") or []:
            channel = match.get("channel") or {}
            hits.append(
                SearchHit(
                    platform=PLATFORM,
                    kind="message",
                    id=f"{channel.get('id', '')}/{match['ts']}",
                    title=f"#{channel.get('name', '?')} · {match.get('username') or match.get('user') or 'unknown'}",
                    url=match.get("permalink"),
                    snippet=shorten(plain_text(match.get("text") or "", {}), 300),
                    updated_at=ts_to_iso(match["ts"]),
                )
            )
        return hits

    async def check(self) -> str:
        await self.call("conversations.list", {"types": CHANNEL_TYPES, "limit": 1})
        return "the bot token can list channels"

    async def channel_by_name_or_id(self, channel: str) -> dict[str, Any]:
        """A channel object, from its id (conversations.info) or its name (walking conversations.list)."""
        if CHANNEL_ID.match(channel):
            return (await self.call("conversations.info", {"channel": channel}))["channel"]
        name = channel.strip().lstrip("#").lower()
        guard, cursor = PageGuard(PLATFORM, max_pages=100), None
        while True:
            body = await self.call("conversations.list", {"types": CHANNEL_TYPES, "limit": 200, "cursor": cursor})
            for candidate in body.get("channels") or []:
                if candidate.get("name") == name or candidate.get("name_normalized") == name:
                    return candidate
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not guard.next(cursor):
                raise NotFound(
                    f"No Slack channel named #{name} is visible to the app. slack_list_channels shows the names; "
                    "a private channel appears only after the app is invited to it.",
                    platform=PLATFORM,
                )


def next_cursor(body: dict[str, Any]) -> str | None:
    raw = (body.get("response_metadata") or {}).get("next_cursor")
    return encode_cursor(PLATFORM, {"cursor": raw}) if raw else None


def channel_url(channel: dict[str, Any], workspace: str | None) -> str:
    """The channel's archive link when the workspace is known, else Slack's documented deep link."""
    if workspace:
        return f"https://{workspace}.slack.com/archives/{channel['id']}"
    team = (
        channel.get("context_team_id")
        or channel.get("conversation_host_id")
        or next(iter(channel.get("shared_team_ids") or ()), None)
    )
    return f"https://slack.com/app_redirect?channel={channel['id']}" + (f"&team={team}" if team else "")


def conversation_name(channel: dict[str, Any], names: dict[str, str]) -> str:
    """#name of a channel; @person for a direct message, whose object has `user` instead of a name."""
    if channel.get("name"):
        return f"#{channel['name']}"
    user = channel.get("user")
    return f"@{names.get(user, user)}" if user else channel["id"]


def to_project(channel: dict[str, Any], workspace: str | None) -> Project:
    archived = bool(channel.get("is_archived"))
    text = (channel.get("purpose") or {}).get("value") or (channel.get("topic") or {}).get("value")
    return Project(
        platform=PLATFORM,
        id=channel["id"],
        name=conversation_name(channel, {}),
        url=channel_url(channel, workspace),
        status="completed" if archived else "active",
        status_raw="archived" if archived else "active",
        description=text or None,
        created_at=epoch_to_iso(channel["created"]) if channel.get("created") else None,
    )


def epoch_to_iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def ts_to_iso(ts: str) -> str:
    return epoch_to_iso(int(float(ts)))


def to_slack_ts(value: str | None, field: str) -> str | None:
    """An ISO 8601 date or datetime (UTC unless it says otherwise), or a Slack ts, as a Slack ts."""
    if value is None:
        return None
    if SLACK_TS.match(value):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(
            f"{field} must be an ISO 8601 date or datetime (2026-11-01, 2026-11-01T09:00:00Z) or a Slack ts "
            "(1762000000.000100).",
            platform=PLATFORM,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.timestamp():.6f}"


def time_range(oldest: str | None, latest: str | None) -> tuple[str | None, str | None]:
    """`oldest` and `latest` as Slack ts, refusing a range that ends before it starts (Slack would answer it
    with no messages, as if the channel had been quiet)."""
    since, until = to_slack_ts(oldest, "oldest"), to_slack_ts(latest, "latest")
    if oldest and latest and since and until and Decimal(since) >= Decimal(until):
        raise BadInput(
            f"`oldest` ({moment_text(oldest)}) must be before `latest` ({moment_text(latest)}): swap them, or leave "
            "`latest` out to read up to now.",
            platform=PLATFORM,
        )
    return since, until


def moment_text(given: str) -> str:
    """A time as the caller gave it, with its UTC time when it was a Slack ts."""
    if not SLACK_TS.match(given):
        return given
    seconds, _, fraction = given.partition(".")
    moment = datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=int(fraction.ljust(6, "0")))
    return f"{given}, {moment.isoformat().replace('+00:00', 'Z')}"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_text(text: str, names: dict[str, str]) -> str:
    """Slack's markup made readable: <@U123> as @Name, <#C123|general> as #general, <url|label> as label (url)."""

    def readable(match: re.Match[str]) -> str:
        sigil, target, label, url, url_label = match.groups()
        if url:
            return f"{url_label} ({url})" if url_label else url
        if sigil == "@":
            return "@" + (label or names.get(target, target))
        if sigil == "#":
            return "#" + (label or target)
        return "@" + (label or target)  # <!here>, <!channel>

    return MENTION.sub(readable, text)


def user_display_name(user: dict[str, Any]) -> str:
    profile = user.get("profile") or {}
    return user.get("real_name") or profile.get("real_name") or profile.get("display_name") or user.get("name") or ""


class UserNames:
    """Names for user ids, looked up once per tool call with users.info, as far as its budget allows
    without waiting; a name that cannot be looked up stays the user id (only a bad token is an error)."""

    def __init__(self, slack: SlackConnector) -> None:
        self.slack = slack
        self.names: dict[str, str] = {}
        self.note: str | None = None

    async def load(self, messages: Iterable[dict[str, Any]], also: Iterable[str] = ()) -> None:
        wanted: set[str] = set(also)
        for message in messages:
            if message.get("user"):
                wanted.add(message["user"])
            wanted.update(m[1] for m in MENTION.findall(message.get("text") or "") if m[0] == "@")
        missing = sorted(wanted - set(self.names))
        free = min(len(missing), self.slack.tiers["users.info"].free_now())
        errors: list[SophiaError] = []

        async def one(user_id: str) -> None:
            try:
                body = await self.slack.call("users.info", {"user": user_id})
                self.names[user_id] = user_display_name(body["user"]) or user_id
            except NotFound:  # deleted, or from another workspace
                self.names[user_id] = user_id
            except SophiaError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for user_id in missing[:free]:
                tg.start_soon(one, user_id)
        bad_token = next((e for e in errors if isinstance(e, UpstreamUnauthorized)), None)
        if bad_token:
            raise bad_token
        unnamed = len(missing) - free + len(errors)
        if unnamed:
            why = errors[0].message if errors else "sophia-mcp's budget for Slack's users.info (100 a minute) is spent."
            self.note = f"{unnamed} users are shown by their id, not name: {why} slack_list_users maps ids to names."

    def name(self, user_id: str) -> str:
        return self.names.get(user_id, user_id)


# -- tools ----------------------------------------------------------------------------------------

ChannelRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        description="Channel id (C0123ABCD) or name (#proj-fleet-navigation or proj-fleet-navigation).",
    ),
]
ThreadTs = Annotated[
    str,
    Field(
        pattern=r"^\d{10}\.\d{6}$",
        description="The thread's parent message `ts` (e.g. 1762000000.000100), from slack_channel_history.",
    ),
]


class SlackChannel(Model):
    id: str
    name: str = Field(description="#name, or @person for a direct message.")
    is_private: bool = False
    is_archived: bool = False
    num_members: int | None = None
    topic: str | None = None
    purpose: str | None = None
    created: str | None = None
    url: str


def to_channel(channel: dict[str, Any], workspace: str | None, names: dict[str, str] | None = None) -> SlackChannel:
    return SlackChannel(
        id=channel["id"],
        name=conversation_name(channel, names or {}),
        is_private=bool(channel.get("is_private") or channel.get("is_im")),
        is_archived=bool(channel.get("is_archived")),
        num_members=channel.get("num_members"),
        topic=(channel.get("topic") or {}).get("value") or None,
        purpose=(channel.get("purpose") or {}).get("value") or None,
        created=epoch_to_iso(channel["created"]) if channel.get("created") else None,
        url=channel_url(channel, workspace),
    )


class ListChannelsInput(PageInput):
    include_archived: Annotated[
        bool, Field(description="Also list archived channels (finished or abandoned work).")
    ] = False


class ChannelList(ToolOutput):
    channels: list[SlackChannel]
    next_cursor: str | None = None


async def list_channels(slack: SlackConnector, args: ListChannelsInput) -> ChannelList:
    params = {"types": CHANNEL_TYPES, "exclude_archived": None if args.include_archived else True}
    channels, following = await slack.page("conversations.list", "channels", params, args.limit, args.cursor)
    return ChannelList(channels=[to_channel(c, slack.workspace) for c in channels], next_cursor=following)


class SlackMessage(Model):
    ts: str = Field(description="The message's Slack timestamp, its id within the channel.")
    time: str
    user: str | None = Field(default=None, description="User id of the author.")
    user_name: str | None = None
    text: str
    subtype: str | None = Field(default=None, description="channel_join, bot_message, ... (absent: plain message).")
    thread_ts: str | None = Field(default=None, description="The thread's parent ts, when in or starting a thread.")
    reply_count: int | None = Field(default=None, description="Replies in the thread this message starts.")
    latest_reply: str | None = None


def to_message(message: dict[str, Any], names: UserNames, verbose: bool) -> SlackMessage:
    text = plain_text(message.get("text") or "", names.names)
    user = message.get("user")
    return SlackMessage(
        ts=message["ts"],
        time=ts_to_iso(message["ts"]),
        user=user,
        user_name=names.name(user) if user else message.get("username"),
        text=text if verbose else shorten(text, MAX_TEXT),
        subtype=message.get("subtype"),
        thread_ts=message.get("thread_ts"),
        reply_count=message.get("reply_count"),
        latest_reply=ts_to_iso(message["latest_reply"]) if message.get("latest_reply") else None,
    )


class ChannelHistoryInput(ToolInput):
    channel: ChannelRef
    oldest: Annotated[
        str | None,
        Field(
            max_length=40,
            description="Only messages after this moment: ISO 8601 date or datetime (UTC unless it has an offset) "
            "or a Slack ts.",
        ),
    ] = None
    latest: Annotated[
        str | None, Field(max_length=40, description="Only messages before this moment (same formats as oldest).")
    ] = None
    limit: Limit = 25
    cursor: Cursor = None
    verbose: Verbose = False


class ChannelHistory(ToolOutput):
    channel: SlackChannel
    messages: list[SlackMessage] = Field(description="Newest first; thread replies are not included (see reply_count).")
    next_cursor: str | None = None


async def channel_history(slack: SlackConnector, args: ChannelHistoryInput) -> ChannelHistory:
    oldest, latest = time_range(args.oldest, args.latest)
    channel = await slack.channel_by_name_or_id(args.channel)
    params = {"channel": channel["id"], "oldest": oldest, "latest": latest}
    messages, following = await slack.page("conversations.history", "messages", params, args.limit, args.cursor)
    names = UserNames(slack)
    await names.load(messages, also=[channel["user"]] if channel.get("user") else [])
    return ChannelHistory(
        channel=to_channel(channel, slack.workspace, names.names),
        messages=[to_message(m, names, args.verbose) for m in messages],
        next_cursor=following,
        note=names.note,
    )


class ThreadRepliesInput(ToolInput):
    channel: ChannelRef
    thread_ts: ThreadTs
    limit: Limit = 50
    cursor: Cursor = None
    verbose: Verbose = False


class ThreadReplies(ToolOutput):
    channel_id: str
    thread_ts: str
    messages: list[SlackMessage] = Field(description="Oldest first: the parent message, then its replies.")
    next_cursor: str | None = None


async def thread_replies(slack: SlackConnector, args: ThreadRepliesInput) -> ThreadReplies:
    channel_id = (
        args.channel if CHANNEL_ID.match(args.channel) else (await slack.channel_by_name_or_id(args.channel))["id"]
    )
    params = {"channel": channel_id, "ts": args.thread_ts}
    messages, following = await slack.page("conversations.replies", "messages", params, args.limit, args.cursor)
    names = UserNames(slack)
    await names.load(messages)
    return ThreadReplies(
        channel_id=channel_id,
        thread_ts=args.thread_ts,
        messages=[to_message(m, names, args.verbose) for m in messages],
        next_cursor=following,
        note=names.note,
    )


class SlackUser(Model):
    id: str
    handle: str = Field(description="The @name used in from:@handle search modifiers.")
    name: str
    title: str | None = None
    email: str | None = None
    timezone: str | None = None
    is_bot: bool = False
    is_admin: bool = False
    deleted: bool = False


class ListUsersInput(PageInput):
    include_bots: Annotated[bool, Field(description="Also list bots and apps.")] = False
    include_deleted: Annotated[bool, Field(description="Also list deactivated accounts.")] = False


class UserList(ToolOutput):
    users: list[SlackUser]
    next_cursor: str | None = None


async def list_users(slack: SlackConnector, args: ListUsersInput) -> UserList:
    members, following = await slack.page("users.list", "members", {}, args.limit, args.cursor)
    users = []
    for member in members:
        is_bot = bool(member.get("is_bot")) or member.get("id") == "USLACKBOT"
        if (is_bot and not args.include_bots) or (member.get("deleted") and not args.include_deleted):
            continue
        profile = member.get("profile") or {}
        users.append(
            SlackUser(
                id=member["id"],
                handle=member.get("name") or member["id"],
                name=user_display_name(member) or member["id"],
                title=profile.get("title") or None,
                email=profile.get("email") or None,
                timezone=member.get("tz") or None,
                is_bot=is_bot,
                is_admin=bool(member.get("is_admin")),
                deleted=bool(member.get("deleted")),
            )
        )
    return UserList(users=users, next_cursor=following)


class SearchMessagesInput(ToolInput):
    query: Annotated[
        str,
        Field(
            min_length=1,
            max_length=500,
            description="Words to find, with Slack's modifiers: in:#channel, from:@handle, before:2026-11-01, "
            'after:2026-10-01, "exact phrase".',
        ),
    ]
    sort: Annotated[
        Literal["score", "timestamp"], Field(description="Best match first (score) or newest first (timestamp).")
    ] = "score"
    limit: Limit = 20
    cursor: Cursor = None
    verbose: Verbose = False


class SlackMatch(Model):
    channel: str = Field(description="#name")
    channel_id: str | None = None
    ts: str
    time: str
    user: str | None = None
    user_name: str | None = None
    text: str
    permalink: str | None = None


class SearchMessagesOutput(ToolOutput):
    total: int = Field(description="Matches in all pages.")
    matches: list[SlackMatch]
    next_cursor: str | None = None


SEARCH_PAGES_MAX = 100  # search.messages: `page` goes up to 100


async def search_messages(slack: SlackConnector, args: SearchMessagesInput) -> SearchMessagesOutput:
    state = decode_cursor(PLATFORM, args.cursor)
    # Slack pages by number at a page size: a later page keeps the size it was counted in, whatever the limit
    page, count = int(state.get("page", 1)), int(state.get("count", args.limit))
    params = {"query": args.query, "count": count, "page": page, "sort": args.sort, "sort_dir": "desc"}
    body = await slack.call("search.messages", params, user_token=True)
    found = body.get("messages") or {}
    matches = []
    for match in found.get("matches") or []:
        channel = match.get("channel") or {}
        text = plain_text(match.get("text") or "", {})
        matches.append(
            SlackMatch(
                channel=f"#{channel.get('name', '?')}",
                channel_id=channel.get("id"),
                ts=match["ts"],
                time=ts_to_iso(match["ts"]),
                user=match.get("user"),
                user_name=match.get("username"),
                text=text if args.verbose else shorten(text, MAX_TEXT),
                permalink=match.get("permalink"),
            )
        )
    pages = int((found.get("paging") or {}).get("pages") or 0)
    capped = pages > SEARCH_PAGES_MAX and page >= SEARCH_PAGES_MAX  # Slack serves page 100 for any later one
    return SearchMessagesOutput(
        total=int(found.get("total") or 0),
        matches=matches,
        next_cursor=encode_cursor(PLATFORM, {"page": page + 1, "count": count})
        if page < min(pages, SEARCH_PAGES_MAX)
        else None,
        truncated=capped,
        note=f"Slack serves the first {SEARCH_PAGES_MAX} pages of a search only; ask again with a larger limit "
        "(up to 100 a page) or a narrower query for the rest."
        if capped
        else None,
    )


CONNECTOR = SlackConnector
TOOLS = [
    ToolSpec(
        "slack_list_channels",
        PLATFORM,
        "List Slack channels",
        "List the Slack channels the app can see (public, and private ones it was invited to) with topic, purpose, "
        "member count and archived flag. Archived channels only with include_archived.",
        ListChannelsInput,
        ChannelList,
        list_channels,
    ),
    ToolSpec(
        "slack_channel_history",
        PLATFORM,
        "Read a Slack channel",
        "Messages of one Slack channel (by id or #name), newest first, with author names, between optional "
        "oldest/latest moments (ISO dates or Slack ts). Messages that start a thread show reply_count: read the "
        "thread with slack_thread_replies. Long texts are cut unless verbose.",
        ChannelHistoryInput,
        ChannelHistory,
        channel_history,
    ),
    ToolSpec(
        "slack_thread_replies",
        PLATFORM,
        "Read a Slack thread",
        "One Slack thread: its parent message and the replies, oldest first, with author names. Give the channel "
        "(id or #name) and the parent's ts (thread_ts from slack_channel_history).",
        ThreadRepliesInput,
        ThreadReplies,
        thread_replies,
    ),
    ToolSpec(
        "slack_list_users",
        PLATFORM,
        "List Slack users",
        "The Slack workspace's people: id, @handle, name, title, email and time zone. Bots and deactivated "
        "accounts only when asked for.",
        ListUsersInput,
        UserList,
        list_users,
    ),
    ToolSpec(
        "slack_search_messages",
        PLATFORM,
        "Search Slack messages",
        "Search Slack messages as the configured user (needs SOPHIA_SLACK_USER_TOKEN) with Slack's query syntax: "
        'words, "phrases", in:#channel, from:@handle, before:/after: dates. Returns channel, author, time, text '
        "and a permalink.",
        SearchMessagesInput,
        SearchMessagesOutput,
        search_messages,
    ),
]
