"""`oxtail-py watch`: the live cockpit, a textual app over the same snapshot as status.

Redrawn on events only: a file event anywhere under the state root (feed.py), a
server process exiting (a pidfd per live server on the event loop: a kill -9 writes
no file), or an ask in flight reaching its timeout (one timer, armed only then).
Events within REFRESH_COALESCE_S are merged into one rebuild, run in a worker thread,
one at a time. With nothing happening there is no timer and no wake-up: an idle
watch costs no CPU (bench/cockpit_watch.py).

Keys: q quit · up/down select an agent (or a plain pane) · s send it a message (as the
operator) · t its last turns (transcript, or its pane) · escape closes a dialog (q too,
in the turns view).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import ClassVar, Final

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from oxtail_py.cockpit import render_text
from oxtail_py.cockpit.feed import StateFeed
from oxtail_py.cockpit.model import AgentView, PaneView, Snapshot, build_snapshot
from oxtail_py.errors import OxtailError
from oxtail_py.framing import neutralize
from oxtail_py.fsio import ensure_private_dir
from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, start_time
from oxtail_py.settings import Settings

REFRESH_COALESCE_S: Final = 0.005
TRAFFIC_ROWS: Final = 50
# Below this width the agent table keeps only the columns that fit 80 columns.
WIDE_AT: Final = 140
_NARROW: Final = ("NAME", "CLIENT", "STATE", "SINCE", "UNREAD", "WORK", "ASKS", "SESSION")


class SendScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    SendScreen { align: center middle; }
    SendScreen > Vertical { width: 70; height: auto; border: round $accent; padding: 0 1; }
    """

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Message to {self.target}, from you (the operator). Enter sends.")
            yield Input(placeholder="your message", id="body")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value if event.value.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TurnsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close"), Binding("q", "close", "close"),
    ]
    DEFAULT_CSS = """
    TurnsScreen { align: center middle; }
    TurnsScreen > Vertical { width: 90%; height: 90%; border: round $accent; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.text, id="turns", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


class Cockpit(App[int]):
    TITLE = "oxtail watch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("s", "send", "send"),
        Binding("t", "turns", "last turns"),
    ]
    CSS = """
    #head { height: 1; background: $primary-background; }
    #agents { height: 1fr; min-height: 4; }
    #detail { height: auto; max-height: 2; background: $boost; }
    #graph { height: auto; max-height: 7; color: $warning; }
    #traffic-title { height: 1; background: $primary-background; }
    #traffic { height: 8; }
    """

    def __init__(self, settings: Settings, project: Path) -> None:
        super().__init__()
        self.settings = settings
        self.layout_ = Layout(settings.root)
        self.project = project
        self.snap: Snapshot | None = None
        self._refresh_due = False
        self._exits: dict[ProcessIdentity, int] = {}  # a listed server -> its pidfd
        self._feed: StateFeed | None = None
        self._wide: bool | None = None
        self._width: int | None = None  # the terminal's width, from the last Resize
        self._deadline: Timer | None = None  # the next ask's timeout (_arm_deadline)
        self._building = False  # a snapshot is being built in a worker thread
        self._stale = False  # something changed while it was

    def compose(self) -> ComposeResult:
        yield Static("", id="head", markup=False)
        yield DataTable(id="agents", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail", markup=False)
        yield Static("", id="graph", markup=False)
        yield Static("recent traffic: time · from -> to · what · how", id="traffic-title",
                     markup=False)
        yield DataTable(id="traffic", cursor_type="none")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#traffic", DataTable).add_columns("TIME", "FROM -> TO", "WHAT", "HOW")
        ensure_private_dir(self.layout_.root)  # a fresh root: watch it from the start
        self._feed = StateFeed(self.layout_.root, self._on_file_event)
        self._feed.start()
        self.request_refresh()

    def on_unmount(self) -> None:
        if self._feed is not None:
            self._feed.stop()
        for server in list(self._exits):
            self._forget_exit(server)

    def on_resize(self, event: events.Resize) -> None:
        # The event's size is the terminal's now; App.size follows only after a layout
        # pass, and a redraw between would pick the columns for the old width.
        self._width = event.size.width
        if self.snap is not None and (self._width >= WIDE_AT) != self._wide:
            self._render_agents(self.snap)

    # -- refresh on events ------------------------------------------------------------

    def _on_file_event(self) -> None:  # watchdog's thread
        with contextlib.suppress(RuntimeError):  # the app is shutting down
            self.call_from_thread(self.request_refresh)

    def request_refresh(self) -> None:
        if not self._refresh_due:
            self._refresh_due = True
            self.set_timer(REFRESH_COALESCE_S, self._rebuild)

    def _rebuild(self) -> None:
        self._refresh_due = False
        if self._building:
            self._stale = True  # one more build when this one is done, not a pile-up
            return
        self._building = True
        self._build()

    def _built(self) -> None:
        self._building = False
        if self._stale:
            self._stale = False
            self.request_refresh()

    @work(thread=True, group="snapshot")
    def _build(self) -> None:
        try:
            snap = build_snapshot(self.layout_, self.project,
                                  ask_timeout_s=self.settings.ask_max_timeout_ms / 1000,
                                  traffic=TRAFFIC_ROWS)
        except Exception as exc:  # the view stays up and says why (the next event retries)
            code = exc.code if isinstance(exc, OxtailError) else type(exc).__name__
            self.call_from_thread(self._show_error, f"{code}: {exc}")
            return
        self.call_from_thread(self._show, snap)

    def _show_error(self, text: str) -> None:
        self._built()
        self.query_one("#head", Static).update(neutralize(text))

    def _show(self, snap: Snapshot) -> None:
        # One build at a time (_rebuild): what is shown is always the newest snapshot,
        # and events during a build ask for one more.
        self._built()
        self.snap = snap
        # Counts first: a narrow terminal cuts the end of the line, the path.
        head = (f"{len(snap.agents)} agent(s) · {len(snap.panes)} pane(s) · "
                f"{len(snap.edges)} waiting · {len(snap.problems)} problem(s) · "
                f"{render_text.clock(snap.taken_at)} · {render_text.clean(str(self.project), 200)}")
        self.query_one("#head", Static).update(head)
        self._render_agents(snap)
        graph = render_text.graph_lines(snap) if snap.edges else []
        graph += [render_text.problem_line(p) for p in snap.problems]
        self.query_one("#graph", Static).update("\n".join(graph))
        traffic = self.query_one("#traffic", DataTable)
        traffic.clear()
        for event in reversed(snap.traffic):  # newest first
            traffic.add_row(*render_text.traffic_cells(snap, event))
        self._watch_exits(snap.agents)
        self._arm_deadline(snap)

    def _arm_deadline(self, snap: Snapshot) -> None:
        """One timer, for the next ask to pass its timeout: becoming overdue writes no
        file. Armed only while asks are in flight, so an idle view still sleeps."""
        if self._deadline is not None:
            self._deadline.stop()
            self._deadline = None
        due = [e.since + e.timeout_s for e in snap.edges
               if e.timeout_s is not None and e.since + e.timeout_s > snap.taken_at]
        if due:
            delay = min(due) - time.time() + 0.05
            self._deadline = self.set_timer(max(delay, 0.0), self.request_refresh)

    def _render_agents(self, snap: Snapshot) -> None:
        table = self.query_one("#agents", DataTable)
        wide = (self._width or self.size.width) >= WIDE_AT
        selected = self.selected_agent()
        columns = render_text.AGENT_COLUMNS if wide else _NARROW
        index = [render_text.AGENT_COLUMNS.index(c) for c in columns]
        if wide != self._wide:
            table.clear(columns=True)
            table.add_columns(*columns)
            self._wide = wide
        else:
            table.clear()
        for agent in snap.agents:
            cells = render_text.agent_cells(agent)
            table.add_row(*[cells[i] for i in index], key=agent.key)
        for pane in snap.panes:  # plain panes of the project, after the agents
            cells = render_text.pane_cells(pane)
            table.add_row(*[cells[i] for i in index], key=f"pane:{pane.pane}")
        keys = [a.key for a in snap.agents]
        if selected is not None and selected.key in keys:
            table.move_cursor(row=keys.index(selected.key))
        self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "agents":
            self._show_detail()

    def _show_detail(self) -> None:
        """The selected agent in full: what the narrow columns leave out."""
        agent, pane = self.selected_agent(), self.selected_pane()
        text = detail_line(agent) if agent else ""
        if pane is not None:
            text = (f"{render_text.clean(pane.name)} · plain pane {pane.pane} · "
                    f"{render_text.clean(pane.command)} · {render_text.clean_path(pane.cwd, 60)}"
                    " · no agent: t shows its screen")
        self.query_one("#detail", Static).update(text)

    # -- a pidfd per live server: a kill -9 writes no file --------------------------

    def _watch_exits(self, agents: list[AgentView]) -> None:
        """A pidfd per listed server, read by the loop: it becomes readable when that
        process exits. The start time is checked after the open (a pidfd names one
        process), so a recycled pid is never watched in place of the server."""
        loop = asyncio.get_running_loop()
        live = {ProcessIdentity(a.server_pid, a.server_start) for a in agents}
        for server in [s for s in self._exits if s not in live]:
            self._forget_exit(server)
        for server in live - set(self._exits):
            try:
                fd = os.pidfd_open(server.pid)
            except OSError:
                self.request_refresh()  # already gone
                continue
            if start_time(server.pid) != server.start:
                os.close(fd)
                self.request_refresh()
                continue
            self._exits[server] = fd
            loop.add_reader(fd, self._server_exited, server)

    def _server_exited(self, server: ProcessIdentity) -> None:
        self._forget_exit(server)
        self.request_refresh()

    def _forget_exit(self, server: ProcessIdentity) -> None:
        fd = self._exits.pop(server)
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)

    # -- keys ------------------------------------------------------------------------

    def selected_agent(self) -> AgentView | None:
        if self.snap is None or not self.snap.agents:
            return None
        table = self.query_one("#agents", DataTable)
        row = table.cursor_row
        return self.snap.agents[row] if 0 <= row < len(self.snap.agents) else None

    def selected_pane(self) -> PaneView | None:
        """The plain pane under the cursor (its rows follow the agents')."""
        if self.snap is None:
            return None
        row = self.query_one("#agents", DataTable).cursor_row - len(self.snap.agents)
        return self.snap.panes[row] if 0 <= row < len(self.snap.panes) else None

    def action_send(self) -> None:
        agent = self.selected_agent()
        if agent is None:
            pane = self.selected_pane()
            what = f"{render_text.clean(pane.name)} is a plain pane" if pane else "nothing"
            self.notify(f"{what}: select an agent to send to", severity="warning")
            return
        target = agent.session_id or agent.pane or agent.name

        def sent(body: str | None) -> None:
            if body:
                self._send(target, render_text.clean(agent.name), body)

        self.push_screen(SendScreen(render_text.clean(agent.name)), sent)

    @work(thread=True, group="send")
    def _send(self, target: str, name: str, body: str) -> None:
        from oxtail_py.cockpit.operator import send_as_operator

        try:
            done = send_as_operator(self.layout_, self.settings, self.project, target, body)
        except OxtailError as exc:
            self.call_from_thread(self.notify, f"{exc.code}: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, f"sent {done.message_id} to {name}")

    def action_turns(self) -> None:
        agent, pane = self.selected_agent(), self.selected_pane()
        if agent is not None:
            self._turns(agent.session_id or agent.pane or agent.name)
        elif pane is not None:
            self._turns(pane.pane)  # a plain pane: its screen

    @work(thread=True, group="turns")
    def _turns(self, target: str) -> None:
        text = last_turns(self.layout_, self.project, target)
        self.call_from_thread(self.push_screen, TurnsScreen(text))


def detail_line(agent: AgentView) -> str:
    clean = render_text.clean
    pane = f"pane {agent.pane} (proven)" if agent.pane else "no proven pane"
    proof = "proven" if agent.identity_proven else "not proven"
    return (f"{clean(agent.name)} · {agent.client or '?'} · {agent.session_id or agent.key} · "
            f"{pane} · id from {agent.identity_source or '-'} ({proof}) · "
            f"{render_text.clean_path(agent.cwd, 50)} · {clean(agent.purpose, 120)}")


def last_turns(layout: Layout, project: Path, target: str, limit: int = 8) -> str:
    """The agent's last turns as text (its transcript, else its pane), neutralised."""
    from oxtail_py.discovery import list_project
    from oxtail_py.peer_reading import read_peer
    from oxtail_py.procs import self_identity

    try:
        listing = list_project(layout, project, False, self_identity(), count_unread=False)
        view = read_peer(listing, target, "auto", limit, 20_000, 60)
    except OxtailError as exc:
        return f"cannot read {target}: {exc}"
    if view.transcript is not None:
        lines = [f"{view.name}: last {len(view.transcript.turns)} turn(s) (escape or q closes)"]
        for turn in view.transcript.turns:
            calls = f" [{', '.join(c.name for c in turn.tool_calls)}]" if turn.tool_calls else ""
            lines.append(f"-- {turn.role}{calls}: {turn.text[:600]}")
        return neutralize("\n".join(lines))
    return neutralize(f"{view.name}: pane {view.tmux_pane} (escape or q closes)\n"
                      f"{view.pane_text or ''}")


def run_watch(settings: Settings, project: Path) -> int:
    Cockpit(settings, project).run()
    return 0
