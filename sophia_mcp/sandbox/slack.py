"""Slack's Web API (`/api/<method>`, GET query or POST form/JSON) for the "northwind" workspace.

As Slack documents it: the token as `Authorization: Bearer <token>` (or a `token` form field); failures are
HTTP 200 `{"ok": false, "error": ...}` (missing_scope adds `needed`/`provided`); cursor pagination with
`limit`/`cursor` and `response_metadata.next_cursor` (base64 cursors such as "dXNlcjpVMDYxTkZUVDI=", empty
at the end); search.messages only with a user token (xoxp-), paged by `page`/`count`; rate limiting is 429
with `Retry-After` seconds and `{"ok": false, "error": "ratelimited"}`.

One channel per initiative (#proj-<key>; finished or abandoned ones archived) plus #general, with messages
and threads derived from the initiatives' work items, one user per person, and the app's direct message with
the user token's owner (an IM object: `is_im` and `user`, no `name`). Reading a conversation needs the scope of
its kind (channels:, groups: or im: read/history), as Slack answers missing_scope otherwise.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sophia_mcp.sandbox import SandboxState
from sophia_mcp.sandbox.dataset import COMPANY, EPOCH, PEOPLE, SLUG, Initiative, Person, initiatives, stable_uuid

BOT_TOKEN = "xoxb-sandbox-northwind-demo"
USER_TOKEN = "xoxp-sandbox-northwind-demo"
#: a bot token of an app installed with channels:read only, to show missing_scope
LIMITED_TOKEN = "xoxb-sandbox-northwind-limited"
TEAM_ID = "T0NORTHWND"
DOMAIN = SLUG
USER_TOKEN_OWNER = "dara.nguyen"
BOT_SCOPES = frozenset(
    {
        "channels:read",
        "groups:read",
        "im:read",
        "channels:history",
        "groups:history",
        "im:history",
        "users:read",
        "users:read.email",
    }
)
SCOPES = {BOT_TOKEN: BOT_SCOPES, USER_TOKEN: BOT_SCOPES | {"search:read"}, LIMITED_TOKEN: frozenset({"channels:read"})}
NEEDED = {  # what Slack names in `needed` when a token lacks every scope that allows the method
    "conversations.list": "channels:read,groups:read,mpim:read,im:read",
    "conversations.info": "channels:read,groups:read,mpim:read,im:read",
    "conversations.history": "channels:history,groups:history,mpim:history,im:history",
    "conversations.replies": "channels:history,groups:history,mpim:history,im:history",
    "users.list": "users:read",
    "users.info": "users:read",
    "search.messages": "search:read",
}
ARCHIVED = ("completed", "canceled")
PRIVATE = ("hospital-delivery",)  # a customer under NDA: a private channel
TIMEZONES = (
    ("America/Los_Angeles", "Pacific Standard Time", -28800),
    ("America/New_York", "Eastern Standard Time", -18000),
    ("Europe/London", "Greenwich Mean Time", 0),
    ("Europe/Berlin", "Central European Time", 3600),
    ("Asia/Tokyo", "Japan Standard Time", 32400),
)

Json = dict[str, Any]


def demo_settings(base_url: str) -> dict[str, Any]:
    return {
        "slack_bot_token": BOT_TOKEN,
        "slack_user_token": USER_TOKEN,
        "slack_base_url": f"{base_url}/api",
        "slack_workspace": DOMAIN,  # archive links need the subdomain, which no kept method returns
    }


def error_response(status: int, retry_after: float | None) -> Response:
    if status == 429:
        seconds = math.ceil(retry_after if retry_after is not None else 1)
        return JSONResponse(
            {"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": str(seconds)}
        )
    error = {500: "internal_error", 503: "service_unavailable", 504: "request_timeout"}.get(status, "fatal_error")
    if status < 500:
        error = {401: "invalid_auth", 403: "not_allowed", 404: "unknown_method"}.get(status, "invalid_arguments")
    return JSONResponse({"ok": False, "error": error}, status_code=status)


def slack_id(prefix: str, *parts: object) -> str:
    return prefix + "0" + stable_uuid("slack", prefix, *parts).replace("-", "")[:8].upper()


def user_id(person: Person) -> str:
    return slack_id("U", person.key)


def channel_id(name: str) -> str:
    return slack_id("C", name)


def bot_user_id() -> str:
    return slack_id("U", "sophia-bot")


def to_ts(moment: datetime, sequence: int) -> str:
    return f"{int(moment.timestamp())}.{sequence % 1_000_000:06d}"


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# -- the workspace ------------------------------------------------------------------------------


@dataclass
class Channel:
    object: Json
    members: set[str]
    #: top-level messages (thread parents included), newest first
    history: list[Json] = field(default_factory=list)
    #: thread_ts -> parent then replies, oldest first
    threads: dict[str, list[Json]] = field(default_factory=dict)


@dataclass
class Workspace:
    users: list[Json]
    channels: list[Channel]
    #: direct messages with the app (conversation type `im`)
    ims: list[Channel] = field(default_factory=list)

    def channel(self, ident: str) -> Channel | None:
        return next((c for c in [*self.channels, *self.ims] if c.object["id"] == ident), None)

    def user(self, ident: str) -> Json | None:
        return next((u for u in self.users if u["id"] == ident), None)


def _user(person: Person, index: int) -> Json:
    tz, tz_label, tz_offset = TIMEZONES[index % len(TIMEZONES)]
    first, last = person.name.split(" ", 1)
    avatar = stable_uuid("slack-avatar", person.key).replace("-", "")[:12]
    image = f"https://secure.gravatar.com/avatar/{avatar}.jpg?s=%d&d=mp"
    owner = index == 0
    return {
        "id": user_id(person),
        "team_id": TEAM_ID,
        "name": person.handle,
        "deleted": False,
        "color": stable_uuid("slack-color", person.key).replace("-", "")[:6],
        "real_name": person.name,
        "tz": tz,
        "tz_label": tz_label,
        "tz_offset": tz_offset,
        "profile": {
            "title": person.title,
            "phone": "",
            "skype": "",
            "real_name": person.name,
            "real_name_normalized": person.name,
            "display_name": first.lower(),
            "display_name_normalized": first.lower(),
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": avatar,
            "email": person.email,
            "first_name": first,
            "last_name": last,
            "image_24": image % 24,
            "image_32": image % 32,
            "image_48": image % 48,
            "image_72": image % 72,
            "image_192": image % 192,
            "image_512": image % 512,
            "status_text_canonical": "",
            "team": TEAM_ID,
        },
        "is_admin": owner,
        "is_owner": owner,
        "is_primary_owner": owner,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": False,
        "is_app_user": False,
        "updated": epoch(EPOCH - timedelta(days=40 + index)),
    }


def _special_users() -> list[Json]:
    def profile(name: str, **extra: Any) -> Json:
        return {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": name,
            "real_name_normalized": name,
            "display_name": name,
            "display_name_normalized": name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": "sv41d8cd98f0",
            "first_name": name,
            "last_name": "",
            "team": TEAM_ID,
            **extra,
        }

    common = {
        "team_id": TEAM_ID,
        "deleted": False,
        "is_admin": False,
        "is_owner": False,
        "is_primary_owner": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_app_user": False,
    }
    return [
        {
            "id": "USLACKBOT",
            "name": "slackbot",
            "color": "757575",
            "real_name": "Slackbot",
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Standard Time",
            "tz_offset": -28800,
            "is_bot": False,
            "updated": 0,
            "profile": profile("Slackbot", always_active=True),
            **common,
        },
        {
            "id": bot_user_id(),
            "name": "sophia",
            "color": "4bbe2e",
            "real_name": "Sophia",
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Standard Time",
            "tz_offset": -28800,
            "is_bot": True,
            "updated": epoch(EPOCH - timedelta(days=30)),
            "profile": profile(
                "Sophia", bot_id=slack_id("B", "sophia-bot"), api_app_id=slack_id("A", "sophia"), always_active=True
            ),
            **common,
        },
    ]


def _channel_object(
    name: str,
    created: datetime,
    creator: str,
    topic: str,
    purpose: str,
    members: set[str],
    *,
    archived: bool = False,
    private: bool = False,
    general: bool = False,
) -> Json:
    last_set = epoch(created)
    return {
        "id": channel_id(name),
        "name": name,
        "is_channel": not private,
        "is_group": private,
        "is_im": False,
        "is_mpim": False,
        "is_private": private,
        "created": epoch(created),
        "is_archived": archived,
        "is_general": general,
        "unlinked": 0,
        "name_normalized": name,
        "is_shared": False,
        "is_org_shared": False,
        "is_pending_ext_shared": False,
        "pending_shared": [],
        "parent_conversation": None,
        "creator": creator,
        "is_ext_shared": False,
        "shared_team_ids": [TEAM_ID],
        "pending_connected_team_ids": [],
        "is_member": True,
        "topic": {"value": topic, "creator": creator, "last_set": last_set},
        "purpose": {"value": purpose, "creator": creator, "last_set": last_set},
        "previous_names": [],
        "num_members": len(members),
    }


def _im_object(person: Person, created: datetime) -> Json:
    """A direct message as conversations.info answers it: no name, topic or purpose; `user` is the other side."""
    return {
        "id": slack_id("D", person.key),
        "created": epoch(created),
        "is_archived": False,
        "is_im": True,
        "is_org_shared": False,
        "user": user_id(person),
        "is_user_deleted": False,
        "priority": 0,
    }


class ChannelBuilder:
    """Collects a channel's messages in time order, then numbers them and files threads."""

    def __init__(self) -> None:
        self.events: list[tuple[datetime, str, str, str | None, list[tuple[datetime, str, str]]]] = []

    def post(
        self,
        moment: datetime,
        person: Person | str,
        text: str,
        *,
        subtype: str | None = None,
        replies: list[tuple[datetime, Person, str]] | None = None,
    ) -> None:
        if moment > EPOCH:
            return  # not happened yet
        author = person if isinstance(person, str) else user_id(person)
        kept = [(when, user_id(who), said) for when, who, said in replies or () if when <= EPOCH]
        self.events.append((moment, author, text, subtype, kept))

    def fill(self, channel: Channel, sequence: int) -> int:
        for moment, author, text, subtype, replies in sorted(self.events, key=lambda e: e[0]):
            sequence += 1
            ts = to_ts(moment, sequence)
            message: Json = {"type": "message", "user": author, "text": text, "ts": ts, "team": TEAM_ID}
            if subtype:
                message["subtype"] = subtype
            if replies:
                thread: list[Json] = []
                for when, who, said in sorted(replies):
                    sequence += 1
                    thread.append(
                        {
                            "type": "message",
                            "user": who,
                            "text": said,
                            "ts": to_ts(when, sequence),
                            "team": TEAM_ID,
                            "thread_ts": ts,
                            "parent_user_id": author,
                        }
                    )
                reply_users = list(dict.fromkeys(r["user"] for r in thread))
                message.update(
                    thread_ts=ts,
                    reply_count=len(thread),
                    reply_users_count=len(reply_users),
                    latest_reply=thread[-1]["ts"],
                    reply_users=reply_users,
                    subscribed=False,
                )
                channel.threads[ts] = [message, *thread]
            channel.history.append(message)
        channel.history.reverse()
        return sequence


