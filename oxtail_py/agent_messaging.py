"""The messaging half of Agent: send, read, ask, wake, and the hand-over of replies.

A mixin, so that every caller keeps one object (`Agent`); this half reaches the identity
half only through the names declared under TYPE_CHECKING below. Thread-safe as Agent is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oxtail_py import eventlog, handover, obligations, offline
from oxtail_py.delivery import InboxRead
from oxtail_py.discovery import Listing, Row, TargetError, resolve
from oxtail_py.layout import Layout, pid_box_key
from oxtail_py.mailbox import Delivery, Mailbox
from oxtail_py.messages import Message, validate_message_id
from oxtail_py.procs import ProcessIdentity
from oxtail_py.registry import SessionEntry
from oxtail_py.scope import resolve_project_root
from oxtail_py.settings import Settings
from oxtail_py.wake import WakeReport, WakeSettings, Watch, wake_peer

if TYPE_CHECKING:
    from oxtail_py.identity import Resolution


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


class AgentMessaging:
    layout: Layout
    settings: Settings | None
    me: ProcessIdentity
    cwd: str
    project_root: Path
    entry: SessionEntry
    _guard: threading.RLock
    _open_asks: dict[str, PendingAsk]

    if TYPE_CHECKING:  # the identity half, defined by Agent

        @property
        def identity(self) -> Resolution: ...

        def refresh_identity(self) -> None: ...

        def my_mailboxes(self) -> list[Mailbox]: ...

        def _mailbox(self, key: str) -> Mailbox: ...

        def list_sessions(
            self, project_root: str | None = None, *, count_unread: bool = True
        ) -> Listing: ...

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

    def take_reply(self, pending: PendingAsk, *, wait_for_lock: bool = True) -> Delivery | None:
        """Take the reply to `pending` into a claim and write its received-ledger record.
        wait_for_lock=False: LockTimeoutError at once if a box's lock is held (a caller on
        the event loop then retries in a thread)."""
        # Our boxes now, not when the ask began: the session id may be learned meanwhile.
        for box in self.my_mailboxes():
            found = box.drain_first(pending.is_reply, wait_for_lock=wait_for_lock)
            if found is not None:
                try:
                    handover.before(self.layout, self.primary_key(), found.messages)
                except BaseException:
                    found.abort()
                    raise
                return found
        return None
