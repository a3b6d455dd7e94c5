"""The JSON shapes a hook prints, built in one place. Lean (imports only `json`).

hook_output.py gives them their types (TypedDicts, per client and event) and the limits;
the hook's reservation check (reservation_check.py) builds its deny and its warning here
directly, so that it starts without `typing` and `enum`. Codex drops an output with one
key it does not know, at any level: these are the only keys we emit.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, Final

# The clients, as the hook's first argument names them (hook_output.Client's values).
CLIENTS: Final = ("claude", "codex")
# The most reason text a deny carries: it names the holders and how to ask them.
MAX_DENY_REASON_CHARS: Final = 4000


def context_output(event_name: str, context_text: str) -> dict[str, Any]:
    """Context handed to the model next to the prompt or the tool call (not Stop)."""
    return {"hookSpecificOutput": {"hookEventName": event_name, "additionalContext": context_text}}


def deny_output(reason: str) -> dict[str, Any]:
    """PreToolUse output that blocks the tool call: the same keys for Claude Code and Codex
    (checked against both binaries: tests/e2e/test_reservations_real.py), and no others."""
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason[:MAX_DENY_REASON_CHARS],
        }
    }


def render(output: Any) -> str:
    """One compact JSON line, as the hook prints it (both clients read UTF-8)."""
    return json.dumps(output, ensure_ascii=False, separators=(",", ":"))
