"""Asana's REST API (`/api/1.0`), as Asana documents it.

- Auth: `Authorization: Bearer <personal access token>`; anything else gets Asana's 401 body
  `{"errors": [{"message": "Not Authorized", "help": ...}]}`.
- Envelopes: `{"data": ...}`; collections paginate with `limit` (1-100) and `offset`, answering
  `next_page: {offset, path, uri}` (null on the last page) only when `limit` was given. Offsets are
  opaque signed tokens bound to the collection they came from, like Asana's.
- `opt_fields` selects fields (dotted paths for nested objects, reaching any field of the nested
  object's full record, e.g. `current_status_update.status_type`); without it, collections return
  compact records and single objects their full record, with nested objects compact.
- Task search (`/workspaces/{gid}/tasks/search`) is premium-only, as upstream: the "Northwind
  Robotics" organization is on a paid plan and searchable; the token owner's free personal
  workspace ("My Workspace") answers 402 Payment Required with Asana's own message. Search is
  unpaginated and returns at most 100 tasks (page with `sort_by=created_at` and `created_at.before`).
- Errors: 400 for bad input, 404 `Unknown object`, 429 with `Retry-After` (seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sophia_mcp.sandbox import SandboxState
from sophia_mcp.sandbox.dataset import (
    COMPANY,
    DOMAIN,
    EPOCH,
    PEOPLE,
    Initiative,
    WorkItem,
    initiatives,
    iso_ms,
    person,
    stable_int,
)

TOKEN = "2/1200000000000001/1200000000000002:sandboxnorthwinddemo"
API = "/api/1.0"
HELP = "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors"
OFFSET_SECRET = b"northwind-asana-sandbox"
SEARCH_CAP = 100
TOKEN_OWNER = "dara.nguyen"

SECTIONS = {
    "backlog": "Backlog",
    "todo": "To do",
    "in_progress": "In progress",
    "in_review": "In review",
    "done": "Done",
    "canceled": "Done",
}
SUBTASK_NAMES = ("Draft the checklist", "Pair review", "Update the runbook")
#: dataset status -> (current_status color, title) as a project owner would post them
STATUS_COLORS = {"paused": ("blue", "On hold"), "completed": ("complete", "Complete")}
#: a status update's `status_type`, by the color the deprecated `current_status` shows for it
STATUS_TYPES = {"green": "on_track", "yellow": "at_risk", "red": "off_track", "blue": "on_hold", "complete": "complete"}
Record = dict[str, Any]


def gid(*parts: object) -> str:
    return str(stable_int("asana", *parts, digits=16))


def demo_settings(base_url: str) -> dict[str, Any]:
    return {"asana_token": TOKEN, "asana_base_url": f"{base_url}{API}"}


def errors(message: str, status: int, headers: dict[str, str] | None = None, **extra: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "help": HELP, **extra}]}, status_code=status, headers=headers)


def error_response(status: int, retry_after: float | None) -> Response:
    if status == 429:
        return errors(
            "You have made too many requests recently. Please, be chill.",
            429,
            headers={"Retry-After": str(math.ceil(retry_after or 1))},
        )
    if status >= 500:
        return JSONResponse(
            {"errors": [{"message": "Server Error", "phrase": "6 sad squid snuggle softly"}]}, status_code=status
        )
    return errors({401: "Not Authorized", 403: "Forbidden", 404: "Not Found"}.get(status, "Bad Request"), status)


# -- the seeded objects -------------------------------------------------------------------------


def user(key: str) -> Record:
    p = person(key)
    return {"gid": gid("user", key), "resource_type": "user", "name": p.name, "email": p.email}


def compact(record: Record) -> Record:
    return {k: record[k] for k in ("gid", "resource_type", "name", "resource_subtype") if k in record}


def _status(initiative: Initiative, owner: Record) -> Record | None:
    if initiative.status == "active":
        color, title = (
            ("green", "On track")
            if initiative.progress >= 0.5
            else (("yellow", "At risk") if initiative.progress >= 0.4 else ("red", "Off track"))
        )
    elif initiative.status in STATUS_COLORS:
        color, title = STATUS_COLORS[initiative.status]
    else:
        return None  # planned: nothing posted yet; canceled: archived without a final status
    posted = iso_ms(initiative.updated - timedelta(days=1))
    author = compact(owner)
    return {
        "gid": gid("status", initiative.key),
        "resource_type": "project_status",
        "title": f"{title}: {initiative.name}",
        "text": f"{initiative.summary} Progress {round(initiative.progress * 100)}%.",
        "color": color,
        "author": author,
        "created_by": author,
        "created_at": posted,
        "modified_at": posted,
    }


def _status_update(project: Record) -> Record | None:
    """The full status update behind a project's compact `current_status_update` (GET /status_updates/{gid})."""
    status, update = project["current_status"], project["current_status_update"]
    if update is None:
        return None
    return {
        **update,
        "text": status["text"],
        "html_text": f"<body>{status['text']}</body>",
        "status_type": STATUS_TYPES[status["color"]],
        "author": status["author"],
        "created_by": status["created_by"],
        "created_at": status["created_at"],
        "modified_at": status["modified_at"],
        "parent": compact(project),
    }


