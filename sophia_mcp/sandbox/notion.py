"""Notion's REST API (`/v1`), version 2025-09-03 (databases hold data sources), as Notion documents it.

- Auth: `Authorization: Bearer <integration token>` and a `Notion-Version` header on every request;
  a missing version gets Notion's 400 `missing_version`, any version but 2025-09-03 a 400
  `validation_error` (this double serves that one version's shapes only).
- Lists are `{"object": "list", "results", "next_cursor", "has_more", "type", <type>: {}}`; cursors
  are the id of the next result, `page_size` is at most 100 (default 100), as upstream.
- Page objects list at most 25 references per title, rich_text, people or relation property (a relation
  then says `has_more: true`); `GET /v1/pages/{id}/properties/{property_id}` pages through all of them
  as `property_item` lists, and answers other properties as one `property_item`.
- Errors are `{"object": "error", "status", "code", "message", "request_id"}` with Notion's codes
  (unauthorized, missing_version, validation_error, object_not_found, rate_limited, ...); 429 carries
  `Retry-After` (seconds).

The workspace: a "Northwind Robotics HQ" page holding the "Northwind Projects" database, whose one
data source has a page per initiative (Status select, Owner person, Dates, Customer, ...). Each
initiative page is its spec: nested blocks of every common type, a "Meeting notes" child page and
an inline "Tasks" database (one data source per initiative, rows from its work items).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sophia_mcp.sandbox import SandboxState
from sophia_mcp.sandbox.dataset import (
    COMPANY,
    EPOCH,
    PEOPLE,
    Initiative,
    Person,
    WorkItem,
    initiatives,
    iso_ms,
    stable_uuid,
)

TOKEN = "ntn_sandboxNorthwindDemoToken000000000000000000"
VERSION = "2025-09-03"
MAX_PAGE_SIZE = 100
Record = dict[str, Any]
#: (type, content, children, explicit id): a block before it gets ids and timestamps
Spec = tuple[str, Record, list["Spec"], str | None]

STATUS_NAMES = {
    "planned": "Planned",
    "active": "Active",
    "paused": "Paused",
    "completed": "Completed",
    "canceled": "Canceled",
}
STATUS_COLORS = {"Planned": "gray", "Active": "blue", "Paused": "yellow", "Completed": "green", "Canceled": "red"}
TASK_STATUS = {
    "backlog": "Not started",
    "todo": "Not started",
    "in_progress": "In progress",
    "in_review": "In progress",
    "done": "Done",
    "canceled": "Done",
}
PRIORITIES = ("None", "Urgent", "High", "Medium", "Low")
TEAMS = ("Autonomy", "Fleet", "Platform", "Experience", "Sales")
#: property types whose values are lists the page object cuts at PROPERTY_ITEM_CAP (the property item endpoint pages)
PAGINATED = ("title", "rich_text", "people", "relation")
PROPERTY_ITEM_CAP = 25


def nid(*parts: object) -> str:
    return stable_uuid("notion", *parts)


def demo_settings(base_url: str) -> dict[str, Any]:
    return {"notion_token": TOKEN, "notion_base_url": base_url}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "object": "error",
        "status": status,
        "code": code,
        "message": message,
        "request_id": nid("request", code, message),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(status: int, retry_after: float | None) -> Response:
    if status == 429:
        return error(
            429,
            "rate_limited",
            "You have been rate limited. Please try again in a few minutes.",
            headers={"Retry-After": str(math.ceil(retry_after or 1))},
        )
    codes = {
        401: ("unauthorized", "API token is invalid."),
        403: ("restricted_resource", "Insufficient permissions for this endpoint."),
        404: ("object_not_found", "Could not find object."),
        409: ("conflict_error", "Conflict occurred while saving. Please try again."),
        500: ("internal_server_error", "Unexpected error occurred."),
        502: ("bad_gateway", "Bad gateway."),
        503: ("service_unavailable", "Notion is unavailable, try again later."),
        504: ("gateway_timeout", "Gateway timeout."),
    }
    code, message = codes.get(status, ("invalid_request", "Invalid request."))
    return error(status, code, message)


# -- rich text and blocks ----------------------------------------------------------------------------


def rt(
    content: str,
    *,
    bold: bool = False,
    italic: bool = False,
    strikethrough: bool = False,
    underline: bool = False,
    code: bool = False,
    color: str = "default",
    link: str | None = None,
) -> Record:
    return {
        "type": "text",
        "text": {"content": content, "link": {"url": link} if link else None},
        "annotations": {
            "bold": bold,
            "italic": italic,
            "strikethrough": strikethrough,
            "underline": underline,
            "code": code,
            "color": color,
        },
        "plain_text": content,
        "href": link,
    }


def _mention(kind: str, value: Record, plain: str, href: str | None) -> Record:
    return {
        "type": "mention",
        "mention": {"type": kind, kind: value},
        "annotations": rt("")["annotations"],
        "plain_text": plain,
        "href": href,
    }


def mention_user(p: Person) -> Record:
    return _mention("user", user(p), f"@{p.name}", None)


def mention_page(page_id: str, title: str) -> Record:
    return _mention("page", {"id": page_id}, title, page_url(page_id))


def mention_date(start: str) -> Record:
    return _mention("date", {"start": start, "end": None, "time_zone": None}, start, None)


def page_url(page_id: str, title: str = "") -> str:
    slug = "-".join("".join(c for c in title if c.isalnum() or c == " ").split())
    return f"https://www.notion.so/{slug + '-' if slug else ''}{page_id.replace('-', '')}"


def block(kind: str, content: Record, *children: Spec, id: str | None = None) -> Spec:
    return (kind, content, list(children), id)


def text_block(kind: str, *rich: Record, color: str = "default", children: tuple[Spec, ...] = ()) -> Spec:
    content: Record = {"rich_text": list(rich), "color": color}
    if kind == "paragraph":
        content["icon"] = None
    if kind.startswith("heading_"):
        content["is_toggleable"] = False
    return block(kind, content, *children)


def user(p: Person) -> Record:
    return {
        "object": "user",
        "id": nid("user", p.key),
        "name": p.name,
        "avatar_url": None,
        "type": "person",
        "person": {"email": p.email},
    }


BOT: Record = {
    "object": "user",
    "id": nid("bot", "sophia"),
    "name": "Sophia (Northwind)",
    "avatar_url": None,
    "type": "bot",
    "bot": {
        "owner": {"type": "workspace", "workspace": True},
        "workspace_id": nid("workspace", "northwind"),
        "workspace_limits": {"max_file_upload_size_in_bytes": 5_368_709_120},
        "workspace_name": COMPANY,
    },
}
OTHER_BOT: Record = {
    "object": "user",
    "id": nid("bot", "slack-sync"),
    "name": "Slack sync",
    "avatar_url": None,
    "type": "bot",
    "bot": {},
}


def _spec_page(i: Initiative, index: int, meeting_id: str, tasks_db_id: str) -> list[Spec]:
    customer = i.customer
    status = STATUS_NAMES[i.status]
    people = {p.key: p for p in PEOPLE}
    contributors = sorted({item.assignee.key for item in i.items if item.assignee} - {i.lead.key})[:2]
    intro = [
        rt(f"{i.summary} "),
        rt("Target: ", italic=True),
        mention_date(i.target.isoformat()),
        rt(". Tracking code "),
        rt(i.code, code=True),
        rt(". "),
    ]
    intro += (
        [rt(customer.name, link=f"https://{customer.domain}"), rt(" is the launch customer.")]
        if customer
        else [rt("Internal initiative, no customer.", color="gray")]
    )
    risks: list[Spec] = [
        text_block(
            "paragraph",
            rt("Schedule risk is "),
            rt("medium", bold=True, color="orange"),
            rt(": the test track is shared."),
        ),
        text_block("bulleted_list_item", rt("Mitigation: book the track two weeks ahead")),
        text_block("bulleted_list_item", rt("Escalate to "), mention_user(i.lead), rt(" when a week slips")),
    ]
    body: list[Spec] = [
        block(
            "callout",
            {
                "rich_text": [rt("Status: "), rt(status, bold=True), rt(" · Owner "), mention_user(i.lead)],
                "color": "gray_background",
                "icon": {"type": "emoji", "emoji": "💡"},
            },
        ),
        text_block("heading_1", rt("Overview")),
        text_block("paragraph", *intro),
        text_block("heading_2", rt("Goals")),
        text_block(
            "bulleted_list_item",
            rt(f"Move from {round(i.progress * 100)}% to 100% by "),
            rt(i.target.isoformat(), bold=True),
            children=(
                text_block(
                    "bulleted_list_item",
                    rt("Weekly demo to "),
                    mention_user(i.lead),
                    children=(
                        text_block("bulleted_list_item", rt("Record every demo in the "), rt("field log", italic=True)),
                    ),
                ),
            ),
        ),
        text_block(
            "bulleted_list_item",
            rt("Keep the scope small: "),
            rt("new hardware", strikethrough=True),
            rt(" "),
            rt("one hardware revision at most", underline=True),
        ),
        text_block("heading_2", rt("Milestones")),
        text_block("numbered_list_item", rt("Design review "), mention_date(i.start.isoformat())),
        text_block("numbered_list_item", rt("Beta with "), rt(customer.name if customer else "the pilot site")),
        text_block("numbered_list_item", rt("General availability "), mention_date(i.target.isoformat())),
        text_block("heading_2", rt("Checklist")),
        *[
            block("to_do", {"rich_text": [rt(item.title)], "checked": item.state == "done", "color": "default"})
            for item in i.items[:4]
        ],
        block("toggle", {"rich_text": [rt("Risks and mitigations")], "color": "default"}, *risks),
        block(
            "code",
            {
                "rich_text": [rt(f"initiative: {i.key}\nteam: {i.team}\nrollout:\n  stages: [canary, 10%, all]\n")],
                "caption": [rt("Rollout config")],
                "language": "yaml",
            },
        ),
        block(
            "quote",
            {"rich_text": [rt(f"We need {i.name} working before the next season.")], "color": "default"},
            text_block("paragraph", rt("— "), rt(customer.contact_name if customer else i.lead.name, italic=True)),
        ),
        block("divider", {}),
        block(
            "table",
            {"table_width": 3, "has_column_header": True, "has_row_header": False},
            *[
                block("table_row", {"cells": [[rt(a)], [rt(b)], [rt(c)]]})
                for a, b, c in (
                    ("Milestone", "Owner", "Date"),
                    ("Design review", i.lead.name, i.start.isoformat()),
                    (
                        "Beta",
                        people[contributors[0]].name if contributors else i.lead.name,
                        (i.start + timedelta(days=60)).isoformat(),
                    ),
                    ("GA", i.lead.name, i.target.isoformat()),
                )
            ],
        ),
        block(
            "image",
            {
                "type": "external",
                "external": {"url": f"https://assets.northwind.example/{i.key}/architecture.png"},
                "caption": [rt("Architecture overview")],
            },
        ),
        text_block("heading_3", rt("Related")),
        block(
            "column_list",
            {},
            block(
                "column",
                {"width_ratio": 0.5},
                text_block(
                    "paragraph",
                    rt("Contributors: "),
                    *[r for k in contributors for r in (mention_user(people[k]), rt(" "))] or [rt("none yet")],
                ),
            ),
            block(
                "column",
                {"width_ratio": 0.5},
                block("bookmark", {"url": f"https://github.com/northwind/{i.key}", "caption": [rt("Repository")]}),
            ),
        ),
        block("child_page", {"title": f"Meeting notes: {i.name}"}, id=meeting_id),
        block("child_database", {"title": "Tasks"}, id=tasks_db_id),
    ]
    if index == 0:  # a long nested list: children pages past 100 blocks
        log = [
            text_block("paragraph", rt(f"Run {n}: "), rt(f"{20 + n % 7} km without intervention"))
            for n in range(1, 131)
        ]
        body.insert(-3, block("toggle", {"rich_text": [rt("Field test log")], "color": "default"}, *log))
    return body


def _meeting_page(i: Initiative) -> list[Spec]:
    attendees = [i.lead, *[item.assignee for item in i.items[:2] if item.assignee]]
    return [
        text_block("heading_2", rt(f"Kickoff, {i.start.isoformat()}")),
        text_block(
            "paragraph",
            rt("Attendees: "),
            *[r for n, p in enumerate(dict.fromkeys(attendees)) for r in ([rt(", ")] if n else []) + [mention_user(p)]],
        ),
        text_block("bulleted_list_item", rt("Decision: "), rt(i.summary)),
        block(
            "to_do",
            {
                "rich_text": [rt("Share the spec with the customer")],
                "checked": i.status != "planned",
                "color": "default",
            },
        ),
    ]


# -- the workspace --------------------------------------------------------------------------------


@cache
def dataset() -> dict[str, Any]:
    """Users, databases, data sources, pages and blocks of the seeded workspace, in Notion's shapes."""
    users = [user(p) for p in PEOPLE] + [BOT, OTHER_BOT]
    editor = {"object": "user", "id": nid("user", "dara.nguyen")}
    pages: dict[str, Record] = {}
    databases: dict[str, Record] = {}
    sources: dict[str, Record] = {}
    blocks: dict[str, Record] = {}
    children: dict[str, list[Record]] = {}
    rows: dict[str, list[Record]] = {}
    started = EPOCH - timedelta(days=400)

    def add_blocks(parent_id: str, specs: list[Spec], scope: str, moment: datetime, top: bool = True) -> None:
        items = children.setdefault(parent_id, [])
        for n, (kind, content, kids, explicit) in enumerate(specs):
            block_id = explicit or nid("block", scope, n)
            record = {
                "object": "block",
                "id": block_id,
                "parent": {"type": "page_id", "page_id": parent_id}
                if top
                else {"type": "block_id", "block_id": parent_id},
                "created_time": iso_ms(moment),
                "last_edited_time": iso_ms(moment),
                "created_by": editor,
                "last_edited_by": editor,
                "has_children": bool(kids),
                "archived": False,
                "in_trash": False,
                "type": kind,
                kind: content,
            }
            items.append(record)
            blocks[block_id] = record
            if kids:
                add_blocks(block_id, kids, f"{scope}/{n}", moment, top=False)

    def page(
        page_id: str,
        parent: Record,
        properties: Record,
        moment: datetime,
        edited: datetime,
        title: str,
        icon: str | None = None,
    ) -> Record:
        record = {
            "object": "page",
            "id": page_id,
            "created_time": iso_ms(moment),
            "last_edited_time": iso_ms(edited),
            "created_by": editor,
            "last_edited_by": editor,
            "cover": None,
            "icon": {"type": "emoji", "emoji": icon} if icon else None,
            "parent": parent,
            "in_trash": False,
            "archived": False,
            "is_archived": False,
            "is_locked": False,
            "properties": properties,
            "url": page_url(page_id, title),
            "public_url": None,
        }
        pages[page_id] = record
        return record

    def database(
        db_id: str, source_id: str, title: str, parent: Record, properties: Record, moment: datetime, inline: bool
    ) -> None:
        common = {
            "id": db_id,
            "title": [rt(title)],
            "description": [],
            "parent": parent,
            "is_inline": inline,
            "in_trash": False,
            "archived": False,
            "created_time": iso_ms(moment),
            "last_edited_time": iso_ms(moment),
            "icon": None,
            "cover": None,
            "url": page_url(db_id, title),
            "public_url": None,
        }
        databases[db_id] = {
            **common,
            "object": "database",
            "is_locked": False,
            "data_sources": [{"id": source_id, "name": title}],
        }
        sources[source_id] = {
            **common,
            "object": "data_source",
            "id": source_id,
            "parent": {"type": "database_id", "database_id": db_id},
            "database_parent": parent,
            "created_by": editor,
            "last_edited_by": editor,
            "properties": properties,
            "url": page_url(source_id, title),
        }
        rows[source_id] = []

    hq = nid("page", "hq")
    projects_db, projects_ds = nid("database", "projects"), nid("data-source", "projects")
    page(
        hq,
        {"type": "workspace", "workspace": True},
        {"title": title_value(f"{COMPANY} HQ")},
        started,
        started,
        f"{COMPANY} HQ",
        icon="🤖",
    )
    database(
        projects_db,
        projects_ds,
        "Northwind Projects",
        {"type": "page_id", "page_id": hq},
        project_schema(),
        started,
        inline=False,
    )
    add_blocks(
        hq,
        [
            text_block("paragraph", rt("Everything Northwind Robotics is building.")),
            block("child_database", {"title": "Northwind Projects"}, id=projects_db),
        ],
        "hq",
        started,
    )
    for index, i in enumerate(initiatives()):
        page_id = nid("page", "initiative", i.key)
        meeting_id, tasks_db, tasks_ds = (
            nid("page", "meeting", i.key),
            nid("database", "tasks", i.key),
            nid("data-source", "tasks", i.key),
        )
        parent = {"type": "data_source_id", "data_source_id": projects_ds, "database_id": projects_db}
        record = page(page_id, parent, project_properties(i), i.created, i.updated, i.name, icon="🚀")
        rows[projects_ds].append(record)
        database(
            tasks_db,
            tasks_ds,
            f"{i.name} Tasks",
            {"type": "page_id", "page_id": page_id},
            task_schema(i, projects_db, projects_ds),
            i.created,
            inline=True,
        )
        page(
            meeting_id,
            {"type": "page_id", "page_id": page_id},
            {"title": title_value(f"Meeting notes: {i.name}")},
            i.created,
            i.created + timedelta(days=2),
            f"Meeting notes: {i.name}",
        )
        add_blocks(meeting_id, _meeting_page(i), f"meeting/{i.key}", i.created)
        for item in i.items:
            task_id = nid("page", "task", item.key)
            task_parent = {"type": "data_source_id", "data_source_id": tasks_ds, "database_id": tasks_db}
            rows[tasks_ds].append(
                page(task_id, task_parent, task_properties(i, item, page_id), item.created, item.updated, item.title)
            )
            add_blocks(task_id, [text_block("paragraph", rt(item.description))], f"task/{item.key}", item.created)
        add_blocks(page_id, _spec_page(i, index, meeting_id, tasks_db), f"initiative/{i.key}", i.created)
    for block_id in list(blocks):  # child page blocks say whether the child page has content
        if blocks[block_id]["type"] == "child_page":
            blocks[block_id]["has_children"] = bool(children.get(block_id))
    return {
        "users": users,
        "pages": pages,
        "databases": databases,
        "sources": sources,
        "blocks": blocks,
        "children": children,
        "rows": rows,
    }


