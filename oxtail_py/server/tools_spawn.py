"""Tools that start and end helpers: spawn_peer, stop_peer (core: oxtail_py/spawn)."""

from __future__ import annotations

import os
from typing import Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from oxtail_py.agent import Agent
from oxtail_py.layout import Layout
from oxtail_py.server.plumbing import ToolContext
from oxtail_py.spawn.lineage import environ_of
from oxtail_py.spawn.spawner import Caller, Spawner

ClientName = Literal["claude", "codex"]


class Spawned(BaseModel):
    spawn_id: str
    client: str
    name: str = Field(description="its name: the target for send_message, ask_peer, stop_peer")
    role: str
    depth: int = Field(description="1: spawned by an agent that was not itself spawned")
    session_id: str | None = Field(
        description="its session id; null for a Codex that made no tool call yet (see note)"
    )
    server_pid: int
    pane: str
    tmux_session: str
    detached: bool = Field(description="true: started in a detached session (no tmux here)")
    attach: str | None = Field(description="the command that shows a detached session")
    prompt_confirmed: bool | None = Field(
        description="its transcript or prompt history shows the first prompt was submitted"
    )
    registered_ms: int = Field(description="start -> its server registered")
    elapsed_ms: int = Field(description="start -> first prompt handed over (the whole call)")
    note: str = ""


class Stopped(BaseModel):
    name: str
    session_id: str | None
    server_pid: int | None
    goodbye_message_id: str
    client_pid: int | None
    ended: bool = Field(description="its client process has exited")


def caller_of(agent: Agent) -> Caller:
    """This agent as a spawner. The client gets the environment its parent client was
    started with (the kernel's copy): the user's own configuration, nothing added."""
    client = agent.client
    env = environ_of(client.pid) if client is not None else {}
    entry = agent.entry
    name = (
        (entry.parent.child_name if entry.parent else "")
        or entry.tmux.session or agent.identity.session_id or f"pid-{agent.me.pid}"
    )
    home = agent.settings.home if agent.settings else None
    return Caller(
        by="agent", pid=agent.me.pid, cwd=agent.cwd, name=name,
        session_id=agent.identity.session_id, tmux_session=entry.tmux.session,
        env=env or dict(os.environ), home=home,
    )  # fmt: skip


def register(mcp: MCPServer, tools: ToolContext) -> None:
    spawner = Spawner(Layout(tools.settings.root), tools.settings)

    @mcp.tool()
    def spawn_peer(
        ctx: Context,
        client: ClientName,
        prompt: str,
        name: str | None = None,
        role: str | None = None,
        project_root: str | None = None,
    ) -> Spawned:
        """Start a helper agent (Claude Code or Codex) in this project, in a new tmux
        window, with your configuration; returns once its server is registered and it has
        taken `prompt` as its first turn. Then send_message / ask_peer it by name, and
        stop_peer it when done. Limits: depth 2, 8 live helpers per project."""

        def work() -> Spawned:
            tools.agent.refresh_identity()
            result = spawner.spawn(
                caller_of(tools.agent), client, prompt, name=name, role=role,
                project_root=project_root,
            )  # fmt: skip
            return Spawned(**vars(result))

        return tools.call(ctx, work)

    @mcp.tool()
    def stop_peer(ctx: Context, target: str) -> Stopped:
        """End a helper you spawned: a goodbye message, then its client process. Any
        other agent is refused (not-your-spawn)."""

        def work() -> Stopped:
            caller = caller_of(tools.agent)
            result = spawner.stop(caller, target, project_root=tools.agent.project_root)
            return Stopped(**vars(result))

        return tools.call(ctx, work)
