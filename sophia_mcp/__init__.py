"""sophia-mcp: one MCP server for seven work platforms."""

__version__ = "0.1.0"