def title_value(text: str) -> Record:
    return {"id": "title", "type": "title", "title": [rt(text)]}


def _select_options(names: tuple[str, ...], colors: dict[str, str] | None = None) -> list[Record]:
    return [
        {"id": nid("option", name)[:8], "name": name, "color": (colors or {}).get(name, "default"), "description": None}
        for name in names
    ]


def _config(name: str, kind: str, config: Record | None = None, prop_id: str | None = None) -> Record:
    return {
        "id": prop_id or nid("property", name)[:4],
        "name": name,
        "description": None,
        "type": kind,
        kind: config or {},
    }


def project_schema() -> Record:
    return {
        "Name": _config("Name", "title", prop_id="title"),
        "Status": _config("Status", "select", {"options": _select_options(tuple(STATUS_COLORS), STATUS_COLORS)}),
        "Owner": _config("Owner", "people"),
        "Team": _config("Team", "select", {"options": _select_options(TEAMS)}),
        "Dates": _config("Dates", "date"),
        "Customer": _config("Customer", "rich_text"),
        "Code": _config("Code", "rich_text"),
        "Progress": _config("Progress", "number", {"format": "percent"}),
        "Deal size": _config("Deal size", "number", {"format": "dollar"}),
    }


def task_schema(i: Initiative, projects_db: str, projects_ds: str) -> Record:
    groups = [
        ("To-do", "gray", ["Not started"]),
        ("In progress", "blue", ["In progress"]),
        ("Complete", "green", ["Done"]),
    ]
    options = _select_options(
        ("Not started", "In progress", "Done"), {"Not started": "default", "In progress": "blue", "Done": "green"}
    )
    ids = {o["name"]: o["id"] for o in options}
    return {
        "Name": _config("Name", "title", prop_id="title"),
        "Status": _config(
            "Status",
            "status",
            {
                "options": options,
                "groups": [
                    {"id": nid("group", g)[:8], "name": g, "color": c, "option_ids": [ids[o] for o in opts]}
                    for g, c, opts in groups
                ],
            },
        ),
        "Assignee": _config("Assignee", "people"),
        "Due": _config("Due", "date"),
        "Priority": _config("Priority", "select", {"options": _select_options(PRIORITIES)}),
        "ID": _config("ID", "unique_id", {"prefix": i.code}),
        "Initiative": _config(
            "Initiative",
            "relation",
            {
                "database_id": projects_db,
                "data_source_id": projects_ds,
                "type": "single_property",
                "single_property": {},
            },
        ),
    }


