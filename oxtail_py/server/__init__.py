"""The stdio MCP server (imports the MCP SDK: never import this on a hook path)."""

from oxtail_py.server.app import build_server, serve
from oxtail_py.server.models import MessageOut, SessionList, SessionRow

__all__ = ["MessageOut", "SessionList", "SessionRow", "build_server", "serve"]
