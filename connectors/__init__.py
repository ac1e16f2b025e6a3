"""One module per platform. Each defines `CONNECTOR` (its `Connector` subclass) and `TOOLS` (its
`ToolSpec` table); adding a platform is adding a module here and its sandbox module."""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from sophia_mcp.config import PLATFORMS


@cache
def load_connector_modules() -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(f"connectors.{platform}") for platform in PLATFORMS)
