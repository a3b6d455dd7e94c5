"""Tools that move mail: send, read, ask and wait."""

from __future__ import annotations

from typing import cast

import anyio
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer

from oxtail_py import asking, asks_ledger
from oxtail_py.broadcast import broadcast
from oxtail_py.errors import OxtailError
from oxtail_py.server.models import AskOutcome, Inbox, MessageOut, Recipient, Sent, SkippedOut
from oxtail_py.server.plumbing import (
    ToolContext,
    WakeMode,
    error_result,
    wake_mode,
    wake_recipient,
)
from oxtail_py.settings import Settings
from oxtail_py.targets import is_group
from oxtail_py.wake import WakeReport, WakeStatus

_PENDING_NOTE = (
    "The ask {request_id} stays pending. Carry on with other work: its reply, whenever it "
    "comes, is delivered to you marked late_reply_to_ask={request_id}, and if you are "
    "idle then you are woken to read it."
)


def _broadcast(
    tools: ToolContext,
    target: str,
    body: str,
    reply_to: str | None,
    waking: bool,
    action_required: bool,
) -> Sent:
    sent = broadcast(
        tools.agent, target, body, cap=tools.settings.broadcast_cap, wake=waking,
        reply_to=reply_to, action_required=action_required,
    )  # fmt: skip
    return Sent(
        message_id=None,
        target=sent.group.label,
        target_session_id=None,
        target_pane=None,
        wake_status=WakeStatus.DISABLED if not waking else "per-recipient",
        wake_detail="each recipient's wake is in recipients" if waking else "",
        recipient_offline=False,
        recipients=[
            Recipient(
                name=c.row.name,
                session_id=c.row.client_session_id,
                message_id=c.message_id,
                wake_status=c.wake.status,
                wake_detail=c.wake.detail,
            )
            for c in sent.copies
        ],
        skipped=[
            SkippedOut(name=s.name, session_id=s.session_id, reason=s.reason, detail=s.detail)
            for s in sent.skipped
        ],
    )


def _ask_timeout(settings: Settings, requested: int | None) -> tuple[int, bool]:
    default, ceiling = settings.ask_timeout_ms, settings.ask_max_timeout_ms
    wanted = default if requested is None or requested <= 0 else requested
    return min(wanted, ceiling), wanted > ceiling


def register(mcp: MCPServer, tools: ToolContext) -> None:
    @mcp.tool()
    def send_message(
        ctx: Context,
        target: str,
        body: str,
        reply_to: str | None = None,
        wake: WakeMode = "off",
        action_required: bool = False,
    ) -> Sent:
        """Send a message (≤ 8 KB) to a peer in this project. target: tmux session name
        or session id (a session whose client exited gets it when it comes back); or a
        group: '@all', '@claude', '@codex' or '@role:<name>' (each member gets its own
        copy; the result lists recipients and who was skipped, and why). reply_to: the
        request_id you are answering (reply_to_message does this for you). wake: 'auto'
        also prompts an idle peer to read its inbox (one line into its client); default
        'off'. action_required: this is work you delegate; the peer owes complete_work
        or block_work, and message_status shows its state."""

        def work() -> Sent:
            waking = wake_mode(wake)
            if is_group(target):
                return _broadcast(tools, target, body, reply_to, waking, action_required)
            receipt = tools.agent.send(
                target, body, reply_to=reply_to, action_required=action_required
            )
            report = (
                wake_recipient(tools, receipt, reply_to, "send_message")
                if waking
                else WakeReport(WakeStatus.DISABLED)
            )
            return Sent(
                message_id=receipt.message_id,
                target=receipt.target.name,
                target_session_id=receipt.target.client_session_id,
                target_pane=receipt.target.tmux_pane,
                wake_status=report.status,
                wake_detail=report.detail,
                recipient_offline=receipt.offline,
                action_required=action_required,
            )

        return tools.call(ctx, work)

    @mcp.tool()
    async def read_my_messages(ctx: Context) -> Inbox:
        """Take every message waiting for you, oldest first. Each is shown once."""
        tools.agent.observe_meta(ctx.request_context.meta)
        try:
            taken = await anyio.to_thread.run_sync(tools.agent.read)
        except OxtailError as exc:
            return cast(Inbox, error_result(exc))
        try:
            agent = tools.agent
            late = asks_ledger.late_replies(agent.layout, agent.my_keys(), taken.messages)
            open_work = await anyio.to_thread.run_sync(tools.agent.open_work_count)
            result = Inbox(
                messages=[MessageOut.of(m, late_reply_to_ask=late.of(m)) for m in taken.messages],
                count=len(taken.messages),
                quarantined=taken.quarantined,
                open_work=open_work,
            )
            # The last await: a cancel that arrives after it cannot stop the answer
            # (the SDK writes it with no checkpoint between), so commit only now.
            await anyio.lowlevel.checkpoint()
        except BaseException:
            taken.abort()
            raise
        tools.agent.handed_over(taken.messages, "read_my_messages")
        taken.commit()
        asks_ledger.record_handed_over(tools.agent.layout, late, taken.messages)
        return result

    @mcp.tool()
    async def ask_peer(
        ctx: Context,
        target: str,
        body: str,
        timeout_ms: int | None = None,
        wake: WakeMode = "auto",
    ) -> AskOutcome:
        """Ask a peer and wait for its answer (it replies with send_message(reply_to=
        <request_id>)). Returns the reply; or status 'timeout' (default 60 s): the ask
        stays pending and its late reply is delivered to you marked late_reply_to_ask
        (you are woken for it when idle); or 'peer-gone' when the peer's server exits
        during the wait. Refused at once with error 'would-deadlock' when the peer is
        itself waiting, directly or through others, for an answer from you. wake 'auto'
        (default) prompts an idle peer to read its inbox; 'off' does not."""
        tools.agent.observe_meta(ctx.request_context.meta)
        timeout, clamped = _ask_timeout(tools.settings, timeout_ms)
        try:
            asked = await asking.ask_peer(
                tools.agent, tools.watcher, target, body, timeout_ms=timeout, wake=wake_mode(wake)
            )
        except OxtailError as exc:
            return cast(AskOutcome, error_result(exc))
        answered = asked.status == asking.AskStatus.ANSWERED
        return AskOutcome(
            status=asked.status,
            ask_state="answered" if answered else "pending",
            note="" if answered else _PENDING_NOTE.format(request_id=asked.request_id),
            request_id=asked.request_id,
            target=asked.target.name,
            target_session_id=asked.target.client_session_id,
            reply=MessageOut.of(asked.reply) if asked.reply else None,
            waited_ms=asked.waited_ms,
            timeout_ms=timeout,
            timeout_clamped=clamped,
            wake_status=asked.wake.status,
            wake_detail=asked.wake.detail,
        )
