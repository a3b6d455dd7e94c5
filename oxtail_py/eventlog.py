"""The traffic event log: one JSON line per message sent or handed over. No daemon.

    events/traffic.jsonl      the current log, appended by whoever moves the message
    events/traffic.1.jsonl    the previous one (rotation keeps exactly one older file)

Each line is metadata only: when, what happened (`sent` / `delivered`), the message id
and kind, sender and recipient (session ids or mailbox keys), how it moved (`inbox`,
`hook claude pretooluse`, `read_my_messages`, `ask_peer`, ...) and the sender's cwd,
by which a reader scopes lines to its project. A body never appears unless the writer
was started with OXTAIL_EVENT_LOG_BODIES=1, and then only as a short preview.

Writers are the processes that move mail (a server's send, a hook's hand-over, the
operator's `oxtail-py send`): each line is one O_APPEND write(2) (`fsio.write_all`), so
lines from many processes do not interleave; a line torn by a full disk or a kill is
sealed with a newline by the next writer, so it is skipped alone. When the file passes
MAX_LOG_BYTES the writer that notices renames it over the older one, under `events/lock`
(taken with a short timeout: a busy lock only postpones the rotation). A failure here never fails
the traffic: the log is an observation, the mailbox is the truth.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import ensure_tree, is_private_dir, open_private, read_fd, write_all
from oxtail_py.layout import Layout
from oxtail_py.messages import Message

log = logging.getLogger(__name__)

MAX_LOG_BYTES: Final = 1 << 20  # per file; two files are kept
_ROTATE_LOCK_TIMEOUT_S: Final = 0.2
PREVIEW_CHARS: Final = 60
# A line of ours is a few hundred bytes; a longer one is not ours and is skipped.
_MAX_LINE_BYTES: Final = 4096

EventName = Literal["sent", "delivered"]
MessageKind = Literal["message", "request", "reply", "work", "operator"]
OPERATOR: Final = "operator"


@dataclass(frozen=True, slots=True)
class Event:
    at: str  # ISO time, UTC, milliseconds
    ts: float  # epoch seconds (sorting, ages)
    event: EventName
    kind: MessageKind
    message_id: str
    sender: str  # session id, "operator", or "-" (a server without a session yet)
    sender_name: str | None  # the sender's tmux session, when it had one
    recipient: str  # the recipient's mailbox key (session id or pid box)
    via: str  # how it moved: inbox | hook <client> <event> | read_my_messages | ask_peer
    cwd: str | None  # the sender's cwd: scopes the line to a project
    request_id: str | None = None  # a reply: the request it answers
    preview: str | None = None  # only with OXTAIL_EVENT_LOG_BODIES=1

    def to_line(self) -> bytes:
        record = {k: v for k, v in asdict(self).items() if v is not None}
        return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_record(cls, record: Any) -> Event:
        """Parse one line's object; ValueError says why it is not an event of ours."""
        if not isinstance(record, dict):
            raise ValueError("not an object")
        strings = ("at", "event", "kind", "message_id", "sender", "recipient", "via")
        if not all(isinstance(record.get(k), str) for k in strings):
            raise ValueError("missing fields")
        ts = record.get("ts")
        if not isinstance(ts, int | float) or isinstance(ts, bool):
            raise ValueError("bad ts")
        if record["event"] not in ("sent", "delivered"):
            raise ValueError("unknown event")
        if record["kind"] not in ("message", "request", "reply", "work", "operator"):
            raise ValueError("unknown kind")
        optional = {k: record.get(k) for k in ("sender_name", "cwd", "request_id", "preview")}
        if not all(v is None or isinstance(v, str) for v in optional.values()):
            raise ValueError("bad optional field")
        return cls(
            at=record["at"], ts=float(ts), event=record["event"], kind=record["kind"],
            message_id=record["message_id"], sender=record["sender"],
            recipient=record["recipient"], via=record["via"], **optional,
        )


def kind_of(msg: Message) -> MessageKind:
    if msg.from_operator:
        return "operator"
    if msg.request_id:
        return "request"
    if msg.action_required:
        return "work"  # delegated: the recipient owes an answer (obligations.py)
    return "reply" if msg.reply_to else "message"


