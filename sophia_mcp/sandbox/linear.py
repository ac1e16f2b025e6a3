"""Linear's GraphQL API (`POST /graphql`), executed against Linear's published schema.

Auth as Linear documents it: `Authorization: <personal API key>` or `Authorization: Bearer <OAuth
token>`; anything else gets Linear's AUTHENTICATION_ERROR body. Rate limiting answers with the
RATELIMITED error code and the `X-RateLimit-Requests-*` headers.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sophia_mcp.sandbox import SandboxState
from sophia_mcp.sandbox.dataset import EPOCH, PEOPLE, SLUG, Initiative, initiatives, iso_ms, stable_uuid
from sophia_mcp.sandbox.graphql import Node, connection_field, execute, load_schema, text_search

API_KEY = "lin_api_sandboxNorthwindDemoKey0000000000000"
TEAM_KEYS = {"Autonomy": "AUT", "Fleet": "FLT", "Platform": "PLT", "Experience": "EXP", "Sales": "SAL"}
PROJECT_STATUS = {  # dataset status -> Linear ProjectStatusType and default status name
    "planned": ("planned", "Planned"),
    "active": ("started", "In Progress"),
    "paused": ("paused", "Paused"),
    "completed": ("completed", "Completed"),
    "canceled": ("canceled", "Canceled"),
}
WORKFLOW = {  # dataset item state -> (Linear state name, WorkflowState.type)
    "backlog": ("Backlog", "backlog"),
    "todo": ("Todo", "unstarted"),
    "in_progress": ("In Progress", "started"),
    "in_review": ("In Review", "started"),
    "done": ("Done", "completed"),
    "canceled": ("Canceled", "canceled"),
}
PRIORITY_LABELS = ("No priority", "Urgent", "High", "Medium", "Low")


def demo_settings(base_url: str) -> dict[str, Any]:
    return {"linear_api_key": API_KEY, "linear_base_url": base_url}


def error_body(message: str, code: str, status: int) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": message,
                "extensions": {
                    "type": code.lower().replace("_", " "),
                    "code": code,
                    "statusCode": status,
                    "userPresentableMessage": message,
                },
            }
        ]
    }


def error_response(status: int, retry_after: float | None) -> Response:
    if status == 429:
        reset_ms = int((time.time() + (retry_after or 1)) * 1000)
        return JSONResponse(
            error_body("Rate limit exceeded", "RATELIMITED", 429),
            status_code=400,
            headers={
                "X-RateLimit-Requests-Limit": "5000",
                "X-RateLimit-Requests-Remaining": "0",
                "X-RateLimit-Requests-Reset": str(reset_ms),
            },
        )
    return JSONResponse(error_body("Internal server error", "INTERNAL_SERVER_ERROR", status), status_code=status)


@cache
def dataset() -> Node:
    """Linear's objects for the seeded company, keyed as the schema names them."""
    users = {
        p.key: {
            "id": stable_uuid("linear-user", p.key),
            "name": p.name,
            "displayName": p.key.split(".")[0],
            "email": p.email,
            "active": True,
            "title": p.title,
            "url": f"https://linear.app/{SLUG}/profiles/{p.key.split('.')[0]}",
            "createdAt": iso_ms(EPOCH.replace(year=2024)),
            "updatedAt": iso_ms(EPOCH),
        }
        for p in PEOPLE
    }
    teams = {
        name: {
            "id": stable_uuid("linear-team", key),
            "key": key,
            "name": name,
            "displayName": name,
            "description": f"The {name} team",
            "createdAt": iso_ms(EPOCH.replace(year=2024)),
            "updatedAt": iso_ms(EPOCH),
        }
        for name, key in TEAM_KEYS.items()
    }
    states = {
        (team, state): {
            "id": stable_uuid("linear-state", team, state),
            "name": name,
            "type": kind,
            "color": "#95a2b3",
            "createdAt": iso_ms(EPOCH.replace(year=2024)),
            "updatedAt": iso_ms(EPOCH),
        }
        for team in TEAM_KEYS
        for state, (name, kind) in WORKFLOW.items()
    }
    projects: list[Node] = []
    issues: list[Node] = []
    counters = dict.fromkeys(TEAM_KEYS, 0)
    for initiative in initiatives():
        project = _project(initiative, users, teams)
        projects.append(project)
        team = teams[initiative.team]
        project_issues = []
        for item in initiative.items:
            counters[initiative.team] += 1
            number = counters[initiative.team]
            identifier = f"{team['key']}-{number}"
            issue = {
                "id": stable_uuid("linear-issue", initiative.key, item.number),
                "identifier": identifier,
                "number": float(number),
                "title": item.title,
                "description": item.description,
                "url": f"https://linear.app/{SLUG}/issue/{identifier.lower()}",
                "priority": float(item.priority),
                "priorityLabel": PRIORITY_LABELS[item.priority],
                "dueDate": item.due.isoformat() if item.due else None,
                "estimate": None,
                "createdAt": iso_ms(item.created),
                "updatedAt": iso_ms(item.updated),
                "state": {**states[(initiative.team, item.state)], "team": team},
                "assignee": users[item.assignee.key] if item.assignee else None,
                "team": team,
                "project": project,
            }
            project_issues.append(issue)
        project["issues"] = connection_field(lambda items=project_issues: items)
        issues.extend(project_issues)
    for name, team in teams.items():
        team["issues"] = connection_field(lambda n=name: [i for i in issues if i["team"]["name"] == n])
    for user in users.values():
        user["teams"] = connection_field(lambda: list(teams.values()))
    issues.sort(key=lambda i: i["createdAt"], reverse=True)
    return {"users": users, "teams": teams, "projects": projects, "issues": issues}