def _value(schema: Record, name: str, value: Any) -> Record:
    config = schema[name]
    return {"id": config["id"], "type": config["type"], config["type"]: value}


def _option(schema: Record, name: str, option: str | None) -> Record | None:
    if option is None:
        return None
    found = next(o for o in schema[name][schema[name]["type"]]["options"] if o["name"] == option)
    return {"id": found["id"], "name": found["name"], "color": found["color"]}


def project_properties(i: Initiative) -> Record:
    schema = project_schema()
    return {
        "Name": _value(schema, "Name", [rt(i.name)]),
        "Status": _value(schema, "Status", _option(schema, "Status", STATUS_NAMES[i.status])),
        "Owner": _value(schema, "Owner", [user(i.lead)]),
        "Team": _value(schema, "Team", _option(schema, "Team", i.team)),
        "Dates": _value(
            schema, "Dates", {"start": i.start.isoformat(), "end": i.target.isoformat(), "time_zone": None}
        ),
        "Customer": _value(schema, "Customer", [rt(i.customer.name)] if i.customer else []),
        "Code": _value(schema, "Code", [rt(i.code)]),
        "Progress": _value(schema, "Progress", i.progress),
        "Deal size": _value(schema, "Deal size", i.deal_amount or None),
    }


def task_properties(i: Initiative, item: WorkItem, initiative_page: str) -> Record:
    schema = task_schema(i, "", "")
    return {
        "Name": _value(schema, "Name", [rt(item.title)]),
        "Status": _value(schema, "Status", _option(schema, "Status", TASK_STATUS[item.state])),
        "Assignee": _value(schema, "Assignee", [user(item.assignee)] if item.assignee else []),
        "Due": _value(
            schema, "Due", {"start": item.due.isoformat(), "end": None, "time_zone": None} if item.due else None
        ),
        "Priority": _value(schema, "Priority", _option(schema, "Priority", PRIORITIES[item.priority])),
        "ID": _value(schema, "ID", {"prefix": i.code, "number": item.number}),
        "Initiative": {**_value(schema, "Initiative", [{"id": initiative_page}]), "has_more": False},
    }