@cache
def dataset() -> dict[str, Any]:
    """Workspaces, projects, tasks and subtasks, keyed by gid, in Asana's field names."""
    org = {
        "gid": gid("workspace", "northwind"),
        "resource_type": "workspace",
        "name": COMPANY,
        "is_organization": True,
        "email_domains": [DOMAIN],
    }
    personal = {
        "gid": gid("workspace", "personal", TOKEN_OWNER),
        "resource_type": "workspace",
        "name": "My Workspace",
        "is_organization": False,
        "email_domains": [],
    }
    workspaces = [org, personal]
    premium = {org["gid"]}
    teams = {
        name: {"gid": gid("team", name), "resource_type": "team", "name": name}
        for name in sorted({p.team for p in PEOPLE})
    }
    projects: list[Record] = []
    tasks: list[Record] = []  # every task and subtask, in project order
    for initiative in initiatives():
        project = _project(initiative, org, teams)
        projects.append(project)
        for item in initiative.items:
            tasks.extend(_task_with_subtasks(item, initiative.key, project, org))
    follow_ups = _personal_project(personal)
    projects.append(follow_ups)
    owner_items = [
        (i, item)
        for i in initiatives()
        for item in i.items
        if item.assignee and item.assignee.key == TOKEN_OWNER and item.state not in ("done", "canceled")
    ]
    for initiative, item in owner_items:
        task = _task(item, f"follow-up/{initiative.key}", follow_ups, personal)
        task["name"] = f"Follow up: {item.title} ({initiative.code})"
        tasks.append(task)
    updates = [u for u in map(_status_update, projects) if u]
    return {
        "workspaces": workspaces,
        "premium": premium,
        "projects": {p["gid"]: p for p in projects},
        "tasks": {t["gid"]: t for t in tasks},
        "status_updates": {u["gid"]: u for u in updates},
    }


