"""Tools of obligations and receipts: message_status, reply_to_message, delegated work.

The core is plain code (work.py, message_status.py, obligations.py); each tool maps
arguments in and a typed result out.
"""

from __future__ import annotations

from typing import Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from oxtail_py import work
from oxtail_py.framing import neutralize, neutralize_json
from oxtail_py.message_status import message_status as status_of
from oxtail_py.obligations import WorkStatus
from oxtail_py.server.plumbing import ToolContext, WakeMode, wake_mode, wake_recipient
from oxtail_py.wake import WakeReport, WakeStatus


class WorkOut(BaseModel):
    message_id: str = Field(description="the delegating message's id")
    state: Literal["open", "blocked", "done"]
    requester_session_id: str
    owner_session_id: str
    since: str = Field(description="when the work was handed out")
    summary: str = Field(description="the start of the request (a peer's text)")
    blocked_reason: str | None = None
    blocked_at: str | None = None
    done_at: str | None = None
    result_message_id: str | None = None

    @classmethod
    def of(cls, status: WorkStatus) -> WorkOut:
        ob = status.obligation
        return cls(
            message_id=ob.message_id,
            state=status.state.value,
            requester_session_id=ob.requester_session_id,
            owner_session_id=ob.owner_session_id,
            since=ob.created_at,
            summary=neutralize(ob.summary),
            blocked_reason=neutralize(status.blocked.reason) if status.blocked else None,
            blocked_at=status.blocked.at if status.blocked else None,
            done_at=status.done.at if status.done else None,
            result_message_id=status.done.result_message_id if status.done else None,
        )


class WakeOut(BaseModel):
    status: str
    detail: str
    by: str
    attempt: int
    at: str


class MessageStatusOut(BaseModel):
    message_id: str
    status: Literal["delivered", "pending", "undeliverable", "unknown"]
    to: str
    to_session_id: str | None
    sent_at: str
    age_s: float = Field(description="seconds since it was sent")
    delivered_via: Literal["hook", "read_my_messages", "ask_peer"] | None = None
    delivered_event: str | None = Field(None, description="the hook event, for via 'hook'")
    delivered_at: str | None = None
    delivered_to_session_id: str | None = None
    recipient_live: bool
    recipient_state: Literal["busy", "idle", "unknown", "offline"]
    gone_since: str | None = Field(
        None, description="undeliverable: the recipient's last sign of life"
    )
    work: WorkOut | None = Field(None, description="for action_required: the work's state")
    wakes: list[WakeOut] = Field(default_factory=list, description="wakes tried, newest last")
    detail: str


class Replied(BaseModel):
    message_id: str = Field(description="the reply's own id (message_status takes it)")
    reply_to: str
    target_session_id: str | None
    recipient_offline: bool
    answered_waiting_ask: bool = Field(
        description="the sender was blocked in ask_peer on this: the ask returns it now"
    )
    wake_status: str
    wake_detail: str = ""


class OpenWork(BaseModel):
    work: list[WorkOut]
    count: int


class WorkClosed(BaseModel):
    message_id: str
    state: Literal["open", "blocked", "done"]
    requester_session_id: str
    sent_message_id: str | None = Field(
        description="the reply that told the requester; None: recorded, not sent yet (it is "
        "re-sent by your next my_open_work)"
    )
    send_error: str | None = None
    wake_status: str = WakeStatus.DISABLED
    wake_detail: str = ""