# -- queries ----------------------------------------------------------------------------------------


class NotionError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(message: str) -> NotionError:
    return NotionError(400, "validation_error", message)


def plain(rich: list[Record]) -> str:
    return "".join(r.get("plain_text", "") for r in rich)


def title_of(record: Record) -> str:
    if record["object"] in ("data_source", "database"):
        return plain(record["title"])
    return next((plain(v["title"]) for v in record["properties"].values() if v["type"] == "title"), "")


def property_value(value: Record) -> Any:
    """The comparable value of a page property, for filters and sorts."""
    kind = value["type"]
    raw = value[kind]
    if kind in ("title", "rich_text"):
        return plain(raw)
    if kind in ("select", "status"):
        return raw["name"] if raw else None
    if kind == "multi_select":
        return [o["name"] for o in raw]
    if kind in ("people", "relation"):
        return [p["id"] for p in raw]
    if kind == "date":
        return raw["start"] if raw else None
    if kind == "unique_id":
        return raw["number"]
    return raw


TEXT_OPS = {
    "equals",
    "does_not_equal",
    "contains",
    "does_not_contain",
    "starts_with",
    "ends_with",
    "is_empty",
    "is_not_empty",
}
FILTER_OPS: dict[str, set[str]] = {
    "title": TEXT_OPS,
    "rich_text": TEXT_OPS,
    "url": TEXT_OPS,
    "email": TEXT_OPS,
    "phone_number": TEXT_OPS,
    "select": {"equals", "does_not_equal", "is_empty", "is_not_empty"},
    "status": {"equals", "does_not_equal", "is_empty", "is_not_empty"},
    "multi_select": {"contains", "does_not_contain", "is_empty", "is_not_empty"},
    "people": {"contains", "does_not_contain", "is_empty", "is_not_empty"},
    "relation": {"contains", "does_not_contain", "is_empty", "is_not_empty"},
    "number": {
        "equals",
        "does_not_equal",
        "greater_than",
        "less_than",
        "greater_than_or_equal_to",
        "less_than_or_equal_to",
        "is_empty",
        "is_not_empty",
    },
    "unique_id": {
        "equals",
        "does_not_equal",
        "greater_than",
        "less_than",
        "greater_than_or_equal_to",
        "less_than_or_equal_to",
    },
    "date": {"equals", "before", "after", "on_or_before", "on_or_after", "is_empty", "is_not_empty"},
    "checkbox": {"equals", "does_not_equal"},
}


