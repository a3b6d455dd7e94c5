"""A snapshot as plain text (status, and the cells of watch's tables) and as JSON.

Everything a peer or a file could have written (names, state cards, roles, pane
commands, paths) passes framing.neutralize before it reaches a terminal: an escape
sequence in a state card must not repaint the operator's screen. `status` shows the
unread mail's age at the moment it was taken; `watch` shows clock times ("since
10:41:02"), so a view redrawn only on file events never shows a stale age.

The JSON shape (`schema: "oxtail-status/1"`) is documented in README.md and changes
only by adding keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from oxtail_py.cockpit.graph import Edge, in_cycle
from oxtail_py.cockpit.model import PROVEN_SOURCES, AgentView, PaneView, Problem, Snapshot
from oxtail_py.eventlog import Event
from oxtail_py.framing import neutralize, neutralize_json

SCHEMA: Final = "oxtail-status/1"
AGENT_COLUMNS: Final = (
    "NAME", "CLIENT", "SESSION", "PANE", "STATE", "SINCE", "UNREAD", "WORK", "ASKS",
    "IDENTITY", "ROLE", "PARENT", "CARD",
)
_MAX_CELL: Final = 24


def clock(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def clean(text: str | None, limit: int = _MAX_CELL) -> str:
    """Peer-written text made safe for a terminal cell: one line, neutralised, capped."""
    if not text:
        return "-"
    one = neutralize(text.replace("\n", " ").replace("\t", " "))
    return one if len(one) <= limit else one[: limit - 1] + "…"


def clean_path(path: str | None, limit: int = 40) -> str:
    """A path cell: its end is what tells two projects apart, so the start is cut."""
    if not path:
        return "-"
    one = neutralize(path.replace("\n", " "))
    return one if len(one) <= limit else "…" + one[-(limit - 1):]


def identity_cell(agent: AgentView) -> str:
    """The source of the session id; `*` marks one that is asserted, not proven."""
    if agent.session_id is None:
        return "none"
    source = agent.identity_source or "?"
    return source if source in PROVEN_SOURCES else f"{source}*"


def age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def unread_cell(agent: AgentView, now: float | None = None) -> str:
    """`2 (oldest 3m05s)` for a one-shot view taken at `now`; `2 since 10:41:02` for a
    live one (an age would go stale between redraws)."""
    if not agent.unread:
        return "0"
    if now is not None and agent.oldest_unread is not None:
        return f"{agent.unread} (oldest {age(now - agent.oldest_unread)})"
    return f"{agent.unread} since {clock(agent.oldest_unread)}"


def agent_cells(agent: AgentView, now: float | None = None) -> list[str]:
    return [
        clean(agent.name),
        agent.client or "?",
        agent.short_id,
        agent.pane or "-",
        agent.state,
        clock(agent.state_since),
        unread_cell(agent, now),
        "-" if agent.open_work is None else str(agent.open_work),
        f"{agent.asks_out}>{agent.asks_in}<" if agent.asks_out or agent.asks_in else "-",
        identity_cell(agent),
        clean(agent.role, 12),
        clean(agent.parent, 12),
        clean(agent.purpose, 60),
    ]


def pane_cells(pane: PaneView) -> list[str]:
    """A plain tmux pane of the project, in the agent table's columns."""
    cells = ["-"] * len(AGENT_COLUMNS)
    cells[AGENT_COLUMNS.index("NAME")] = clean(pane.name)
    cells[AGENT_COLUMNS.index("CLIENT")] = "(pane)"
    cells[AGENT_COLUMNS.index("PANE")] = pane.pane
    cells[AGENT_COLUMNS.index("CARD")] = clean(pane.command)
    return cells


def edge_line(snap: Snapshot, edge: Edge, cyclic: frozenset[str]) -> str:
    waiter, target = clean(snap.name_of(edge.waiter)), clean(snap.name_of(edge.target))
    overdue = edge.timeout_s is not None and snap.taken_at - edge.since > edge.timeout_s
    marks = [f" ({clean(edge.detail, 60)})" if edge.detail else "", " OVERDUE" if overdue else "",
             " (in a cycle)" if edge.waiter in cyclic else ""]
    return (f"{waiter} -> {target}  {edge.kind} {edge.ref}  since {clock(edge.since)}"
            f"{''.join(marks)}")


