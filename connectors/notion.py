"""Notion: REST at `{base}/v1` (default https://api.notion.com), `Authorization: Bearer <token>` and
`Notion-Version: 2025-09-03` on every request.

In 2025-09-03 a database holds one or more data sources (the tables); data sources are this
platform's "projects", found with `POST /v1/search` filtered to `data_source`. Lists paginate with
`start_cursor`/`page_size` (at most 100) and answer `has_more`/`next_cursor`: a larger `limit` gets a
page of 100 and a `next_cursor`. Errors are
`{"object": "error", "status", "code", "message"}`; 429 `rate_limited` carries `Retry-After`.
Rate limit: an average of 3 requests a second per integration, with short bursts allowed.

Page content is rendered to Markdown from blocks (`GET /v1/blocks/{id}/children`), fetching nested
children to a bounded depth and with a bounded number of requests, and saying where it stopped.

A page object lists at most 25 references per title, rich_text, people or relation property (a
relation says `has_more`); the rest come from `GET /v1/pages/{id}/properties/{property_id}`, read
within a request budget per tool call. A value left incomplete says so.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from connectors.base import Connector, PageGuard, RateSpec, decode_cursor, encode_cursor, filter_status
from sophia_mcp.errors import BadInput, Forbidden, NotFound, SophiaError, UpstreamUnauthorized
from sophia_mcp.models import Model, Project, ProjectPage, ProjectStatus, SearchHit, ToolOutput
from sophia_mcp.registry import PageInput, ToolInput, ToolSpec

PLATFORM = "notion"
NOTION_VERSION = "2025-09-03"
MAX_PAGE_SIZE = 100
MAX_MARKDOWN_CHARS = 30_000
PROPERTY_CAP = 25  # references a page object lists per title, rich_text, people or relation property
PROPERTY_REQUESTS = 10  # property item requests one tool call may spend completing those lists
COUNTED = ("relation", "people", "multi_select", "files")  # list properties whose length is worth saying


class NotionConnector(Connector):
    platform = PLATFORM
    title = "Notion"
    credential_fields = ("notion_token",)
    base_url_field = "notion_base_url"
    rate = RateSpec(per_second=3, burst=25)  # "some bursts beyond the average rate are allowed"

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.notion_token is not None
        return {
            "Authorization": f"Bearer {self.settings.notion_token.get_secret_value()}",
            "Notion-Version": NOTION_VERSION,
        }

    async def search_page(
        self, body: dict[str, Any], limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        state = decode_cursor(PLATFORM, cursor)
        body = {**body, "page_size": min(limit, MAX_PAGE_SIZE), "start_cursor": state.get("start")}
        answer = await self.post_json("/v1/search", {k: v for k, v in body.items() if v is not None})
        return answer.get("results") or [], next_cursor(answer)

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        results, more = await self.search_page(
            {"filter": {"property": "object", "value": "data_source"}}, limit, cursor
        )
        projects = [to_project(r) for r in results if r.get("object") == "data_source"]
        return ProjectPage(items=filter_status(projects, status), next_cursor=more)

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        results, _ = await self.search_page({"query": query}, limit, None)
        return [
            SearchHit(
                platform=PLATFORM,
                kind="data_source" if r.get("object") == "data_source" else "page",
                id=r["id"],
                title=object_title(r) or "Untitled",
                url=r.get("url"),
                snippet=parent_label(r.get("parent")),
                updated_at=r.get("last_edited_time"),
            )
            for r in results
        ]

    async def check(self) -> str:
        me = await self.get_json("/v1/users/me")
        workspace = ((me.get("bot") or {}).get("workspace_name")) or "its workspace"
        return f"integration {me.get('name') or me.get('id')} in {workspace}"


def next_cursor(answer: dict[str, Any]) -> str | None:
    if answer.get("has_more") and answer.get("next_cursor"):
        return encode_cursor(PLATFORM, {"start": answer["next_cursor"]})
    return None


NOTION_ID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def notion_id(value: str, what: str = "id") -> str:
    """A Notion id from an id with or without dashes, or from a Notion URL: the id in its path, not
    the view (`?v=`) or block anchor (`#...`) after it; a side-peek URL's `?p=` names the page shown."""
    peek = re.search(rf"[?&]p=({NOTION_ID})", value)
    found = [peek.group(1)] if peek else re.findall(NOTION_ID, re.split(r"[?#]", value, maxsplit=1)[0])
    if not found:
        raise BadInput(
            f"{value!r} is not a Notion {what}: pass the id (32 hex digits) or the page's URL.", platform=PLATFORM
        )
    hexa = found[-1].replace("-", "").lower()
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def plain_text(rich: list[dict[str, Any]] | None) -> str:
    return "".join(r.get("plain_text", "") for r in rich or [])