def compare(value: Any, op: str, arg: Any) -> bool:
    if op == "is_empty":
        return value in (None, "", [])
    if op == "is_not_empty":
        return value not in (None, "", [])
    if isinstance(value, list):
        return (arg in value) == (op == "contains")
    if value is None:
        return op in ("does_not_equal", "does_not_contain")
    if isinstance(value, str) and isinstance(arg, str):
        value, arg = value.lower(), arg.lower()
    tests: dict[str, Callable[[], bool]] = {
        "equals": lambda: value == arg,
        "does_not_equal": lambda: value != arg,
        "contains": lambda: arg in value,
        "does_not_contain": lambda: arg not in value,
        "starts_with": lambda: value.startswith(arg),
        "ends_with": lambda: value.endswith(arg),
        "greater_than": lambda: value > arg,
        "less_than": lambda: value < arg,
        "greater_than_or_equal_to": lambda: value >= arg,
        "less_than_or_equal_to": lambda: value <= arg,
        "before": lambda: value < arg,
        "after": lambda: value > arg,
        "on_or_before": lambda: value <= arg,
        "on_or_after": lambda: value >= arg,
    }
    return tests[op]()


def find_property(schema: Record, key: str) -> Record:
    for name, config in schema.items():
        if key in (name, config["id"]):
            return config
    raise invalid(f"Could not find property with name or id: {key}")


