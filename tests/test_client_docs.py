"""The README's client setup snippets: each one parses, names a command that exists, passes arguments
`sophia-mcp` accepts and settings it knows, and points HTTP clients at `/mcp` with a bearer header."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from sophia_mcp.cli import build_parser, selected_tools
from sophia_mcp.config import check_environment

ROOT = Path(__file__).resolve().parents[1]
CLONE = "/path/to/sophia-mcp"  # how the README names the reader's clone


def snippets() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- clients:start -->")[1].split("<!-- clients:end -->")[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)


JSON_SNIPPETS = [json.loads(code) for language, code in snippets() if language == "json"]
SHELL_LINES = [line for language, code in snippets() if language == "bash" for line in code.splitlines() if line]


def servers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config.get("mcpServers") or config["servers"]


def resolve(command: str) -> str | None:
    """Where the command is on this machine: the clone for `/path/to/sophia-mcp/...`, else the PATH
    of an installed package (its console scripts sit beside the interpreter)."""
    if command.startswith(CLONE + "/"):
        path = ROOT / command.removeprefix(CLONE + "/")
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(command, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))


def check_server_command(command: str, args: list[str], env: dict[str, str]) -> None:
    assert resolve(command), f"{command} does not exist"
    if Path(command).name == "sophia-mcp" or command.endswith("scripts/dev"):
        parsed = build_parser().parse_args(args)  # exits (fails the test) on an unknown flag
        assert parsed.command == "serve"
        selected_tools(parsed)  # unknown toolsets are refused
    check_environment(env)  # unknown SOPHIA_* settings are refused


def test_the_readme_shows_every_client_the_issue_asks_for() -> None:
    section = " ".join(code for _, code in snippets())
    assert len(JSON_SNIPPETS) == 6 and len(SHELL_LINES) == 3
    assert "claude mcp add" in section and "--transport http" in section
    assert {"mcpServers", "servers"} <= {key for config in JSON_SNIPPETS for key in config}


@pytest.mark.parametrize("config", JSON_SNIPPETS)
def test_each_json_snippet_starts_a_server_that_exists_or_reaches_mcp_with_a_bearer_key(config: dict[str, Any]) -> None:
    inputs = {entry["id"] for entry in config.get("inputs", [])}
    for server in servers(config).values():
        if "command" in server:
            assert server.get("type", "stdio") == "stdio"
            check_server_command(server["command"], server.get("args", []), server.get("env", {}))
        else:
            assert server.get("type", "http") == "http"
            assert server["url"].startswith("https://") and server["url"].endswith("/mcp")
            assert server["headers"]["Authorization"].startswith("Bearer ")
        for reference in re.findall(r"\$\{input:([\w-]+)\}", json.dumps(server)):
            assert reference in inputs, f"${{input:{reference}}} has no matching input"


@pytest.mark.parametrize("line", SHELL_LINES)
def test_each_claude_code_command_is_well_formed(line: str) -> None:
    words = shlex.split(line)
    assert words[:3] == ["claude", "mcp", "add"]
    if "--" in words:
        options, command = words[3 : words.index("--")], words[words.index("--") + 1 :]
        env = dict(value.split("=", 1) for flag, value in itertools.pairwise(options) if flag in ("-e", "--env"))
        assert options[0] == "sophia"
        check_server_command(command[0], command[1:], env)
    else:
        assert words[3:6] == ["--transport", "http", "sophia"]
        assert words[6].endswith("/mcp")
        assert words[words.index("--header") + 1].startswith("Authorization: Bearer ")