def _project(initiative: Initiative, workspace: Record, teams: dict[str, Record]) -> Record:
    project_gid = gid("project", initiative.key)
    owner = user(initiative.lead.key)
    status = _status(initiative, owner)
    completed = initiative.status == "completed"
    members = [compact(user(initiative.lead.key))] + [
        compact(user(p.key)) for p in PEOPLE if p.team == initiative.team and p.key != initiative.lead.key
    ]
    return {
        "gid": project_gid,
        "resource_type": "project",
        "name": initiative.name,
        "archived": initiative.status == "canceled",
        "color": "light-green" if initiative.status == "active" else "light-warm-gray",
        "icon": "rocket",
        "created_at": iso_ms(initiative.created),
        "modified_at": iso_ms(initiative.updated),
        "current_status": status,
        "current_status_update": None
        if status is None
        else {
            "gid": gid("status-update", initiative.key),
            "resource_type": "status_update",
            "resource_subtype": "project_status_update",
            "title": status["title"],
        },
        "default_view": "list",
        "due_on": initiative.target.isoformat(),
        "due_date": initiative.target.isoformat(),
        "start_on": initiative.start.isoformat(),
        "notes": initiative.summary,
        "html_notes": f"<body>{initiative.summary}</body>",
        "public": True,
        "privacy_setting": "public_to_workspace",
        "completed": completed,
        "completed_at": iso_ms(initiative.updated) if completed else None,
        "completed_by": compact(owner) if completed else None,
        "owner": compact(owner),
        "team": teams[initiative.team],
        "members": members,
        "followers": members[:2],
        "custom_fields": [],
        "custom_field_settings": [],
        "workspace": compact(workspace),
        "permalink_url": f"https://app.asana.com/1/{workspace['gid']}/project/{project_gid}",
    }


def _personal_project(workspace: Record) -> Record:
    owner = compact(user(TOKEN_OWNER))
    project_gid = gid("project", "personal-follow-ups")
    return {
        "gid": project_gid,
        "resource_type": "project",
        "name": "Personal follow-ups",
        "archived": False,
        "color": "none",
        "icon": "check",
        "created_at": iso_ms(EPOCH - timedelta(days=60)),
        "modified_at": iso_ms(EPOCH - timedelta(days=1)),
        "current_status": None,
        "current_status_update": None,
        "default_view": "list",
        "due_on": None,
        "due_date": None,
        "start_on": None,
        "notes": "Things I promised people, across every initiative.",
        "html_notes": "<body>Things I promised people, across every initiative.</body>",
        "public": False,
        "privacy_setting": "private",
        "completed": False,
        "completed_at": None,
        "completed_by": None,
        "owner": owner,
        "team": None,
        "members": [owner],
        "followers": [owner],
        "custom_fields": [],
        "custom_field_settings": [],
        "workspace": compact(workspace),
        "permalink_url": f"https://app.asana.com/1/{workspace['gid']}/project/{project_gid}",
    }


def _task(item: WorkItem, scope: str, project: Record, workspace: Record, parent: Record | None = None) -> Record:
    task_gid = gid("task", scope, item.key)
    done = item.state in ("done", "canceled")
    assignee = compact(user(item.assignee.key)) if item.assignee else None
    section = {
        "gid": gid("section", project["gid"], SECTIONS[item.state]),
        "resource_type": "section",
        "name": SECTIONS[item.state],
    }
    in_project = parent is None
    return {
        "gid": task_gid,
        "resource_type": "task",
        "resource_subtype": "default_task",
        "name": item.title,
        "notes": item.description,
        "html_notes": f"<body>{item.description}</body>",
        "completed": done,
        "completed_at": iso_ms(item.updated) if done else None,
        "completed_by": assignee if done else None,
        "created_at": iso_ms(item.created),
        "modified_at": iso_ms(item.updated),
        "created_by": {"gid": gid("user", TOKEN_OWNER), "resource_type": "user"},
        "due_on": item.due.isoformat() if item.due else None,
        "due_at": None,
        "start_on": None,
        "start_at": None,
        "assignee": assignee,
        "assignee_status": "upcoming",
        "followers": [assignee] if assignee else [],
        "memberships": [{"project": compact(project), "section": section}] if in_project else [],
        "projects": [compact(project)] if in_project else [],
        "parent": compact(parent) if parent else None,
        "num_subtasks": 0,
        "num_likes": 0,
        "liked": False,
        "likes": [],
        "tags": [],
        "custom_fields": [],
        "dependencies": [],
        "dependents": [],
        "workspace": compact(workspace),
        "permalink_url": f"https://app.asana.com/1/{workspace['gid']}/project/{project['gid']}/task/{task_gid}",
    }


