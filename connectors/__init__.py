"""One module per platform. Each defines `CONNECTOR` (its `Connector` subclass) and `TOOLS` (its
`ToolSpec` table); adding a platform is adding a module here and its sandbox module."""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from sophia_mcp.config import PLATFORMS


@cache
def load_connector_modules() -> tuple[ModuleType, ...]:
    modules = []
    for platform in PLATFORMS:
        try:
            modules.append(importlib.import_module(f"connectors.{platform}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"connectors.{platform}":
                raise
    return tuple(modules)
