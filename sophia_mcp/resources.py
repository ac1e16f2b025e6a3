"""MCP resources: each configured platform's projects as JSON, at `sophia://{platform}/projects` and
`sophia://{platform}/projects/{id}`, read through the same service functions and cache as the tools;
and subscriptions to them, notified when the cache sees a platform's projects change.

2026-07-28 clients subscribe with `subscriptions/listen` (the SDK serves it from `ResourceSubscriptions.bus`,
on any transport). 2025 clients use `resources/subscribe`: their subscriptions live on their connection and
are notified where that connection has a stream back to the client (stdio). A stateless HTTP request has
none, so over HTTP a 2025 subscription is acknowledged but cannot be delivered: use a 2026-07-28 client.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import FunctionResource
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated
from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from sophia_mcp.cache import CacheKey
from sophia_mcp.errors import NotFound, SophiaError, UnknownPlatform
from sophia_mcp.models import ProjectPage, ToolOutput
from sophia_mcp.service import Service

log = logging.getLogger("sophia_mcp.resources")

PROJECTS_TEMPLATE = "sophia://{platform}/projects"
PROJECT_TEMPLATE = "sophia://{platform}/projects/{id}"
JSON = "application/json"
SUBSCRIBED = "sophia.subscribed_uris"  # key in a connection's state: the URIs it subscribed to


def projects_uri(platform: str) -> str:
    return f"sophia://{platform}/projects"


def project_uri(platform: str, project_id: str) -> str:
    return f"sophia://{platform}/projects/{project_id}"


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The client connection a request came on (its `state` outlives the request on stdio)."""
    return ctx.session._connection  # the SDK exposes no public accessor on the request context


def add_resources(server: MCPServer, service: Service) -> None:
    async def read(name: str, arguments: dict[str, str], call: Callable[[], Awaitable[ToolOutput]]) -> str:
        try:
            output = await service.observe(name, arguments, call, transport="mcp")
        except (NotFound, UnknownPlatform) as exc:
            raise ResourceNotFoundError(exc.message) from None
        except SophiaError as exc:
            raise ResourceError(exc.message) from None
        return output.model_dump_json(exclude_none=True)

    async def projects(platform: str) -> str:
        return await read(
            "resource:projects", {"platform": platform}, lambda: service.all_platform_projects(platform)
        )

    async def project(platform: str, id: str) -> str:
        return await read(
            "resource:project", {"platform": platform, "id": id}, lambda: service.platform_project(platform, id)
        )

    for platform in service.configured_platforms():
        title = service.connector(platform).title

        async def read_platform(platform: str = platform) -> str:
            return await projects(platform)

        server.add_resource(
            FunctionResource.from_function(
                read_platform,
                uri=projects_uri(platform),
                name=f"{platform}-projects",
                title=f"{title} projects",
                description=f"Every {title} project with its normalised status, owner, dates and URL, as JSON "
                "(the data of list_projects for this platform), with where it came from and how old it is.",
                mime_type=JSON,
            )
        )
    server.resource(
        PROJECTS_TEMPLATE,
        name="platform-projects",
        title="A platform's projects",
        description="Every project of one platform (linear, asana, notion, hubspot, gong, slack, github) as JSON.",
        mime_type=JSON,
    )(projects)
    server.resource(
        PROJECT_TEMPLATE,
        name="project",
        title="One project",
        description="One project of a platform by its id (from list_projects or the platform's projects "
        "resource), as JSON.",
        mime_type=JSON,
    )(project)


class ResourceSubscriptions:
    """Who listens to which resource URI, and `data_changed`, the hook the cache calls when a
    refreshed key's value differs from the one it replaced."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()  # serves 2026-07-28 `subscriptions/listen`
        self.connections: weakref.WeakSet[Connection] = weakref.WeakSet()  # 2025 subscribers

    def install(self, server: MCPServer) -> None:
        # MCPServer has no decorator for these; capabilities derive from the registered handlers
        server._lowlevel_server.add_request_handler("resources/subscribe", SubscribeRequestParams, self.subscribe)
        server._lowlevel_server.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, self.unsubscribe
        )

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        connection = connection_of(ctx)
        if connection.has_standalone_channel:
            connection.state.setdefault(SUBSCRIBED, set()).add(str(params.uri))
            self.connections.add(connection)
        else:
            log.debug("subscription to %s acknowledged on a connection with no stream back to the client", params.uri)
        return EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        connection_of(ctx).state.get(SUBSCRIBED, set()).discard(str(params.uri))
        return EmptyResult()

    async def data_changed(self, key: CacheKey, before: Any, after: Any) -> None:
        """`key`'s cached value went from `before` to `after`: tell the subscribers of every
        resource that shows it (the platform's projects, and each project that changed)."""
        uris = changed_uris(key, before, after)
        for uri in sorted(uris):
            await self.bus.publish(ResourceUpdated(uri=uri))
        for connection in list(self.connections):
            for uri in sorted(uris & connection.state.get(SUBSCRIBED, set())):
                await connection.send_resource_updated(uri)


def changed_uris(key: CacheKey, before: Any, after: Any) -> set[str]:
    if key.operation != "list_projects" or not isinstance(after, ProjectPage):
        return set()
    old = {p.id: p for p in before.items} if isinstance(before, ProjectPage) else {}
    new = {p.id: p for p in after.items}
    changed = {i for i in old.keys() | new.keys() if old.get(i) != new.get(i)}
    return {projects_uri(key.platform)} | {project_uri(key.platform, i) for i in changed}