def object_title(record: dict[str, Any]) -> str:
    if record.get("object") in ("data_source", "database"):
        return plain_text(record.get("title"))
    for value in (record.get("properties") or {}).values():
        if value.get("type") == "title":
            return plain_text(value.get("title"))
    return ""


def parent_label(parent: dict[str, Any] | None) -> str | None:
    if not parent:
        return None
    kind = parent.get("type", "")
    return "workspace" if kind == "workspace" else f"{kind.removesuffix('_id').replace('_', ' ')} {parent.get(kind)}"


def to_project(record: dict[str, Any]) -> Project:
    """A data source. Notion has no project status: a data source in the trash is canceled (deleted
    by someone), every other one is active."""
    trashed = bool(record.get("in_trash") or record.get("archived"))
    description = plain_text(record.get("description")).strip()
    return Project(
        platform=PLATFORM,
        id=record["id"],
        name=object_title(record) or "Untitled",
        url=record.get("url"),
        status="canceled" if trashed else "active",
        status_raw="in trash" if trashed else None,
        description=description[:300] or None,
        created_at=record.get("created_time"),
        updated_at=record.get("last_edited_time"),
    )


def property_text(value: dict[str, Any]) -> str | None:
    """One page property value as short text."""
    kind = value.get("type", "")
    raw = value.get(kind)
    if raw is None or kind == "button":
        return None
    if kind in ("title", "rich_text"):
        return plain_text(raw) or None
    if kind in ("select", "status"):
        return raw.get("name")
    if kind == "multi_select":
        return ", ".join(o.get("name", "") for o in raw) or None
    if kind == "date":
        return date_text(raw)
    if kind in ("people", "created_by", "last_edited_by"):
        people = raw if isinstance(raw, list) else [raw]
        return ", ".join(p.get("name") or p.get("id", "") for p in people) or None
    if kind == "relation":
        return ", ".join(r.get("id", "") for r in raw) or None
    if kind == "checkbox":
        return "yes" if raw else "no"
    if kind == "number":
        return str(int(raw)) if float(raw).is_integer() else str(raw)
    if kind == "unique_id":
        return f"{raw.get('prefix')}-{raw.get('number')}" if raw.get("prefix") else str(raw.get("number"))
    if kind in ("formula", "rollup"):
        shown = raw.get(raw.get("type", ""))
        if isinstance(shown, list):
            return f"{len(shown)} items"
        if raw.get("type") == "date" and shown:
            return date_text(shown)
        return None if shown is None else str(shown)
    if kind == "files":
        return ", ".join(f.get("name", "") for f in raw) or None
    if kind == "verification":
        return raw.get("state")
    if isinstance(raw, dict):
        return raw.get("name") or raw.get("address")
    return str(raw)


def date_text(raw: dict[str, Any]) -> str | None:
    return f"{raw.get('start')} → {raw['end']}" if raw.get("end") else raw.get("start")


def properties_text(
    properties: dict[str, Any], only: list[str] | None = None, limit: int = 300
) -> dict[str, str | None]:
    shown: dict[str, str | None] = {}
    for name, value in properties.items():
        if only and name not in only:
            continue
        text = property_text(value)
        raw = value.get(value.get("type", ""))
        count = len(raw) if value.get("type") in COUNTED and isinstance(raw, list) else None
        cut = bool(text and len(text) > limit)
        if text and cut:
            text = text[: limit - 1] + "…"
        if text and value.get("has_more"):  # Notion's flag on a relation it cut at 25; PropertyLists' on the others
            text = f"{text} ({f'the first {count}' if count else 'cut'}; more not loaded)"
        elif cut and count:
            text = f"{text} ({count} in all)"
        shown[name] = text
    return shown


