"""Who is in this project: live registry entries joined with tmux panes, and name lookup.

A registry entry says where its server runs; the pane that hosts it is taken
only from the live process tree (see procs.proven_pane), never from the entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from oxtail_py import tmux
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import is_private_dir
from oxtail_py.layout import Layout, pid_box_key
from oxtail_py.mailbox import Mailbox
from oxtail_py.procs import ProcessIdentity, process_snapshot, proven_pane
from oxtail_py.registry import Registry, SessionEntry
from oxtail_py.scope import OutOfScopeError, contains


class TargetError(OxtailError):
    code = "unknown-target"


@dataclass
class Row:
    """One line of list_project_sessions: an agent (registered server) or a bare pane."""

    kind: str  # "agent" | "pane"
    name: str
    tmux_pane: str | None = None
    tmux_session: str | None = None
    cwd: str | None = None
    pane_command: str | None = None
    client_type: str | None = None
    client_session_id: str | None = None
    server_pid: int | None = None
    purpose: str = ""
    purpose_updated_at: str | None = None
    role: str = ""
    unread: int = 0
    is_me: bool = False
    entry: SessionEntry | None = field(default=None, repr=False)

    @property
    def mailbox_key(self) -> str:
        if self.client_session_id:  # an offline session's row has no entry (offline.py)
            return self.client_session_id
        assert self.entry is not None, "only agent rows have a mailbox"
        return pid_box_key(self.entry.identity)


@dataclass
class Listing:
    project_root: Path
    inferred: bool
    rows: list[Row]
    tmux_available: bool
    outside: list[Row]  # live agents of other projects: only to explain a refusal


def _agent_row(
    entry: SessionEntry,
    pane: tmux.Pane | None,
    layout: Layout,
    me: ProcessIdentity,
    boxes: frozenset[str] | None,
) -> Row:
    row = Row(
        kind="agent",
        name="",
        tmux_pane=pane.pane_id if pane else None,
        tmux_session=pane.session if pane else None,
        cwd=entry.client.cwd,
        pane_command=pane.command if pane else None,
        client_type=entry.client.type,
        client_session_id=entry.client.session_id,
        server_pid=entry.server_pid,
        purpose=entry.state.purpose,
        purpose_updated_at=entry.state.updated_at,
        role=entry.state.role,
        is_me=entry.identity == me,
        entry=entry,
    )
    row.name = row.tmux_session or row.client_session_id or f"pid-{entry.server_pid}"
    # `boxes` names the mailbox directories that exist (one listdir per listing): a peer
    # with no box yet costs nothing here; the rest still go through Mailbox.existing.
    box = (
        Mailbox.existing(layout, row.mailbox_key)
        if boxes is not None and row.mailbox_key in boxes
        else None
    )
    row.unread = box.pending_count() if box else 0
    return row


def list_project(
    layout: Layout,
    project_root: Path,
    inferred: bool,
    me: ProcessIdentity,
    *,
    count_unread: bool = True,
) -> Listing:
    """Rows of the project. count_unread=False skips reading every peer's inbox (a
    send only needs to resolve its target).

    Cost (101 agents x 100 panes): one `tmux list-panes`, one read per registry entry,
    and each /proc/<pid>/stat and cmdline read once for the whole listing (a
    process_snapshot: an entry's liveness check and its parent chain, and the chains'
    shared top, reuse the same reads)."""
    with process_snapshot():
        return _list_project(layout, project_root, inferred, me, count_unread)


def _list_project(
    layout: Layout, project_root: Path, inferred: bool, me: ProcessIdentity, count_unread: bool
) -> Listing:
    panes = tmux.list_panes()
    pane_ids_by_pid = {p.pane_pid: p.pane_id for p in panes}
    pane_by_id = {p.pane_id: p for p in panes}
    inside = _ScopeTest(project_root)
    boxes = _existing_boxes(layout) if count_unread else None
    rows: list[Row] = []
    outside: list[Row] = []
    agent_panes: set[str] = set()
    for entry in Registry(layout).read_all():
        pane_id = proven_pane(entry.server_pid, pane_ids_by_pid)
        pane = pane_by_id.get(pane_id) if pane_id else None
        row = _agent_row(entry, pane, layout, me, boxes)
        if pane:
            agent_panes.add(pane.pane_id)
        in_project = inside(entry.client.cwd) or (
            entry.client.cwd is None and pane is not None and inside(pane.cwd)
        )
        (rows if in_project else outside).append(row)
    for pane in panes:
        if pane.pane_id not in agent_panes and inside(pane.cwd):
            rows.append(
                Row(
                    kind="pane",
                    name=pane.session,
                    tmux_pane=pane.pane_id,
                    tmux_session=pane.session,
                    cwd=pane.cwd,
                    pane_command=pane.command,
                )
            )
    return Listing(project_root, inferred, rows, bool(panes) or tmux_reachable(), outside)


def _existing_boxes(layout: Layout) -> frozenset[str]:
    directory = layout.mailboxes_dir
    if not is_private_dir(directory):
        return frozenset()
    try:
        return frozenset(os.listdir(directory))
    except OSError:
        return frozenset()


class _ScopeTest:
    """scope.contains(root, path), once per distinct path string for one listing: a
    hundred panes and agents usually share a handful of cwds, and each test is a
    realpath (an lstat per path component)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seen: dict[str, bool] = {}

    def __call__(self, path: str | None) -> bool:
        if not path:
            return False
        if path not in self._seen:
            self._seen[path] = contains(self.root, path)
        return self._seen[path]