def _event(
    msg: Message, name: EventName, recipient: str, via: str, *, bodies: bool = False
) -> Event:
    now = time.time()
    origin = msg.origin
    sender_name = origin.get("tmux_session")
    cwd = origin.get("cwd")
    kind = kind_of(msg)
    return Event(
        at=datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
        ts=now,
        event=name,
        kind=kind,
        message_id=msg.id,
        sender=OPERATOR if kind == "operator" else (msg.from_session_id or "-"),
        sender_name=sender_name if isinstance(sender_name, str) else None,
        recipient=recipient,
        via=via,
        cwd=cwd if isinstance(cwd, str) else None,
        request_id=msg.reply_to,
        preview=msg.body[:PREVIEW_CHARS] if bodies else None,
    )


def sent(layout: Layout, msg: Message, recipient: str, *, bodies: bool = False) -> None:
    """`msg` was appended to the inbox of `recipient` (a mailbox key)."""
    append(layout, [_event(msg, "sent", recipient, "inbox", bodies=bodies)])


def delivered(layout: Layout, messages: Sequence[Message], recipient: str, via: str) -> None:
    """`messages` were handed over to `recipient`'s model by `via`."""
    append(layout, [_event(m, "delivered", recipient, via) for m in messages])


def append(layout: Layout, events: Iterable[Event]) -> None:
    """Append `events` in one write; never raises (the traffic must not fail for its log)."""
    data = b"".join(e.to_line() for e in events)
    if not data:
        return
    try:
        ensure_tree(layout.root, layout.events_dir)
        fd = open_private(layout.event_log, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            end = os.fstat(fd).st_size
            if end and os.pread(fd, 1, end - 1) != b"\n":
                # A line torn by a full disk or a kill: seal it, so it is skipped alone
                # instead of swallowing the line written now.
                data = b"\n" + data
            write_all(fd, data, layout.event_log)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > MAX_LOG_BYTES:
            _rotate(layout)
    except (OSError, OxtailError) as exc:
        log.warning("event log not written: %s", exc)


def _rotate(layout: Layout) -> None:
    from oxtail_py.locks import DirLock  # only the rare rotating writer pays for it

    try:
        with DirLock(layout.event_log_lock, _ROTATE_LOCK_TIMEOUT_S):
            # Another writer may have rotated while we waited: look again under the lock.
            if os.lstat(layout.event_log).st_size > MAX_LOG_BYTES:
                os.rename(layout.event_log, layout.event_log_rotated)
    except (OSError, OxtailError) as exc:
        log.info("event log rotation postponed: %s", exc)


@dataclass
class Tail:
    events: list[Event]  # oldest first
    skipped: int  # lines that were not events of ours (corrupt, foreign, too long)
    problems: list[str]  # files that could not be read, and why


def _read(path: Path, max_bytes: int) -> bytes:
    """The last `max_bytes` of `path`, from a line start. Rotation bounds the file; a
    larger one is not ours, but its end is still worth showing, so it is cut, not refused."""
    fd = open_private(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            os.lseek(fd, size - max_bytes, os.SEEK_SET)
            return os.read(fd, max_bytes).split(b"\n", 1)[-1]
        return read_fd(fd, path, max_bytes)
    finally:
        os.close(fd)


def parse_lines(data: bytes) -> tuple[list[Event], int]:
    events: list[Event] = []
    skipped = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            if len(raw) > _MAX_LINE_BYTES:
                raise ValueError("line too long")
            events.append(Event.from_record(json.loads(raw)))
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError too
            skipped += 1
    return events, skipped


def read_tail(
    layout: Layout, limit: int | None = None, *, max_bytes: int = MAX_LOG_BYTES
) -> Tail:
    """The last `limit` events (all when None), oldest first, from at most the last
    `max_bytes` of the log: the older file is read only for what the current one lacks."""
    events: list[Event] = []
    skipped = 0
    problems: list[str] = []
    budget = max_bytes
    if os.path.lexists(layout.events_dir) and not is_private_dir(layout.events_dir):
        # A symlink (or a file) where our directory belongs: never read through it.
        return Tail([], 0, [f"{layout.events_dir} is not a directory of ours; not read"])
    for path in (layout.event_log, layout.event_log_rotated):
        if budget <= 0:
            break
        try:
            data = _read(path, budget)
        except FileNotFoundError:
            continue
        except (OSError, OxtailError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        budget -= len(data)
        got, bad = parse_lines(data)
        events = got + events
        skipped += bad
    if limit is not None:
        events = events[-limit:] if limit > 0 else []
    return Tail(events, skipped, problems)