class PropertyLists:
    """Completes the list properties a page object cut at 25 references, from the property item
    endpoint, within PROPERTY_REQUESTS requests; a value it could not complete gets `has_more`."""

    def __init__(self, notion: NotionConnector) -> None:
        self.notion = notion
        self.budget = PROPERTY_REQUESTS
        self.incomplete = 0
        self.refused: SophiaError | None = None

    async def complete(self, page: dict[str, Any], only: list[str] | None = None) -> None:
        for name, value in (page.get("properties") or {}).items():
            kind = value.get("type", "")
            listed = value.get(kind)
            if (only and name not in only) or not isinstance(listed, list):
                continue
            if not (
                value.get("has_more") or (kind in ("title", "rich_text", "people") and len(listed) >= PROPERTY_CAP)
            ):
                continue
            items, more = await self.items(page["id"], value)
            if len(items) >= len(listed):
                value[kind] = items
            value["has_more"] = more
            self.incomplete += more

    async def items(self, page_id: str, value: dict[str, Any]) -> tuple[list[Any], bool]:
        """The property's items, and whether some were left out (budget spent, or Notion refused)."""
        kind, cursor = value["type"], None
        items: list[Any] = []
        while self.budget > 0:
            self.budget -= 1
            try:
                answer = await self.notion.get_json(
                    f"/v1/pages/{page_id}/properties/{value['id']}",
                    {"page_size": MAX_PAGE_SIZE, "start_cursor": cursor},
                )
            except UpstreamUnauthorized:
                raise
            except SophiaError as error:
                self.refused = error
                return items, True
            items += [item.get(kind) for item in answer.get("results") or [] if item.get(kind) is not None]
            if not answer.get("has_more") or not answer.get("next_cursor"):
                return items, False
            cursor = answer["next_cursor"]
        return items, True

    def note(self, hint: str = "") -> str | None:
        if not self.incomplete:
            return None
        why = (
            f"Notion refused the rest: {self.refused.message}"
            if self.refused
            else f"the budget of {PROPERTY_REQUESTS} requests for the rest ran out."
        )
        return f"{self.incomplete} property values list only their first entries (a page object holds 25): {why}{hint}"


# -- Markdown from blocks -------------------------------------------------------------------------------

LIST_PREFIX = {"bulleted_list_item": "- ", "to_do": "- "}
MEDIA = ("image", "video", "pdf", "file", "audio")
LINKS = ("bookmark", "embed", "link_preview")


def rich_text_markdown(items: list[dict[str, Any]] | None) -> str:
    """Rich text as Markdown: bold, italic, strikethrough, code, links, mentions and equations."""
    out = []
    for item in items or []:
        kind = item.get("type")
        if kind == "equation":
            out.append(f"${item['equation']['expression']}$")
            continue
        text = item.get("plain_text") or (item.get("text") or {}).get("content", "")
        marks = item.get("annotations") or {}
        core = text.strip()
        if core:
            if marks.get("code"):
                core = f"`{core}`"
            if marks.get("strikethrough"):
                core = f"~~{core}~~"
            if marks.get("italic"):
                core = f"*{core}*"
            if marks.get("bold"):
                core = f"**{core}**"
            href = item.get("href")
            if href:
                core = f"[{core}]({href})"
            lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
            text = f"{lead}{core}{trail}"
        out.append(text)
    return "".join(out)


def notion_url(block_id: str) -> str:
    return f"https://www.notion.so/{block_id.replace('-', '')}"


def indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.split("\n"))


def cell(rich: list[dict[str, Any]]) -> str:
    return rich_text_markdown(rich).replace("|", "\\|").replace("\n", "<br>")


