"""What a hook prints to hand text to the model, per client and event.

Claude Code and Codex CLI (0.169.0) read the same JSON shapes, but Codex validates
every output against a strict schema: one key it does not know at any level makes
it drop the WHOLE output, context included. So this module emits exactly the keys
both accept and nothing else, and refuses an event a client does not have rather
than guessing a shape.

Codex also caps what reaches the model: a text over 2,500 approximate tokens
(ceil(UTF-8 bytes / 4)) is cut to a head/tail preview and the rest saved to a file
under $CODEX_HOME/hook_outputs/ ("spilled"), so a message body could be cut in the
middle. Claude Code (2.1.330) does the same above 10,000 characters (JS string length)
of additionalContext: the model gets a `<persisted-output>` notice with a 2 KB preview.
`CONTEXT_LIMIT_BYTES` says how much one output may carry for each client.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, TypedDict, cast

from oxtail_py import hook_shapes

# Re-exported (`as`): defined in hook_shapes.py, which the hook's lean check imports alone.
from oxtail_py.hook_shapes import MAX_DENY_REASON_CHARS as MAX_DENY_REASON_CHARS


class Client(StrEnum):
    CLAUDE = "claude"
    CODEX = "codex"


class HookEvent(StrEnum):
    """The events our hook handles, as its command-line argument (lowercase)."""

    SESSION_START = "sessionstart"
    USER_PROMPT_SUBMIT = "userpromptsubmit"
    PRE_TOOL_USE = "pretooluse"
    POST_TOOL_USE = "posttooluse"
    STOP = "stop"


# The event's name in the clients' configs and outputs (`hookEventName`).
EVENT_NAMES: Final[dict[HookEvent, str]] = {
    HookEvent.SESSION_START: "SessionStart",
    HookEvent.USER_PROMPT_SUBMIT: "UserPromptSubmit",
    HookEvent.PRE_TOOL_USE: "PreToolUse",
    HookEvent.POST_TOOL_USE: "PostToolUse",
    HookEvent.STOP: "Stop",
}

# Both clients have all five events (checked against the pinned binaries).
SUPPORTED: Final[dict[Client, frozenset[HookEvent]]] = {
    Client.CLAUDE: frozenset(HookEvent),
    Client.CODEX: frozenset(HookEvent),
}

# Most text one output may carry whole. Codex spills above 2,500 * 4 bytes (observed
# with the real binary: tests/e2e/test_codex_hooks_real.py). Claude Code persists an
# additionalContext longer than 10,000 UTF-16 units (observed with the real binary:
# tests/e2e/test_hook_framing_real.py; in its code, `threshold = 1e4` on `text.length`).
# Counted here in UTF-8 bytes, which are never fewer than UTF-16 units.
CODEX_SPILL_BYTES: Final = 10_000
CLAUDE_PERSIST_CHARS: Final = 10_000
CONTEXT_LIMIT_BYTES: Final[dict[Client, int | None]] = {
    Client.CLAUDE: CLAUDE_PERSIST_CHARS,
    Client.CODEX: CODEX_SPILL_BYTES,
}


class HookSpecificContext(TypedDict):
    hookEventName: str
    additionalContext: str


class ContextOutput(TypedDict):
    """Context added next to the prompt / the tool call (not Stop)."""

    hookSpecificOutput: HookSpecificContext


class BlockOutput(TypedDict):
    """Stop: the model takes one more step with `reason` as a user message."""

    decision: Literal["block"]
    reason: str


class PermissionDecision(TypedDict):
    hookEventName: Literal["PreToolUse"]
    permissionDecision: Literal["deny"]
    permissionDecisionReason: str


class DenyOutput(TypedDict):
    """PreToolUse: the tool call is not run; the model sees the reason (both clients)."""

    hookSpecificOutput: PermissionDecision


HookOutput = ContextOutput | BlockOutput | DenyOutput


class UnsupportedHookEvent(ValueError):
    """A (client, event) pair with no known output shape: a programming error."""


def hook_output(client: Client, event: HookEvent, context_text: str) -> HookOutput:
    """The output that hands `context_text` to `client`'s model at `event`."""
    if event not in SUPPORTED[client]:
        raise UnsupportedHookEvent(f"{client} has no {event} hook")
    if event is HookEvent.STOP:
        return {"decision": "block", "reason": context_text}
    return cast(ContextOutput, hook_shapes.context_output(EVENT_NAMES[event], context_text))


def render(output: HookOutput) -> str:
    """One compact JSON line, as the hook prints it (both clients read UTF-8)."""
    return hook_shapes.render(output)


def fits(client: Client, context_text: str) -> bool:
    """True when `context_text` reaches `client`'s model whole (not spilled)."""
    limit = CONTEXT_LIMIT_BYTES[client]
    return limit is None or len(context_text.encode("utf-8")) <= limit


def deny_output(reason: str) -> DenyOutput:
    """PreToolUse output that blocks the tool call: the one deliberate exception to "a
    hook never blocks" (a file under another agent's exclusive reservation). The same
    keys for Claude Code and Codex (checked against both binaries:
    tests/e2e/test_reservations_real.py), and no others: Codex drops an output with an
    unknown key, and the edit would run."""
    return cast(DenyOutput, hook_shapes.deny_output(reason))
