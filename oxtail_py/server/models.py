"""Output models of the MCP tools: each becomes a tool's outputSchema.

Text a peer wrote passes framing.neutralize_json on the way in (`of` constructors).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from oxtail_py.discovery import Row
from oxtail_py.framing import neutralize_json
from oxtail_py.messages import Message


class SessionRow(BaseModel):
    kind: str = Field(
        description="'agent' (an oxtail MCP server) or 'pane' (a tmux pane, no agent)"
    )
    name: str
    tmux_pane: str | None
    tmux_session: str | None
    cwd: str | None
    pane_command: str | None
    client_type: str | None
    client_session_id: str | None
    server_pid: int | None
    purpose: str
    purpose_updated_at: str | None
    role: str = Field("", description="its role (set_my_state); @role:<name> targets it")
    unread: int
    is_me: bool
    parent: str | None = Field(
        None, description="who spawned this agent (its name, or 'person'); null: not spawned"
    )
    spawn_depth: int = Field(0, description="1: spawned by an unspawned agent or the person")

    @classmethod
    def of(cls, row: Row) -> SessionRow:
        return cls(**neutralize_json({k: getattr(row, k) for k in cls.model_fields}))


class SessionList(BaseModel):
    project_root: str
    inferred: bool
    tmux_available: bool
    sessions: list[SessionRow]


class TurnOut(BaseModel):
    role: str
    text: str
    tool_calls: list[str]
    timestamp: str | None


class SessionRead(BaseModel):
    name: str
    kind: str
    mode: str
    client_type: str | None
    client_session_id: str | None
    tmux_pane: str | None
    turns: list[TurnOut] | None = None
    total_turns: int | None = None
    truncated: bool = False
    truncated_reason: str | None = None
    pane_text: str | None = None


class MySession(BaseModel):
    session_id: str | None
    source: str | None
    proof: str | None = Field(None, description="what shows the session id is this agent's")
    claimed: bool
    previous_session_ids: list[str] = Field(
        default_factory=list,
        description="ids this agent had before its client started a new session (/clear); "
        "mail sent to them still reaches it",
    )
    client_type: str | None
    server_pid: int
    tmux_pane: str | None
    tmux_session: str | None
    transcript_path: str | None
    purpose: str
    role: str = Field("", description="your role (set_my_state); peers reach it as @role:<name>")
    conflicts: list[str]
    diagnosis: dict[str, str]
    mailboxes: dict[str, int]
    next_step: str | None


class StateOut(BaseModel):
    purpose: str
    updated_at: str | None
    role: str = ""


class MessageOut(BaseModel):
    message_id: str
    from_session_id: str | None
    request_id: str | None
    reply_to: str | None
    enqueued_at: str
    origin: dict[str, Any]
    action_required: bool = Field(
        False, description="work delegated to you: close it with complete_work or block_work"
    )
    body: str
    late_reply_to_ask: str | None = Field(
        None,
        description="set when this replies to an ask_peer of yours that had timed out: "
        "the request id of that ask (this is its late answer)",
    )

    from_operator: bool = Field(
        False, description="written by the person running these agents (oxtail-py send), "
        "not by a peer"
    )

    @classmethod
    def of(cls, msg: Message, *, late_reply_to_ask: str | None = None) -> MessageOut:
        return cls(**neutralize_json(msg.to_dict()), late_reply_to_ask=late_reply_to_ask,
                   from_operator=msg.from_operator)


class Recipient(BaseModel):
    name: str
    session_id: str | None
    message_id: str = Field(description="the id of this recipient's own copy")
    wake_status: str
    wake_detail: str = ""


class SkippedOut(BaseModel):
    name: str
    session_id: str | None
    reason: str = Field(description="'no-agent', 'duplicate' or 'send-failed'")
    detail: str


class Sent(BaseModel):
    message_id: str | None = Field(
        description="the message's id; for a group target (@all, @claude, @codex, "
        "@role:<name>) null: each recipient's copy has its own id (recipients)"
    )
    target: str
    target_session_id: str | None
    target_pane: str | None
    wake_status: str
    wake_detail: str = Field("", description="why the wake was skipped, or what went wrong")
    recipient_offline: bool = Field(
        False,
        description="no live agent has that session now: the message waits in its inbox and "
        "is delivered when the session comes back (message_status follows it)",
    )
    action_required: bool = False
    recipients: list[Recipient] = Field(
        default_factory=list, description="a group target: who got a copy (one each)"
    )
    skipped: list[SkippedOut] = Field(
        default_factory=list, description="a group target: who did not get a copy, and why"
    )


class Inbox(BaseModel):
    messages: list[MessageOut]
    count: int
    quarantined: int = Field(description="corrupt lines moved to quarantine.jsonl")
    open_work: int = Field(
        0, description="work delegated to you and not closed yet (my_open_work lists it)"
    )


class AskOutcome(BaseModel):
    status: str = Field(
        description="'answered'; 'timeout' (the ask stays pending: a late reply is delivered "
        "to you marked late_reply_to_ask=<request_id>, and you are woken to read it when "
        "idle); or 'peer-gone' (the peer's server exited while you waited; the ask stays "
        "pending in case it comes back)"
    )
    ask_state: str = Field(
        description="the ask in the asks ledger: 'answered' or 'pending' (a late reply is "
        "still expected)"
    )
    note: str = Field("", description="what happens next, when it was not answered")
    request_id: str
    target: str
    target_session_id: str | None
    reply: MessageOut | None
    waited_ms: int
    timeout_ms: int
    timeout_clamped: bool
    wake_status: str
    wake_detail: str = Field("", description="why the wake was skipped, or what went wrong")