def _initiative_channel(initiative: Initiative, sequence: int) -> tuple[Channel, int]:
    rng = random.Random(f"slack-{initiative.key}")
    lead = initiative.lead
    crew = list(dict.fromkeys([lead, *(i.assignee for i in initiative.items if i.assignee)]))
    name = f"proj-{initiative.key}"
    archived = initiative.status in ARCHIVED
    target = initiative.target.strftime("%b %-d")
    purpose = initiative.summary + (f" Customer: {initiative.customer.name}." if initiative.customer else "")
    channel = Channel(
        _channel_object(
            name,
            initiative.created,
            user_id(lead),
            f"{initiative.name} · lead {lead.name} · target {target}",
            purpose,
            {user_id(p) for p in crew},
            archived=archived,
            private=initiative.key in PRIVATE,
        ),
        {user_id(p) for p in crew},
    )
    posts = ChannelBuilder()
    start = initiative.created
    posts.post(start, lead, f"<@{user_id(lead)}> has joined the channel", subtype="channel_join")
    kickoff = f"Kicking off *{initiative.name}*: {initiative.summary} Target: {target}."
    if initiative.customer:
        c = initiative.customer
        kickoff += f" Customer: {c.name} ({c.contact_name}, {c.contact_title})."
    cheers = ("Excited for this one!", "Count me in.", "I'll set up the board today.", "Great, let's go 🚀")
    posts.post(
        start + timedelta(hours=1),
        lead,
        kickoff,
        replies=[
            (start + timedelta(hours=2 + n), who, cheers[(n + len(initiative.key)) % len(cheers)])
            for n, who in enumerate(p for p in crew[1:3])
        ],
    )
    for item in initiative.items:
        who = item.assignee or lead
        asked = (
            f"<@{user_id(item.assignee)}> can you take *{item.key}*: {item.title}?"
            if item.assignee
            else (f"New task *{item.key}*: {item.title} (unassigned, anyone?)")
        )
        posts.post(item.created + timedelta(hours=2), lead, asked)
        if item.state in ("in_progress", "in_review", "done"):
            posts.post(item.created + timedelta(days=1), who, f"Started on {item.key}.")
        if item.state == "in_review":
            posts.post(
                item.updated - timedelta(hours=3),
                who,
                f"PR for {item.key} is up for review: {item.title}",
                replies=[
                    (item.updated - timedelta(hours=1), lead, "Looks good, one nit on naming."),
                    (item.updated, who, "Fixed, thanks!"),
                ],
            )
        elif item.state == "done":
            replies = (
                [(item.updated + timedelta(hours=1), lead, f"Nice work on {item.key} 🎉")] if rng.random() < 0.4 else []
            )
            posts.post(item.updated, who, f"✅ {item.key} is done: {item.title}", replies=replies)
        elif item.state == "canceled":
            posts.post(item.updated, lead, f"Dropping {item.key} ({item.title}): out of scope for now.")
    if initiative.status in ("active", "planned"):
        done = sum(item.state == "done" for item in initiative.items)
        open_items = [item for item in initiative.items if item.state not in ("done", "canceled")]
        update = f"Weekly update: {done} of {len(initiative.items)} tasks done, {initiative.progress:.0%} overall."
        if open_items:
            update += f" Next up: {open_items[0].key} {open_items[0].title}."
        asker = crew[-1] if len(crew) > 1 else lead
        posts.post(
            initiative.updated - timedelta(hours=2),
            lead,
            update,
            replies=[
                (initiative.updated - timedelta(hours=1), asker, "Anything blocking the target date?"),
                (initiative.updated, lead, "Not right now; I'll flag it here if that changes."),
            ],
        )
    ending = {
        "completed": f"🎉 *{initiative.name}* is complete. Thanks all, archiving this channel.",
        "canceled": f"*{initiative.name}* is canceled. Notes stay here; archiving this channel.",
        "paused": f"Pausing *{initiative.name}* until further notice.",
    }.get(initiative.status)
    if ending:
        posts.post(initiative.updated - timedelta(hours=1), lead, ending)
    if archived:
        posts.post(initiative.updated, lead, f"<@{user_id(lead)}> archived the channel", subtype="channel_archive")
    return channel, posts.fill(channel, sequence)