def traffic_cells(snap: Snapshot, event: Event) -> list[str]:
    sender = "operator" if event.kind == "operator" else snap.name_of(event.sender)
    if sender == event.sender and event.sender_name:
        sender = event.sender_name
    return [
        clock(event.ts),
        f"{clean(sender, 16)} -> {clean(snap.name_of(event.recipient), 16)}",
        f"{event.event} {event.kind}",
        clean(event.via, 28),
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def render(snap: Snapshot) -> str:
    where = str(snap.project_root) if snap.project_root else "all projects"
    lines = [
        f"oxtail status · {clean(where, 200)} · {len(snap.agents)} agent(s) · "
        f"{len(snap.panes)} plain pane(s) · {clock(snap.taken_at)}"
    ]
    if snap.agents:
        rows = [agent_cells(a, snap.taken_at) for a in snap.agents]
        header = list(AGENT_COLUMNS)
        if snap.project_root is None:  # --all: say where each agent works
            header.insert(1, "CWD")
            for row, agent in zip(rows, snap.agents, strict=True):
                row.insert(1, clean_path(agent.cwd))
        lines += _table(header, rows)
    else:
        lines.append("(no oxtail agent is running in this project)")
    if snap.panes:
        lines.append("")
        lines += _table(("PANE", "SESSION", "COMMAND", "CWD"), [
            [p.pane, clean(p.name), clean(p.command), clean_path(p.cwd, 60)] for p in snap.panes
        ])
    if not snap.tmux_available:
        lines.append("(tmux is not running: no panes to show or prove)")
    lines += ["", *graph_lines(snap)]
    lines += workspace_lines(snap)
    if snap.problems:
        lines += ["", "problems:", *[f"  {problem_line(p)}" for p in snap.problems]]
    lines += ["", "IDENTITY: env/drop/meta = proven by the client; * = asserted (claim) or "
              "guessed (birth). ASKS: out>in<. WORK: open obligations."]
    return "\n".join(lines) + "\n"


def graph_lines(snap: Snapshot) -> list[str]:
    if not snap.edges:
        return ["wait-for graph: nobody is waiting on anybody"]
    cyclic = in_cycle(snap.cycles)
    lines = ["wait-for graph (asks in flight, open work):"]
    lines += [f"  {edge_line(snap, e, cyclic)}" for e in snap.edges]
    for cycle in snap.cycles:
        names = " -> ".join(clean(snap.name_of(k)) for k in [*cycle, cycle[0]])
        lines.append(f"  CYCLE: {names}")
    return lines


def workspace_lines(snap: Snapshot) -> list[str]:
    """Live reservations and notes of the project (nothing when there are none)."""
    space = snap.workspace
    lines: list[str] = []
    if space is not None and space.reservations:
        lines += ["", "reservations:"]
        for r in space.reservations:
            left = age(max(0.0, r.expires_at - snap.taken_at))
            kind = "exclusive" if r.exclusive else "shared"
            why = f" · {clean(r.reason)}" if r.reason else ""
            lines.append(f"  {clean(r.pattern, 60)} · {clean(r.holder)} · {kind} · "
                         f"{left} left{why}")
    if space is not None and space.notes:
        lines += ["", "notes:"]
        for n in space.notes:
            where = f" [{clean(n.category)}]" if n.category else ""
            lines.append(f"  {clean(n.key)}{where} = {clean(n.value, 80)} "
                         f"({clean(n.author)}, {clean(n.updated_at)})")
    return lines


def problem_line(problem: Problem) -> str:
    return f"[{problem.severity}] {problem.code}: {clean(problem.message, 400)}"


def to_json(snap: Snapshot) -> dict[str, Any]:
    """The documented `--json` shape; every string from disk neutralised."""
    def agent(a: AgentView) -> dict[str, Any]:
        return {
            "name": a.name, "client": a.client, "session_id": a.session_id,
            "short_id": a.short_id, "mailbox": a.key, "server_pid": a.server_pid,
            "pane": a.pane, "tmux_session": a.tmux_session, "cwd": a.cwd, "role": a.role,
            "state_card": a.purpose, "parent": a.parent, "state": a.state,
            "state_since": iso(a.state_since), "unread": a.unread,
            "oldest_unread_at": iso(a.oldest_unread),
            "oldest_unread_age_s": None if a.oldest_unread is None else round(
                max(0.0, snap.taken_at - a.oldest_unread), 3),
            "open_work": a.open_work,
            "asks_out": a.asks_out, "asks_in": a.asks_in,
            "identity_source": a.identity_source, "identity_proven": a.identity_proven,
            "pane_proven": a.pane_proven,
        }

    def edge(e: Edge) -> dict[str, Any]:
        return {
            "waiter": e.waiter, "waiter_name": snap.name_of(e.waiter), "target": e.target,
            "target_name": snap.name_of(e.target), "kind": e.kind, "ref": e.ref,
            "since": iso(e.since), "timeout_s": e.timeout_s, "detail": e.detail,
            "overdue": e.timeout_s is not None and snap.taken_at - e.since > e.timeout_s,
        }

    data = {
        "schema": SCHEMA,
        "project_root": str(snap.project_root) if snap.project_root else None,
        "taken_at": iso(snap.taken_at),
        "tmux_available": snap.tmux_available,
        "agents": [agent(a) for a in snap.agents],
        "panes": [{"name": p.name, "pane": p.pane, "command": p.command, "cwd": p.cwd}
                  for p in snap.panes],
        "wait_for": {
            "edges": [edge(e) for e in snap.edges],
            "cycles": [{"mailboxes": c, "names": [snap.name_of(k) for k in c]}
                       for c in snap.cycles],
        },
        "problems": [{"code": p.code, "subject": p.subject, "message": p.message,
                      "severity": p.severity} for p in snap.problems],
        "reservations": [
            {"pattern": r.pattern, "holder": r.holder, "exclusive": r.exclusive,
             "expires_at": iso(r.expires_at), "reason": r.reason}
            for r in (snap.workspace.reservations if snap.workspace else [])
        ],
        "notes": [
            {"key": n.key, "value": n.value, "category": n.category, "author": n.author,
             "updated_at": n.updated_at}
            for n in (snap.workspace.notes if snap.workspace else [])
        ],
    }
    return neutralize_json(data)
