"""This server's agent: identity, registry entry, mailboxes, and every tool's core.

The MCP server (oxtail_py/server) is a thin adapter over this class; tests and the CLI
call it directly. Methods are thread-safe: sync MCP tools run in worker threads. The
messaging half (send, read, ask, wake) lives in agent_messaging.py.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oxtail_py import (
    pidbox,
    tmux,
    transcripts,
)
from oxtail_py.agent_messaging import AgentMessaging, PendingAsk
from oxtail_py.discovery import Listing, list_project
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import ensure_private_dir, ensure_tree
from oxtail_py.identity import (
    CLAUDE,
    CODEX,
    Adoption,
    IdentityResolver,
    Resolution,
    detect_client,
)
from oxtail_py.identity.follow import IdentityFollower
from oxtail_py.layout import INBOX, Layout, pid_box_key
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import now_iso
from oxtail_py.peer_reading import SessionView, check_read_limits, read_peer
from oxtail_py.procs import ProcessIdentity, proven_pane, self_identity
from oxtail_py.registry import (
    ClientInfo,
    Registry,
    SessionEntry,
    TmuxInfo,
    validate_purpose,
    validate_role,
)
from oxtail_py.scope import infer_project_root, resolve_project_root
from oxtail_py.settings import Settings
from oxtail_py.spawn.lineage import parent_info

log = logging.getLogger("oxtail_py")


class Agent(AgentMessaging):
    """This server's agent. The identity half (who am I, registry entry, lifecycle) is
    here; the messaging half (send, read, ask, wake) is AgentMessaging."""

    def __init__(
        self,
        layout: Layout,
        *,
        cwd: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.layout = layout
        self.settings = settings
        self.registry = Registry(self.layout)
        self.me = self_identity()
        self.cwd = os.path.realpath(cwd or os.getcwd())
        self.project_root, _ = infer_project_root(self.cwd)
        self.client = detect_client(self.me.pid)
        self.resolver = IdentityResolver(
            layout,
            server=self.me,
            client=self.client,
            cwd=self.cwd,
            project_root=self.project_root,
            env_session_id=settings.claude_session_id if settings else None,
        )
        self.entry = SessionEntry(
            self.me.pid,
            self.me.start,
            client=ClientInfo(type=self.client.type if self.client else None, cwd=self.cwd),
            capabilities=["ask_peer", "read_session", "wake"],
        )
        self._guard = threading.RLock()
        self._open_asks: dict[str, PendingAsk] = {}
        self._follower: IdentityFollower | None = None
        # Called with a mailbox directory when this agent gets a new one (its session
        # box, once the session id is known), so the server can watch it.
        self.on_new_mailbox: Callable[[Path], None] = lambda _path: None

    @property
    def identity(self) -> Resolution:
        return self.resolver.state

    # -- lifecycle ------------------------------------------------------------

    def start(self, *, follow: bool = True) -> None:
        ensure_private_dir(self.layout.root)
        c = self.client
        client = ProcessIdentity(c.pid, c.start) if c is not None and c.start else None
        pidbox.open_pid_box(self.layout, self.me, client)
        pidbox.sweep_orphans(self.layout, self.me, client)  # dead servers' pid boxes
        with self._guard:
            self.refresh_identity()
            self._prove_pane()
            self.entry.parent = parent_info(self.layout, self.me.pid, self.cwd)  # spawned?
            if self.entry.parent is not None and not self.entry.state.role:
                self._adopt_spawn_role(self.entry.parent.role)
            self._save()
        if follow:
            self._start_following()

    def _adopt_spawn_role(self, role: str) -> None:
        """A helper spawned with a role starts with it as its registry role (one role
        for the listing and for `@role:<name>`); a record written before roles were words
        gives no role rather than a refused start."""
        try:
            self.entry.state.role = validate_role(role)
        except OxtailError:
            log.warning("spawn role %r is not a role word; ignored", role[:40])

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()
        self.registry.remove(self.me)

    def _start_following(self) -> None:
        """Watch what can move our identity while no tool call comes (see identity.follow)."""
        ensure_tree(self.layout.root, self.layout.drops_dir)
        names = {self.layout.claim_drop_file(self.me).name}
        if self.client is not None and self.client.type == CLAUDE:
            names.add(self.layout.drop_file(self.client.pid).name)
        self._follower = IdentityFollower(self._on_outside_change)
        self._follower.watch(self.layout.drops_dir, names)
        with self._guard:
            for old in self.identity.previous_session_ids:
                self._follower.watch(self._mailbox(old).paths.directory, {INBOX})
        self._follower.start()

    def _on_outside_change(self) -> None:
        self.refresh_identity()
        self.forward_previous_mail()

    def _save(self) -> None:
        self.entry.client.session_id = self.identity.session_id
        self.entry.client.identity_source = self.identity.source
        self.entry.client.claimed = self.identity.claimed
        self.entry.client.previous_session_ids = list(self.identity.previous_session_ids)
        self.registry.write(self.entry)

    def _prove_pane(self) -> None:
        try:
            panes = tmux.list_panes()
        except (tmux.TmuxError, OSError) as exc:  # a broken tmux must not stop the server
            log.warning("tmux: %s; no pane recorded", exc)
            panes = []
        pane_id = proven_pane(self.me.pid, {p.pane_pid: p.pane_id for p in panes})
        pane = next((p for p in panes if p.pane_id == pane_id), None)
        self.entry.tmux = TmuxInfo(pane.pane_id, pane.session) if pane else TmuxInfo()

    def _mailbox(self, key: str) -> Mailbox:
        return Mailbox.open(self.layout, key)

    def my_mailboxes(self) -> list[Mailbox]:
        """Pid box first: it holds what arrived before we knew our session. Then the boxes
        of ids our client had before (/clear): a sender that resolved us just before the
        move may still write there."""
        boxes = [self._mailbox(pid_box_key(self.me))]
        for old in self.identity.previous_session_ids:
            box = Mailbox.existing(self.layout, old)
            if box is not None:
                boxes.append(box)
        if self.identity.session_id:
            boxes.append(self._mailbox(self.identity.session_id))
        return boxes

    # -- identity (the decisions are in identity/resolver.py) -----------------------

    def refresh_identity(self) -> None:
        """Try each strategy that needs no tool-call context; cheap enough per call."""
        with self._guard:
            adoption = self.resolver.refresh()
            if adoption is not None:
                self._adopt(adoption)

    def observe_meta(self, meta: Mapping[str, Any] | None) -> None:
        """Codex sends its thread id as `_meta.threadId` on every tools/call."""
        thread_id = (meta or {}).get("threadId")
        if not isinstance(thread_id, str):
            return
        with self._guard:
            adoption = self.resolver.observe_meta(thread_id)
            if adoption is not None:
                self._adopt(adoption)

    def claim(self, session_id: str) -> None:
        """An explicit claim; refused for an id another live agent or project holds."""
        with self._guard:
            adoption = self.resolver.claim(session_id)
            if adoption is not None:
                self._adopt(adoption)
            else:
                self._save()  # the same id, now marked claimed

    def _adopt(self, adoption: Adoption) -> None:
        """(guard held) Publish the new id, then bring every box of ours into its box."""
        session_id = adoption.session_id
        client_type = self.entry.client.type or self.resolver.client_type
        self.entry.client.type = client_type
        found = transcripts.locate_transcript(client_type, session_id) if client_type else None
        self.entry.client.transcript_path = str(found) if found else None
        # The entry first: from now on peers (a send by tmux name, the wake gate's
        # busy/idle) use the new id.
        self._save()
        box = self._mailbox(session_id)
        for request_id, pending in self._open_asks.items():
            pending._stack.enter_context(box.awaiting_reply(request_id))
        pidbox.forward(self.layout, self.me, session_id)  # record first, then merge
        self.on_new_mailbox(box.paths.directory)
        if adoption.previous is not None and self._follower is not None:
            self._follower.watch(self._mailbox(adoption.previous).paths.directory, {INBOX})
        self.forward_previous_mail()

    def forward_previous_mail(self) -> None:
        """Move what waits under an id we had before into the current box, where the
        client's hooks (which know only the current id) deliver it."""
        with self._guard:
            current = self.identity.session_id
            if current is None:
                return
            box = self._mailbox(current)
            for old in self.identity.previous_session_ids:
                previous = Mailbox.existing(self.layout, old)
                if previous is not None and previous.pending_count():
                    previous.move_all_to(box)

    def my_session(self) -> SessionReport:
        with self._guard:
            self.refresh_identity()
            ident = self.identity
            next_step = None
            if ident.session_id is None:
                var = "CODEX_THREAD_ID" if self.entry.client.type == CODEX else (
                    "CLAUDE_CODE_SESSION_ID"
                )
                next_step = (
                    f'{sys.executable} -m oxtail_py claim --server-pid {self.me.pid} "${var}"'
                    f"  (or call claim_session with the value of ${var})"
                )
            # Copies: the report must not change under the caller when identity moves.
            return SessionReport(
                entry=copy.deepcopy(self.entry),
                identity=copy.deepcopy(ident),
                mailboxes={
                    b.paths.directory.name: b.pending_count() for b in self.my_mailboxes()
                },
                next_step=next_step,
            )

    def set_state(self, purpose: str, role: str | None = None) -> StateCardView:
        """The state card; `role` None keeps the current role, "" clears it."""
        with self._guard:
            card = self.entry.state
            card.purpose = validate_purpose(purpose)
            if role is not None:
                card.role = validate_role(role)
            card.updated_at = now_iso()
            self._save()
            return StateCardView(card.purpose, card.updated_at, card.role)

    # -- discovery ----------------------------------------------------------------

    def list_sessions(
        self, project_root: str | None = None, *, count_unread: bool = True
    ) -> Listing:
        self.refresh_identity()
        home = self.settings.home if self.settings else None
        root, inferred = resolve_project_root(project_root, self.cwd, home=home)
        return list_project(
            self.layout, root, inferred and project_root is None, self.me,
            count_unread=count_unread,
        )

    def read_session(
        self,
        name: str,
        project_root: str | None = None,
        mode: str = "auto",
        limit: int = 20,
        max_bytes: int = 20_000,
        pane_lines: int = 80,
    ) -> SessionView:
        check_read_limits(mode, limit, max_bytes, pane_lines)
        listing = self.list_sessions(project_root, count_unread=False)
        return read_peer(listing, name, mode, limit, max_bytes, pane_lines)


@dataclass(frozen=True, slots=True)
class SessionReport:
    """get_my_session's core result: this server's entry and how its identity was found."""

    entry: SessionEntry
    identity: Resolution
    mailboxes: dict[str, int]  # mailbox key -> messages waiting
    next_step: str | None  # the exact command to run when the identity is unresolved


@dataclass
class StateCardView:
    purpose: str
    updated_at: str | None
    role: str = ""