def _task_with_subtasks(item: WorkItem, scope: str, project: Record, workspace: Record) -> list[Record]:
    task = _task(item, scope, project, workspace)
    subtasks = []
    for n, name in enumerate(SUBTASK_NAMES[: item.number % 3], start=1):
        child = WorkItem(
            key=f"{item.key}.{n}",
            number=n,
            title=f"{name}: {item.title}",
            state="done" if item.state == "done" or n == 1 and item.state == "in_review" else "todo",
            assignee=item.assignee,
            priority=item.priority,
            due=item.due,
            created=item.created + timedelta(hours=n),
            updated=item.updated,
            description=f"{name} for {item.key}.",
        )
        subtasks.append(_task(child, scope, project, workspace, parent=task))
    task["num_subtasks"] = len(subtasks)
    return [task, *subtasks]


# -- request handling ----------------------------------------------------------------------------


class AsanaError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def opt_fields(request: Request) -> list[str] | None:
    raw = request.query_params.get("opt_fields")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw else None


def select(record: Record, fields: Iterable[str]) -> Record:
    """Asana's `opt_fields`: gid, plus each (dotted) field asked for."""
    tree: dict[str, Any] = {}
    for path in fields:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return _select(record, tree)


def _select(record: Record, tree: dict[str, Any]) -> Record:
    out = {"gid": record["gid"]} if "gid" in record else {}
    for key, sub in tree.items():
        if key in record:
            out[key] = _select_value(record[key], sub)
    return out


def _select_value(value: Any, sub: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_select_value(v, sub) for v in value]
    if isinstance(value, dict):
        return _select(full_record(value), sub) if sub else compact(value) or value
    return value


def full_record(nested: Record) -> Record:
    """A nested object as its own endpoint returns it, for dotted opt_fields (records hold it compact)."""
    return dataset()["status_updates"].get(nested.get("gid", ""), nested)


def shape(record: Record, fields: list[str] | None, full: bool) -> Record:
    if fields is not None:
        return select(record, fields)
    return dict(record) if full else compact(record)


