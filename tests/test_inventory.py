"""The whole tool inventory: names, annotations, schemas (snapshotted), selection, README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from inline_snapshot import external_file

from connectors import load_connector_modules
from sophia_mcp.cli import tools_markdown
from sophia_mcp.config import PLATFORMS
from sophia_mcp.registry import CORE_TOOLSET, all_tools, select_tools
from sophia_mcp.sandbox import platform_modules
from sophia_mcp.server import tool_from_spec

ROOT = Path(__file__).resolve().parents[1]
TOOLS = all_tools()


def test_every_platform_has_a_connector_and_a_sandbox() -> None:
    assert [m.CONNECTOR.platform for m in load_connector_modules()] == list(PLATFORMS)
    assert list(platform_modules()) == list(PLATFORMS)


def test_tool_names_are_unique_and_platform_prefixed() -> None:
    names = [t.name for t in TOOLS]
    assert len(names) == len(set(names))
    for tool in TOOLS:
        assert re.fullmatch(r"[a-z][a-z0-9_]{2,63}", tool.name)
        if tool.toolset != CORE_TOOLSET:
            assert tool.name.startswith(tool.toolset + "_"), tool.name


@pytest.mark.parametrize("spec", TOOLS, ids=lambda t: t.name)
def test_every_tool_is_described_annotated_and_has_flat_object_schemas(spec) -> None:  # type: ignore[no-untyped-def]
    tool = tool_from_spec(spec, service=None)  # type: ignore[arg-type]
    assert spec.title and len(spec.description) >= 40
    assert tool.annotations is not None
    assert tool.annotations.read_only_hint is spec.read_only
    assert tool.annotations.destructive_hint is spec.destructive
    assert tool.parameters["type"] == "object"
    assert not {"anyOf", "oneOf", "allOf"} & set(tool.parameters), "clients choke on top-level anyOf/oneOf"
    assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    for name, prop in tool.parameters.get("properties", {}).items():
        assert prop.get("description") or "$ref" in prop or name in {"limit", "cursor"}, f"{spec.name}.{name}"


@pytest.mark.parametrize("spec", TOOLS, ids=lambda t: t.name)
def test_tool_schema_snapshot(spec) -> None:  # type: ignore[no-untyped-def]
    tool = tool_from_spec(spec, service=None)  # type: ignore[arg-type]
    schema = {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "annotations": tool.annotations.model_dump(exclude_none=True) if tool.annotations else None,
        "inputSchema": tool.parameters,
        "outputSchema": tool.output_schema,
    }
    assert schema == external_file(str(ROOT / "tests" / "__toolsnaps__" / f"{spec.name}.json"), format=".json")


def test_read_only_mode_exposes_no_tool_that_writes() -> None:
    assert all(t.read_only for t in select_tools(TOOLS, read_only=True))


def test_selection_keeps_core_tools_and_refuses_typos() -> None:
    chosen = select_tools(TOOLS, toolsets=["linear"])
    assert {t.toolset for t in chosen} == {CORE_TOOLSET, "linear"}
    assert [t.name for t in select_tools(TOOLS, tools=["linear_get_issue"])] == [
        "list_projects",
        "platform_status",
        "search",
        "linear_get_issue",
    ]
    assert "linear_get_issue" not in {t.name for t in select_tools(TOOLS, exclude_tools=["linear_get_issue"])}
    with pytest.raises(ValueError, match="unknown toolset"):
        select_tools(TOOLS, toolsets=["linaer"])
    with pytest.raises(ValueError, match="unknown tool"):
        select_tools(TOOLS, tools=["nope"])


def test_readme_tool_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- tools:start -->\n")[1].split("<!-- tools:end -->")[0].strip()
    expected = tools_markdown(select_tools(TOOLS, read_only=False))
    assert table == expected, "README tool table is stale: regenerate it with `sophia-mcp tools --no-read-only`"
