"""Tools about agents: who is here, what a peer has done, who am I, my state card."""

from __future__ import annotations

from typing import Literal

from mcp.server.mcpserver import Context, MCPServer

from oxtail_py.framing import neutralize, neutralize_json
from oxtail_py.server.models import (
    MySession,
    SessionList,
    SessionRead,
    SessionRow,
    StateOut,
    TurnOut,
)
from oxtail_py.server.plumbing import ToolContext

ReadMode = Literal["auto", "transcript", "pane"]


def register(mcp: MCPServer, tools: ToolContext) -> None:
    @mcp.tool()
    def list_project_sessions(ctx: Context, project_root: str | None = None) -> SessionList:
        """List the agents (and plain tmux panes) in this project: name, client type,
        session id, state card, unread count. project_root defaults to the nearest .git
        ancestor of this agent's directory; it may name a directory inside that project,
        never outside it."""

        def work() -> SessionList:
            listing = tools.agent.list_sessions(project_root)
            return SessionList(
                project_root=str(listing.project_root),
                inferred=listing.inferred,
                tmux_available=listing.tmux_available,
                sessions=[SessionRow.of(r) for r in listing.rows],
            )

        return tools.call(ctx, work)

    @mcp.tool()
    def read_session(
        ctx: Context,
        name: str,
        project_root: str | None = None,
        mode: ReadMode = "auto",
        limit: int = 20,
        max_bytes: int = 20_000,
        pane_lines: int = 80,
    ) -> SessionRead:
        """Read what a peer has been doing: its transcript as clean turns (mode
        'transcript'), or its tmux pane's screen (mode 'pane'); 'auto' prefers the
        transcript. name: tmux session name or session id."""

        def work() -> SessionRead:
            got = tools.agent.read_session(name, project_root, mode, limit, max_bytes, pane_lines)
            shown = SessionRead(
                name=got.name,
                kind=got.kind,
                mode=got.mode,
                client_type=got.client_type,
                client_session_id=got.client_session_id,
                tmux_pane=got.tmux_pane,
                pane_text=neutralize_json(got.pane_text),
                truncated=got.truncated,
            )
            view = got.transcript
            if view is not None:
                shown.turns = [
                    TurnOut(
                        role=t.role,
                        text=neutralize(t.text),
                        timestamp=t.timestamp,
                        tool_calls=[neutralize(f"{c.name}: {c.summary}") for c in t.tool_calls],
                    )
                    for t in view.turns
                ]
                shown.total_turns = view.total_turns
                shown.truncated = view.truncated
                shown.truncated_reason = view.truncated_reason
            return shown

        return tools.call(ctx, work)

    def _me() -> MySession:
        report = tools.agent.my_session()
        entry, ident = report.entry, report.identity
        return MySession(
            session_id=ident.session_id,
            source=ident.source,
            proof=ident.proof,
            claimed=ident.claimed,
            previous_session_ids=ident.previous_session_ids,
            client_type=entry.client.type,
            server_pid=entry.server_pid,
            tmux_pane=entry.tmux.pane,
            tmux_session=entry.tmux.session,
            transcript_path=entry.client.transcript_path,
            purpose=entry.state.purpose,
            role=entry.state.role,
            conflicts=ident.conflicts,
            diagnosis=ident.diagnosis,
            mailboxes=report.mailboxes,
            next_step=report.next_step,
        )

    def _claim(session_id: str) -> MySession:
        tools.agent.claim(session_id)
        return _me()

    @mcp.tool()
    def claim_session(ctx: Context, session_id: str) -> MySession:
        """Pin this agent's session id (Claude: $CLAUDE_CODE_SESSION_ID, Codex:
        $CODEX_THREAD_ID). Sticky: auto-detection never overrides a claim (only this
        client's own next session, after /clear, moves it). Refused for an id another
        live agent holds or a session of another project."""
        return tools.call(ctx, lambda: _claim(session_id))

    @mcp.tool()
    def register_my_session(ctx: Context, session_id: str) -> MySession:
        """Same as claim_session (kept for clients that know this name)."""
        return tools.call(ctx, lambda: _claim(session_id))

    @mcp.tool()
    def get_my_session(ctx: Context) -> MySession:
        """This agent's registry entry, how its identity was found (per strategy),
        and next_step: the exact command to run when it is not resolved."""
        return tools.call(ctx, _me)

    @mcp.tool()
    def set_my_state(ctx: Context, purpose: str, role: str | None = None) -> StateOut:
        """Set your state card (≤ 200 chars): what you are working on, shown to peers.
        role (optional): a short word naming your part (e.g. 'reviewer', 'tests'); peers
        reach everyone with a role by send_message(target='@role:<name>'). Omitted keeps
        your current role; '' clears it."""

        def work() -> StateOut:
            card = tools.agent.set_state(purpose, role)
            return StateOut(purpose=card.purpose, updated_at=card.updated_at, role=card.role)

        return tools.call(ctx, work)
