"""The REST shim for dashboards: the same service functions as the MCP tools, as JSON over HTTP.

Errors are RFC 9457 problem+json documents with a stable `type`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sophia_mcp.errors import BadInput, SophiaError
from sophia_mcp.memo import IdentityMemo
from sophia_mcp.models import ProjectStatus
from sophia_mcp.registry import ToolSpec
from sophia_mcp.service import PlatformProjects, PlatformStatusInput, Service, StatusOutput


class JSONBytes(Response):
    media_type = "application/json"


def problem_response(error: SophiaError, instance: str) -> Response:
    headers = {}
    retry_after = error.extra.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(float(retry_after))))
    return Response(
        json.dumps(error.problem(instance)),
        status_code=error.status,
        media_type="application/problem+json",
        headers=headers,
    )


class ProjectsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: str | None = None
    status: ProjectStatus | None = None
    fresh: bool = False


DEFAULT_PROJECTS_QUERY = ProjectsQuery()


def parse_query(model: type[BaseModel], query_string: bytes) -> Any:
    if model is ProjectsQuery and not query_string:
        return DEFAULT_PROJECTS_QUERY
    params = dict(QueryParams(query_string))
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in exc.errors())
        allowed = ", ".join(model.model_fields)
        raise BadInput(f"bad query parameters ({problems}). Allowed parameters: {allowed}.") from None


PROJECTS_PATH = "/api/v4/mcp/{platform}/projects"
_PROJECTS_PREFIX, _PROJECTS_SUFFIX = PROJECTS_PATH.split("{platform}")


def projects_platform(path: str) -> str | None:
    """The platform in a path that `PROJECTS_PATH` matches, else None (the `Gate` matches it this way,
    without Starlette's router)."""
    if path.startswith(_PROJECTS_PREFIX) and path.endswith(_PROJECTS_SUFFIX):
        platform = path[len(_PROJECTS_PREFIX) : -len(_PROJECTS_SUFFIX)]
        if platform and "/" not in platform:
            return platform
    return None


class ProjectsEndpoint:
    """`GET /api/v4/mcp/{platform}/projects`, what dashboards poll: a plain ASGI app, so a cached
    page costs no Request or Response objects, only the bytes (built once per envelope object: a
    warm read returns the same envelope for a second at a time, see `sophia_mcp.memo`)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.bodies: IdentityMemo[bytes] = IdentityMemo(max_keys=256)
        # audit and metric names; an unknown platform gets one name, so metric labels stay bounded
        self.names = {platform: f"rest:{platform}.projects" for platform in service.connectors}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service
        platform = scope["path_params"]["platform"]
        query_string = scope["query_string"]
        # audited as sent, or as parsed once valid
        arguments: dict[str, Any] = dict(QueryParams(query_string)) if query_string else {}
        query = DEFAULT_PROJECTS_QUERY

        async def call() -> PlatformProjects:
            nonlocal query
            service.connector(platform)  # unknown platform: 404 before anything else
            query = parse_query(ProjectsQuery, query_string)
            if query is not DEFAULT_PROJECTS_QUERY:
                arguments.clear()
                arguments.update(query.model_dump(exclude_defaults=True))
            fresh = query.fresh or b"no-cache" in next(  # directives are case-insensitive (RFC 9111)
                (value.lower() for name, value in scope["headers"] if name == b"cache-control"), b""
            )
            if not fresh:  # a warm page needs no awaiting
                warm = service.warm_platform_projects(platform, query.status, query.limit, query.cursor)
                if warm is not None:
                    return warm
            return await service.platform_projects(
                platform, status=query.status, limit=query.limit, cursor=query.cursor, fresh=fresh
            )

        name = self.names.get(platform, "rest:unknown.projects")  # refused requests are audited too
        try:
            result = await service.observe(name, arguments, call, transport="rest")
        except SophiaError as exc:
            await problem_response(exc, scope["path"])(scope, receive, send)
            return
        assert isinstance(result, PlatformProjects)
        key = (platform, query.status, query.limit, query.cursor)
        body = self.bodies.get(key, (result,))
        if body is None:
            body = self.bodies.put(key, (result,), result.model_dump_json().encode())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


def routes(service: Service, specs: list[ToolSpec], projects: ProjectsEndpoint) -> list[Route]:
    async def platforms(request: Request) -> Response:
        async def call() -> StatusOutput:
            return await service.platform_status(PlatformStatusInput())

        result = await service.observe("rest:platforms", {}, call, transport="rest")
        assert isinstance(result, StatusOutput)
        return JSONBytes(result.model_dump_json())

    async def tools(request: Request) -> Response:
        return JSONBytes(json.dumps({"tools": [tool_summary(s) for s in specs]}))

    return [
        Route(PROJECTS_PATH, projects, methods=["GET"]),  # HEAD; GET goes to it straight from the Gate
        Route("/api/v4/mcp/platforms", platforms, methods=["GET"]),
        Route("/api/v4/mcp/tools", tools, methods=["GET"]),
    ]


def tool_summary(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "toolset": spec.toolset,
        "title": spec.title,
        "read_only": spec.read_only,
        "description": spec.description,
    }
