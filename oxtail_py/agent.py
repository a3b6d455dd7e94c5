"""This server's agent: identity, registry entry, mailboxes, and every tool's core.

The MCP server (server.py) is a thin adapter over this class; tests and the CLI
call it directly. Methods are thread-safe: sync MCP tools run in worker threads.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from oxtail_py import tmux, transcripts
from oxtail_py.discovery import Listing, Row, TargetError, list_project, resolve
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import ensure_private_dir, load_json
from oxtail_py.identity import (
    CLAUDE,
    CODEX,
    IdentityState,
    detect_client,
    find_drop,
    session_id_from_env,
)
from oxtail_py.layout import SESSION_ID_RE, Layout, pid_box_key, validate_session_id
from oxtail_py.mailbox import Delivery, Mailbox
from oxtail_py.messages import Message, now_iso, validate_message_id
from oxtail_py.procs import proven_pane, self_identity
from oxtail_py.registry import ClientInfo, Registry, SessionEntry, TmuxInfo, validate_purpose
from oxtail_py.scope import resolve_project_root
from oxtail_py.wake import WakeReport, Watch, wake_peer

READ_MODES: Final = ("auto", "transcript", "pane")
log = logging.getLogger("oxtail_py")


@dataclass
class SendReceipt:
    message_id: str
    request_id: str | None
    target: Row


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
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.layout = layout
        self.registry = Registry(self.layout)
        self.me = self_identity()
        self.cwd = os.path.realpath(cwd or os.getcwd())
        self.environ = environ if environ is not None else os.environ
        self.client = detect_client(self.me.pid)
        self.identity = IdentityState()
        self.entry = SessionEntry(
            self.me.pid,
            self.me.start,
            client=ClientInfo(type=self.client.type if self.client else None, cwd=self.cwd),
            capabilities=["ask_peer", "read_session", "wake"],
        )
        self._guard = threading.RLock()
        self._open_asks: dict[str, PendingAsk] = {}
        # Called with a mailbox directory when this agent gets a new one (its session
        # box, once the session id is known), so the server can watch it.
        self.on_new_mailbox: Callable[[Path], None] = lambda _path: None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        ensure_private_dir(self.layout.root)
        self._mailbox(pid_box_key(self.me))
        with self._guard:
            self.refresh_identity()
            self._prove_pane()
            self._save()

    def stop(self) -> None:
        self.registry.remove(self.me)

    def _save(self) -> None:
        self.entry.client.session_id = self.identity.session_id
        self.entry.client.identity_source = self.identity.source
        self.entry.client.claimed = self.identity.claimed
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
        """Pid box first: it holds what arrived before we knew our session."""
        boxes = [self._mailbox(pid_box_key(self.me))]
        if self.identity.session_id:
            boxes.append(self._mailbox(self.identity.session_id))
        return boxes

    # -- identity ---------------------------------------------------------------

    def refresh_identity(self) -> None:
        """Try each strategy that needs no tool-call context; cheap enough per call."""
        with self._guard:
            if self.identity.claimed:
                return
            diag = self.identity.diagnosis
            claimed = self._claim_drop()
            if claimed:
                self._adopt(claimed, "claim", claimed=True)
                return
            diag["claim"] = "no explicit claim"
            if self.identity.session_id is not None:
                return  # found before; only an explicit claim may change it now
            env_sid = session_id_from_env(self.environ)
            diag["env"] = f"CLAUDE_CODE_SESSION_ID={env_sid}" if env_sid else "not set"
            drop = find_drop(self.layout, self.me.pid)
            diag["drop"] = (
                f"SessionStart drop of client pid {drop.client_pid}" if drop else "no drop found"
            )
            if self.client is None:
                diag["client"] = "no claude/codex process above this server"
            else:
                diag["client"] = f"{self.client.type} pid {self.client.pid}"
            candidate = env_sid or (drop.session_id if drop else None)
            source = "env" if env_sid else "drop"
            if candidate is None and self.client and self.client.type == CLAUDE:
                candidate = self._transcript_birth_match()
                source = "birth"
            if candidate:
                self._adopt(candidate, source)

    def _claim_drop(self) -> str | None:
        try:
            data = load_json(self.layout.claim_drop_file(self.me))
        except (OSError, ValueError):
            return None
        sid = data.get("session_id") if isinstance(data, dict) else None
        return sid if isinstance(sid, str) and SESSION_ID_RE.fullmatch(sid) else None

    def _transcript_birth_match(self) -> str | None:
        if self.client is None or self.client.start is None:
            return None
        born = transcripts.claude_transcripts_born_after(Path(self.cwd), float(self.client.start))
        taken = {e.client.session_id for e in self.registry.read_all() if e.identity != self.me}
        fresh = [p.stem for p in born if p.stem not in taken and SESSION_ID_RE.fullmatch(p.stem)]
        self.identity.diagnosis["birth"] = (
            f"{len(fresh)} unclaimed transcript(s) born after the client started"
        )
        return fresh[0] if len(fresh) == 1 else None

    def observe_meta(self, meta: Mapping[str, Any] | None) -> None:
        """Codex sends its thread id as `_meta.threadId` on every tools/call."""
        thread_id = (meta or {}).get("threadId")
        if not isinstance(thread_id, str) or not SESSION_ID_RE.fullmatch(thread_id):
            return
        with self._guard:
            self.identity.diagnosis["meta"] = f"_meta.threadId={thread_id}"
            if self.identity.session_id is None:
                self._adopt(thread_id, "meta")
            elif thread_id != self.identity.session_id:
                note = (
                    f"tool call carried threadId {thread_id} but this server is "
                    f"{self.identity.session_id} ({self.identity.source}); kept the latter"
                )
                if note not in self.identity.conflicts:
                    self.identity.conflicts.append(note)

    def claim(self, session_id: str) -> None:
        validate_session_id(session_id)
        with self._guard:
            self._adopt(session_id, "claim", claimed=True)

    def _adopt(self, session_id: str, source: str, *, claimed: bool = False) -> None:
        """(guard held) Take `session_id` as ours; merge the pid box into its box."""
        validate_session_id(session_id)
        previous = self.identity.session_id
        if previous is not None and previous != session_id and not claimed:
            return
        self.identity.session_id = session_id
        self.identity.source = source
        self.identity.claimed = self.identity.claimed or claimed
        client_type = self.entry.client.type or (CODEX if source == "meta" else None)
        self.entry.client.type = client_type
        found = transcripts.locate_transcript(client_type, session_id) if client_type else None
        self.entry.client.transcript_path = str(found) if found else None
        self._save()
        box = self._mailbox(session_id)
        for request_id, pending in self._open_asks.items():
            pending._stack.enter_context(box.awaiting_reply(request_id))
        self._mailbox(pid_box_key(self.me)).move_all_to(box)
        if previous is not None and previous != session_id:
            # A claim replaced an auto-detected id: what waits there is ours too.
            self._mailbox(previous).move_all_to(box)
        self.on_new_mailbox(box.paths.directory)

    def my_session(self) -> dict[str, Any]:
        with self._guard:
            self.refresh_identity()
            result: dict[str, Any] = {
                "entry": self.entry.to_dict(),
                "identity": {
                    "session_id": self.identity.session_id,
                    "source": self.identity.source,
                    "claimed": self.identity.claimed,
                    "conflicts": list(self.identity.conflicts),
                    "diagnosis": dict(self.identity.diagnosis),
                },
                "mailboxes": {
                    b.paths.directory.name: b.pending_count() for b in self.my_mailboxes()
                },
                "next_step": None,
            }
            if self.identity.session_id is None:
                var = (
                    "CODEX_THREAD_ID"
                    if self.entry.client.type == CODEX
                    else ("CLAUDE_CODE_SESSION_ID")
                )
                result["next_step"] = (
                    f'{sys.executable} -m oxtail_py claim --server-pid {self.me.pid} "${var}"'
                    f"  (or call claim_session with the value of ${var})"
                )
            return result

    def set_state(self, purpose: str) -> StateCardView:
        with self._guard:
            self.entry.state.purpose = validate_purpose(purpose)
            self.entry.state.updated_at = now_iso()
            self._save()
            return StateCardView(self.entry.state.purpose, self.entry.state.updated_at)

    # -- discovery ----------------------------------------------------------------

    def list_sessions(
        self, project_root: str | None = None, *, count_unread: bool = True
    ) -> Listing:
        self.refresh_identity()
        root, inferred = resolve_project_root(project_root, self.cwd)
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
    ) -> dict[str, Any]:
        if mode not in READ_MODES:
            raise OxtailError(f"mode must be one of {', '.join(READ_MODES)}", code="bad-mode")
        if not (1 <= limit <= 500 and 200 <= max_bytes <= 500_000 and 1 <= pane_lines <= 5000):
            raise OxtailError(
                "limits out of range: limit 1-500, max_bytes 200-500000, pane_lines 1-5000",
                code="bad-limit",
            )
        listing = self.list_sessions(project_root, count_unread=False)
        row = resolve(listing, name, agents_only=False)
        path = self._transcript_of(row) if mode != "pane" else None
        if mode == "transcript" and path is None:
            raise OxtailError(
                f"no transcript found for {row.name!r} (client {row.client_type}, session "
                f"{row.client_session_id}); try mode='pane'",
                code="no-transcript",
            )
        base = {
            "name": row.name,
            "kind": row.kind,
            "client_type": row.client_type,
            "client_session_id": row.client_session_id,
            "tmux_pane": row.tmux_pane,
        }
        if path is not None:
            view = transcripts.read_transcript(
                path, row.client_type or "", limit=limit, max_bytes=max_bytes
            )
            return {**base, "mode": "transcript", "transcript": view}
        if row.tmux_pane is None:
            raise OxtailError(
                f"{row.name!r} has neither a transcript nor a tmux pane to read",
                code="nothing-to-read",
            )
        text = tmux.capture(row.tmux_pane, pane_lines)
        data = text.encode()
        truncated = len(data) > max_bytes
        if truncated:
            text = data[-max_bytes:].decode(errors="ignore")
        return {**base, "mode": "pane", "pane_text": text, "truncated": truncated}

    def _transcript_of(self, row: Row) -> Path | None:
        if row.kind != "agent" or not row.client_session_id or not row.client_type:
            return None
        recorded = row.entry.client.transcript_path if row.entry else None
        if recorded and transcripts.is_allowed_transcript(Path(recorded)):
            return Path(recorded)
        return transcripts.locate_transcript(row.client_type, row.client_session_id)

    # -- messaging ----------------------------------------------------------------

    def _origin(self) -> dict[str, Any]:
        return {
            "server_pid": self.me.pid,
            "client_type": self.entry.client.type,
            "tmux_session": self.entry.tmux.session,
            "cwd": self.cwd,
        }

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
    ) -> SendReceipt:
        if reply_to is not None:
            validate_message_id(reply_to, "reply_to")
        row = self._resolve_peer(target, project_root)
        msg = Message.create(
            body, from_session_id=self.identity.session_id, reply_to=reply_to, origin=self._origin()
        )
        self._mailbox(row.mailbox_key).enqueue(msg)
        return SendReceipt(msg.id, None, row)

    def read_messages(self) -> tuple[list[Message], int, Callable[[bool], None]]:
        """(messages oldest first, quarantined count, finish(handed_over))."""
        self.refresh_identity()
        deliveries: list[Delivery] = []
        try:
            for box in self.my_mailboxes():
                deliveries.append(box.drain())
        except BaseException:
            for d in deliveries:
                d.abort()
            raise
        messages = sorted((m for d in deliveries for m in d.messages), key=lambda m: m.enqueued_at)

        def finish(handed_over: bool) -> None:
            # Each box on its own: a failure in one must not strand the others. A claim
            # left behind is recovered once we exit (a duplicate at worst, never a loss).
            for d in deliveries:
                try:
                    d.commit() if handed_over else d.abort()
                except OxtailError as exc:
                    log.warning("could not settle a mailbox claim: %s", exc)

        return messages, sum(d.quarantined for d in deliveries), finish

    @contextmanager
    def ask(
        self, target: str, body: str, *, project_root: str | None = None
    ) -> Iterator[PendingAsk]:
        """Send a request and hold our inboxes so that no other reader takes its reply."""
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
                self._mailbox(row.mailbox_key).enqueue(msg)
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
    ) -> WakeReport:
        """Make `target` notice the message `message_id` just sent to it (see wake.py).
        Blocking (keystrokes, then a few seconds watching for proof): keep it off the
        event loop; `watch.finish` ends the watching."""
        sender = self.identity.session_id or self.entry.tmux.session or f"pid-{self.me.pid}"
        return wake_peer(
            self.layout,
            target,
            sender=sender,
            message_id=message_id,
            request_id=request_id,
            reply_to=reply_to,
            watch=watch,
        )

    def take_reply(self, pending: PendingAsk) -> Delivery | None:
        # Our boxes now, not when the ask began: the session id may be learned meanwhile.
        for box in self.my_mailboxes():
            found = box.drain_first(pending.is_reply)
            if found is not None:
                return found
        return None


@dataclass
class StateCardView:
    purpose: str
    updated_at: str | None