def _project(initiative: Initiative, users: dict[str, Node], teams: dict[str, Node]) -> Node:
    status_type, status_name = PROJECT_STATUS[initiative.status]
    project_id = stable_uuid("linear-project", initiative.key)
    return {
        "id": project_id,
        "name": initiative.name,
        "description": initiative.summary,
        "content": f"# {initiative.name}\n\n{initiative.summary}",
        "url": f"https://linear.app/{SLUG}/project/{initiative.key}-{project_id[-12:]}",
        "color": "#5e6ad2",
        "priority": 2,
        "priorityLabel": "High",
        "progress": initiative.progress,
        "startDate": initiative.start.isoformat(),
        "targetDate": initiative.target.isoformat(),
        "state": status_type,
        "createdAt": iso_ms(initiative.created),
        "updatedAt": iso_ms(initiative.updated),
        "status": {
            "id": stable_uuid("linear-project-status", status_type),
            "name": status_name,
            "type": status_type,
            "color": "#5e6ad2",
            "createdAt": iso_ms(EPOCH.replace(year=2024)),
            "updatedAt": iso_ms(EPOCH),
        },
        "lead": users[initiative.lead.key],
        "teams": connection_field(lambda: [teams[initiative.team]]),
    }


def _by_id(items: list[Node], kind: str, ident: str, *keys: str) -> Node:
    for item in items:
        if any(item.get(k) == ident for k in ("id", *keys)):
            return item
    raise LookupError(f"Entity not found: {kind}")


def root(viewer: Node) -> Node:
    data = dataset()
    users, teams, projects, issues = data["users"], data["teams"], data["projects"], data["issues"]

    def search(nodes: list[Node], fields: tuple[str, ...]):  # type: ignore[no-untyped-def]
        def resolve(info: Any = None, *, term: str, **args: Any) -> Node:
            hits = text_search(nodes, term, fields)
            return connection_field(lambda: hits)(info, **args)

        return resolve

    return {
        "viewer": viewer,
        "users": connection_field(lambda: list(users.values())),
        "teams": connection_field(lambda: list(teams.values())),
        "team": lambda info, id: _by_id(list(teams.values()), "Team", id, "key"),
        "projects": connection_field(lambda: projects),
        "project": lambda info, id: _by_id(projects, "Project", id),
        "issues": connection_field(lambda: issues),
        "issue": lambda info, id: _by_id(issues, "Issue", id, "identifier"),
        "searchIssues": search(issues, ("title", "description", "identifier")),
        "searchProjects": search(projects, ("name", "description")),
    }


def build(state: SandboxState) -> Starlette:
    async def graphql_endpoint(request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ").strip()
        if token != API_KEY:
            return JSONResponse(
                error_body("Authentication required, not authenticated", "AUTHENTICATION_ERROR", 401),
                status_code=400,
            )
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"errors": [{"message": "POST body sent invalid JSON."}]}, status_code=400)
        schema = await anyio.to_thread.run_sync(load_schema, "linear")
        viewer = dataset()["users"]["dara.nguyen"]
        result = await execute(schema, body, root(viewer))
        for error in result.get("errors", []):
            if "not found" in error.get("message", "") and "extensions" not in error:
                error["extensions"] = {"code": "INPUT_ERROR", "type": "invalid input"}
        status = 200 if "data" in result else 400  # parse and validation errors are 400s, as Linear's
        return JSONResponse(result, status_code=status, headers={"X-RateLimit-Requests-Limit": "5000"})

    return Starlette(routes=[Route("/graphql", graphql_endpoint, methods=["POST"])])