def encode_offset(collection: str, position: int) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    header = b64(b'{"typ":"JWT","alg":"HS256"}')
    digest = hashlib.sha256(collection.encode()).hexdigest()[:12]
    payload = b64(json.dumps({"pos": position, "c": digest}, separators=(",", ":")).encode())
    signature = b64(hmac.new(OFFSET_SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def decode_offset(collection: str, token: str) -> int:
    try:
        header, payload, signature = token.split(".")
        expected = (
            base64.urlsafe_b64encode(hmac.new(OFFSET_SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest())
            .decode()
            .rstrip("=")
        )
        state = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if (
            not hmac.compare_digest(signature, expected)
            or state["c"] != hashlib.sha256(collection.encode()).hexdigest()[:12]
        ):
            raise ValueError
        return int(state["pos"])
    except (ValueError, KeyError, TypeError):
        raise AsanaError(
            400,
            "offset: Your pagination token is invalid. Use only an offset returned by a previous page of this same request.",
        ) from None


def paginate(request: Request, items: list[Record], fields: list[str] | None, full: bool = False) -> JSONResponse:
    params = request.query_params
    collection = request.url.path.split(API, 1)[-1]
    if "limit" not in params:
        if "offset" in params:
            raise AsanaError(400, "offset: An offset can only be used together with a limit.")
        if len(items) > 100:
            raise AsanaError(
                400, "The result is too large. You should use pagination (may require specifying a workspace)!"
            )
        return JSONResponse({"data": [shape(i, fields, full) for i in items]})
    try:
        limit = int(params["limit"])
    except ValueError:
        raise AsanaError(400, f"limit: Not a valid integer: {params['limit']}") from None
    if not 1 <= limit <= 100:
        raise AsanaError(400, "limit: Must be between 1 and 100")
    start = decode_offset(collection, params["offset"]) if params.get("offset") else 0
    page = items[start : start + limit]
    next_page = None
    if start + limit < len(items):
        offset = encode_offset(collection, start + limit)
        query = urlencode([*((k, v) for k, v in params.multi_items() if k != "offset"), ("offset", offset)])
        next_page = {"offset": offset, "path": f"{collection}?{query}", "uri": str(request.url.replace(query=query))}
    return JSONResponse({"data": [shape(i, fields, full) for i in page], "next_page": next_page})


def lookup(kind: str, table: dict[str, Record], key: str) -> Record:
    if not key.isdigit():
        raise AsanaError(400, f"{kind}: Not a recognized ID: {key}")
    if key not in table:
        raise AsanaError(404, f"{kind}: Unknown object: {key}")
    return table[key]


def boolean(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise AsanaError(400, f"{name}: Not a boolean: {value}")
    return value.lower() == "true"


def build(state: SandboxState) -> Starlette:
    data = dataset()
    workspaces: list[Record] = data["workspaces"]
    by_workspace = {w["gid"]: w for w in workspaces}
    projects: dict[str, Record] = data["projects"]
    tasks: dict[str, Record] = data["tasks"]

    def endpoint(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            if request.headers.get("authorization", "") != f"Bearer {TOKEN}":
                return errors("Not Authorized", 401)
            try:
                return handler(request)
            except AsanaError as exc:
                return errors(exc.message, exc.status)

        return run

    def list_workspaces(request: Request) -> Response:
        return paginate(request, workspaces, opt_fields(request))

    def get_workspace(request: Request) -> Response:
        workspace = lookup("workspace", by_workspace, request.path_params["workspace_gid"])
        return JSONResponse({"data": shape(workspace, opt_fields(request), full=True)})

    def project_list(request: Request, workspace_gid: str | None, team_gid: str | None) -> Response:
        archived = boolean(request.query_params.get("archived"), "archived")
        chosen = [
            p
            for p in projects.values()
            if (workspace_gid is None or p["workspace"]["gid"] == workspace_gid)
            and (team_gid is None or (p["team"] or {}).get("gid") == team_gid)
            and (archived is None or p["archived"] == archived)
        ]
        return paginate(request, chosen, opt_fields(request))

    def list_projects(request: Request) -> Response:
        workspace_gid, team_gid = request.query_params.get("workspace"), request.query_params.get("team")
        if workspace_gid is not None:
            lookup("workspace", by_workspace, workspace_gid)
        return project_list(request, workspace_gid, team_gid)

    def list_workspace_projects(request: Request) -> Response:
        workspace = lookup("workspace", by_workspace, request.path_params["workspace_gid"])
        return project_list(request, workspace["gid"], None)

    def get_project(request: Request) -> Response:
        project = lookup("project", projects, request.path_params["project_gid"])
        return JSONResponse({"data": shape(project, opt_fields(request), full=True)})

    def project_tasks(request: Request, project_gid: str) -> Response:
        lookup("project", projects, project_gid)
        since = request.query_params.get("completed_since")
        chosen = [t for t in tasks.values() if any(p["gid"] == project_gid for p in t["projects"])]
        if since:
            if since == "now":
                chosen = [t for t in chosen if not t["completed"]]
            else:
                chosen = [t for t in chosen if not t["completed"] or t["completed_at"] >= since]
        return paginate(request, chosen, opt_fields(request))

    def list_tasks(request: Request) -> Response:
        project_gid = request.query_params.get("project")
        if project_gid is None:
            raise AsanaError(
                400, "Must specify exactly one of project, tag, section, user task list, or assignee + workspace"
            )
        return project_tasks(request, project_gid)

    def list_project_tasks(request: Request) -> Response:
        return project_tasks(request, request.path_params["project_gid"])

    def get_task(request: Request) -> Response:
        task = lookup("task", tasks, request.path_params["task_gid"])
        return JSONResponse({"data": shape(task, opt_fields(request), full=True)})

    def list_subtasks(request: Request) -> Response:
        parent = lookup("task", tasks, request.path_params["task_gid"])
        children = [t for t in tasks.values() if (t["parent"] or {}).get("gid") == parent["gid"]]
        return paginate(request, children, opt_fields(request))

    def search_tasks(request: Request) -> Response:
        workspace = lookup("workspace", by_workspace, request.path_params["workspace_gid"])
        if workspace["gid"] not in data["premium"]:
            raise AsanaError(402, "Search is only available to premium users.")
        params = request.query_params
        hits = [t for t in tasks.values() if t["workspace"]["gid"] == workspace["gid"]]
        if params.get("text"):
            words = params["text"].lower().split()
            hits = [t for t in hits if all(w in f"{t['name']} {t['notes']}".lower() for w in words)]
        completed = boolean(params.get("completed"), "completed")
        if completed is not None:
            hits = [t for t in hits if t["completed"] == completed]
        is_subtask = boolean(params.get("is_subtask"), "is_subtask")
        if is_subtask is not None:
            hits = [t for t in hits if (t["parent"] is not None) == is_subtask]
        if params.get("projects.any"):
            wanted = set(params["projects.any"].split(","))
            hits = [t for t in hits if wanted & {p["gid"] for p in t["projects"]}]
        if params.get("assignee.any"):
            wanted = {gid("user", TOKEN_OWNER) if a == "me" else a for a in params["assignee.any"].split(",")}
            hits = [t for t in hits if (t["assignee"] or {}).get("gid") in wanted]
        if params.get("created_at.before"):
            hits = [t for t in hits if t["created_at"] < params["created_at.before"]]
        if params.get("created_at.after"):
            hits = [t for t in hits if t["created_at"] > params["created_at.after"]]
        sort_by = params.get("sort_by", "modified_at")
        keys = {
            "modified_at": "modified_at",
            "created_at": "created_at",
            "due_date": "due_on",
            "completed_at": "completed_at",
            "likes": "num_likes",
        }
        if sort_by not in keys:
            raise AsanaError(400, f"sort_by: Not a valid sort: {sort_by}")
        ascending = boolean(params.get("sort_ascending"), "sort_ascending") or False
        hits.sort(key=lambda t: (t[keys[sort_by]] is not None, t[keys[sort_by]] or ""), reverse=not ascending)
        size = SEARCH_CAP  # Asana documents the `limit` page size (at most 100) but not its default
        if "limit" in params:
            try:
                size = int(params["limit"])
            except ValueError:
                raise AsanaError(400, f"limit: Not a valid integer: {params['limit']}") from None
            if not 1 <= size <= SEARCH_CAP:
                raise AsanaError(400, "limit: Must be between 1 and 100")
        return JSONResponse({"data": [shape(t, opt_fields(request), full=False) for t in hits[:size]]})

    routes = [
        Route(f"{API}/workspaces", endpoint(list_workspaces)),
        Route(f"{API}/workspaces/{{workspace_gid}}", endpoint(get_workspace)),
        Route(f"{API}/workspaces/{{workspace_gid}}/projects", endpoint(list_workspace_projects)),
        Route(f"{API}/workspaces/{{workspace_gid}}/tasks/search", endpoint(search_tasks)),
        Route(f"{API}/projects", endpoint(list_projects)),
        Route(f"{API}/projects/{{project_gid}}", endpoint(get_project)),
        Route(f"{API}/projects/{{project_gid}}/tasks", endpoint(list_project_tasks)),
        Route(f"{API}/tasks", endpoint(list_tasks)),
        Route(f"{API}/tasks/{{task_gid}}", endpoint(get_task)),
        Route(f"{API}/tasks/{{task_gid}}/subtasks", endpoint(list_subtasks)),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return errors(f"No matching route for request: {request.method} {request.url.path}", 404)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
