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
    unread: int
    is_me: bool

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
    conflicts: list[str]
    diagnosis: dict[str, str]
    mailboxes: dict[str, int]
    next_step: str | None


class StateOut(BaseModel):
    purpose: str
    updated_at: str | None


class MessageOut(BaseModel):
    message_id: str
    from_session_id: str | None
    request_id: str | None
    reply_to: str | None
    enqueued_at: str
    origin: dict[str, Any]
    body: str
    from_operator: bool = Field(
        False, description="written by the person running these agents (oxtail-py send), "
        "not by a peer"
    )

    @classmethod
    def of(cls, msg: Message) -> MessageOut:
        return cls(**neutralize_json(msg.to_dict()), from_operator=msg.from_operator)


class Sent(BaseModel):
    message_id: str
    target: str
    target_session_id: str | None
    target_pane: str | None
    wake_status: str
    wake_detail: str = Field("", description="why the wake was skipped, or what went wrong")


class Inbox(BaseModel):
    messages: list[MessageOut]
    count: int
    quarantined: int = Field(description="corrupt lines moved to quarantine.jsonl")


class AskOutcome(BaseModel):
    status: str = Field(
        description="'answered'; 'timeout' (a late reply lands in your inbox); or 'peer-gone' "
        "(the peer's server exited while you waited: no reply will come; ask another peer "
        "or wait for it to come back)"
    )
    request_id: str
    target: str
    target_session_id: str | None
    reply: MessageOut | None
    waited_ms: int
    timeout_ms: int
    timeout_clamped: bool
    wake_status: str
    wake_detail: str = Field("", description="why the wake was skipped, or what went wrong")


