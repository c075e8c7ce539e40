"""Small MCP servers the MCP tests record against."""
