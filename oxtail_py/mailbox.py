"""Inboxes: enqueue, drain, drain-first-matching, and crash recovery.

Protocol (every step is safe to be killed at):

* enqueue: under the lock, append one line with one write(2). A line torn by a
  kill is closed with a newline before the next append, so it is quarantined
  alone instead of swallowing the next message.
* drain: under the lock, recover dead readers' claims, then rename the inbox to
  `claim.<me>.<nonce>.jsonl` and release the lock. The caller hands the
  messages over and then `commit()`s: ids go to `delivered.txt`, the claim is
  deleted. A claim whose owner died is put back at the front of the inbox by the
  next reader, minus the ids in `delivered.txt`.
  => delivery is at-least-once with the same id; a duplicate happens only if a
  reader dies after handing over and before recording.
* `abort()` (hand-over failed, e.g. a cancelled tool call) puts the claimed
  messages back at the front of the inbox.
* While an ask_peer waits (an `await.<request id>.<waiter>` marker), `drain()`
  leaves its reply in the inbox: the hook or read_my_messages of a parallel
  tool call must not steal the reply the waiting call is about to return.
* A corrupt line is appended to `quarantine.jsonl` with the reason, never dropped.

Safety here is against killed processes, not power cuts: appends are not
fsynced, and neither are the atomic rewrites (durable=False).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from oxtail_py.errors import InvalidMessageError, OxtailError
from oxtail_py.fsio import (
    MAX_MAILBOX_FILE_BYTES,
    atomic_write_bytes,
    create_marker,
    ensure_tree,
    is_private_dir,
    open_private,
    read_private,
    refuse_symlink,
)
from oxtail_py.layout import Layout, MailboxPaths
from oxtail_py.locks import DEFAULT_TIMEOUT_S, DirLock, sweep_stale_lock_debris
from oxtail_py.messages import Message, now_iso
from oxtail_py.procs import self_identity

# delivered.txt is trimmed to the newest _DELIVERED_KEEP ids once it passes
# _DELIVERED_MAX: ids only need remembering while a claim holding them may
# still be recovered, and claims are short-lived.
_DELIVERED_MAX: Final = 4096
_DELIVERED_KEEP: Final = 2048
_STAGED_SWEEP_AT: Final = 64


@dataclass(frozen=True, slots=True)
class _Line:
    raw: bytes  # exactly as on disk, newline included
    message: Message | None
    error: str | None


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    return [ln for ln in lines if ln.strip()]


def _parse(raw: bytes) -> _Line:
    try:
        return _Line(raw, Message.from_line(raw), None)
    except InvalidMessageError as exc:
        return _Line(raw, None, str(exc))


def _read(path: Path) -> bytes:
    return read_private(path, max_bytes=MAX_MAILBOX_FILE_BYTES)


def _read_lines(path: Path) -> list[bytes]:
    try:
        return _split_lines(_read(path))
    except FileNotFoundError:
        return []


@dataclass
class Delivery:
    """Messages taken from a mailbox; the caller must commit() or abort()."""

    mailbox: Mailbox
    messages: list[Message]
    quarantined: int = 0
    _claim: Path | None = None
    _raw: list[bytes] = field(default_factory=list)

    def commit(self, *, record: bool = True) -> None:
        """The messages were handed over: remember their ids, drop the claim."""
        if self._claim is None:
            return
        if record and self.messages:
            self.mailbox._record_delivered(m.id for m in self.messages)
        os.unlink(self._claim)
        self._claim = None

    def commit_first(self, count: int) -> None:
        """The first `count` messages were handed over; the rest go back in front."""
        if self._claim is None:
            return
        if count >= len(self.messages):
            self.commit()
            return
        # Record before restoring: a crash in between recovers the claim, and the
        # recorded ids are filtered out of it, the rest restored.
        self.mailbox._record_delivered(m.id for m in self.messages[:count])
        with self.mailbox._lock():
            self.mailbox._restore_front(self._raw[count:], self._claim)
        self._claim = None

    def abort(self) -> None:
        """Hand-over failed: put the messages back at the front of the inbox."""
        if self._claim is None:
            return
        with self.mailbox._lock():
            self.mailbox._restore_front(self._raw, self._claim)
        self._claim = None


class Mailbox:
    def __init__(self, paths: MailboxPaths, lock_timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.paths = paths
        self.lock_timeout = lock_timeout

    @classmethod
    def open(cls, layout: Layout, key: str, lock_timeout: float = DEFAULT_TIMEOUT_S) -> Mailbox:
        """The mailbox for `key`, its directory created (0700) if needed."""
        paths = layout.mailbox(key)
        ensure_tree(layout.root, paths.directory)
        return cls(paths, lock_timeout)

    @classmethod
    def existing(cls, layout: Layout, key: str) -> Mailbox | None:
        """The mailbox for `key` if it was ever created, without creating it."""
        paths = layout.mailbox(key)
        return cls(paths) if is_private_dir(paths.directory) else None

    def _lock(self) -> DirLock:
        return DirLock(self.paths.lock, self.lock_timeout)

    # -- writing ---------------------------------------------------------------

    def enqueue(self, message: Message) -> None:
        self.append_lines([message.to_line()])

    def append_lines(self, lines: Iterable[bytes]) -> None:
        data = b"".join(lines)
        if not data:
            return
        with self._lock():
            fd = open_private(self.paths.inbox, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # seal a line torn by a killed writer
                os.write(fd, data)
            finally:
                os.close(fd)

    # -- reading ---------------------------------------------------------------

    def pending_count(self) -> int:
        """Lines waiting in the inbox (no lock: a hint for listings, not a promise)."""
        try:
            return sum(1 for ln in _read(self.paths.inbox).splitlines() if ln.strip())
        except FileNotFoundError:
            return 0

    def claims(self) -> list[Path]:
        """Claims taken and not yet committed (by anyone, live or dead)."""
        try:
            names = sorted(os.listdir(self.paths.directory))
        except FileNotFoundError:
            return []
        return [self.paths.directory / n for n in names if MailboxPaths.is_claim_name(n)]

    def awaits(self, request_id: str) -> bool:
        """A live ask_peer waits in this mailbox for the reply to `request_id` (no lock)."""
        try:
            names = os.listdir(self.paths.directory)
        except OSError:
            return False
        for name in names:
            parts = MailboxPaths.awaiting_parts(name)
            if parts and parts[0] == request_id and parts[1] is not None and parts[1].is_alive():
                return True
        return False

    def holds(self, message_id: str) -> bool:
        """`message_id` still waits in the inbox, unread (no lock: a hint)."""
        try:
            return f'"id":"{message_id}"'.encode() in _read(self.paths.inbox)
        except (OSError, OxtailError):
            return False

    def drain(self) -> Delivery:
        """Take every waiting message, oldest first (replies an ask_peer awaits stay)."""
        claim = self._claim_path()
        with self._lock():
            awaited = self._housekeep()
            if not self._inbox_has_data():
                return Delivery(self, [])
            if awaited:
                self._claim_unawaited(claim, awaited)
            else:
                os.rename(self.paths.inbox, claim)
            delivered = self._delivered_ids()
        try:
            lines = [_parse(raw) for raw in _read_lines(claim)]
            kept, quarantined = self._sort_out(lines, delivered)
        except BaseException:
            self._give_back(claim)
            raise
        messages = [ln.message for ln in kept if ln.message is not None]
        delivery = Delivery(self, messages, quarantined, claim, [ln.raw for ln in kept])
        if not messages:
            delivery.commit(record=False)
        return delivery

    def drain_first(self, predicate: Callable[[Message], bool]) -> Delivery | None:
        """Take the oldest message matching `predicate`; every other line stays byte-for-byte."""
        with self._lock():
            self._housekeep()
            raws = _read_lines(self.paths.inbox)
            delivered = self._delivered_ids()
            for index, raw in enumerate(raws):
                line = _parse(raw)
                if line.message and line.message.id not in delivered and predicate(line.message):
                    claim = self._claim_path()
                    atomic_write_bytes(claim, raw, durable=False)
                    rest = b"".join(raws[:index] + raws[index + 1 :])
                    atomic_write_bytes(self.paths.inbox, rest, durable=False)
                    return Delivery(self, [line.message], 0, claim, [raw])
        return None

    def move_all_to(self, other: Mailbox) -> int:
        """Move every waiting line (corrupt ones too, they quarantine there) to `other`."""
        claim = self._claim_path()
        with self._lock():
            self._housekeep()
            if not self._inbox_has_data():
                return 0
            os.rename(self.paths.inbox, claim)
        try:
            raws = _read_lines(claim)
            other.append_lines(raws)
        except BaseException:
            self._give_back(claim)
            raise
        Delivery(self, [], 0, claim).commit(record=False)
        return len(raws)

    def _give_back(self, claim: Path) -> None:
        """A step after taking `claim` failed while we live: nobody would ever recover a
        live reader's claim, so put it back in front now."""
        with self._lock():
            self._restore_front(_read_lines(claim), claim)

    @contextmanager
    def awaiting_reply(self, request_id: str) -> Iterator[None]:
        """Mark that this process waits for a reply to `request_id` (see module doc)."""
        marker = self.paths.awaiting(request_id, self_identity())
        create_marker(marker)
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)

    # -- internals (lock held where noted) -------------------------------------

    def _housekeep(self) -> set[str]:
        """(lock held) Recover dead readers' claims, sweep debris; return awaited request ids.

        One directory listing serves all three: this runs on every drain.
        """
        awaited: set[str] = set()
        staged = 0
        for name in sorted(os.listdir(self.paths.directory)):
            path = self.paths.directory / name
            if name.startswith("claim.") and name.endswith(".jsonl"):
                owner = MailboxPaths.claim_owner(path)
                if owner is None or not owner.is_alive():
                    self._recover_claim(path)
            elif parts := MailboxPaths.awaiting_parts(name):
                request_id, waiter = parts
                if waiter is not None and waiter.is_alive():
                    awaited.add(request_id)
                else:
                    path.unlink(missing_ok=True)
            elif name.startswith(".lock.tmp."):
                staged += 1
        # Every live process that locked this mailbox keeps one staged lock dir here
        # (locks.py); only a crash leaves a dead one. Checking each on every drain
        # would cost a /proc read per peer, so sweep once they pile up.
        if staged > _STAGED_SWEEP_AT:
            sweep_stale_lock_debris(self.paths.directory)
        return awaited

    def _claim_unawaited(self, claim: Path, awaited: set[str]) -> None:
        """(lock held) Move every line but awaited replies from the inbox to `claim`."""
        raws = _read_lines(self.paths.inbox)
        stay: list[bytes] = []
        take: list[bytes] = []
        for raw in raws:
            msg = _parse(raw).message
            (stay if msg is not None and msg.reply_to in awaited else take).append(raw)
        atomic_write_bytes(claim, b"".join(take), durable=False)
        atomic_write_bytes(self.paths.inbox, b"".join(stay), durable=False)

    def _claim_path(self) -> Path:
        return self.paths.claim(self_identity(), os.urandom(4).hex())

    def _inbox_has_data(self) -> bool:
        refuse_symlink(self.paths.inbox)
        try:
            return os.stat(self.paths.inbox).st_size > 0
        except FileNotFoundError:
            return False

    def _sort_out(self, lines: list[_Line], delivered: set[str]) -> tuple[list[_Line], int]:
        """Quarantine corrupt lines; drop ids already delivered or seen; keep the rest."""
        kept: list[_Line] = []
        seen: set[str] = set()
        bad: list[_Line] = []
        for line in lines:
            if line.message is None:
                bad.append(line)
            elif line.message.id not in delivered and line.message.id not in seen:
                seen.add(line.message.id)
                kept.append(line)
        if bad:
            self._quarantine(bad)
        return kept, len(bad)

    def _quarantine(self, bad: list[_Line]) -> None:
        records = [
            json.dumps(
                {
                    "quarantined_at": now_iso(),
                    "reason": line.error,
                    "raw": line.raw.decode("utf-8", "backslashreplace").rstrip("\n"),
                },
                ensure_ascii=False,
            )
            + "\n"
            for line in bad
        ]
        fd = open_private(self.paths.quarantine, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, "".join(records).encode())
        finally:
            os.close(fd)

    def _recover_claim(self, claim: Path) -> None:
        """(lock held) Put a dead reader's claim back at the front, minus delivered ids."""
        delivered = self._delivered_ids()
        lines = [_parse(raw) for raw in _read_lines(claim)]
        keep = [ln.raw for ln in lines if ln.message is None or ln.message.id not in delivered]
        self._restore_front(keep, claim)

    def _restore_front(self, raws: list[bytes], claim: Path) -> None:
        """(lock held) inbox := raws + inbox, each id once; then drop the claim."""
        seen: set[str] = set()
        merged: list[bytes] = []
        for raw in raws + _read_lines(self.paths.inbox):
            msg = _parse(raw).message
            if msg is not None:
                if msg.id in seen:
                    continue
                seen.add(msg.id)
            merged.append(raw)
        atomic_write_bytes(self.paths.inbox, b"".join(merged), durable=False)
        os.unlink(claim)

    def _delivered_ids(self) -> set[str]:
        try:
            return set(_read(self.paths.delivered).decode("ascii", "replace").split())
        except FileNotFoundError:
            return set()

    def _record_delivered(self, ids: Iterable[str]) -> None:
        # Under the lock: the trim below rewrites the file, and an append racing
        # it would be lost (and a lost id can be handed over twice).
        data = "".join(f"{i}\n" for i in ids).encode()
        with self._lock():
            fd = open_private(self.paths.delivered, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, data)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > _DELIVERED_MAX * 17:
                kept = _read(self.paths.delivered).split()[-_DELIVERED_KEEP:]
                trimmed = b"".join(i + b"\n" for i in kept)
                atomic_write_bytes(self.paths.delivered, trimmed, durable=False)