def tmux_reachable() -> bool:
    try:
        tmux.run(["list-sessions"])
    except tmux.TmuxError:
        return False
    return True


def _matches(row: Row, name: str) -> bool:
    if name in (row.client_session_id, row.tmux_session, row.tmux_pane, row.name):
        return True
    if row.entry is not None and name in row.entry.client.previous_session_ids:
        return True  # an id the agent had before /clear: its mail goes to the current box
    # A unique prefix of a session id (8+ chars) is enough, as with git hashes.
    return len(name) >= 8 and (row.client_session_id or "").startswith(name)


def resolve(listing: Listing, name: str, *, agents_only: bool) -> Row:
    """The one row `name` designates in the project, or a specific error."""
    name = name.strip()
    if not name:
        raise TargetError("no target given: pass a tmux session name or a session id")
    found = [r for r in listing.rows if _matches(r, name)]
    agents = [r for r in found if r.kind == "agent"]
    if len(agents) == 1:
        return agents[0]
    if len(agents) > 1:
        exact = [r for r in agents if r.client_session_id == name]
        if len(exact) == 1:
            return exact[0]
        described = ", ".join(
            f"{r.client_session_id or 'no session id'} (pane {r.tmux_pane}, {r.client_type})"
            for r in agents
        )
        raise TargetError(
            f"{name!r} is ambiguous: it matches {len(agents)} agents: {described}. "
            "Use the session id instead.",
            code="ambiguous-target",
        )
    if found and agents_only:
        raise TargetError(
            f"{name!r} is a tmux session with no oxtail agent in it (running "
            f"{found[0].pane_command}); you can read it with read_session(mode='pane')",
            code="no-agent-in-pane",
        )
    if found:
        return found[0]
    elsewhere = [r for r in listing.outside if _matches(r, name)]
    if elsewhere:
        raise OutOfScopeError(
            f"{name!r} is an agent in {elsewhere[0].cwd}, outside this project "
            f"({listing.project_root}); cross-project reads and sends are refused"
        )
    known = ", ".join(r.name for r in listing.rows if not r.is_me) or "none"
    raise TargetError(
        f"no agent or tmux session named {name!r} in {listing.project_root} "
        f"(known here: {known}); list_project_sessions shows who is here"
    )