def _direct_message(person: Person, sequence: int) -> tuple[Channel, int]:
    opened = EPOCH - timedelta(days=3)
    channel = Channel(_im_object(person, opened), {user_id(person), bot_user_id()})
    posts = ChannelBuilder()
    posts.post(opened, person, "Hi Sophia, which initiatives are at risk this week?")
    posts.post(opened + timedelta(minutes=1), bot_user_id(), "Checking the trackers now; I'll summarise here.")
    posts.post(opened + timedelta(hours=2), person, "Thanks! Please include the customer-facing ones.")
    return channel, posts.fill(channel, sequence)


@cache
def workspace() -> Workspace:
    people = {p.key: p for p in PEOPLE}
    users = [_user(p, i) for i, p in enumerate(PEOPLE)] + _special_users()
    admin = people["ada.okafor"]
    founded = EPOCH.replace(year=EPOCH.year - 2)
    general = Channel(
        _channel_object(
            "general",
            founded,
            user_id(admin),
            f"{COMPANY}: company-wide announcements",
            "This is the one channel that will always include everyone.",
            {user_id(p) for p in PEOPLE},
            general=True,
        ),
        {user_id(p) for p in PEOPLE},
    )
    announcements = ChannelBuilder()
    announcements.post(founded, admin, f"Welcome to {COMPANY} on Slack 👋")
    channels = [general]
    sequence = 0
    for initiative in initiatives():
        channel, sequence = _initiative_channel(initiative, sequence)
        channels.append(channel)
        announcements.post(
            initiative.created + timedelta(minutes=30),
            admin,
            f"New channel <#{channel.object['id']}|{channel.object['name']}> for *{initiative.name}*, "
            f"led by <@{user_id(initiative.lead)}>.",
        )
    announcements.post(
        EPOCH - timedelta(days=2),
        admin,
        "Reminder: quarterly planning on Friday. Bring your roadmaps.",
        replies=[
            (EPOCH - timedelta(days=2, hours=-1), people["chen.wei"], "Autonomy will present first."),
            (EPOCH - timedelta(days=1), people["gus.romero"], "Sales pipeline review after."),
        ],
    )
    sequence = announcements.fill(general, sequence)
    dm, _ = _direct_message(people[USER_TOKEN_OWNER], sequence)
    return Workspace(users=users, channels=channels, ims=[dm])


