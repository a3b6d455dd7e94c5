"""The project snapshot that `status`, `status --json`, `--check` and `watch` render.

One pass over the live state, read only (the cockpit never takes a mailbox lock):
the registry and tmux through discovery (panes proven by the live process tree),
each agent's mailbox (boxes.py), its hooks' busy/idle marker, the `await.` markers
of asks in flight joined with the event log to find whom each ask waits on, and the
wait-for graph with its cycles (graph.py). A corrupt file becomes a Problem in the
snapshot; building one never raises for what it finds on disk.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from oxtail_py import eventlog, tmux
from oxtail_py.cockpit.boxes import BoxView, inspect_box
from oxtail_py.cockpit.graph import Edge, find_cycles
from oxtail_py.discovery import Row, list_project
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import is_private_dir
from oxtail_py.layout import Layout
from oxtail_py.procs import process_snapshot, self_identity
from oxtail_py.registry import Registry
from oxtail_py.scope import contains
from oxtail_py.status import read_status

if TYPE_CHECKING:
    from oxtail_py.asks_ledger import AskRecord
    from oxtail_py.cockpit.workspace import Workspace
    from oxtail_py.obligations import WorkStatus

SHORT_ID_CHARS: Final = 8
RECENT_LOG_BYTES: Final = 256 << 10
# Identity sources that prove the id belongs to this server's own client (the client's
# env at launch, its own proven SessionStart drop, Codex's _meta on a tools/call). A
# claim is checked (not taken, same project) but asserted; birth is a heuristic. The
# values of identity.resolution.Source, spelled out: importing the identity package
# (transcript readers and all) would cost `status` a third of its start.
PROVEN_SOURCES: Final = frozenset({"env", "drop", "meta"})

Severity = Literal["fail", "warn"]


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # stable: corrupt-registry-entry, ask-overdue, stale-unread, wait-cycle, ...
    subject: str  # the agent, file or check it is about
    message: str  # what is wrong and what to do
    severity: Severity = "fail"


@dataclass
class AgentView:
    key: str  # mailbox key: session id, or pid-<pid>-<start> before it has one
    name: str
    client: str | None
    session_id: str | None
    short_id: str
    server_pid: int
    server_start: str  # with the pid, the server's identity (procs.ProcessIdentity)
    pane: str | None  # proven by the live process tree, else None
    tmux_session: str | None
    cwd: str | None
    role: str | None  # issue 11's role, once registry entries carry one
    purpose: str
    parent: str | None  # issue 14's lineage, once registry entries carry one
    state: str  # busy | idle | unknown (the client's hooks write it)
    state_since: float | None
    unread: int
    oldest_unread: float | None
    open_work: int | None  # open or blocked delegated work it owes (obligations.py)
    asks_out: int
    asks_in: int
    identity_source: str | None
    identity_proven: bool
    pane_proven: bool


@dataclass(frozen=True, slots=True)
class PaneView:
    name: str
    pane: str
    command: str
    cwd: str


@dataclass
class Snapshot:
    project_root: Path | None  # None: --all
    taken_at: float
    agents: list[AgentView]
    panes: list[PaneView]
    edges: list[Edge]
    cycles: list[list[str]]  # mailbox keys
    problems: list[Problem]
    tmux_available: bool
    traffic: list[eventlog.Event] = field(default_factory=list)
    # The project's live reservations and notes (issue 13); empty for --all.
    workspace: Workspace | None = None

    def name_of(self, key: str) -> str:
        return next((a.name for a in self.agents if a.key == key), key)


def _short(key: str) -> str:
    return key[:SHORT_ID_CHARS]


def _agent(row: Row, box: BoxView, layout: Layout) -> AgentView:
    entry = row.entry
    assert entry is not None
    sid = row.client_session_id
    status = read_status(layout, sid) if sid else None
    state = "unknown" if status is None else status.state
    if state == "busy" and status is not None and not status.busy:
        state = "unknown"  # a turn silent for BUSY_FRESH_S: its client may be gone
    source = entry.client.identity_source
    parent = _parent_name(getattr(entry, "parent", None))  # lineage (issue 14), if present
    return AgentView(
        key=row.mailbox_key,
        name=row.name,
        client=row.client_type,
        session_id=sid,
        short_id=_short(sid) if sid else "-",
        server_pid=entry.server_pid,
        server_start=entry.server_start,
        pane=row.tmux_pane,
        tmux_session=row.tmux_session,
        cwd=row.cwd,
        role=getattr(entry.state, "role", None) or None,
        purpose=row.purpose,
        parent=parent,
        state=state,
        state_since=status.mtime if status is not None else None,
        unread=box.unread,
        oldest_unread=box.oldest_unread,
        open_work=0,
        asks_out=0,
        asks_in=0,
        identity_source=source,
        identity_proven=sid is not None and source in PROVEN_SOURCES,
        pane_proven=row.tmux_pane is not None,
    )


def _parent_name(parent: object) -> str | None:
    """Who spawned the agent, as issue 14's registry entries record it (a ParentInfo with
    `name`, `session_id`, `by`); read by attribute so the cockpit runs with or without it."""
    if parent is None:
        return None
    for attr in ("name", "session_id", "by"):
        value = getattr(parent, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def build_snapshot(
    layout: Layout,
    project_root: Path | None,
    *,
    ask_timeout_s: float,
    traffic: int = 0,
) -> Snapshot:
    """The snapshot of `project_root` (None: every project). `traffic` > 0 also reads
    that many recent events of the project from the event log."""
    if not is_private_dir(layout.root):
        raise OxtailError(
            f"no oxtail state at {layout.root}: no agent has started with this state root. "
            "Start an agent (its client runs oxtail-py), or set AGENTMAIL_HOME to the root "
            "your agents use",
            code="empty-state-root",
        )
    problems: list[Problem] = []
    with process_snapshot():
        try:
            listing = list_project(
                layout, project_root or Path("/"), False, self_identity(), count_unread=False
            )
        except tmux.TmuxError as exc:
            raise OxtailError(f"tmux failed: {exc}", code="tmux-failed") from exc
    listed = {r.server_pid for r in [*listing.rows, *listing.outside] if r.server_pid}
    for path, reason in _rejected_entries(layout, listed):
        problems.append(Problem(
            "corrupt-registry-entry", str(path),
            f"{path}: {reason}; ignored. Remove the file if no server of yours wrote it",
            "warn",
        ))
    agents: list[AgentView] = []
    boxes: dict[str, BoxView] = {}
    for row in listing.rows:
        if row.kind != "agent":
            continue
        box = inspect_box(layout.mailbox(row.mailbox_key))
        boxes[row.mailbox_key] = box
        agents.append(_agent(row, box, layout))
        _box_problems(row.name, box, problems)
    panes = [
        PaneView(r.name, r.tmux_pane or "", r.pane_command or "", r.cwd or "")
        for r in listing.rows if r.kind == "pane"
    ]
    # The recent end of the log only: a view redrawn on every event must not parse two
    # megabytes each time, and an ask in flight was sent within its timeout.
    wanted = traffic or any(b.awaiting for b in boxes.values())
    tail = eventlog.read_tail(layout, max_bytes=RECENT_LOG_BYTES) if wanted else \
        eventlog.Tail([], 0, [])
    for reason in tail.problems:
        problems.append(Problem("event-log-unreadable", "event log", reason, "warn"))
    edges = _edges(layout, project_root, agents, boxes, tail.events, ask_timeout_s)
    cycles = find_cycles(edges)
    _tally(agents, edges)
    snap = Snapshot(
        project_root=project_root,
        taken_at=time.time(),
        agents=agents,
        panes=panes,
        edges=edges,
        cycles=cycles,
        problems=problems,
        tmux_available=listing.tmux_available,
    )
    if traffic:
        snap.traffic = project_events(tail.events, project_root, agents)[-traffic:]
    if project_root is not None:
        from oxtail_py.cockpit.workspace import read_workspace

        snap.workspace = read_workspace(layout, project_root)
        for reason in snap.workspace.problems:
            problems.append(Problem("workspace-unreadable", "reservations/notes", reason, "warn"))
    for cycle in cycles:
        names = " -> ".join(snap.name_of(k) for k in [*cycle, cycle[0]])
        problems.append(Problem(
            "wait-cycle", names,
            f"wait-for cycle: {names}; each waits on the next, so none moves until an ask "
            "times out or someone gives way: tell one of them (oxtail-py send NAME ...)",
        ))
    return snap


def _rejected_entries(layout: Layout, listed: set[int]) -> list[tuple[Path, str]]:
    """Registry files the listing did not use, and why: the listing's scan already
    parsed, checked and pruned every entry, so only the few files left over (corrupt,
    foreign, or a race with a starting server) are read again."""
    directory = layout.sessions_dir
    try:
        names = sorted(os.listdir(directory)) if is_private_dir(directory) else []
    except OSError:
        return []
    found = []
    for name in names:
        stem = name[:-5] if name.endswith(".json") and not name.startswith(".") else ""
        if not stem or (stem.isascii() and stem.isdigit() and int(stem) in listed):
            continue
        loaded = Registry._load(directory / name)
        if isinstance(loaded, str):
            if loaded != "vanished":
                found.append((directory / name, loaded))
        elif f"{loaded.server_pid}" != stem:  # a live one started since: not a problem
            found.append((directory / name, f"server_pid {loaded.server_pid} != file name"))
    return found


def _box_problems(name: str, box: BoxView, problems: list[Problem]) -> None:
    for reason in box.problems:
        problems.append(Problem("unreadable-mailbox", name, f"{name}: {reason}"))
    if box.quarantined:
        problems.append(Problem(
            "quarantined-lines", name,
            f"{name}: {box.quarantined} corrupt line(s) in mailboxes/{box.key}/"
            "quarantine.jsonl (kept with the reason; read them, then delete the file)", "warn",
        ))


def _edges(
    layout: Layout,
    project_root: Path | None,
    agents: list[AgentView],
    boxes: dict[str, BoxView],
    events: list[eventlog.Event],
    ask_timeout_s: float,
) -> list[Edge]:
    """Who waits on whom: live waiting asks (the asks ledger, then `await.` markers of a
    live waiter the ledger lacks: the target is where the request was sent, by the event
    log, or the box still holding it), and open or blocked delegated work."""
    edges: dict[str, Edge] = {}
    # The ledgers' modules only when their directories exist: `status` has a start budget.
    asks: list[AskRecord] = []
    if is_private_dir(layout.asks_dir):
        from oxtail_py import asks_ledger

        asks = [r for r in asks_ledger.list_asks(layout, project_root)
                if r.effective_state() == asks_ledger.AskState.WAITING]
    for record in asks:
        edges[record.request_id] = Edge(
            record.asker, record.target_session_id, "ask", record.request_id,
            record.created_ts, ask_timeout_s,
        )
    sent_to = {e.message_id: e.recipient for e in events if e.event == "sent"}
    by_pid = {a.server_pid: a for a in agents}
    for box in boxes.values():
        for marker in box.awaiting:
            asker = by_pid.get(marker.waiter_pid)
            if asker is None or marker.request_id in edges:
                continue  # markers sit in each of the asker's boxes: one edge per ask
            target = sent_to.get(marker.request_id) or next(
                (k for k, b in boxes.items() if marker.request_id in b.message_ids), "?"
            )
            edges[marker.request_id] = Edge(
                asker.key, target, "ask", marker.request_id, marker.since, ask_timeout_s
            )
    keys = {a.key for a in agents}
    work: list[WorkStatus] = []
    if is_private_dir(layout.obligations_dir):
        from oxtail_py import obligations

        work = [s for s in obligations.list_all(layout) if s.state != obligations.WorkState.DONE]
    for status in work:
        ob = status.obligation
        mine = ob.requester_session_id in keys or ob.owner_session_id in keys
        if project_root is not None and not mine and not contains(project_root, ob.project_root):
            continue
        blocked = status.blocked.reason if status.blocked is not None else None
        edges["work:" + ob.message_id] = Edge(
            ob.requester_session_id, ob.owner_session_id, "work", ob.message_id,
            _epoch(ob.created_at) or 0.0, None,
            detail=f"blocked: {blocked}" if blocked else None,
        )
    return sorted(edges.values(), key=lambda e: e.since)


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def _tally(agents: list[AgentView], edges: list[Edge]) -> None:
    by_key = {a.key: a for a in agents}
    for edge in edges:
        if edge.kind == "work":
            if edge.target in by_key:  # the owner owes it
                owner = by_key[edge.target]
                owner.open_work = (owner.open_work or 0) + 1
            continue
        if edge.waiter in by_key:
            by_key[edge.waiter].asks_out += 1
        if edge.target in by_key:
            by_key[edge.target].asks_in += 1


def project_events(
    events: list[eventlog.Event], project_root: Path | None, agents: list[AgentView]
) -> list[eventlog.Event]:
    """The events of this project: the sender's cwd lies inside it, or a party is one
    of its agents. Each distinct cwd is tested once (a realpath per path component)."""
    if project_root is None:
        return list(events)
    keys = {a.key for a in agents} | {a.session_id for a in agents if a.session_id}
    seen: dict[str, bool] = {}

    def inside(cwd: str | None) -> bool:
        if not cwd:
            return False
        if cwd not in seen:
            seen[cwd] = contains(project_root, cwd)
        return seen[cwd]

    return [e for e in events if inside(e.cwd) or e.recipient in keys or e.sender in keys]