def register(mcp: MCPServer, tools: ToolContext) -> None:
    @mcp.tool()
    def message_status(ctx: Context, message_id: str) -> MessageStatusOut:
        """What became of a message you sent: 'delivered' (via which path, when, to which
        session), 'pending' (its age; the recipient live, busy or idle), 'undeliverable'
        (the recipient is gone, since when; the mail is kept) or 'unknown'. For delegated
        work (action_required) also the work's state: open, blocked (why) or done."""

        def run() -> MessageStatusOut:
            r = status_of(tools.agent.layout, tools.agent.my_keys(), message_id)
            got = r.receipt
            out = MessageStatusOut(
                message_id=r.message_id,
                status=r.status,
                to=neutralize(r.to_name),
                to_session_id=r.to_session_id,
                sent_at=r.sent_at,
                age_s=r.age_s,
                delivered_via=got.via if got else None,
                delivered_event=got.event if got else None,
                delivered_at=got.at if got else None,
                delivered_to_session_id=got.session_id if got else None,
                recipient_live=r.recipient_live,
                recipient_state=r.recipient_state,
                gone_since=r.gone_since,
                work=WorkOut.of(r.work) if r.work else None,
                wakes=[WakeOut(**{k: getattr(w, k) for k in WakeOut.model_fields})
                       for w in r.wakes],
                detail=r.detail,
            )
            # Receipts, wake outcomes and work records are written by other servers: every
            # string of them reaches the model neutralized, not only the names.
            return MessageStatusOut.model_validate(neutralize_json(out.model_dump()))

        return tools.call(ctx, run)

    @mcp.tool()
    def reply_to_message(
        ctx: Context, message_id: str, body: str, wake: WakeMode = "off"
    ) -> Replied:
        """Answer a message you were handed, by its message_id (≤ 8 KB): its sender is the
        target, and a sender waiting in ask_peer gets this as its answer. Works for
        requests and plain notes. wake 'auto' also prompts an idle sender."""

        def run() -> Replied:
            waking = wake_mode(wake)
            sent = work.reply_to_message(tools.agent, message_id, body)
            report = WakeReport(WakeStatus.DISABLED)
            if waking:
                report = wake_recipient(tools, sent, message_id, "reply_to_message")
            return Replied(
                message_id=sent.message_id,
                reply_to=message_id,
                target_session_id=sent.target.client_session_id,
                recipient_offline=sent.offline,
                answered_waiting_ask=sent.reply_awaited,
                wake_status=report.status,
                wake_detail=report.detail,
            )

        return tools.call(ctx, run)

    @mcp.tool()
    def my_open_work(ctx: Context) -> OpenWork:
        """Work peers delegated to you (send_message with action_required) that you have
        not completed: from whom, what, since when; blocked items say why."""

        def run() -> OpenWork:
            found = [WorkOut.of(s) for s in work.my_open_work(tools.agent)]
            return OpenWork(work=found, count=len(found))

        return tools.call(ctx, run)

    def _closed(result: work.Closed, woke: WakeReport) -> WorkClosed:
        return WorkClosed(
            message_id=result.message_id,
            state=result.state.value,
            requester_session_id=result.requester_session_id,
            sent_message_id=result.sent.message_id if result.sent else None,
            send_error=result.send_error,
            wake_status=woke.status,
            wake_detail=woke.detail,
        )

    @mcp.tool()
    def complete_work(
        ctx: Context, message_id: str, body: str, wake: WakeMode = "auto"
    ) -> WorkClosed:
        """Finish work delegated to you: `body` (≤ 8 KB) goes to the requester as the reply
        to `message_id`, and the work is closed (once: a second call is refused). wake
        'auto' (default) prompts an idle requester to read it."""

        def run() -> WorkClosed:
            waking = wake_mode(wake)
            result = work.complete_work(tools.agent, message_id, body)
            woke = WakeReport(WakeStatus.DISABLED)
            if waking and result.sent is not None:
                woke = wake_recipient(tools, result.sent, message_id, "complete_work")
            return _closed(result, woke)

        return tools.call(ctx, run)

    @mcp.tool()
    def block_work(
        ctx: Context, message_id: str, reason: str, wake: WakeMode = "auto"
    ) -> WorkClosed:
        """Say that work delegated to you is blocked, and why (≤ 2,000 bytes): the requester
        is told and the work is marked blocked (complete_work can still close it)."""

        def run() -> WorkClosed:
            waking = wake_mode(wake)
            result = work.block_work(tools.agent, message_id, reason)
            woke = WakeReport(WakeStatus.DISABLED)
            if waking and result.sent is not None:
                woke = wake_recipient(tools, result.sent, message_id, "block_work")
            return _closed(result, woke)

        return tools.call(ctx, run)
