"""A minimal stdio MCP server for the harness smoke tests, standing in for `oxtail_py serve`.

It lets the smoke tests prove the MCP plumbing of both clients (config, tool naming, the
model's call reaching a server and the result coming back) before our real server exists.
No dependencies (the mcp SDK costs ~0.7 s to import): newline-delimited JSON-RPC by hand.

Its one tool, `whoami`, answers with what an MCP server can learn about its caller: selected
environment variables, its cwd and the `_meta` of the call, as JSON text.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

ENV_KEYS = (
    "AGENTMAIL_HOME",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_PROJECT_DIR",
    "CLAUDECODE",
    "CODEX_THREAD_ID",
    "TMUX",
    "TMUX_PANE",
    "HOME",
)

TOOLS = [
    {
        "name": "whoami",
        "description": "Report the caller's identity as this MCP server sees it.",
        "inputSchema": {
            "type": "object",
            "properties": {"note": {"type": "string"}},
            "additionalProperties": False,
        },
    }
]


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    method = request.get("method")
    params = request.get("params") or {}
    if method == "initialize":
        result: dict[str, Any] = {
            # Echo the client's protocol version: both clients accept their own.
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "e2e-stub", "version": "0"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        report = {
            "tool": params.get("name"),
            "arguments": params.get("arguments"),
            "meta": params.get("_meta"),
            "cwd": os.getcwd(),
            "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
        }
        result = {"content": [{"type": "text", "text": "STUB-WHOAMI " + json.dumps(report)}]}
    elif method == "ping":
        result = {}
    elif "id" not in request:
        return None  # a notification (e.g. notifications/initialized): no answer
    else:
        return {
            "jsonrpc": "2.0",
            "id": request["id"],
            "error": {"code": -32601, "message": f"method not found: {method}"},
        }
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
