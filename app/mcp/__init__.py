"""The MCP server (`/_mcp/server`): the current generation's operations as MCP tools (server.py)."""