def matcher(schema: Record, spec: Any) -> Callable[[Record], bool]:
    """A Notion query filter (property, timestamp, and/or compounds) as a predicate on pages."""
    if not isinstance(spec, dict):
        raise invalid("body.filter should be an object.")
    for compound in ("and", "or"):
        if compound in spec:
            parts = [matcher(schema, s) for s in spec[compound]]
            combine = all if compound == "and" else any
            return lambda page: combine(p(page) for p in parts)
    if "timestamp" in spec:
        stamp = spec["timestamp"]
        if stamp not in ("created_time", "last_edited_time") or not isinstance(spec.get(stamp), dict):
            raise invalid(
                f"body.filter.timestamp should be `created_time` or `last_edited_time`, instead was `{stamp}`."
            )
        ((op, arg),) = spec[stamp].items()
        return lambda page: compare(page[stamp][:10] if len(str(arg)) == 10 else page[stamp], op, arg)
    if "property" not in spec:
        raise invalid("body.filter.property should be defined, instead was `undefined`.")
    config = find_property(schema, spec["property"])
    kind = config["type"]
    condition = spec.get(kind)
    if not isinstance(condition, dict) or len(condition) != 1:
        given = next((k for k in spec if k not in ("property", "type")), "undefined")
        raise invalid(f"body.filter.{kind} should be defined for a {kind} property, instead the filter used `{given}`.")
    ((op, arg),) = condition.items()
    if op not in FILTER_OPS.get(kind, set()):
        raise invalid(f"body.filter.{kind}.{op} is not a valid filter condition for a {kind} property.")
    name = config["name"]
    return lambda page: compare(property_value(page["properties"][name]), op, arg)


def sort_value(name: str) -> Callable[[Record], Any]:
    return lambda page: property_value(page["properties"][name])


def sorter(schema: Record, sorts: Any) -> Callable[[list[Record]], list[Record]]:
    if not isinstance(sorts, list):
        raise invalid("body.sorts should be an array.")
    keys: list[tuple[Callable[[Record], Any], bool]] = []
    for spec in sorts:
        descending = spec.get("direction") == "descending"
        if spec.get("direction") not in ("ascending", "descending"):
            raise invalid("body.sorts[0].direction should be `ascending` or `descending`.")
        if "timestamp" in spec:
            keys.append((operator.itemgetter(spec["timestamp"]), descending))
        else:
            keys.append((sort_value(find_property(schema, spec.get("property", ""))["name"]), descending))

    def apply(pages: list[Record]) -> list[Record]:
        for key, descending in reversed(keys):  # stable sorts, least significant first; empty values last
            present = [p for p in pages if key(p) not in (None, "", [])]
            absent = [p for p in pages if key(p) in (None, "", [])]
            pages = (
                sorted(
                    present,
                    key=lambda p: json.dumps(key(p)) if isinstance(key(p), list) else key(p),
                    reverse=descending,
                )
                + absent
            )
        return pages

    return apply


