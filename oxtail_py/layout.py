"""The one module that knows the on-disk layout under the state root.

    $AGENTMAIL_HOME (default ~/.agentmail)          0700
      sessions/<server pid>.json                     registry entries (one per MCP server)
      mailboxes/<key>/                               one mailbox per agent identity
        inbox.jsonl                                  append-only queue, one JSON message a line
        lock/owner.<pid>-<start>                     the mailbox lock (see locks.py)
        claim.<pid>-<start>.<nonce>.jsonl            messages a reader took and has not committed
        await.<request id>.<pid>-<start>             an ask_peer waiting: drains leave its reply
        delivered.txt                                ids already handed over (bounded)
        quarantine.jsonl                             corrupt lines, kept with the reason
        forward.json, origin.json                    pid boxes only: where their mail goes
      status/<session id>                            busy/idle marker written by the hooks
      wake/<mailbox key>/                            waking a peer: last.json (debounce), lock/
      drops/<client pid>.json                        SessionStart drop: identity for the server
      drops/server-<pid>-<start>.json                `oxtail-py claim` for one running server
      asks/<asker mailbox key>/<request id>.json     asks ledger: one per ask_peer (asks_ledger)
      asks/lock/                                     held while a new ask is checked for a cycle
      asks/waiting/<request id>.json                 a copy of each ask waiting now: the graph
      hooks/                                         installed hook scripts
      spawns/<spawn id>.json                         who spawned which helper, where
      spawns/<spawn id>.env.json                     its environment, until its runner reads it
      spawns/<spawn id>.exit.json                    the helper's client exited: its status
      spawns/lock/owner.<pid>-<start>                one spawn at a time decides cap and name
      reservations/<project key>/                    file reservations of one project
        h.<server pid>-<start>.json                  one holder's reservations (its own file)
        lock/                                        taken to grant (check, then write)
        q.<name>.<ns>                                a corrupt holder file, quarantined
      notes/<project key>.json                       project notes (notes.py)
      notes/<project key>.lock/                      taken to change them
      ledger/<session key>/sent/<message id>.json   what this agent sent (message_status)
      ledger/<session key>/received/<message id>.json  what it was handed (reply_to_message)
      receipts/<message id>.json                     write-once: how and when it was handed over
      receipts/<message id>.wake.json                the wakes tried for it, and their outcome
      receipts/pruned                                mtime: the last pruning (hourly at most)
      obligations/<message id>.json                  write-once: delegated work (action_required)
      obligations/<message id>.blocked.json          the owner's latest block_work reason
      obligations/<message id>.done.json             write-once: complete_work's result
      obligations/owed/<session id>/<message id>     marker: open work that session owes (hook hint)
      events/traffic.jsonl, traffic.1.jsonl          the event log of traffic (metadata; rotated)
      events/lock/                                   held only while the log rotates

A project key is the first 32 hex digits of the sha256 of the project root's realpath.
The names themselves live in names.py (lean: the hook's reservation check uses them).

A mailbox key is a client session id, or `pid-<pid>-<start>` for a server that
does not know its session yet.

This module is pure naming: it computes paths and checks the shapes of the
values that go into them, and does no I/O. Creating directories and reading or
writing files is fsio.py's job (0700/0600, symlinks and FIFOs refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from oxtail_py.errors import InvalidSessionIdError
from oxtail_py.names import (  # re-exported: the names are layout's, defined lean there
    ASKS,
    CLAIM_PREFIX,
    DROPS,
    EVENTS,
    HOLDER_PREFIX,
    HOLDER_SUFFIX,
    HOOKS,
    INBOX,
    LEDGER,
    MAILBOXES,
    NOTES,
    OBLIGATIONS,
    OWED,
    PID_BOX_PREFIX,
    RECEIPTS,
    RESERVATIONS,
    SESSION_ID_CHARS,
    SESSION_ID_FIRST_CHARS,
    SESSION_ID_MAX,
    SESSION_ID_RE,
    SESSIONS,
    SPAWN_ID_RE,
    SPAWNS,
    STATUS,
    WAKE,
    holder_file_name,
    holder_token,
    is_session_id,
    project_key,
    quarantine_name,
    reservations_dir,
    session_file,
)
from oxtail_py.procs import ProcessIdentity

__all__ = [  # names.py's names are layout's too: one import for every caller
    "ASKS", "CLAIM_PREFIX", "DROPS", "EVENTS", "HOLDER_PREFIX", "HOLDER_SUFFIX", "HOOKS", "INBOX",
    "LEDGER", "MAILBOXES", "MESSAGE_ID_RE", "NOTES", "OBLIGATIONS", "OBLIGATION_PARTS", "OWED",
    "PID_BOX_PREFIX", "RECEIPTS", "RESERVATIONS", "SESSIONS", "SESSION_ID_CHARS",
    "SESSION_ID_FIRST_CHARS", "SESSION_ID_MAX", "SESSION_ID_RE", "SPAWNS", "SPAWN_ID_RE", "STATUS",
    "WAKE", "Layout", "MailboxPaths", "ReservationPaths", "WakePaths", "is_pid_box_key",
    "pid_box_key", "project_key", "validate_mailbox_key", "validate_message_id_shape",
    "validate_session_id",
]

MESSAGE_ID_RE: Final = re.compile(r"[0-9a-f]{16}")
OBLIGATION_PARTS: Final = ("", "blocked", "done")
_PID_BOX_RE: Final = re.compile(r"pid-[0-9]+-[0-9]+\.[0-9]{2}")


def validate_session_id(session_id: str) -> str:
    if not is_session_id(session_id):
        raise InvalidSessionIdError(
            f"invalid session id {session_id!r}: expected 1-128 characters of letters, "
            "digits, '-' or '_' (a Claude Code session id or Codex thread id is a UUID)"
        )
    return session_id


def validate_mailbox_key(key: str) -> str:
    if not (_PID_BOX_RE.fullmatch(key) or SESSION_ID_RE.fullmatch(key)):
        raise InvalidSessionIdError(f"invalid mailbox key {key!r}")
    return key


def _spawn_id(spawn_id: str) -> str:
    if not SPAWN_ID_RE.fullmatch(spawn_id):
        raise InvalidSessionIdError(f"invalid spawn id {spawn_id!r}: expected 32 hex digits")
    return spawn_id


def validate_message_id_shape(message_id: str) -> str:
    """A message id (16 lowercase hex) before it names a file; messages.py says why to a user."""
    if not MESSAGE_ID_RE.fullmatch(message_id):
        raise ValueError(f"not a message id: {message_id!r}")
    return message_id


def is_pid_box_key(key: str) -> bool:
    return bool(_PID_BOX_RE.fullmatch(key))


def pid_box_key(server: ProcessIdentity) -> str:
    return f"{PID_BOX_PREFIX}{server.token()}"


@dataclass(frozen=True, slots=True)
class MailboxPaths:
    directory: Path

    @property
    def inbox(self) -> Path:
        return self.directory / INBOX

    @property
    def lock(self) -> Path:
        return self.directory / "lock"

    @property
    def delivered(self) -> Path:
        return self.directory / "delivered.txt"

    @property
    def quarantine(self) -> Path:
        return self.directory / "quarantine.jsonl"

    @property
    def forward(self) -> Path:
        """In a pid box: the session its mail goes to (pidbox.py)."""
        return self.directory / "forward.json"

    @property
    def origin(self) -> Path:
        """In a pid box: the client process its server served (pidbox.py)."""
        return self.directory / "origin.json"

    def claim(self, owner: ProcessIdentity, nonce: str) -> Path:
        return self.directory / f"{CLAIM_PREFIX}{owner.token()}.{nonce}.jsonl"

    @staticmethod
    def is_claim_name(name: str) -> bool:
        return name.startswith(CLAIM_PREFIX) and name.endswith(".jsonl")

    def awaiting(self, request_id: str, owner: ProcessIdentity) -> Path:
        return self.directory / f"await.{request_id}.{owner.token()}"

    @staticmethod
    def awaiting_parts(name: str) -> tuple[str, ProcessIdentity | None] | None:
        """(request id, waiter) for an `await.` entry name, else None."""
        if not name.startswith("await.") or name.count(".") < 2:
            return None
        _, request_id, token = name.split(".", 2)
        return request_id, ProcessIdentity.parse_token(token)

    @staticmethod
    def claim_owner(claim: Path) -> ProcessIdentity | None:
        parts = claim.name.split(".")
        # claim.<pid>-<whole>.<frac>.<nonce>.jsonl
        if len(parts) != 5:
            return None
        return ProcessIdentity.parse_token(f"{parts[1]}.{parts[2]}")


@dataclass(frozen=True, slots=True)
class ReservationPaths:
    """The reservations of one project: one file per holder, written only by it."""

    directory: Path

    @property
    def lock(self) -> Path:
        return self.directory / "lock"

    def holder(self, server: ProcessIdentity) -> Path:
        return self.directory / holder_file_name(server.token())

    @staticmethod
    def holder_of(name: str) -> ProcessIdentity | None:
        """The server a holder file is named for, or None for any other name."""
        parsed = holder_token(name)
        return None if parsed is None else ProcessIdentity(*parsed)

    def quarantine(self, name: str, stamp_ns: int) -> Path:
        return self.directory / quarantine_name(name, stamp_ns)


@dataclass(frozen=True, slots=True)
class WakePaths:
    """Wake state of one peer: who woke it last, for which message (debounce)."""

    directory: Path

    @property
    def last(self) -> Path:
        return self.directory / "last.json"

    @property
    def lock(self) -> Path:
        return self.directory / "lock"


class Layout:
    """Paths under one state root (Settings.root). Pure: nothing is created here."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    @property
    def sessions_dir(self) -> Path:
        return self.root / SESSIONS

    @property
    def mailboxes_dir(self) -> Path:
        return self.root / MAILBOXES

    @property
    def status_dir(self) -> Path:
        return self.root / STATUS

    @property
    def drops_dir(self) -> Path:
        return self.root / DROPS

    @property
    def hooks_dir(self) -> Path:
        return self.root / HOOKS

    @property
    def wake_dir(self) -> Path:
        return self.root / WAKE

    @property
    def spawns_dir(self) -> Path:
        return self.root / SPAWNS

    @property
    def spawn_lock(self) -> Path:
        """Held while a spawn checks the cap and names and reserves its record."""
        return self.spawns_dir / "lock"

    def spawn_record(self, spawn_id: str) -> Path:
        return self.spawns_dir / f"{_spawn_id(spawn_id)}.json"

    def spawn_env(self, spawn_id: str) -> Path:
        return self.spawns_dir / f"{_spawn_id(spawn_id)}.env.json"

    def spawn_exit(self, spawn_id: str) -> Path:
        return self.spawns_dir / f"{_spawn_id(spawn_id)}.exit.json"

    @property
    def reservations_dir(self) -> Path:
        return self.root / RESERVATIONS

    @property
    def notes_dir(self) -> Path:
        return self.root / NOTES

    def reservations(self, project_root: Path) -> ReservationPaths:
        return ReservationPaths(Path(reservations_dir(str(self.root), project_root)))

    def notes_file(self, project_root: Path) -> Path:
        return self.notes_dir / f"{project_key(project_root)}.json"

    def notes_lock(self, project_root: Path) -> Path:
        return self.notes_dir / f"{project_key(project_root)}.lock"

    @property
    def events_dir(self) -> Path:
        return self.root / EVENTS

    @property
    def event_log(self) -> Path:
        """The traffic event log (eventlog.py); the older half is `event_log_rotated`."""
        return self.events_dir / "traffic.jsonl"

    @property
    def event_log_rotated(self) -> Path:
        return self.events_dir / "traffic.1.jsonl"

    @property
    def event_log_lock(self) -> Path:
        return self.events_dir / "lock"

    def session_file(self, pid: int) -> Path:
        return Path(session_file(str(self.root), pid))

    def mailbox(self, key: str) -> MailboxPaths:
        return MailboxPaths(self.mailboxes_dir / validate_mailbox_key(key))

    def wake_state(self, key: str) -> WakePaths:
        """The wake state of the peer whose mailbox key is `key`."""
        return WakePaths(self.wake_dir / validate_mailbox_key(key))

    @property
    def asks_dir(self) -> Path:
        return self.root / ASKS

    @property
    def asks_lock(self) -> Path:
        """Held while a new ask is checked against the wait-for graph and recorded."""
        return self.asks_dir / "lock"

    @property
    def waiting_asks_dir(self) -> Path:
        """A copy of each waiting ask's record: the wait-for graph (asks_ledger)."""
        return self.asks_dir / "waiting"

    def waiting_ask_file(self, request_id: str) -> Path:
        return self.waiting_asks_dir / f"{validate_message_id_shape(request_id)}.json"

    def asker_dir(self, asker_key: str) -> Path:
        """The asks of one asker (its mailbox key: a session id or a pid box key)."""
        return self.asks_dir / validate_mailbox_key(asker_key)

    def ask_file(self, asker_key: str, request_id: str) -> Path:
        return self.asker_dir(asker_key) / f"{validate_message_id_shape(request_id)}.json"

    def status_file(self, session_id: str) -> Path:
        return self.status_dir / validate_session_id(session_id)

    def drop_file(self, client_pid: int) -> Path:
        return self.drops_dir / f"{client_pid}.json"

    def claim_drop_file(self, server: ProcessIdentity) -> Path:
        return self.drops_dir / f"server-{server.token()}.json"

    # -- obligations and receipts (ledger.py, receipts.py, obligations.py) ----------

    @property
    def ledger_dir(self) -> Path:
        return self.root / LEDGER

    @property
    def receipts_dir(self) -> Path:
        return self.root / RECEIPTS

    @property
    def obligations_dir(self) -> Path:
        return self.root / OBLIGATIONS

    def sent_dir(self, key: str) -> Path:
        """What the agent whose mailbox key is `key` sent (one file per message id)."""
        return self.ledger_dir / validate_mailbox_key(key) / "sent"

    def received_dir(self, key: str) -> Path:
        """What the agent whose mailbox key is `key` was handed (one file per message id)."""
        return self.ledger_dir / validate_mailbox_key(key) / "received"

    def ledger_record(self, directory: Path, message_id: str) -> Path:
        return directory / f"{validate_message_id_shape(message_id)}.json"

    def receipt_file(self, message_id: str) -> Path:
        return self.receipts_dir / f"{validate_message_id_shape(message_id)}.json"

    @property
    def prune_stamp(self) -> Path:
        """Its mtime: when receipts and ledgers were last pruned (by any process)."""
        return self.receipts_dir / "pruned"

    def wake_outcome_file(self, message_id: str) -> Path:
        return self.receipts_dir / f"{validate_message_id_shape(message_id)}.wake.json"

    def owed_dir(self, session_id: str) -> Path:
        """Markers of the work `session_id` owes: the shell hook's cheap hint."""
        return self.obligations_dir / OWED / validate_session_id(session_id)

    def owed_marker(self, session_id: str, message_id: str) -> Path:
        return self.owed_dir(session_id) / validate_message_id_shape(message_id)

    def obligation_file(self, message_id: str, part: str = "") -> Path:
        """`part` is "" (the record), "blocked" or "done"."""
        if part not in OBLIGATION_PARTS:
            raise ValueError(f"unknown obligation part {part!r}")
        suffix = f".{part}.json" if part else ".json"
        return self.obligations_dir / f"{validate_message_id_shape(message_id)}{suffix}"
