"""This server's agent: identity, registry entry, mailboxes, and every tool's core.

The MCP server (server.py) is a thin adapter over this class; tests and the CLI
call it directly. Methods are thread-safe: sync MCP tools run in worker threads.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oxtail_py import (
    eventlog,
    handover,
    obligations,
    offline,
    pidbox,
    tmux,
    transcripts,
)
from oxtail_py.delivery import InboxRead
from oxtail_py.discovery import Listing, Row, TargetError, list_project, resolve
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
from oxtail_py.mailbox import Delivery, Mailbox
from oxtail_py.messages import Message, now_iso, validate_message_id
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
from oxtail_py.wake import WakeReport, WakeSettings, Watch, wake_peer

log = logging.getLogger("oxtail_py")


@dataclass
class SendReceipt:
    message_id: str
    request_id: str | None
    target: Row
    reply_awaited: bool = False  # a live ask_peer of the target waited for this reply
    offline: bool = False  # no live server for that session: the mail waits for it


@dataclass
class PendingAsk:
    message: Message
    target: Row
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def request_id(self) -> str:
        return self.message.id

    def is_reply(self, msg: Message) -> bool:
        return msg.reply_to == self.request_id and (
            msg.from_session_id == self.target.client_session_id
        )


class Agent:
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

    # -- messaging ----------------------------------------------------------------

    def _origin(self) -> dict[str, Any]:
        return {
            "server_pid": self.me.pid,
            "client_type": self.entry.client.type,
            "tmux_session": self.entry.tmux.session,
            "cwd": self.cwd,
        }

    @property
    def _log_bodies(self) -> bool:
        return self.settings is not None and self.settings.event_log_bodies

    def _resolve_peer(self, target: str, project_root: str | None) -> Row:
        listing = self.list_sessions(project_root, count_unread=False)
        row = resolve(listing, target, agents_only=True)
        if row.is_me:
            raise TargetError(
                f"{target!r} is you; send to a peer (list_project_sessions shows them)",
                code="send-to-self",
            )
        return row

    def send(
        self,
        target: str,
        body: str,
        *,
        reply_to: str | None = None,
        project_root: str | None = None,
        action_required: bool = False,
        trusted_session: bool = False,
        message_id: str | None = None,
    ) -> SendReceipt:
        """Enqueue one message. A target with no live server is written to only as an
        offline session of this project (offline.py; `trusted_session`: the caller proved
        it from our received-ledger). `message_id` re-sends a recorded message (a
        completion resumed after a crash): the recipient de-duplicates by id."""
        if reply_to is not None:
            validate_message_id(reply_to, "reply_to")
        row, is_offline = self._recipient(target, project_root, trusted_session)
        if action_required:
            handover.check_delegation(self.identity.session_id, row)
        return self.send_to(
            row, body, reply_to=reply_to, action_required=action_required,
            message_id=message_id, offline=is_offline,
        )  # fmt: skip

    def send_to(
        self,
        row: Row,
        body: str,
        *,
        reply_to: str | None = None,
        action_required: bool = False,
        message_id: str | None = None,
        offline: bool = False,
    ) -> SendReceipt:
        """Enqueue one message to a recipient already resolved (send; each member of a
        group target, broadcast.py)."""
        msg = Message.create(
            body,
            from_session_id=self.identity.session_id,
            reply_to=reply_to,
            origin=self._origin(),
            action_required=action_required,
            message_id=message_id,
        )
        box = self._mailbox(row.mailbox_key)
        # Looked at before the reply lands: once it has, the asker may take it and end
        # its ask at once, and a look after would see no ask waiting.
        awaited = reply_to is not None and box.awaits(reply_to)
        box.enqueue(msg)
        handover.sent(self.layout, self.primary_key(), msg, row, str(self.project_root))
        eventlog.sent(self.layout, msg, row.mailbox_key, bodies=self._log_bodies)
        return SendReceipt(msg.id, None, row, reply_awaited=awaited, offline=offline)

    def _recipient(
        self, target: str, project_root: str | None, trusted_session: bool
    ) -> tuple[Row, bool]:
        home = self.settings.home if self.settings else None
        return offline.resolve_recipient(
            lambda: self._resolve_peer(target, project_root),
            self.layout,
            resolve_project_root(project_root, self.cwd, home=home)[0],
            target,
            home=home,
            trusted=trusted_session,
            mine=self.my_keys(),
        )

    def my_keys(self) -> list[str]:
        """Every mailbox key this agent answers to: pid box, ids before /clear, current."""
        return [b.paths.directory.name for b in self.my_mailboxes()]

    def primary_key(self) -> str:
        """The key ledgers are written under: the session id, else the pid box."""
        return self.identity.session_id or pid_box_key(self.me)

    def read(self) -> InboxRead:
        """Take every message waiting in our boxes into claims. The caller commits the
        result once the messages are handed over, or aborts it (they go back)."""
        self.refresh_identity()
        deliveries: list[Delivery] = []
        try:
            for box in self.my_mailboxes():
                deliveries.append(box.drain())
        except BaseException:
            InboxRead([], 0, deliveries).abort()
            raise
        messages = sorted((m for d in deliveries for m in d.messages), key=lambda m: m.enqueued_at)
        taken = InboxRead(messages, sum(d.quarantined for d in deliveries), deliveries)
        try:
            handover.before(self.layout, self.primary_key(), messages)
        except BaseException:
            taken.abort()
            raise
        return taken

    def handed_over(self, messages: list[Message], via: handover.Via) -> None:
        """Receipts for what this agent was just handed (call before the commit)."""
        handover.after(self.layout, self.primary_key(), messages, via)
        eventlog.delivered(self.layout, messages, self.primary_key(), via)

    def open_work_count(self) -> int:
        """Work this agent owes, by its owed markers (each checked against its record)."""
        return obligations.count_open_for_keys(self.layout, self.my_keys())

    @contextmanager
    def ask(
        self,
        target: str,
        body: str,
        *,
        project_root: str | None = None,
        before_send: Callable[[PendingAsk], None] = lambda _pending: None,
    ) -> Iterator[PendingAsk]:
        """Send a request and hold our inboxes so that no other reader takes its reply.
        `before_send` runs once the request is made and before it goes out; if it raises
        (the asks ledger refusing a cycle), nothing is sent."""
        row = self._resolve_peer(target, project_root)
        if not row.client_session_id:
            raise TargetError(
                f"{row.name!r} has no session id yet, so it cannot address a reply to you; "
                "send_message works, or ask it to claim its session",
                code="peer-has-no-session-id",
            )
        msg = Message.create(
            body,
            from_session_id=self.identity.session_id,
            expects_reply=True,
            origin=self._origin(),
        )
        pending = PendingAsk(msg, row)
        with pending._stack:
            with self._guard:
                # Markers before the request goes out: a fast reply is already held.
                # A box this agent gets later (its session box) is marked by _adopt.
                for box in self.my_mailboxes():
                    pending._stack.enter_context(box.awaiting_reply(msg.id))
                self._open_asks[msg.id] = pending
            try:
                before_send(pending)
                self._mailbox(row.mailbox_key).enqueue(msg)
                handover.sent(self.layout, self.primary_key(), msg, row, str(self.project_root))
                eventlog.sent(self.layout, msg, row.mailbox_key, bodies=self._log_bodies)
                yield pending
            finally:
                with self._guard:
                    del self._open_asks[msg.id]

    def wake(
        self,
        target: Row,
        message_id: str,
        *,
        request_id: str | None = None,
        reply_to: str | None = None,
        watch: Watch | None = None,
        sender: str | None = None,
    ) -> WakeReport:
        """Make `target` notice the message `message_id` just sent to it (see wake.py).
        Blocking (keystrokes, then a few seconds watching for proof): keep it off the
        event loop; `watch.finish` ends the watching. `sender` names who the wake line
        says the message is from (default: this agent; a self-heal wake names the
        message's own sender)."""
        sender = (
            sender or self.identity.session_id or self.entry.tmux.session or f"pid-{self.me.pid}"
        )
        return wake_peer(
            self.layout,
            target,
            sender=sender,
            message_id=message_id,
            project_root=self.project_root,  # the waker's own project: only it is woken into
            settings=WakeSettings.of(self.settings) if self.settings else WakeSettings(),
            request_id=request_id,
            reply_to=reply_to,
            watch=watch,
        )

    def asks_in_flight(self) -> set[str]:
        """Request ids of this server's ask_peer calls waiting now (their replies are
        taken by those calls, not read as mail)."""
        with self._guard:
            return set(self._open_asks)

    def take_reply(self, pending: PendingAsk) -> Delivery | None:
        # Our boxes now, not when the ask began: the session id may be learned meanwhile.
        for box in self.my_mailboxes():
            found = box.drain_first(pending.is_reply)
            if found is not None:
                try:
                    handover.before(self.layout, self.primary_key(), found.messages)
                except BaseException:
                    found.abort()
                    raise
                return found
        return None


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