def page_size(raw: Any, where: str) -> int:
    if raw is None:
        return MAX_PAGE_SIZE
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise invalid(f"{where}.page_size should be a number, instead was `{raw!r}`.") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid(f"{where}.page_size should be ≤ `{MAX_PAGE_SIZE}` and ≥ `1`, instead was `{size}`.")
    return size


def listing(items: list[Record], kind: str, start_cursor: Any, size: int) -> JSONResponse:
    start = 0
    if start_cursor:
        ids = [i["id"] for i in items]
        if start_cursor not in ids:
            raise invalid(f"start_cursor provided is invalid: {start_cursor}")
        start = ids.index(start_cursor)
    chunk = items[start : start + size]
    more = start + size < len(items)
    return JSONResponse(
        {
            "object": "list",
            "results": chunk,
            "next_cursor": items[start + size]["id"] if more else None,
            "has_more": more,
            "type": kind,
            kind: {},
        }
    )


def served(record: Record) -> Record:
    """A record as Notion serves it: a page's list properties cut at 25 items (a relation's with `has_more`)."""
    if record["object"] != "page":
        return record
    properties = {}
    for name, value in record["properties"].items():
        kind = value["type"]
        if kind in PAGINATED and len(value[kind]) > PROPERTY_ITEM_CAP:
            value = {
                **value,
                kind: value[kind][:PROPERTY_ITEM_CAP],
                **({"has_more": True} if kind == "relation" else {}),
            }
        properties[name] = value
    return {**record, "properties": properties}


def property_items(request: Request, page: Record, property_id: str) -> Response:
    """Retrieve a page property item: one `property_item`, or a paginated list of them for list types."""
    value = next((v for v in page["properties"].values() if v["id"] == property_id), None)
    if value is None:
        raise NotionError(404, "object_not_found", f"Could not find property with ID: {property_id}.")
    kind = value["type"]
    if kind not in PAGINATED:
        return JSONResponse({"object": "property_item", "id": property_id, "type": kind, kind: value[kind]})
    params = request.query_params
    size = page_size(params.get("page_size"), "query")
    cursor = params.get("start_cursor")
    if cursor is not None and not (cursor.isdigit() and 0 < int(cursor) < len(value[kind])):
        raise invalid(f"start_cursor provided is invalid: {cursor}")
    start = int(cursor or 0)
    more = start + size < len(value[kind])
    following = str(start + size) if more else None
    next_url = str(request.url.include_query_params(start_cursor=following)) if following else None
    return JSONResponse(
        {
            "object": "list",
            "results": [
                {"object": "property_item", "id": property_id, "type": kind, kind: item}
                for item in value[kind][start : start + size]
            ],
            "next_cursor": following,
            "has_more": more,
            "type": "property_item",
            "property_item": {"type": kind, kind: {}, "next_url": next_url, "id": property_id},
        }
    )


