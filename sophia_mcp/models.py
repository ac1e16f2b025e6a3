"""Common models shared by every platform, the tools and the REST shim."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ProjectStatus = Literal["planned", "active", "paused", "completed", "canceled", "unknown"]
Source = Literal["live", "cache", "stale"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Project(Model):
    """A platform's unit of work, normalised: a Linear project, an Asana project, a Notion data
    source, a HubSpot deal, a Gong workspace, a Slack channel, a GitHub Project or repository."""

    platform: str
    id: str
    name: str
    url: str | None = None
    status: ProjectStatus = "unknown"
    status_raw: str | None = None
    owner: str | None = None
    team: str | None = None
    description: str | None = None
    start_date: str | None = None
    target_date: str | None = None
    progress: float | None = Field(default=None, ge=0, le=1)
    created_at: str | None = None
    updated_at: str | None = None


class ProjectPage(Model):
    items: list[Project]
    next_cursor: str | None = None


class SearchHit(Model):
    platform: str
    kind: str = Field(description="What was found: issue, pull_request, message, task, page, deal, call, ...")
    id: str
    title: str
    url: str | None = None
    snippet: str | None = None
    updated_at: str | None = None


#: whole seconds, like HTTP's `Age` header: a 5-minute freshness window needs no finer grain, and a
#: cached result then stays the same object (and the same bytes) for a second at a time
AgeSeconds = Annotated[int, Field(ge=0, description="Whole seconds since the data was fetched from the platform.")]


class Freshness(Model):
    """Where a result came from: the platform just now, the cache, or a stale snapshot."""

    source: Source = "live"
    fetched_at: datetime | None = None
    age_seconds: AgeSeconds = 0
    stale_reason: str | None = None


class ToolOutput(Model):
    """Base of every tool's structured content: the data plus freshness and truncation notes."""

    source: Source = "live"
    fetched_at: datetime | None = None
    age_seconds: AgeSeconds = 0
    stale_reason: str | None = None
    truncated: bool = False
    note: str | None = None

    def with_freshness(self, freshness: Freshness) -> ToolOutput:
        return self.model_copy(update=freshness.model_dump())
