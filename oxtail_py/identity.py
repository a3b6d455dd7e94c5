"""Who am I: the client above this server, and its session id, by several strategies.

Order of trust (first that answers wins; an explicit claim always wins and sticks):
  claim     claim_session / register_my_session, or `oxtail-py claim`
  env       CLAUDE_CODE_SESSION_ID in our environment (Claude Code >= 2.1)
  drop      the SessionStart hook's drop for a client process above us
  meta      Codex: `_meta.threadId` on a tools/call (its env is filtered)
  birth     a Claude transcript born after our client started, unclaimed by others
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import psutil

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_json, ensure_tree, load_json
from oxtail_py.layout import SESSION_ID_RE, Layout, validate_session_id
from oxtail_py.procs import ProcessIdentity, ancestors, identity_of

CLAUDE: Final = "claude"
CODEX: Final = "codex"


def _client_of(proc: psutil.Process) -> str | None:
    try:
        names = [proc.name(), *proc.cmdline()[:2]]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for raw in names:
        base = os.path.basename(raw).lower()
        if base in ("claude", "claude.exe") or "claude-code" in raw:
            return CLAUDE
        if base == "codex" or base.startswith("codex-") or "@openai/codex" in raw:
            return CODEX
    return None


@dataclass(frozen=True, slots=True)
class ClientProcess:
    type: str
    pid: int
    start: str | None


def detect_client(pid: int) -> ClientProcess | None:
    """The nearest claude/codex process above `pid` in the live process tree."""
    for parent in ancestors(pid):
        kind = _client_of(parent)
        if kind is not None:
            try:
                start = f"{parent.create_time():.2f}"
            except psutil.Error:
                start = None
            return ClientProcess(kind, parent.pid, start)
    return None


def session_id_from_env(environ: Mapping[str, str]) -> str | None:
    value = environ.get("CLAUDE_CODE_SESSION_ID", "").strip()
    return value if SESSION_ID_RE.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class Drop:
    session_id: str
    cwd: str | None
    transcript_path: str | None
    client_pid: int


def find_drop(layout: Layout, server_pid: int) -> Drop | None:
    """The SessionStart drop written for a live client process above us, if any."""
    for parent in ancestors(server_pid):
        path = layout.root / "drops" / f"{parent.pid}.json"
        try:
            data = load_json(path)
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        sid, start = data.get("session_id"), data.get("client_start")
        owner = ProcessIdentity(parent.pid, str(start))
        if isinstance(sid, str) and SESSION_ID_RE.fullmatch(sid) and owner.is_alive():
            return Drop(sid, data.get("cwd"), data.get("transcript_path"), parent.pid)
    return None


@dataclass
class IdentityState:
    session_id: str | None = None
    source: str | None = None
    claimed: bool = False
    conflicts: list[str] = field(default_factory=list)
    diagnosis: dict[str, str] = field(default_factory=dict)


def write_claim(layout: Layout, server_pid: int, session_id: str) -> Path:
    """`oxtail-py claim`: a claim for one running server; it adopts it on its next call."""
    validate_session_id(session_id)
    server = identity_of(server_pid)
    if server is None:
        raise OxtailError(f"no running process with pid {server_pid}", code="no-such-server")
    if not layout.session_file(server_pid).exists():
        raise OxtailError(
            f"pid {server_pid} is not an oxtail server (no registry entry); "
            "get_my_session shows your server's pid",
            code="no-such-server",
        )
    path = layout.claim_drop_file(server)
    ensure_tree(layout.root, layout.drops_dir)
    atomic_write_json(path, {"session_id": session_id})
    return path
