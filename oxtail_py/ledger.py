"""The sent- and received-ledgers: what an agent sent, and what it was handed.

    ledger/<session key>/sent/<message id>.json       written by the sender after the enqueue
    ledger/<session key>/received/<message id>.json   written by the recipient BEFORE hand-over

The session key is the agent's mailbox key (its session id, or its pid box). Both records
are write-once (`fsio.write_once_json`: the first writer wins, a second loses quietly), so
a re-delivery after a crash or a resumed send rewrites nothing.

Why each exists:
- sent: `message_status` answers only for a message this agent sent (a foreign id is
  refused), and needs the recipient's key to look for the message.
- received: `reply_to_message` / `complete_work` derive the target and `reply_to` from
  it, so an agent can answer only what it was actually handed (never a forged id).

Records older than `RETENTION_S` are pruned (`prune`), at most once an hour per process.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import ensure_tree, is_private_dir, load_json, open_private, write_once_json
from oxtail_py.layout import MESSAGE_ID_RE, SESSION_ID_RE, Layout, validate_mailbox_key
from oxtail_py.messages import Message

# A week: long enough for a human to come back to a delegated task and ask what became
# of it; short enough that the directories stay small (one file per message).
RETENTION_S: Final = 7 * 24 * 3600.0
PRUNE_EVERY_S: Final = 3600.0
MAX_RECORD_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class SentRecord:
    message_id: str
    to_key: str  # the recipient's mailbox key (where the message was enqueued)
    to_session_id: str | None
    to_name: str
    sent_at: str
    at_epoch: float
    action_required: bool = False
    reply_to: str | None = None
    project_root: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    message_id: str
    from_session_id: str | None
    request_id: str | None
    reply_to: str | None
    enqueued_at: str
    action_required: bool
    received_at_epoch: float
    summary: str  # the body's start, for my_open_work (the body itself stays in the mail)


SUMMARY_CHARS: Final = 200


class UnknownMessageError(OxtailError):
    """An id the caller's own ledger does not hold: never sent by it, or never handed to it."""

    code = "unknown-message"


def _load(path: Path, cls: type[Any]) -> Any | None:
    """The record at `path`, or None if absent or unusable (corrupt, hostile, oversize)."""
    try:
        data = load_json(path, max_bytes=MAX_RECORD_BYTES)
    except FileNotFoundError:
        return None
    except (OSError, OxtailError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    values: dict[str, Any] = {}
    for name, spec in cls.__dataclass_fields__.items():
        if name not in data:
            continue
        value = data[name]
        # Each value must have its field's type: a planted record must not break a reader
        # (a string where a time belongs) or name a path (to_key is checked below).
        if not isinstance(value, _TYPES[str(spec.type)]) or (
            isinstance(value, bool) and str(spec.type) == "float"
        ):
            return None
        values[name] = value
    try:
        record = cls(**values)
    except TypeError:  # a field missing
        return None
    if not MESSAGE_ID_RE.fullmatch(str(record.message_id)):
        return None
    if isinstance(record, SentRecord) and not _is_mailbox_key(record.to_key):
        return None
    return record


_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "str": (str,),
    "str | None": (str, type(None)),
    "float": (int, float),
    "bool": (bool,),
}


def _is_mailbox_key(key: str) -> bool:
    try:
        validate_mailbox_key(key)
    except OxtailError:
        return False
    return True


def record_sent(layout: Layout, sender_key: str, record: SentRecord) -> None:
    directory = layout.sent_dir(sender_key)
    ensure_tree(layout.root, directory)
    write_once_json(layout.ledger_record(directory, record.message_id), asdict(record))


def find_sent(layout: Layout, sender_keys: list[str], message_id: str) -> SentRecord | None:
    """The sent record of `message_id` under any of the sender's keys (pid box, old ids)."""
    for key in sender_keys:
        found = _load(layout.ledger_record(layout.sent_dir(key), message_id), SentRecord)
        if isinstance(found, SentRecord) and found.message_id == message_id:
            return found
    return None


def record_received(layout: Layout, recipient_key: str, messages: list[Message]) -> None:
    """Before hand-over: one record per message (write-once). Raises (disk full) so the
    caller aborts the hand-over: the mail then waits, and nothing is handed over that
    cannot be answered by id."""
    if not messages:
        return
    directory = layout.received_dir(recipient_key)
    ensure_tree(layout.root, directory)
    now = time.time()
    for msg in messages:
        record = ReceivedRecord(
            message_id=msg.id,
            from_session_id=msg.from_session_id,
            request_id=msg.request_id,
            reply_to=msg.reply_to,
            enqueued_at=msg.enqueued_at,
            action_required=msg.action_required,
            received_at_epoch=now,
            summary=msg.body[:SUMMARY_CHARS],
        )
        write_once_json(layout.ledger_record(directory, msg.id), asdict(record))


def find_received(
    layout: Layout, recipient_keys: list[str], message_id: str
) -> ReceivedRecord | None:
    for key in recipient_keys:
        found = _load(layout.ledger_record(layout.received_dir(key), message_id), ReceivedRecord)
        if isinstance(found, ReceivedRecord) and found.message_id == message_id:
            if found.from_session_id is not None and not SESSION_ID_RE.fullmatch(
                found.from_session_id
            ):
                return None  # a planted record must not aim a reply anywhere
            return found
    return None


def prune_old_files(directory: Path, max_age_s: float, now: float, keep: set[str]) -> int:
    """Delete files in `directory` whose mtime is older than `max_age_s`, except the names
    in `keep`. Never follows a link or enters a subdirectory."""
    if not is_private_dir(directory):
        return 0
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        if entry.name in keep:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if now - st.st_mtime > max_age_s and not entry.is_dir(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def due(layout: Layout, now: float) -> bool:
    """Pruning is due: the stamp's mtime is over an hour old (or absent), and is renewed
    now. One stat on the common path, so every hand-over (a hook's process too) may ask;
    two processes that both find it due both prune, which is harmless."""
    stamp = layout.prune_stamp
    try:
        if now - os.lstat(stamp).st_mtime < PRUNE_EVERY_S:
            return False
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:
        ensure_tree(layout.root, layout.receipts_dir)
        fd = open_private(stamp, os.O_CREAT | os.O_WRONLY)
    except (OSError, OxtailError):
        return False
    try:
        os.utime(fd)
    finally:
        os.close(fd)
    return True


def prune(layout: Layout, *, max_age_s: float = RETENTION_S, now: float | None = None) -> int:
    """Drop ledger records older than `max_age_s` (every agent's: they are all ours)."""
    now = time.time() if now is None else now
    removed = 0
    if not is_private_dir(layout.ledger_dir):
        return 0
    try:
        keys = os.listdir(layout.ledger_dir)
    except OSError:
        return 0
    for key in keys:
        # prune_old_files checks only the last level: a linked ledger/<key> would have
        # it delete week-old files wherever the link points.
        if not _is_mailbox_key(key) or not is_private_dir(layout.ledger_dir / key):
            continue
        for directory in (layout.sent_dir(key), layout.received_dir(key)):
            removed += prune_old_files(directory, max_age_s, now, set())
    return removed
