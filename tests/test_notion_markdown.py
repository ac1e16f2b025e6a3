"""Notion blocks to Markdown, one block type at a time (blocks shaped as Notion's API returns them)."""

from __future__ import annotations

from typing import Any

from inline_snapshot import snapshot

from connectors.notion import blocks_markdown, rich_text_markdown
from sophia_mcp.sandbox.dataset import person
from sophia_mcp.sandbox.notion import mention_date, mention_page, mention_user, rt

PAGE = "3602d3c0-fb3b-5cf3-8acf-cbc9a43f5c53"


def block(kind: str, content: dict[str, Any] | None = None, *children: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A block as `GET /v1/blocks/{id}/children` returns it, with fetched children attached."""
    number = len(str(content)) + len(children)
    return {
        "object": "block",
        "id": f"0000000{number % 10}-0000-4000-8000-00000000000{len(kind) % 10}",
        "type": kind,
        kind: content if content is not None else {},
        "has_children": bool(children),
        **({"children": list(children)} if children else {}),
        **extra,
    }


def text(kind: str, *rich: dict[str, Any], children: tuple[dict[str, Any], ...] = (), **content: Any) -> dict[str, Any]:
    return block(kind, {"rich_text": list(rich), "color": "default", **content}, *children)


def test_rich_text_annotations_become_markdown_marks() -> None:
    assert rich_text_markdown(
        [
            rt("Plain, "),
            rt("bold", bold=True),
            rt(", "),
            rt("italic ", italic=True),
            rt("struck", strikethrough=True),
            rt(" and "),
            rt("code", code=True),
            rt(", "),
            rt(" both ", bold=True, italic=True),
            rt("underlined", underline=True, color="red"),
        ]
    ) == snapshot("Plain, **bold**, *italic* ~~struck~~ and `code`,  ***both*** underlined")


def test_links_mentions_and_equations_in_rich_text() -> None:
    equation = {
        "type": "equation",
        "equation": {"expression": "E = mc^2"},
        "plain_text": "E = mc^2",
        "href": None,
        "annotations": rt("")["annotations"],
    }
    assert rich_text_markdown(
        [
            rt("site", link="https://northwind.example"),
            rt(" "),
            rt("bold link", bold=True, link="https://northwind.example/docs"),
            rt(" by "),
            mention_user(person("ada.okafor")),
            rt(" on "),
            mention_date("2026-11-20"),
            rt(", see "),
            mention_page(PAGE, "Fleet Navigation v2"),
            rt(": "),
            equation,
        ]
    ) == snapshot(
        "[site](https://northwind.example) [**bold link**](https://northwind.example/docs) by @Ada Okafor on 2026-11-20, see [Fleet Navigation v2](https://www.notion.so/3602d3c0fb3b5cf38acfcbc9a43f5c53): $E = mc^2$"
    )


def test_paragraphs_are_separated_by_blank_lines_and_indent_their_children() -> None:
    assert blocks_markdown(
        [
            text("paragraph", rt("First paragraph.")),
            text("paragraph", rt("Second, with a child:"), children=(text("paragraph", rt("Indented child.")),)),
            text("paragraph"),
        ]
    ) == snapshot("""\
First paragraph.

Second, with a child:
  Indented child.\
""")


def test_headings_of_every_level() -> None:
    assert blocks_markdown(
        [
            text("heading_1", rt("One"), is_toggleable=False),
            text("heading_2", rt("Two"), is_toggleable=False),
            text("heading_3", rt("Three"), is_toggleable=False),
            text("heading_4", rt("Four"), is_toggleable=False),
            text(
                "heading_2",
                rt("Toggleable"),
                is_toggleable=True,
                children=(text("paragraph", rt("Hidden until opened.")),),
            ),
        ]
    ) == snapshot("""\
# One

## Two

### Three

#### Four

## Toggleable

Hidden until opened.\
""")


def test_bulleted_lists_nest_by_two_spaces() -> None:
    assert blocks_markdown(
        [
            text(
                "bulleted_list_item",
                rt("Top"),
                children=(
                    text("bulleted_list_item", rt("Nested"), children=(text("bulleted_list_item", rt("Deeper")),)),
                    text("paragraph", rt("A paragraph inside the item")),
                ),
            ),
            text("bulleted_list_item", rt("Second")),
            text("paragraph", rt("After the list.")),
        ]
    ) == snapshot("""\
- Top
  - Nested
    - Deeper

  A paragraph inside the item
- Second

After the list.\
""")


def test_numbered_lists_count_and_restart_after_other_blocks() -> None:
    assert blocks_markdown(
        [
            text("numbered_list_item", rt("One")),
            text("numbered_list_item", rt("Two"), children=(text("numbered_list_item", rt("Two point one")),)),
            text("numbered_list_item", rt("Three")),
            text("paragraph", rt("Break.")),
            text("numbered_list_item", rt("Again one")),
            text("numbered_list_item", rt("Starts at five"), list_start_index=5),
        ]
    ) == snapshot("""\
1. One
2. Two
   1. Two point one
3. Three

Break.

1. Again one
2. Starts at five\
""")


def test_to_dos_show_whether_they_are_checked() -> None:
    assert blocks_markdown(
        [
            text("to_do", rt("Done thing"), checked=True),
            text("to_do", rt("Open thing"), checked=False, children=(text("to_do", rt("Sub-step"), checked=False),)),
        ]
    ) == snapshot("""\
- [x] Done thing
- [ ] Open thing
  - [ ] Sub-step\
""")


def test_toggles_fold_their_children() -> None:
    assert blocks_markdown(
        [
            text(
                "toggle",
                rt("Risks"),
                children=(text("paragraph", rt("Schedule risk.")), text("bulleted_list_item", rt("Mitigation"))),
            ),
            text("toggle", rt("Empty toggle")),
        ]
    ) == snapshot("""\
<details>
<summary>Risks</summary>

Schedule risk.

- Mitigation
</details>

<details><summary>Empty toggle</summary></details>\
""")


def test_code_blocks_keep_language_and_caption() -> None:
    assert blocks_markdown(
        [
            block(
                "code", {"rich_text": [rt("stages: [canary, all]\n")], "caption": [rt("Rollout")], "language": "yaml"}
            ),
            block("code", {"rich_text": [rt("just text")], "caption": [], "language": "plain text"}),
        ]
    ) == snapshot("""\
```yaml
stages: [canary, all]
```
*Rollout*

```
just text
```\
""")


def test_quotes_and_callouts_are_blockquotes_with_their_children() -> None:
    assert blocks_markdown(
        [
            text(
                "quote",
                rt("We need it before the season."),
                children=(text("paragraph", rt("— "), rt("Maya", italic=True)),),
            ),
            text("callout", rt("Status: "), rt("Active", bold=True), icon={"type": "emoji", "emoji": "💡"}),
            text("callout", rt("No icon"), icon=None, children=(text("bulleted_list_item", rt("point")),)),
        ]
    ) == snapshot("""\
> We need it before the season.
>
> — *Maya*

> 💡 Status: **Active**

> No icon
>
> - point\
""")


def test_dividers_and_equations() -> None:
    assert blocks_markdown([block("divider"), block("equation", {"expression": "a^2 + b^2 = c^2"})]) == snapshot("""\
---

$$
a^2 + b^2 = c^2
$$\
""")


def row(*cells: str) -> dict[str, Any]:
    return block("table_row", {"cells": [[rt(c)] if c else [] for c in cells]})


def test_tables_with_a_header_row_a_header_column_or_neither() -> None:
    rows = (row("Milestone", "Date"), row("Beta | pilot", "2026-10-12"), row("GA", ""))
    assert blocks_markdown(
        [
            block("table", {"table_width": 2, "has_column_header": True, "has_row_header": False}, *rows),
            block("table", {"table_width": 2, "has_column_header": False, "has_row_header": True}, *rows),
        ]
    ) == snapshot("""\
| Milestone | Date |
|---|---|
| Beta \\| pilot | 2026-10-12 |
| GA |  |

|  |  |
|---|---|
| **Milestone** | Date |
| **Beta \\| pilot** | 2026-10-12 |
| **GA** |  |\
""")


def test_child_pages_databases_and_page_links_become_links() -> None:
    child_page = block("child_page", {"title": "Meeting notes"})
    child_database = block("child_database", {"title": "Tasks"})
    linked = block("link_to_page", {"type": "page_id", "page_id": PAGE})
    assert blocks_markdown([child_page, child_database, linked]) == snapshot(
        """\
[📄 Meeting notes](https://www.notion.so/00000006000040008000000000000000)

[🗂 Tasks](https://www.notion.so/00000008000040008000000000000004)

[↗ linked page](https://www.notion.so/3602d3c0fb3b5cf38acfcbc9a43f5c53)\
"""
    )


def test_images_and_files_become_links_with_their_captions() -> None:
    assert blocks_markdown(
        [
            block(
                "image",
                {
                    "type": "external",
                    "external": {"url": "https://assets.example/arch.png"},
                    "caption": [rt("Architecture")],
                },
            ),
            block(
                "image",
                {
                    "type": "file",
                    "file": {"url": "https://s3.example/a.png", "expiry_time": "2026-11-20T10:00:00.000Z"},
                    "caption": [],
                },
            ),
            block("pdf", {"type": "external", "external": {"url": "https://assets.example/spec.pdf"}, "caption": []}),
            block(
                "file",
                {
                    "type": "file",
                    "file": {"url": "https://s3.example/f.csv", "expiry_time": "x"},
                    "caption": [],
                    "name": "data.csv",
                },
            ),
            block("bookmark", {"url": "https://github.com/northwind/fleet", "caption": [rt("Repository")]}),
            block("embed", {"url": "https://figma.example/file", "caption": []}),
        ]
    ) == snapshot("""\
![Architecture](https://assets.example/arch.png)

![image](https://s3.example/a.png)

[pdf](https://assets.example/spec.pdf)

[data.csv](https://s3.example/f.csv)

[Repository](https://github.com/northwind/fleet)

[https://figma.example/file](https://figma.example/file)\
""")


def test_columns_and_synced_blocks_render_their_content_in_order() -> None:
    columns = block(
        "column_list",
        {},
        block("column", {"width_ratio": 0.5}, text("paragraph", rt("Left"))),
        block("column", {"width_ratio": 0.5}, text("paragraph", rt("Right"))),
    )
    synced = block("synced_block", {"synced_from": None}, text("paragraph", rt("Shared text")))
    assert blocks_markdown(
        [columns, synced, block("table_of_contents", {"color": "default"}), block("breadcrumb")]
    ) == snapshot(
        """\
Left

Right

Shared text\
"""
    )


def test_unsupported_blocks_are_named_not_dropped() -> None:
    assert blocks_markdown([block("unsupported", {"block_type": "form"}), block("ai_block", {})]) == snapshot(
        """\
<!-- form block not supported -->

<!-- ai_block block not supported -->\
"""
    )


def test_content_left_out_is_marked_where_it_was() -> None:
    cut = text("bulleted_list_item", rt("Has children"))
    cut["has_children"] = True
    cut["children_omitted"] = "nested content below depth 1 not loaded"
    partly = text("toggle", rt("Long log"), children=(text("paragraph", rt("Run 1")),))
    partly["children_omitted"] = "more nested content not loaded: request budget spent"
    assert blocks_markdown([cut, partly]) == snapshot("""\
- Has children
  *(nested content below depth 1 not loaded)*

<details>
<summary>Long log</summary>

Run 1

*(more nested content not loaded: request budget spent)*
</details>\
""")
