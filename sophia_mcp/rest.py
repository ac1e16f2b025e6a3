"""The REST shim for dashboards: the same service functions as the MCP tools, as JSON over HTTP.

Errors are RFC 9457 problem+json documents with a stable `type`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sophia_mcp.errors import BadInput, SophiaError
from sophia_mcp.memo import IdentityMemo
from sophia_mcp.models import ProjectStatus
from sophia_mcp.registry import ToolSpec
from sophia_mcp.service import PlatformProjects, PlatformStatusInput, Service, StatusOutput

PRINCIPAL_SCOPE_KEY = "sophia.principal"


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


def parse_query(model: type[BaseModel], request: Request) -> Any:
    if model is ProjectsQuery and not request.scope.get("query_string"):
        return DEFAULT_PROJECTS_QUERY
    params = dict(request.query_params)
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in exc.errors())
        allowed = ", ".join(model.model_fields)
        raise BadInput(f"bad query parameters ({problems}). Allowed parameters: {allowed}.") from None


def routes(service: Service, specs: list[ToolSpec]) -> list[Route]:
    # a warm read returns the same envelope object for a second at a time (`sophia_mcp.memo`): its
    # JSON is made once, so a dashboard polling a cached page costs no serialisation
    bodies: IdentityMemo[bytes] = IdentityMemo(max_keys=256)

    async def projects(request: Request) -> Response:
        platform = request.path_params["platform"]
        # audited as sent, or as parsed once valid
        arguments: dict[str, Any] = dict(request.query_params) if request.scope["query_string"] else {}
        query = DEFAULT_PROJECTS_QUERY

        async def call() -> PlatformProjects:
            nonlocal query
            service.connector(platform)  # unknown platform: 404 before anything else
            query = parse_query(ProjectsQuery, request)
            if query is not DEFAULT_PROJECTS_QUERY:
                arguments.clear()
                arguments.update(query.model_dump(exclude_defaults=True))
            fresh = query.fresh or b"no-cache" in next(
                (value for name, value in request.scope["headers"] if name == b"cache-control"), b""
            )
            return await service.platform_projects(
                platform, status=query.status, limit=query.limit, cursor=query.cursor, fresh=fresh
            )

        # refused requests are audited too; an unknown platform gets one name, so metric labels stay bounded
        name = f"rest:{platform}.projects" if platform in service.connectors else "rest:unknown.projects"
        try:
            result = await service.observe(
                name, arguments, call, transport="rest", principal=request.scope.get(PRINCIPAL_SCOPE_KEY)
            )
        except SophiaError as exc:
            return problem_response(exc, request.url.path)
        assert isinstance(result, PlatformProjects)
        key = (platform, query.status, query.limit, query.cursor)
        body = bodies.get(key, (result,))
        if body is None:
            body = bodies.put(key, (result,), result.model_dump_json().encode())
        return JSONBytes(body)

    async def platforms(request: Request) -> Response:
        async def call() -> StatusOutput:
            return await service.platform_status(PlatformStatusInput())

        result = await service.observe(
            "rest:platforms", {}, call, transport="rest", principal=request.scope.get(PRINCIPAL_SCOPE_KEY)
        )
        assert isinstance(result, StatusOutput)
        return JSONBytes(result.model_dump_json())

    async def tools(request: Request) -> Response:
        return JSONBytes(json.dumps({"tools": [tool_summary(s) for s in specs]}))

    return [
        Route("/api/v4/mcp/platforms", platforms, methods=["GET"]),
        Route("/api/v4/mcp/tools", tools, methods=["GET"]),
        Route("/api/v4/mcp/{platform}/projects", projects, methods=["GET"]),
    ]


def tool_summary(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "toolset": spec.toolset,
        "title": spec.title,
        "read_only": spec.read_only,
        "description": spec.description,
    }
