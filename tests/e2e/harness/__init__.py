"""End-to-end harness: real Claude Code / Codex CLI against scripted model servers.

Everything here runs only inside a loopback-only network namespace (scripts/netns-run);
tests/e2e/conftest.py checks that and skips otherwise.
"""

from .agents import (
    Agent,
    ClaudeAgent,
    CodexAgent,
    Headless,
    McpServer,
    claude_hooks,
    oxtail_server,
    stub_server,
    wait_for_transcript,
)
from .anthropic import AnthropicModel, AnthropicRequest
from .clients import Clients, ClientsUnavailable, ensure_clients, isolation_problem
from .model import (
    ModelRequest,
    ModelServer,
    Reply,
    Script,
    ScriptError,
    SeenToolCall,
    SeenToolResult,
    Text,
    ToolCall,
    always,
    call_then_text,
)
from .responses import ResponsesModel, ResponsesRequest
from .scenario import OXTAIL, Scenario
from .tmux import Pane, Tmux
from .wait import WaitTimeout, wait_until

__all__ = [
    "OXTAIL",
    "Agent",
    "AnthropicModel",
    "AnthropicRequest",
    "ClaudeAgent",
    "Clients",
    "ClientsUnavailable",
    "CodexAgent",
    "Headless",
    "McpServer",
    "ModelRequest",
    "ModelServer",
    "Pane",
    "Reply",
    "ResponsesModel",
    "ResponsesRequest",
    "Scenario",
    "Script",
    "ScriptError",
    "SeenToolCall",
    "SeenToolResult",
    "Text",
    "Tmux",
    "ToolCall",
    "WaitTimeout",
    "always",
    "call_then_text",
    "claude_hooks",
    "ensure_clients",
    "isolation_problem",
    "oxtail_server",
    "stub_server",
    "wait_for_transcript",
    "wait_until",
]
