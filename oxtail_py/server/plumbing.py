"""What every tool module shares: the context a tool runs in, and the error mapping.

A tool module (`tools_*.py`) exposes `register(mcp, tools)`: it defines its tools on the
MCPServer and reaches the core only through `tools.agent` (and the watcher/settings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent

from oxtail_py import receipts
from oxtail_py.agent import Agent
from oxtail_py.agent_messaging import SendReceipt
from oxtail_py.errors import OxtailError
from oxtail_py.settings import Settings
from oxtail_py.wake import WakeReport, WakeStatus
from oxtail_py.watch import MailboxWatcher

T = TypeVar("T")

WakeMode = Literal["auto", "off"]


def error_result(exc: OxtailError) -> CallToolResult:
    """A failure as an isError result: {"error": <stable code>, "message": <what to do>}."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"{exc.code}: {exc}")],
        structured_content={"error": exc.code, "message": str(exc)},
        is_error=True,
    )


@dataclass(frozen=True)
class ToolContext:
    agent: Agent
    watcher: MailboxWatcher
    settings: Settings

    def call(self, ctx: Context, work: Callable[[], T]) -> T:
        """Run a sync tool's core: note the call's `_meta` (Codex's thread id), map an
        OxtailError to an error result."""
        self.agent.observe_meta(ctx.request_context.meta)
        try:
            return work()
        except OxtailError as exc:
            return cast(T, error_result(exc))


def wake_recipient(
    tools: ToolContext, sent: SendReceipt, reply_to: str | None, by: str
) -> WakeReport:
    """Rouse the recipient of `sent` when it can use it (not offline, not waiting in
    ask_peer for this very reply); a wake tried goes on record as `by`."""
    if sent.offline:
        return WakeReport(
            WakeStatus.SKIPPED_NO_TARGET,
            detail="the recipient is offline; its mail waits until its session resumes",
        )
    if sent.reply_awaited:
        return WakeReport(
            WakeStatus.SKIPPED_BUSY, detail="it is waiting in ask_peer for this reply"
        )
    report = tools.agent.wake(sent.target, sent.message_id, reply_to=reply_to)
    receipts.record_wake_outcome(
        tools.agent.layout, sent.message_id, status=report.status, detail=report.detail, by=by
    )
    return report


def wake_mode(wake: str) -> bool:
    if wake not in ("auto", "off"):
        raise OxtailError(f"wake must be 'auto' or 'off', not {wake!r}", code="bad-wake")
    return wake == "auto"
