"""The peer to wake, as the live process tree shows it, never as its registry entry says.

A registry entry is written by its peer (or by anyone who can write the directory); it only
names a server process. Everything a wake acts on is taken from the live system and
checked: the client above that server must be a real client executable (client.py), its
live cwd must lie inside the waker's project, and the pane the tree proves hosts the
server must have its current path inside the project too. A failed check is a
`NoTarget` saying which check and what was found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from oxtail_py import tmux
from oxtail_py.discovery import Row
from oxtail_py.identity import CLAUDE, CODEX, detect_client
from oxtail_py.procs import ancestors, proven_pane
from oxtail_py.scope import contains
from oxtail_py.wake.client import ClientCheck, check_client


@dataclass(frozen=True, slots=True)
class Peer:
    session_id: str | None
    client_type: str  # from the verified executable, not the registry
    client_pid: int
    home: Path | None  # the client's HOME (its live environment)
    codex_home: str | None
    config_dir: str | None  # where the client keeps its state (history.jsonl)
    cwd: str  # the client's live cwd (a daemon's: the server's), inside the project
    pane: str | None  # proven by the live tree, shape-checked, its path inside the project
    pane_note: str  # why there is no pane, when there is none
    codex_exe: str | None  # the verified codex binary running above the server
    daemon: bool  # the server hangs off a shared Codex app-server daemon


@dataclass(frozen=True, slots=True)
class NoTarget:
    reason: str


def inspect_peer(row: Row, project_root: Path) -> Peer | NoTarget:
    """The verified client of `row`'s server, or why there is none to wake."""
    entry = row.entry
    if entry is None or not entry.identity.is_alive():
        return NoTarget("its server is gone")
    client = verified_client(entry.server_pid)
    if isinstance(client, NoTarget):
        return client
    assert client.kind is not None
    try:
        proc = psutil.Process(client.pid)
        daemon = client.kind == CODEX and "app-server" in proc.cmdline()
        environ = proc.environ()
        # A shared Codex daemon serves threads of any project from one cwd; the server
        # it started for this thread runs in the thread's project dir.
        cwd = psutil.Process(entry.server_pid).cwd() if daemon else proc.cwd()
    except (psutil.Error, OSError) as exc:
        return NoTarget(f"its client (pid {client.pid}) cannot be inspected: {exc}")
    if not contains(project_root, cwd):
        return NoTarget(
            f"its client (pid {client.pid}) runs in {cwd}, outside this project {project_root}"
        )
    pane, pane_note = _pane_in_project(entry.server_pid, project_root, daemon)
    home = environ.get("HOME")
    home_path = Path(home) if home and os.path.isabs(home) else None
    codex_home = environ.get("CODEX_HOME") or None
    if client.kind == CODEX:
        config_dir = codex_home or (str(home_path / ".codex") if home_path else None)
    else:
        claude_dir = environ.get("CLAUDE_CONFIG_DIR")
        config_dir = claude_dir or (str(home_path / ".claude") if home_path else None)
    return Peer(
        session_id=row.client_session_id,
        client_type=client.kind,
        client_pid=client.pid,
        home=home_path,
        codex_home=codex_home,
        config_dir=config_dir,
        cwd=cwd,
        pane=pane,
        pane_note=pane_note,
        codex_exe=client.exe if client.kind == CODEX else None,
        daemon=daemon,
    )


def verified_client(server_pid: int) -> ClientCheck | NoTarget:
    """The nearest process above the server that is a real client executable."""
    for parent in ancestors(server_pid):
        check = check_client(parent.pid)
        if check.kind in (CLAUDE, CODEX):
            return check
    named = detect_client(server_pid)  # only to say what the server's tree pretends
    if named is not None:
        why = check_client(named.pid).reason
        return NoTarget(f"the {named.type} above its server is not a real client: {why}")
    return NoTarget("no Claude Code or Codex process above its server: nothing to type into")


def _pane_in_project(server_pid: int, project_root: Path, daemon: bool) -> tuple[str | None, str]:
    if daemon:
        return None, "no pane: its server runs under a shared Codex app-server daemon"
    try:
        panes = tmux.list_panes()
    except tmux.TmuxError:
        panes = []
    found = proven_pane(server_pid, {p.pane_pid: p.pane_id for p in panes})
    pane = next((p for p in panes if p.pane_id == found), None)
    if pane is None or not tmux.PANE_ID_RE.fullmatch(pane.pane_id):
        return None, "no tmux pane is proven (by the live process tree) to host its server"
    if not contains(project_root, pane.cwd):
        return None, (
            f"its pane {pane.pane_id} is in {pane.cwd or 'an unknown directory'}, "
            f"outside this project {project_root}"
        )
    return pane.pane_id, ""