def table_markdown(table: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    width = table.get("table_width") or max((len(r["table_row"]["cells"]) for r in rows), default=1)
    lines = [[cell(c) for c in r["table_row"]["cells"]] + [""] * (width - len(r["table_row"]["cells"])) for r in rows]
    header = lines.pop(0) if table.get("has_column_header") and lines else [""] * width
    if table.get("has_row_header"):
        lines = [[f"**{line[0]}**" if line[0] else "", *line[1:]] for line in lines]
    rendered = ["| " + " | ".join(header) + " |", "|" + "---|" * width]
    return "\n".join(rendered + ["| " + " | ".join(line) + " |" for line in lines])


def block_markdown(block: dict[str, Any], number: int = 1) -> str:
    """One block (with its fetched `children`) as Markdown; `number` is its place in a numbered list."""
    kind = block.get("type", "")
    content = block.get(kind) or {}
    children = block.get("children") or []
    inner = blocks_markdown(children)
    if block.get("children_omitted"):
        inner = (inner + "\n\n" if inner else "") + f"*({block['children_omitted']})*"
    text = rich_text_markdown(content.get("rich_text"))
    if kind == "paragraph":
        return text + ("\n" + indent(inner, "  ") if inner else "")
    if kind.startswith("heading_"):
        level = min(int(kind[-1]), 6)
        return f"{'#' * level} {text}" + (f"\n\n{inner}" if inner else "")
    if kind in LIST_PREFIX or kind == "numbered_list_item":
        marker = f"{number}. " if kind == "numbered_list_item" else "- "
        if kind == "to_do":
            marker += "[x] " if content.get("checked") else "[ ] "
        return marker + text + ("\n" + indent(inner, " " * (3 if kind == "numbered_list_item" else 2)) if inner else "")
    if kind == "quote":
        return indent(text + (f"\n\n{inner}" if inner else ""), "> ").replace("\n\n", "\n>\n")
    if kind == "callout":
        icon = content.get("icon") or {}
        emoji = icon.get("emoji") or ""
        return indent(f"{emoji} {text}".strip() + (f"\n\n{inner}" if inner else ""), "> ").replace("\n\n", "\n>\n")
    if kind == "toggle":
        return (
            f"<details>\n<summary>{text}</summary>\n\n{inner}\n</details>"
            if inner
            else f"<details><summary>{text}</summary></details>"
        )
    if kind == "code":
        language = content.get("language", "")
        language = "" if language == "plain text" else language
        caption = rich_text_markdown(content.get("caption"))
        return f"```{language}\n{plain_text(content.get('rich_text')).rstrip()}\n```" + (
            f"\n*{caption}*" if caption else ""
        )
    if kind == "divider":
        return "---"
    if kind == "equation":
        return f"$$\n{content.get('expression', '')}\n$$"
    if kind == "table":
        rows = [c for c in children if c.get("type") == "table_row"]
        note = f"\n\n*({block['children_omitted']})*" if block.get("children_omitted") else ""
        return (table_markdown(content, rows) if rows else "*(empty table)*") + note
    if kind == "child_page":
        return f"[📄 {content.get('title') or 'Untitled'}]({notion_url(block['id'])})"
    if kind == "child_database":
        return f"[🗂 {content.get('title') or 'Untitled database'}]({notion_url(block['id'])})"
    if kind == "link_to_page":
        target = content.get(content.get("type", ""), "")
        return f"[↗ linked {content.get('type', 'page').removesuffix('_id')}]({notion_url(target)})"
    if kind in MEDIA:
        source = content.get(content.get("type", ""), {}) or {}
        url = source.get("url", "")
        label = rich_text_markdown(content.get("caption")) or content.get("name") or kind
        return f"![{label}]({url})" if kind == "image" else f"[{label}]({url})"
    if kind in LINKS:
        url = content.get("url", "")
        return f"[{rich_text_markdown(content.get('caption')) or url}]({url})"
    if kind in ("column_list", "column", "synced_block", "tab", "template", "meeting_notes", "transcription"):
        title = text or rich_text_markdown(content.get("title"))
        return "\n\n".join(p for p in (title, inner) if p)
    if kind in ("table_of_contents", "breadcrumb"):
        return ""
    unsupported = content.get("block_type") if kind == "unsupported" else kind
    return f"<!-- {unsupported} block not supported -->"


def blocks_markdown(blocks: list[dict[str, Any]]) -> str:
    """Sibling blocks as Markdown: list items of one list on consecutive lines, other blocks
    separated by a blank line, numbered lists counted from 1 (or Notion's `list_start_index`)."""
    parts: list[str] = []
    previous = ""
    number = 0
    for block in blocks:
        kind = block.get("type", "")
        if kind == "numbered_list_item":
            start = (block.get(kind) or {}).get("list_start_index")
            number = number + 1 if previous == kind else (start or 1)
        rendered = block_markdown(block, number)
        if not rendered:
            continue
        listed = kind in ("bulleted_list_item", "numbered_list_item", "to_do")
        joiner = (
            "\n" if parts and listed and previous in ("bulleted_list_item", "numbered_list_item", "to_do") else "\n\n"
        )
        parts.append((joiner if parts else "") + rendered)
        previous = kind
    return "".join(parts)


class BlockTree:
    """Fetches a block's children and their nested children, up to `max_depth` levels and
    `max_requests` requests, and remembers what it left out."""

    LEAVES = ("child_page", "child_database")

    def __init__(self, notion: NotionConnector, max_depth: int, max_requests: int) -> None:
        self.notion, self.max_depth, self.max_requests = notion, max_depth, max_requests
        self.requests = 0
        self.blocks = 0
        self.cut_by_depth = 0
        self.cut_by_budget = 0

    async def children(self, block_id: str, depth: int = 1) -> tuple[list[dict[str, Any]], bool]:
        """The children of `block_id` (with theirs attached as `children`) and whether all came."""
        results: list[dict[str, Any]] = []
        cursor: str | None = None
        guard = PageGuard(PLATFORM, max_pages=self.max_requests + 1)
        while True:
            if self.requests >= self.max_requests:
                self.cut_by_budget += 1
                return results, False
            self.requests += 1
            answer = await self.notion.get_json(
                f"/v1/blocks/{block_id}/children", {"page_size": MAX_PAGE_SIZE, "start_cursor": cursor}
            )
            results.extend(answer.get("results") or [])
            if not answer.get("has_more") or not guard.next(answer.get("next_cursor")):
                break
            cursor = answer["next_cursor"]
        self.blocks += len(results)
        for block in results:
            if not block.get("has_children") or block.get("type") in self.LEAVES:
                continue
            if depth >= self.max_depth:
                self.cut_by_depth += 1
                block["children_omitted"] = f"nested content below depth {self.max_depth} not loaded"
                continue
            try:
                block["children"], complete = await self.children(block["id"], depth + 1)
            except (NotFound, Forbidden, BadInput) as error:  # e.g. a synced block whose original is not shared
                block["children_omitted"] = (
                    f"nested content not loaded: Notion answered {error.status} ({error.title.lower()}); "
                    "it may not be shared with the integration"
                )
                continue
            if not complete:
                block["children_omitted"] = "more nested content not loaded: request budget spent"
        return results, True

    def report(self, complete: bool) -> str | None:
        notes = []
        if not complete:
            notes.append("the page continues past what was loaded")
        if self.cut_by_depth:
            notes.append(
                f"{self.cut_by_depth} blocks have nested content below depth {self.max_depth} (raise max_depth)"
            )
        if self.cut_by_budget:
            notes.append(f"the budget of {self.max_requests} requests ran out (raise max_requests)")
        return ("Content was cut: " + "; ".join(notes) + ". Cut places are marked in the Markdown.") if notes else None


# -- tools ----------------------------------------------------------------------------------------------

NotionRef = Annotated[
    str, Field(min_length=32, max_length=500, description="Notion id (32 hex digits, dashes optional) or URL.")
]


class NotionObject(Model):
    kind: Literal["page", "data_source"]
    id: str
    title: str
    url: str | None = None
    parent: str | None = None
    last_edited: str | None = None


class SearchInput(PageInput):
    query: Annotated[
        str, Field(max_length=200, description="Words to find in titles; empty lists everything shared.")
    ] = ""
    kind: Annotated[
        Literal["page", "data_source"] | None, Field(description="Only pages, or only data sources (database tables).")
    ] = None


class SearchOutput(ToolOutput):
    results: list[NotionObject]
    next_cursor: str | None = None


async def search(notion: NotionConnector, args: SearchInput) -> SearchOutput:
    body: dict[str, Any] = {"query": args.query} if args.query else {}
    if args.kind:
        body["filter"] = {"property": "object", "value": args.kind}
    results, more = await notion.search_page(body, args.limit, args.cursor)
    return SearchOutput(
        results=[
            NotionObject(
                kind="data_source" if r.get("object") == "data_source" else "page",
                id=r["id"],
                title=object_title(r) or "Untitled",
                url=r.get("url"),
                parent=parent_label(r.get("parent")),
                last_edited=r.get("last_edited_time"),
            )
            for r in results
        ],
        next_cursor=more,
    )


class NotionPage(Model):
    id: str
    title: str
    url: str | None = None
    properties: dict[str, str | None] = Field(default_factory=dict, description="Property values as short text.")
    last_edited: str | None = None


def to_page(record: dict[str, Any], only: list[str] | None = None) -> NotionPage:
    return NotionPage(
        id=record["id"],
        title=object_title(record) or "Untitled",
        url=record.get("url"),
        properties=properties_text(record.get("properties") or {}, only),
        last_edited=record.get("last_edited_time"),
    )


#: the filter condition to use per property type for `equals` and `contains`
FILTER_CONDITIONS: dict[str, dict[str, str]] = {
    **{t: {"equals": "equals", "contains": "contains"} for t in ("title", "rich_text", "url", "email", "phone_number")},
    "select": {"equals": "equals"},
    "status": {"equals": "equals"},
    "multi_select": {"equals": "contains", "contains": "contains"},
    "people": {"equals": "contains", "contains": "contains"},
    "relation": {"equals": "contains", "contains": "contains"},
    "number": {"equals": "equals"},
    "unique_id": {"equals": "equals"},
    "checkbox": {"equals": "equals"},
    "date": {"equals": "equals"},
}


class QueryInput(PageInput):
    data_source_id: Annotated[
        str,
        Field(
            min_length=32,
            max_length=500,
            description="Data source id (from list_projects or notion_search), or a database id or URL (its one data "
            "source is queried).",
        ),
    ]
    filter_property: Annotated[str | None, Field(max_length=200, description="Property name to filter on.")] = None
    filter_value: Annotated[
        str | None,
        Field(
            max_length=500,
            description="Value the property must have: text, option name, number, true/false, YYYY-MM-DD, or a user or "
            "page id for people and relation properties.",
        ),
    ] = None
    match: Annotated[
        Literal["equals", "contains"],
        Field(
            description="equals, or contains (text properties; multi-select, people and relation always use contains)."
        ),
    ] = "equals"
    sort_property: Annotated[str | None, Field(max_length=200, description="Property name to sort by.")] = None
    sort_direction: Annotated[Literal["ascending", "descending"], Field(description="Sort direction.")] = "ascending"
    properties: Annotated[
        list[str] | None, Field(max_length=50, description="Only these properties in the results (default: all).")
    ] = None


class QueryOutput(ToolOutput):
    pages: list[NotionPage]
    next_cursor: str | None = None


def filter_condition(config: dict[str, Any], match: str, value: str) -> dict[str, Any]:
    kind = config.get("type", "")
    conditions = FILTER_CONDITIONS.get(kind)
    if conditions is None or match not in conditions:
        usable = ", ".join(f"{t} ({'/'.join(c)})" for t, c in FILTER_CONDITIONS.items())
        raise BadInput(
            f"property {config.get('name')!r} is a {kind} property, which this tool cannot filter with "
            f"{match!r}; filterable types: {usable}.",
            platform=PLATFORM,
        )
    typed: Any = value
    if kind in ("number", "unique_id", "date", "checkbox"):
        typed = typed_value(config, value)
    elif kind in ("people", "relation"):
        typed = notion_id(value, "user id" if kind == "people" else "page id")
    return {"property": config["name"], kind: {conditions[match]: typed}}


#: what a checkbox filter_value may say, and what it means
CHECKED = dict.fromkeys(("true", "yes", "checked", "1"), True) | dict.fromkeys(("false", "no", "unchecked", "0"), False)


def typed_value(config: dict[str, Any], value: str) -> Any:
    """filter_value as a number, date or checkbox property holds it; a value the property cannot hold is
    refused with an example of one it can, rather than sent to match nothing."""
    kind, text = config["type"], value.strip()
    if kind == "date":
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                return parse(text).isoformat()
            except ValueError:
                pass
        wanted = "a date", "as YYYY-MM-DD (2026-11-01) or an ISO 8601 datetime (2026-11-01T09:00:00Z)"
    elif kind == "checkbox":
        if text.lower() in CHECKED:
            return CHECKED[text.lower()]
        wanted = "checked or unchecked", "as true or false"
    else:
        number = as_number(text)
        if number is not None and (kind == "number" or isinstance(number, int)):
            return number
        if kind == "unique_id":
            prefix = (config.get("unique_id") or {}).get("prefix")
            wanted = "a number", f"as the id's number, such as 3 for {prefix}-3" if prefix else "as the id's number: 3"
        elif (config.get("number") or {}).get("format") == "percent":
            wanted = "a number", "as a number, such as 0.5 for 50%"
        else:
            wanted = "a number", "as a number, such as 42 or 2.5"
    raise BadInput(
        f"{config['name']!r} is a {kind} property and {value!r} is not {wanted[0]}: give filter_value {wanted[1]}.",
        platform=PLATFORM,
    )


def as_number(text: str) -> int | float | None:
    for parse in (int, float):
        try:
            number = parse(text)
        except ValueError:
            continue
        return number if math.isfinite(number) else None
    return None


async def query_data_source(notion: NotionConnector, args: QueryInput) -> QueryOutput:
    """Query a data source; given a database id (what Notion's URLs and child_database blocks carry),
    query its data source, as `GET /v1/databases/{id}` lists them."""
    given = notion_id(args.data_source_id, "data source id")
    try:
        return await query_one_source(notion, given, args)
    except NotFound as missing:
        try:
            database = await notion.get_json(f"/v1/databases/{given}")
        except (NotFound, BadInput):
            raise missing from None
        sources = database.get("data_sources") or []
        if len(sources) != 1:
            listed = "; ".join(f"{s.get('name') or 'Untitled'} ({s['id']})" for s in sources) or "none shared"
            raise BadInput(
                f"{given} is a database with {len(sources)} data sources; pass one of their ids: {listed}.",
                platform=PLATFORM,
            ) from None
        return await query_one_source(notion, sources[0]["id"], args)


def schema_properties(schema: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """The named properties' configs (a name matches in any case); names the data source lacks are refused
    with the names it has."""
    found = {
        name: schema.get(name) or next((c for c in schema.values() if c.get("name", "").lower() == name.lower()), None)
        for name in names
    }
    missing = [name for name, config in found.items() if config is None]
    if missing:
        raise BadInput(
            f"no property {' or '.join(map(repr, missing))} in this data source; it has: {', '.join(schema)}.",
            platform=PLATFORM,
        )
    return [config for config in found.values() if config is not None]


async def query_one_source(notion: NotionConnector, source_id: str, args: QueryInput) -> QueryOutput:
    body: dict[str, Any] = {
        "page_size": min(args.limit, MAX_PAGE_SIZE),
        "start_cursor": decode_cursor(PLATFORM, args.cursor).get("start"),
    }
    if (args.filter_property is None) != (args.filter_value is None):
        raise BadInput("give filter_property and filter_value together.", platform=PLATFORM)
    schema: dict[str, Any] = {}
    if args.filter_property is not None or args.properties:
        schema = (await notion.get_json(f"/v1/data_sources/{source_id}")).get("properties") or {}
    shown = [c["name"] for c in schema_properties(schema, args.properties)] if args.properties else None
    if args.filter_property is not None and args.filter_value is not None:
        (config,) = schema_properties(schema, [args.filter_property])
        body["filter"] = filter_condition(config, args.match, args.filter_value)
    if args.sort_property:
        body["sorts"] = [{"property": args.sort_property, "direction": args.sort_direction}]
    answer = await notion.post_json(
        f"/v1/data_sources/{source_id}/query", {k: v for k, v in body.items() if v is not None}
    )
    pages = [r for r in answer.get("results") or [] if r.get("object") == "page"]
    lists = PropertyLists(notion)
    for page in pages:
        await lists.complete(page, shown)
    return QueryOutput(
        pages=[to_page(p, shown) for p in pages],
        next_cursor=next_cursor(answer),
        truncated=lists.incomplete > 0,
        note=lists.note(" notion_get_page reads one page's values with a budget of its own."),
    )


class GetPageInput(ToolInput):
    page_id: NotionRef


class PageDetail(ToolOutput):
    page: NotionPage
    parent: str | None = None
    created: str | None = None
    in_trash: bool = False


async def get_page(notion: NotionConnector, args: GetPageInput) -> PageDetail:
    record = await notion.get_json(f"/v1/pages/{notion_id(args.page_id, 'page id')}")
    lists = PropertyLists(notion)
    await lists.complete(record)
    return PageDetail(
        page=to_page(record),
        parent=parent_label(record.get("parent")),
        created=record.get("created_time"),
        in_trash=bool(record.get("in_trash") or record.get("archived")),
        truncated=lists.incomplete > 0,
        note=lists.note(),
    )


class MarkdownInput(ToolInput):
    page_id: Annotated[
        str,
        Field(min_length=32, max_length=500, description="Page id or URL (or a block id, for that block's content)."),
    ]
    max_depth: Annotated[int, Field(ge=1, le=6, description="Levels of nested blocks to load (1: top level only).")] = 3
    max_requests: Annotated[
        int, Field(ge=1, le=100, description="Most requests to spend loading blocks (100 blocks each).")
    ] = 25


class PageMarkdown(ToolOutput):
    id: str
    title: str | None = None
    url: str | None = None
    markdown: str
    blocks: int = Field(description="How many blocks were loaded.")


async def get_page_markdown(notion: NotionConnector, args: MarkdownInput) -> PageMarkdown:
    page_id = notion_id(args.page_id, "page id")
    tree = BlockTree(notion, args.max_depth, args.max_requests)
    blocks, complete = await tree.children(page_id)
    title = url = None
    try:
        record = await notion.get_json(f"/v1/pages/{page_id}")
        title, url = object_title(record) or None, record.get("url")
    except (NotFound, BadInput):
        pass  # a block id, not a page: its content is all there is
    markdown = blocks_markdown(blocks)
    if not complete:
        markdown += "\n\n*(the page continues; not loaded)*"
    note = tree.report(complete)
    if len(markdown) > MAX_MARKDOWN_CHARS:
        markdown = markdown[: markdown.rfind("\n", 0, MAX_MARKDOWN_CHARS)] + "\n\n*(cut here: response size budget)*"
        note = (note + " " if note else "") + f"The Markdown was cut at {MAX_MARKDOWN_CHARS} characters."
    return PageMarkdown(
        id=page_id, title=title, url=url, markdown=markdown, blocks=tree.blocks, truncated=note is not None, note=note
    )


class NotionUser(Model):
    id: str
    name: str | None = None
    type: str | None = None
    email: str | None = None


class UserList(ToolOutput):
    users: list[NotionUser]
    next_cursor: str | None = None


async def list_users(notion: NotionConnector, args: PageInput) -> UserList:
    state = decode_cursor(PLATFORM, args.cursor)
    params = {"page_size": min(args.limit, MAX_PAGE_SIZE), "start_cursor": state.get("start")}
    answer = await notion.get_json("/v1/users", params)
    return UserList(
        users=[
            NotionUser(id=u["id"], name=u.get("name"), type=u.get("type"), email=(u.get("person") or {}).get("email"))
            for u in answer.get("results") or []
        ],
        next_cursor=next_cursor(answer),
    )


CONNECTOR = NotionConnector
TOOLS = [
    ToolSpec(
        "notion_search",
        PLATFORM,
        "Search Notion",
        "Find Notion pages and data sources (database tables) shared with the integration by words in their titles, "
        "most recently edited first. Returns kind, id, title, URL and parent; kind narrows to pages or data sources.",
        SearchInput,
        SearchOutput,
        search,
    ),
    ToolSpec(
        "notion_query_data_source",
        PLATFORM,
        "Query a Notion data source",
        "Rows (pages) of one Notion data source with their property values as short text. Optionally filter on one "
        "property (equals or contains), sort by a property, and keep only some properties.",
        QueryInput,
        QueryOutput,
        query_data_source,
    ),
    ToolSpec(
        "notion_get_page",
        PLATFORM,
        "Get a Notion page's properties",
        "One Notion page by id or URL: title, URL, parent, dates and every property value as short text (not its "
        "content; notion_get_page_markdown renders that).",
        GetPageInput,
        PageDetail,
        get_page,
    ),
    ToolSpec(
        "notion_get_page_markdown",
        PLATFORM,
        "Read a Notion page as Markdown",
        "A Notion page's content rendered as Markdown: headings, paragraphs with formatting and links, lists, to-dos, "
        "toggles, code, quotes, callouts, tables, images, child pages and databases as links. Nested blocks load to "
        "max_depth levels within max_requests requests; anything cut is marked and explained in `note`.",
        MarkdownInput,
        PageMarkdown,
        get_page_markdown,
    ),
    ToolSpec(
        "notion_list_users",
        PLATFORM,
        "List Notion users",
        "People and bots in the Notion workspace, with their ids (for people filters) and emails.",
        PageInput,
        UserList,
        list_users,
    ),
]
