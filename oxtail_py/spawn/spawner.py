"""Spawn and stop helpers: the checks, the limits, and the one object that remembers what
this process launched.

Who may stop whom: an agent stops only a client its own server launched, proven by its
own memory (spawn id -> the runner process it started, pid + start time) against the
live process tree (that runner is above the target's server, and the client between
them was exec'd with that spawn id). Nothing read from a file can add to that memory, so
a forged record or registry `parent` cannot make an agent stop someone else's peer. The
person (`oxtail-py stop`) stops what was spawned from the CLI, proven the same way from
the record the CLI wrote.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from oxtail_py import tmux
from oxtail_py.discovery import Row, TargetError, list_project, resolve
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import ensure_tree
from oxtail_py.identity import write_claim
from oxtail_py.layout import Layout
from oxtail_py.locks import DirLock
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message, validate_body
from oxtail_py.procs import (
    ProcessIdentity,
    identity_of,
    parent_pid,
)
from oxtail_py.registry import SessionEntry, validate_role
from oxtail_py.scope import resolve_project_root
from oxtail_py.settings import Settings
from oxtail_py.spawn import launching
from oxtail_py.spawn.lineage import (
    SPAWN_DEPTH_VAR,
    SPAWN_ID_VAR,
    depth_of,
    launched_by,
    own_spawn,
    runs_under,
)
from oxtail_py.spawn.preflight import codex_daemon_problem, find_client
from oxtail_py.spawn.records import (
    CLIENTS,
    ParentRef,
    SpawnRecord,
    live_records,
    new_spawn_id,
    remove_record,
    write_record,
)

_STOP_WAIT_S: Final = 5.0
# Not handed to the client: the pane's own (the runner adds tmux's), or our markers.
_DROPPED_ENV: Final = ("TMUX", "TMUX_PANE", "TERM", "COLORTERM", "COLUMNS", "LINES",
                       SPAWN_ID_VAR, SPAWN_DEPTH_VAR)


class SpawnRefused(OxtailError):
    code = "spawn-refused"


@dataclass(frozen=True)
class Caller:
    """Who spawns: an agent's server (by='agent') or the person's CLI (by='person')."""

    by: str
    pid: int  # this process: its ancestors' environments give the depth
    cwd: str
    name: str
    session_id: str | None
    tmux_session: str | None  # the caller's own session, proven by the live tree
    env: dict[str, str]  # the user's environment for the client
    home: Path | None = None


@dataclass
class SpawnResult:
    spawn_id: str
    client: str
    name: str
    role: str
    depth: int
    session_id: str | None
    server_pid: int
    pane: str
    tmux_session: str
    detached: bool
    attach: str | None
    prompt_confirmed: bool | None  # None: no prompt given
    registered_ms: int  # from the start until its server was registered
    elapsed_ms: int
    note: str = ""


@dataclass
class StopResult:
    name: str
    session_id: str | None
    server_pid: int | None
    goodbye_message_id: str
    client_pid: int | None
    ended: bool


@dataclass
class Spawner:
    layout: Layout
    settings: Settings
    _mine: dict[str, ProcessIdentity] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    # -- spawn -----------------------------------------------------------------------

    def spawn(
        self,
        caller: Caller,
        client: str,
        prompt: str,
        *,
        name: str | None = None,
        role: str | None = None,
        project_root: str | None = None,
        client_args: tuple[str, ...] = (),
    ) -> SpawnResult:
        started = time.monotonic()
        if client not in CLIENTS:
            raise SpawnRefused(f"unknown client {client!r}: spawn 'claude' or 'codex'",
                               code="unknown-client")
        if prompt:
            validate_body(prompt)  # body-too-large past 8 KB: a first turn is a message
        role = _role(role or "")
        root, _ = resolve_project_root(project_root, caller.cwd, home=caller.home)
        cwd = str(root)
        if shutil.which("tmux") is None:
            raise tmux.TmuxUnavailableError(
                "tmux is not installed (not on PATH): spawned agents run in tmux windows. "
                "Install tmux, then spawn again"
            )
        exe = find_client(client, caller.env)
        if client == "codex" and (problem := codex_daemon_problem(caller.env)):
            raise SpawnRefused(problem, code="codex-daemon")
        depth = depth_of(caller.pid) + 1
        if depth > self.settings.spawn_max_depth:
            raise SpawnRefused(
                f"spawning here would make a level-{depth} helper; the limit is "
                f"{self.settings.spawn_max_depth} (OXTAIL_SPAWN_MAX_DEPTH). You are yourself "
                "a spawned helper: do the work yourself, or ask your parent to spawn",
                code="spawn-depth-limit",
            )
        ensure_tree(self.layout.root, self.layout.spawns_dir)
        # One spawn at a time (across processes) counts the live ones, picks the name and
        # reserves it with its record: two parallel spawns never share a name or pass the
        # cap together.
        with DirLock(self.layout.spawn_lock):
            live = live_records(self.layout, root)
            if len(live) >= self.settings.spawn_max_live:
                raise SpawnRefused(
                    f"{len(live)} spawned agents already run in {root}; the cap is "
                    f"{self.settings.spawn_max_live} (OXTAIL_SPAWN_MAX_LIVE). stop_peer one "
                    "you spawned, or work with those already here (list_project_sessions)",
                    code="spawn-limit",
                )
            name = self._free_name(name, client, root, caller, {r.name for r in live})
            session, detached = self._where(caller, root)
            record = SpawnRecord(
                spawn_id=new_spawn_id(), client=client, name=name, role=role,
                project_root=str(root), cwd=cwd, depth=depth,
                parent=ParentRef(caller.by, caller.session_id, caller.name),
            )  # fmt: skip
            write_record(self.layout, record)
        env = {k: v for k, v in caller.env.items() if k not in _DROPPED_ENV}
        env.update({SPAWN_ID_VAR: record.spawn_id, SPAWN_DEPTH_VAR: str(depth)})
        deadline = started + self.settings.spawn_timeout_ms / 1000
        launch = launching.start(
            self.layout, record, [exe, *client_args], env, session=session, detached=detached
        )
        with self._guard:
            self._mine[record.spawn_id] = launch.runner
        try:
            entry = launching.wait_for_server(
                self.layout, launch, deadline, need_session_id=client == "claude"
            )
            registered_ms = int((time.monotonic() - started) * 1000)
            confirmed = (
                launching.hand_over(self.layout, launch, entry, prompt, deadline)
                if prompt else None
            )
            note = ""
            if entry.client.session_id is None and prompt:
                entry, note = self._learn_codex_thread(launch, entry, deadline)
        except BaseException:
            self._end_launch(launch)
            raise
        return SpawnResult(
            spawn_id=record.spawn_id, client=client, name=name, role=role, depth=depth,
            session_id=entry.client.session_id, server_pid=entry.server_pid,
            pane=launch.pane_id, tmux_session=launch.session, detached=detached,
            attach=tmux.attach_command(launch.session) if detached else None,
            prompt_confirmed=confirmed, registered_ms=registered_ms,
            elapsed_ms=int((time.monotonic() - started) * 1000), note=note,
        )  # fmt: skip

    def _learn_codex_thread(
        self, launch: launching.Launch, entry: SessionEntry, deadline: float
    ) -> tuple[SessionEntry, str]:
        """A Codex server learns its thread id only at its first tool call. The thread is
        proven now from the rollout its TUI (below our runner) holds open, and handed to
        the server as a claim, which it checks again (its transcript is in this project,
        no other live server holds it) before adopting it."""
        thread = launching.codex_thread(launch, deadline)
        if thread is not None:
            try:
                write_claim(self.layout, entry.server_pid, thread)
            except OxtailError as exc:
                return entry, f"its thread {thread} could not be handed to its server: {exc}"
        try:
            return launching.wait_for_server(
                self.layout, launch, deadline, need_session_id=True
            ), ""
        except launching.SpawnError as exc:
            if exc.code != "spawn-timeout":  # it exited: that is a failed spawn
                raise
            return entry, ("its session id is not known yet (Codex learns it at its first "
                           "tool call); until then address it by name")

    def _free_name(
        self, name: str | None, client: str, root: Path, caller: Caller, reserved: set[str]
    ) -> str:
        if not name:
            name = f"{client}-{secrets.token_hex(2)}"
        if not tmux.WINDOW_NAME_RE.fullmatch(name):
            raise SpawnRefused(
                f"name {name!r} is not usable: 1-32 letters, digits, '-' or '_', starting "
                "with a letter or digit", code="bad-name",
            )  # fmt: skip
        listing = list_project(self.layout, root, False, _me(caller), count_unread=False)
        taken = {r.name for r in listing.rows} | {r.tmux_session or "" for r in listing.rows}
        taken |= reserved  # helpers being launched right now
        if caller.tmux_session:
            with contextlib.suppress(tmux.TmuxError):
                taken |= set(tmux.window_names(caller.tmux_session))
        if name in taken:
            raise SpawnRefused(
                f"the name {name!r} is already in use in this project (an agent, session or "
                "window); choose another name", code="name-taken",
            )  # fmt: skip
        return name

    def _where(self, caller: Caller, root: Path) -> tuple[str, bool]:
        """The caller's tmux session, or (outside tmux) a detached one named after the
        project (reused when it exists)."""
        if caller.tmux_session and caller.tmux_session in tmux.session_names():
            return caller.tmux_session, False
        base = re.sub(r"[^A-Za-z0-9_-]", "-", root.name).strip("-_") or "project"
        return base[:32], True

    def _end_launch(self, launch: launching.Launch) -> None:
        with self._guard:
            self._mine.pop(launch.record.spawn_id, None)
        if launch.runner.is_alive():
            try:
                tmux.kill_pane(launch.pane_id)
            except OxtailError:
                os.kill(launch.runner.pid, signal.SIGTERM)
        remove_record(self.layout, launch.record.spawn_id)

    # -- stop ------------------------------------------------------------------------

    def stop(self, caller: Caller, target: str, *, project_root: Path) -> StopResult:
        listing = list_project(self.layout, project_root, False, _me(caller), count_unread=False)
        row = resolve(listing, target, agents_only=True)
        if row.is_me or row.server_pid is None:
            raise TargetError(f"{target!r} is you: stop_peer ends a helper you spawned",
                              code="stop-self")
        spawn_id, runner = self._authority(caller, row)
        goodbye = Message.create(
            f"oxtail: {caller.name or 'your parent'} is ending this helper session now "
            "(stop_peer). Goodbye.",
            from_session_id=caller.session_id,
            origin={"server_pid": caller.pid, "stop_peer": True},
        )
        Mailbox.open(self.layout, row.mailbox_key).enqueue(goodbye)
        client_pid = _client_below(row.server_pid, runner)
        ended = _terminate(client_pid) if client_pid is not None else False
        if runner.is_alive():
            pane = _pane_of(runner)
            if pane is not None:
                tmux.kill_pane(pane)
            else:
                os.kill(runner.pid, signal.SIGTERM)
        with self._guard:
            self._mine.pop(spawn_id, None)
        remove_record(self.layout, spawn_id)
        return StopResult(row.name, row.client_session_id, row.server_pid, goodbye.id,
                          client_pid, ended)

    def _authority(self, caller: Caller, row: Row) -> tuple[str, ProcessIdentity]:
        assert row.server_pid is not None
        if caller.by == "agent":
            with self._guard:
                mine = dict(self._mine)
            for spawn_id, runner in mine.items():
                if launched_by(row.server_pid, spawn_id, runner):
                    return spawn_id, runner
        else:
            proven = own_spawn(self.layout, row.server_pid, row.cwd or "")
            launched = proven.record.runner if proven else None
            if (proven and proven.record.parent.by == "person" and launched is not None
                    and launched_by(row.server_pid, proven.record.spawn_id, launched)):
                return proven.record.spawn_id, launched
        whom = "this agent" if caller.by == "agent" else "the person (oxtail-py spawn)"
        raise SpawnRefused(
            f"{row.name!r} was not spawned by {whom}: only the agent that spawned a helper "
            "(or the person, for helpers spawned with `oxtail-py spawn`) can stop it. Send "
            "it a message instead",
            code="not-your-spawn",
        )


def _role(role: str) -> str:
    """The helper's role, shaped as set_my_state takes one: its server adopts it as its
    registry role at start, so `@role:<name>` reaches it from its first turn."""
    try:
        return validate_role(role)
    except OxtailError as exc:
        raise SpawnRefused(f"role: {exc}", code="invalid-role") from exc


def _me(caller: Caller) -> ProcessIdentity:
    me = identity_of(caller.pid)
    assert me is not None, "the caller is this running process"
    return me


def _client_below(server_pid: int, runner: ProcessIdentity) -> int | None:
    """The runner's child above the server: the client process we started."""
    current: int | None = server_pid
    while current is not None and current > 1:
        parent = parent_pid(current)
        if parent == runner.pid and runs_under(parent, runner):  # pid + start time
            return current
        current = parent
    return None


def _terminate(pid: int) -> bool:
    """SIGTERM, then wait for the exit on a pidfd (no polling); SIGKILL if it lingers."""
    target = identity_of(pid)
    if target is None:
        return True
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if identity_of(pid) != target:
            return True
        signal.pidfd_send_signal(fd, signal.SIGTERM)
        if not select.select([fd], [], [], _STOP_WAIT_S)[0]:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            select.select([fd], [], [], _STOP_WAIT_S)
        return not target.is_alive()
    except ProcessLookupError:
        return True
    finally:
        os.close(fd)


def _pane_of(runner: ProcessIdentity) -> str | None:
    """The pane whose own process is the runner (tmux started it there)."""
    return next((p.pane_id for p in tmux.list_panes() if p.pane_pid == runner.pid), None)
