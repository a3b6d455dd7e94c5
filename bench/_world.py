"""What the server benchmarks share: a temp world (project, HOME, AGENTMAIL_HOME, a
private tmux server) and an MCP client to a real `python -m oxtail_py serve`."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult

from oxtail_py.layout import Layout
from oxtail_py.procs import identity_of
from oxtail_py.registry import ClientInfo, Registry, SessionEntry


@dataclass(frozen=True)
class World:
    root: Path
    project: Path
    home: Path
    agentmail: Path
    tmux_socket: Path

    def tmux(self, *args: str) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.tmux_socket), *args], check=True, capture_output=True
        )

    def env(self, session_id: str) -> dict[str, str]:
        return {
            "AGENTMAIL_HOME": str(self.agentmail),
            "HOME": str(self.home),
            "OXTAIL_TMUX_SOCKET": str(self.tmux_socket),
            "CLAUDE_CODE_SESSION_ID": session_id,
        }

    def server(self, session_id: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "oxtail_py", "serve"],
            cwd=self.project,
            env=self.env(session_id),
        )


@contextlib.contextmanager
def world(sessions: int = 1, windows: int = 1) -> Iterator[World]:
    """Temp project/HOME/AGENTMAIL_HOME and a private tmux server of sessions x windows panes."""
    root = Path(tempfile.mkdtemp(prefix="oxb-", dir="/tmp"))  # short: a unix socket path
    w = World(root, root / "proj", root / "home", root / "agentmail", root / "s")
    (w.project / ".git").mkdir(parents=True)
    w.home.mkdir()
    try:
        for s in range(sessions):
            name = f"bench{s:02d}"
            w.tmux("new-session", "-d", "-s", name, "-c", str(w.project), "sleep 600")
            for _ in range(windows - 1):
                w.tmux("new-window", "-d", "-t", name, "-c", str(w.project), "sleep 600")
        yield w
    finally:
        subprocess.run(
            ["tmux", "-S", str(w.tmux_socket), "kill-server"], capture_output=True, check=False
        )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fake_agents(w: World, count: int) -> Iterator[list[str]]:
    """`count` live registry entries: real `sleep` processes, each with a session id."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        registry = Registry(Layout(w.agentmail))
        sids: list[str] = []
        for n in range(count):
            proc = subprocess.Popen(["sleep", "600"])
            procs.append(proc)
            ident = identity_of(proc.pid)
            if ident is None:
                raise RuntimeError(f"sleep {proc.pid} died at once")
            sid = f"cccccccc-0000-4000-8000-{n:012d}"
            sids.append(sid)
            registry.write(
                SessionEntry(
                    ident.pid,
                    ident.start,
                    client=ClientInfo(
                        type="claude", session_id=sid, cwd=str(w.project), identity_source="env"
                    ),
                    capabilities=["ask_peer", "read_session", "wake"],
                )
            )
        yield sids
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


@contextlib.asynccontextmanager
async def connect(params: StdioServerParameters) -> AsyncIterator[Client]:
    # Leaving the block closes the server's stdin and stops the process.
    async with Client(params, mode="legacy") as client:
        yield client


def ok(result: CallToolResult) -> dict[str, Any]:
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"tool call failed: {result.content}")
    return dict(result.structured_content)