def normalise_id(raw: str, what: str) -> str:
    hexa = raw.replace("-", "").lower()
    if len(hexa) != 32 or any(c not in "0123456789abcdef" for c in hexa):
        raise invalid(f'path failed validation: path.{what}_id should be a valid uuid, instead was `"{raw}"`.')
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def build(state: SandboxState) -> Starlette:
    data = dataset()
    pages: dict[str, Record] = data["pages"]
    sources: dict[str, Record] = data["sources"]
    blocks: dict[str, Record] = data["blocks"]
    users: list[Record] = data["users"]

    def endpoint(handler: Callable[[Request, Any], Response]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            if request.headers.get("authorization", "") != f"Bearer {TOKEN}":
                return error(401, "unauthorized", "API token is invalid.")
            version = request.headers.get("notion-version")
            if version is None:
                return error(
                    400,
                    "missing_version",
                    "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
                )
            if version != VERSION:
                return error(
                    400,
                    "validation_error",
                    f"Notion-Version header failed validation: this API serves `{VERSION}`, instead was `{version}`.",
                )
            body: Any = None
            if request.method == "POST":
                raw = await request.body()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return error(400, "invalid_json", "Error parsing JSON body.")
                if not isinstance(body, dict):
                    return error(400, "validation_error", "body failed validation: body should be an object.")
            try:
                return handler(request, body)
            except NotionError as exc:
                return error(exc.status, exc.code, exc.message)

        return run

    def found(table: dict[str, Record], raw: str, what: str, label: str) -> Record:
        key = normalise_id(raw, what)
        if key not in table:
            raise NotionError(
                404,
                "object_not_found",
                f"Could not find {label} with ID: {key}. Make sure the relevant "
                "pages and databases are shared with your integration.",
            )
        return table[key]

    def allowed_keys(body: Record, keys: set[str]) -> None:
        for key in body:
            if key not in keys:
                raise invalid(f"body failed validation: body.{key} should be not present, instead was `{body[key]!r}`.")

    def search(request: Request, body: Record) -> Response:
        allowed_keys(body, {"query", "sort", "filter", "start_cursor", "page_size"})
        items: list[Record] = [*pages.values(), *sources.values()]
        wanted = body.get("filter") or {}
        if wanted:
            if wanted.get("property") != "object" or wanted.get("value") not in ("page", "data_source"):
                raise invalid(
                    'body.filter.value should be `"page"` or `"data_source"`, and body.filter.property `"object"`.'
                )
            items = [i for i in items if i["object"] == wanted["value"]]
        query = (body.get("query") or "").lower().strip()
        if query:
            items = [i for i in items if query in title_of(i).lower()]
        sort = body.get("sort") or {}
        items.sort(key=lambda i: (i["last_edited_time"], i["id"]), reverse=sort.get("direction") != "ascending")
        items = [served(i) for i in items]
        return listing(items, "page_or_data_source", body.get("start_cursor"), page_size(body.get("page_size"), "body"))

    def query_source(request: Request, body: Record) -> Response:
        source = found(sources, request.path_params["data_source_id"], "data_source", "data source")
        allowed_keys(body, {"filter", "sorts", "start_cursor", "page_size", "archived", "in_trash", "result_type"})
        items = list(data["rows"][source["id"]])
        if body.get("filter") is not None:
            keep = matcher(source["properties"], body["filter"])
            items = [p for p in items if keep(p)]
        if body.get("sorts"):
            items = sorter(source["properties"], body["sorts"])(items)
        items = [served(i) for i in items]
        return listing(items, "page_or_data_source", body.get("start_cursor"), page_size(body.get("page_size"), "body"))

    def get_source(request: Request, body: Any) -> Response:
        return JSONResponse(found(sources, request.path_params["data_source_id"], "data_source", "data source"))

    def get_database(request: Request, body: Any) -> Response:
        return JSONResponse(found(data["databases"], request.path_params["database_id"], "database", "database"))

    def get_page(request: Request, body: Any) -> Response:
        return JSONResponse(served(found(pages, request.path_params["page_id"], "page", "page")))

    def get_page_property(request: Request, body: Any) -> Response:
        page = found(pages, request.path_params["page_id"], "page", "page")
        return property_items(request, page, request.path_params["property_id"])

    def as_block(block_id: str) -> Record:
        if block_id in blocks:
            return blocks[block_id]
        if block_id in pages:  # a page is a block too: the child_page block its parent holds
            page = pages[block_id]
            return {
                "object": "block",
                "id": block_id,
                "parent": page["parent"],
                "created_time": page["created_time"],
                "last_edited_time": page["last_edited_time"],
                "created_by": page["created_by"],
                "last_edited_by": page["last_edited_by"],
                "has_children": bool(data["children"].get(block_id)),
                "archived": False,
                "in_trash": False,
                "type": "child_page",
                "child_page": {"title": title_of(page)},
            }
        raise NotionError(
            404,
            "object_not_found",
            f"Could not find block with ID: {block_id}. Make sure the relevant "
            "pages and databases are shared with your integration.",
        )

    def get_block(request: Request, body: Any) -> Response:
        return JSONResponse(as_block(normalise_id(request.path_params["block_id"], "block")))

    def block_children(request: Request, body: Any) -> Response:
        block_id = normalise_id(request.path_params["block_id"], "block")
        as_block(block_id)
        params = request.query_params
        return listing(
            data["children"].get(block_id, []),
            "block",
            params.get("start_cursor"),
            page_size(params.get("page_size"), "query"),
        )

    def list_users(request: Request, body: Any) -> Response:
        params = request.query_params
        return listing(users, "user", params.get("start_cursor"), page_size(params.get("page_size"), "query"))

    def get_self(request: Request, body: Any) -> Response:
        return JSONResponse(BOT)

    def get_user(request: Request, body: Any) -> Response:
        return JSONResponse(found({u["id"]: u for u in users}, request.path_params["user_id"], "user", "user"))

    routes = [
        Route("/v1/search", endpoint(search), methods=["POST"]),
        Route("/v1/data_sources/{data_source_id}/query", endpoint(query_source), methods=["POST"]),
        Route("/v1/data_sources/{data_source_id}", endpoint(get_source)),
        Route("/v1/databases/{database_id}", endpoint(get_database)),
        Route("/v1/pages/{page_id}", endpoint(get_page)),
        Route("/v1/pages/{page_id}/properties/{property_id}", endpoint(get_page_property)),
        Route("/v1/blocks/{block_id}", endpoint(get_block)),
        Route("/v1/blocks/{block_id}/children", endpoint(block_children)),
        Route("/v1/users", endpoint(list_users)),
        Route("/v1/users/me", endpoint(get_self)),
        Route("/v1/users/{user_id}", endpoint(get_user)),
    ]

    async def invalid_url(request: Request, exc: Exception) -> Response:
        return error(400, "invalid_request_url", "Invalid request URL.")

    return Starlette(routes=routes, exception_handlers={404: invalid_url, 405: invalid_url})