# -- the API ------------------------------------------------------------------------------------


class SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


def encode_cursor(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(cursor: str, kind: str) -> str:
    try:
        found_kind, key = base64.b64decode(cursor.encode(), validate=True).decode().split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SlackError("invalid_cursor") from None
    if found_kind != kind:
        raise SlackError("invalid_cursor")
    return key


def page(
    items: list[Json], args: dict[str, str], kind: str, key: Any, default_limit: int, max_limit: int
) -> tuple[list[Json], str]:
    """Exact cursor pagination: the cursor names the first item of the next page."""
    limit = integer(args, "limit", default_limit) or default_limit
    limit = min(max(limit, 1), max_limit)
    start = 0
    if args.get("cursor"):
        wanted = decode_cursor(args["cursor"], kind)
        start = next((i for i, item in enumerate(items) if key(item) == wanted), -1)
        if start < 0:
            raise SlackError("invalid_cursor")
    chunk = items[start : start + limit]
    following = items[start + limit] if start + limit < len(items) else None
    return chunk, encode_cursor(kind, key(following)) if following is not None else ""


def integer(args: dict[str, str], name: str, default: int) -> int:
    try:
        return int(args.get(name) or default)
    except ValueError:
        raise SlackError("invalid_arguments") from None


def flag(args: dict[str, str], name: str) -> bool:
    return args.get(name, "").lower() in ("true", "1")


def ts_bound(args: dict[str, str], name: str) -> float | None:
    if not args.get(name):
        return None
    try:
        return float(args[name])
    except ValueError:
        raise SlackError(f"invalid_ts_{name}") from None


def visible(channel: Channel, token: str) -> bool:
    """The bot was invited everywhere; the user token's owner sees private channels and DMs they belong to."""
    if not (channel.object.get("is_private") or channel.object.get("is_im")) or token != USER_TOKEN:
        return True
    return user_id(next(p for p in PEOPLE if p.key == USER_TOKEN_OWNER)) in channel.members


def kind_of(channel: Channel) -> str:
    """The conversation type, as conversations.list's `types` names it."""
    if channel.object.get("is_im"):
        return "im"
    return "private_channel" if channel.object["is_private"] else "public_channel"


#: conversation type -> the prefix of the scopes that read it (channels:read, groups:history, ...)
SCOPE_PREFIX = {"public_channel": "channels", "private_channel": "groups", "im": "im"}


def find_channel(args: dict[str, str], token: str, access: str) -> Channel:
    """The conversation named by `channel`, if the token sees it and has `<kind>:<access>` for its kind."""
    channel = workspace().channel(args.get("channel", ""))
    if channel is None or not visible(channel, token):
        raise SlackError("channel_not_found")
    scope = f"{SCOPE_PREFIX[kind_of(channel)]}:{access}"
    if scope not in SCOPES[token]:
        raise SlackError("missing_scope", needed=scope, provided=",".join(sorted(SCOPES[token])))
    return channel


def conversations_list(args: dict[str, str], token: str) -> Json:
    types = set((args.get("types") or "public_channel").split(","))
    for kind in sorted(types & set(SCOPE_PREFIX)):
        if f"{SCOPE_PREFIX[kind]}:read" not in SCOPES[token]:
            raise SlackError(
                "missing_scope", needed=f"{SCOPE_PREFIX[kind]}:read", provided=",".join(sorted(SCOPES[token]))
            )
    channels = [
        c.object
        for c in [*workspace().channels, *workspace().ims]
        if visible(c, token)
        and kind_of(c) in types
        and not (flag(args, "exclude_archived") and c.object["is_archived"])
    ]
    chunk, following = page(channels, args, "team", lambda c: c["id"], 100, 1000)
    return {"ok": True, "channels": chunk, "response_metadata": {"next_cursor": following}}


def conversations_info(args: dict[str, str], token: str) -> Json:
    return {"ok": True, "channel": find_channel(args, token, "read").object}


def in_range(message: Json, args: dict[str, str]) -> bool:
    oldest, latest, inclusive = ts_bound(args, "oldest"), ts_bound(args, "latest"), flag(args, "inclusive")
    ts = float(message["ts"])
    if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
        return False
    return latest is None or ts < latest or (ts == latest and inclusive)


def conversations_history(args: dict[str, str], token: str) -> Json:
    channel = find_channel(args, token, "history")
    messages = [m for m in channel.history if in_range(m, args)]
    chunk, following = page(messages, args, "next_ts", lambda m: m["ts"].replace(".", ""), 100, 999)
    body: Json = {
        "ok": True,
        "messages": chunk,
        "has_more": bool(following),
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if following:
        body["response_metadata"] = {"next_cursor": following}
    return body


def conversations_replies(args: dict[str, str], token: str) -> Json:
    channel = find_channel(args, token, "history")
    ts = args.get("ts", "")
    thread = channel.threads.get(ts)
    if thread is None:
        parent = next((m for m in channel.history if m["ts"] == ts), None)
        if parent is None:
            raise SlackError("thread_not_found")
        thread = [parent]  # a message without replies is a thread of one, as Slack answers it
    messages = [m for m in thread if in_range(m, args)]
    chunk, following = page(messages, args, "next_ts", lambda m: m["ts"].replace(".", ""), 1000, 1000)
    body: Json = {"ok": True, "messages": chunk, "has_more": bool(following)}
    if following:
        body["response_metadata"] = {"next_cursor": following}
    return body


def users_list(args: dict[str, str], token: str) -> Json:
    users = workspace().users
    chunk, following = page(users, args, "user", lambda u: u["id"], len(users), 1000)
    return {"ok": True, "members": chunk, "cache_ts": epoch(EPOCH), "response_metadata": {"next_cursor": following}}


def users_info(args: dict[str, str], token: str) -> Json:
    user = workspace().user(args.get("user", ""))
    if user is None:
        raise SlackError("user_not_found")
    return {"ok": True, "user": user}


SEARCH_TERM = re.compile(r'(\w+):("[^"]*"|\S+)|"([^"]*)"|(\S+)')


def search_filter(query: str) -> tuple[list[str], dict[str, list[str]]]:
    """Bare words and phrases, and the modifiers Slack documents (in:, from:, before:, after:, on:)."""
    words: list[str] = []
    modifiers: dict[str, list[str]] = {}
    for modifier, value, phrase, word in SEARCH_TERM.findall(query):
        if modifier and modifier.lower() in ("in", "from", "before", "after", "on"):
            modifiers.setdefault(modifier.lower(), []).append(value.strip('"'))
        elif phrase or word or modifier:
            words.append((phrase or word or f"{modifier}:{value}").lower())
    return words, modifiers


def matches_modifiers(channel: Channel, message: Json, modifiers: dict[str, list[str]]) -> bool:
    users = {u["id"]: u for u in workspace().users}
    day = datetime.fromtimestamp(float(message["ts"]), UTC).date().isoformat()
    for value in modifiers.get("in", []):
        target = value.lstrip("#").lower()
        if target.startswith("<#"):
            target = target[2:].split("|")[0].rstrip(">").upper()
        if target not in (channel.object["name"], channel.object["id"]):
            return False
    for value in modifiers.get("from", []):
        who = value.lstrip("@").lower()
        if who.startswith("<@"):
            who = who[2:].split("|")[0].rstrip(">").upper()
        author = users.get(message["user"], {})
        if who not in (author.get("name"), author.get("id"), (author.get("profile") or {}).get("display_name")):
            return False
    return (
        all(day < v for v in modifiers.get("before", []))
        and all(day > v for v in modifiers.get("after", []))
        and all(day == v for v in modifiers.get("on", []))
    )


def search_messages(args: dict[str, str], token: str) -> Json:
    if token != USER_TOKEN:
        raise SlackError("not_allowed_token_type")
    query = args.get("query", "").strip()
    if not query:
        raise SlackError("No query passed")
    words, modifiers = search_filter(query)
    users = {u["id"]: u for u in workspace().users}
    found: list[tuple[int, Json]] = []
    for channel in workspace().channels:
        if not visible(channel, token):
            continue
        messages = channel.history + [r for thread in channel.threads.values() for r in thread[1:]]
        for message in messages:
            text = message["text"].lower()
            if message.get("subtype") or not all(w in text for w in words):
                continue
            if not matches_modifiers(channel, message, modifiers):
                continue
            found.append((sum(text.count(w) for w in words), _match(channel, message, users)))
    by_time = args.get("sort") == "timestamp"
    found.sort(
        key=lambda sm: (float(sm[1]["ts"]) if by_time else sm[0], sm[1]["ts"]), reverse=args.get("sort_dir") != "asc"
    )
    count = min(max(integer(args, "count", 20), 1), 100)
    page_number = min(max(integer(args, "page", 1), 1), 100)
    total = len(found)
    pages = math.ceil(total / count)
    chunk = [m for _, m in found[(page_number - 1) * count : page_number * count]]
    first = (page_number - 1) * count + 1
    return {
        "ok": True,
        "query": query,
        "messages": {
            "total": total,
            "pagination": {
                "total_count": total,
                "page": page_number,
                "per_page": count,
                "page_count": pages,
                "first": first,
                "last": min(total, page_number * count),
            },
            "paging": {"count": count, "total": total, "page": page_number, "pages": pages},
            "matches": chunk,
        },
    }


def _match(channel: Channel, message: Json, users: dict[str, Json]) -> Json:
    ts = message["ts"]
    obj = channel.object
    permalink = f"https://{DOMAIN}.slack.com/archives/{obj['id']}/p{ts.replace('.', '')}"
    if message.get("parent_user_id"):
        permalink += f"?thread_ts={message['thread_ts']}&cid={obj['id']}"
    return {
        "iid": stable_uuid("slack-match", obj["id"], ts),
        "team": TEAM_ID,
        "score": 0,
        "channel": {
            key: obj[key]
            for key in (
                "id",
                "is_channel",
                "is_group",
                "is_im",
                "is_mpim",
                "is_shared",
                "is_org_shared",
                "is_ext_shared",
                "is_private",
                "is_pending_ext_shared",
                "pending_shared",
                "name",
            )
        },
        "type": "message",
        "user": message["user"],
        "username": users.get(message["user"], {}).get("name", ""),
        "ts": ts,
        "text": message["text"],
        "permalink": permalink,
        "no_reactions": True,
    }


METHODS = {
    "conversations.list": conversations_list,
    "conversations.info": conversations_info,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "users.list": users_list,
    "users.info": users_info,
    "search.messages": search_messages,
}


async def arguments(request: Request) -> dict[str, str]:
    """Query parameters, merged with a form or JSON body, as Slack reads them."""
    args = dict(request.query_params)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("json_not_object")
            args.update({k: json.dumps(v) if isinstance(v, bool) else str(v) for k, v in body.items()})
        else:
            args.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
    return args


def build(state: SandboxState) -> Starlette:
    async def call(request: Request) -> Response:
        method = request.path_params["method"]
        handler = METHODS.get(method)
        if handler is None:
            return JSONResponse({"ok": False, "error": "unknown_method", "req_method": method})
        try:
            args = await arguments(request)
            authorization = request.headers.get("authorization", "")
            token = authorization.removeprefix("Bearer ").strip() if authorization else args.get("token", "")
            if not token:
                raise SlackError("not_authed")
            if token not in SCOPES:
                raise SlackError("invalid_auth")
            if method == "search.messages" and not token.startswith("xoxp-"):
                raise SlackError("not_allowed_token_type")
            if not set(NEEDED[method].split(",")) & SCOPES[token]:
                raise SlackError("missing_scope", needed=NEEDED[method], provided=",".join(sorted(SCOPES[token])))
            body = handler(args, token)
        except SlackError as exc:
            body = exc.body
        return JSONResponse(body, headers={"X-Slack-Req-Id": stable_uuid("slack-req", method).replace("-", "")[:32]})

    return Starlette(routes=[Route("/api/{method}", call, methods=["GET", "POST"])])
