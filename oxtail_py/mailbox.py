"""Inboxes: enqueue, drain, drain-first-matching, and crash recovery.

Protocol (every step is safe to be killed at):

* enqueue: under the lock, append the line (fsio.write_all). A failed append
  (full disk) is truncated back and raises DiskFullError: a send either
  completes or fails, nothing half-written stays. A line torn by a kill is
  closed with a newline before the next append, so it is quarantined alone.
* drain: under the lock, take every stale claim (claims.py: a dead reader's, or
  one of ours that no Delivery holds because a put-back failed) and rename the
  inbox to a new `claim.<me>.<nonce>.jsonl`; release the lock. The Delivery
  reads the claims oldest first, then the caller hands the messages over and
  `commit()`s: ids go to `delivered.txt`, the claims are deleted. Taking stale
  claims as they are needs no free space, so a full disk never hides mail from
  a live reader; ids already in `delivered.txt` are filtered out.
  => delivery is at-least-once with the same id; a duplicate happens only if a
  batch was handed over and never recorded (the reader died in between, or the
  disk was full at commit_first).
* `abort()` (hand-over failed, e.g. a cancelled tool call) puts the claimed
  messages back at the front of the inbox. If that fails (full disk), the
  claims stay, stale, and the next drain takes them first.
* While an ask_peer waits (an `await.<request id>.<waiter>` marker), `drain()`
  leaves its reply in the inbox: the hook or read_my_messages of a parallel
  tool call must not steal the reply the waiting call is about to return. On
  that path (and in drain_first, move_all_to) stale claims are put back in
  front instead of taken, which needs space; on a full disk they wait.
* A corrupt line is appended to `quarantine.jsonl` with the reason, never dropped.

Safety here is against killed processes, not power cuts: appends are not
fsynced, and neither are the atomic rewrites (durable=False).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from oxtail_py import claims as held_claims
from oxtail_py.claims import DirectoryScan, is_stale, order_oldest_first
from oxtail_py.delivery import Delivery
from oxtail_py.errors import DiskFullError, OxtailError
from oxtail_py.fsio import (
    atomic_write_bytes,
    create_marker,
    ensure_tree,
    is_private_dir,
    refuse_symlink,
)
from oxtail_py.layout import Layout, MailboxPaths
from oxtail_py.locks import DEFAULT_TIMEOUT_S, DirLock, sweep_stale_lock_debris
from oxtail_py.mailbox_files import (
    Line,
    append_all,
    delivered_ids,
    parse,
    quarantine,
    read_file,
    read_lines,
    record_delivered,
)
from oxtail_py.messages import Message
from oxtail_py.procs import ProcessIdentity, self_identity

# Delivery lives in delivery.py; callers import both from here.
__all__ = ["Delivery", "Mailbox"]

log = logging.getLogger(__name__)

_STAGED_SWEEP_AT: Final = 64


class Mailbox:
    def __init__(self, paths: MailboxPaths, lock_timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.paths = paths
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Mailbox({self.paths.directory.name})"

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

    def _lock(self, *, wait: bool = True) -> DirLock:
        """wait=False: one try, then LockTimeoutError (a caller on an event loop)."""
        return DirLock(self.paths.lock, self.lock_timeout if wait else 0.0)

    # -- writing ---------------------------------------------------------------

    def enqueue(self, message: Message) -> None:
        """Append one message, or raise (DiskFullError, UnsafePathError) with nothing written."""
        self.append_lines([message.to_line()])

    def append_lines(self, lines: Iterable[bytes]) -> None:
        data = b"".join(lines)
        if not data:
            return
        with self._lock():
            append_all(self.paths.inbox, data)

    # -- reading ---------------------------------------------------------------

    def pending_count(self) -> int:
        """Lines waiting in the inbox (no lock: a hint for listings, not a promise).

        An inbox that cannot be read (a FIFO or symlink planted there, too large)
        counts 0: a listing must not fail, and drain reports the reason.
        """
        try:
            return sum(1 for ln in read_file(self.paths.inbox).splitlines() if ln.strip())
        except (OSError, OxtailError):
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
            return f'"id":"{message_id}"'.encode() in read_file(self.paths.inbox)
        except (OSError, OxtailError):
            return False

    def drain(self) -> Delivery:
        """Take every waiting message, oldest first (replies an ask_peer awaits stay)."""
        me = self_identity()
        with self._lock():
            scan = self._housekeep(me)
            if scan.awaited:
                self._put_back_stale(scan.stale_claims)
                taken = self._claim_unawaited(me, scan.awaited)
            else:
                taken = [self._make_mine(claim, me) for claim in scan.stale_claims]
                if self._inbox_has_data():
                    claim = self._claim_path(me)
                    os.rename(self.paths.inbox, claim)
                    taken.append(claim)
            if not taken:
                return Delivery(self, [])
            held_claims.hold(taken)
        try:
            # Read after the lock is let go, inside the give-back: the ledger can be
            # unreadable too (a FIFO planted), and a held claim must not stay held.
            # A trim racing this read keeps every id of our claims (mailbox_files).
            delivered = self._delivered_ids()
            lines = [parse(raw) for claim in taken for raw in read_lines(claim)]
            kept, quarantined = self._sort_out(lines, delivered)
        except BaseException:
            self._give_back(taken)
            raise
        messages = [ln.message for ln in kept if ln.message is not None]
        delivery = Delivery(self, messages, quarantined, taken, [ln.raw for ln in kept])
        if not messages:
            delivery.commit(record=False)
        return delivery

    def drain_first(
        self, predicate: Callable[[Message], bool], *, wait_for_lock: bool = True
    ) -> Delivery | None:
        """Take the oldest message matching `predicate`; every other line stays byte-for-byte.
        wait_for_lock=False: LockTimeoutError at once if another process holds the lock."""
        me = self_identity()
        with self._lock(wait=wait_for_lock):
            self._put_back_stale(self._housekeep(me).stale_claims)
            raws = read_lines(self.paths.inbox)
            delivered = self._delivered_ids()
            for index, raw in enumerate(raws):
                line = parse(raw)
                if line.message and line.message.id not in delivered and predicate(line.message):
                    claim = self._claim_path(me)
                    rest = b"".join(raws[:index] + raws[index + 1 :])
                    self._split_inbox(claim, raw, rest)
                    held_claims.hold([claim])
                    return Delivery(self, [line.message], 0, [claim], [raw])
        return None

    def move_all_to(self, other: Mailbox) -> int:
        """Move every waiting line (corrupt ones too, they quarantine there) to `other`."""
        me = self_identity()
        claim = self._claim_path(me)
        with self._lock():
            self._put_back_stale(self._housekeep(me).stale_claims)
            if not self._inbox_has_data():
                return 0
            os.rename(self.paths.inbox, claim)
            held_claims.hold([claim])
        try:
            raws = read_lines(claim)
            other.append_lines(raws)
        except BaseException:
            self._give_back([claim])
            raise
        Delivery(self, [], 0, [claim]).commit(record=False)
        return len(raws)

    def _give_back(self, taken: list[Path]) -> None:
        """A step after taking claims failed while we live: put them back in front now.
        If even that fails, they are stale (released) and the next drain takes them."""
        try:
            with self._lock():
                self._restore_front([raw for c in taken for raw in read_lines(c)], taken)
        except (OSError, OxtailError) as exc:
            log.warning("%s: claims not put back (%s); the next drain takes them", self, exc)
        finally:
            held_claims.release(taken)

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

    def _housekeep(self, me: ProcessIdentity) -> DirectoryScan:
        """(lock held) Find stale claims and awaited request ids; sweep debris.

        One directory listing serves all three: this runs on every drain.
        """
        scan = DirectoryScan()
        stale: list[Path] = []
        for name in os.listdir(self.paths.directory):
            path = self.paths.directory / name
            if MailboxPaths.is_claim_name(name):
                if is_stale(path, me):
                    stale.append(path)
            elif parts := MailboxPaths.awaiting_parts(name):
                request_id, waiter = parts
                if waiter is not None and waiter.is_alive():
                    scan.awaited.add(request_id)
                else:
                    path.unlink(missing_ok=True)
            elif name.startswith(".lock.tmp."):
                scan.staged_locks += 1
        scan.stale_claims = order_oldest_first(stale) if stale else []
        # Every live process that locked this mailbox keeps one staged lock dir here
        # (locks.py); only a crash leaves a dead one. Checking each on every drain
        # would cost a /proc read per peer, so sweep once they pile up.
        if scan.staged_locks > _STAGED_SWEEP_AT:
            sweep_stale_lock_debris(self.paths.directory)
        return scan

    def _make_mine(self, claim: Path, me: ProcessIdentity) -> Path:
        """(lock held) Rename a stale claim to our name, so no other reader takes it too."""
        if MailboxPaths.claim_owner(claim) == me:
            return claim
        mine = self._claim_path(me)
        os.rename(claim, mine)
        return mine

    def _put_back_stale(self, stale: list[Path]) -> None:
        """(lock held) Stale claims back at the front, oldest in front. On a full disk
        they stay as they are (still stale) and the next drain takes them."""
        try:
            for claim in reversed(stale):
                self._recover_claim(claim)
        except DiskFullError as exc:
            log.warning("%s: stale claims wait for free space: %s", self, exc)

    def _claim_unawaited(self, me: ProcessIdentity, awaited: set[str]) -> list[Path]:
        """(lock held) Move every line but awaited replies from the inbox to a claim."""
        take: list[bytes] = []
        stay: list[bytes] = []
        for raw in read_lines(self.paths.inbox):
            msg = parse(raw).message
            (stay if msg is not None and msg.reply_to in awaited else take).append(raw)
        if not take:
            return []
        claim = self._claim_path(me)
        self._split_inbox(claim, b"".join(take), b"".join(stay))
        return [claim]

    def _split_inbox(self, claim: Path, taken: bytes, rest: bytes) -> None:
        """(lock held) claim := taken, inbox := rest; on failure the inbox is unchanged."""
        atomic_write_bytes(claim, taken, durable=False)
        try:
            atomic_write_bytes(self.paths.inbox, rest, durable=False)
        except BaseException:
            claim.unlink(missing_ok=True)
            raise

    def _claim_path(self, me: ProcessIdentity) -> Path:
        return self.paths.claim(me, os.urandom(4).hex())

    def _inbox_has_data(self) -> bool:
        refuse_symlink(self.paths.inbox)
        try:
            return os.stat(self.paths.inbox).st_size > 0
        except FileNotFoundError:
            return False

    def _sort_out(self, lines: list[Line], delivered: set[str]) -> tuple[list[Line], int]:
        """Quarantine corrupt lines; drop ids already delivered or seen; keep the rest."""
        kept: list[Line] = []
        seen: set[str] = set()
        bad: list[Line] = []
        for line in lines:
            if line.message is None:
                bad.append(line)
            elif line.message.id not in delivered and line.message.id not in seen:
                seen.add(line.message.id)
                kept.append(line)
        if bad:
            with self._lock():  # the rollback of a failed append must not cut another's
                quarantine(self.paths.quarantine, bad)
        return kept, len(bad)

    def _recover_claim(self, claim: Path) -> None:
        """(lock held) Put a stale claim back at the front, minus delivered ids."""
        delivered = self._delivered_ids()
        lines = [parse(raw) for raw in read_lines(claim)]
        keep = [ln.raw for ln in lines if ln.message is None or ln.message.id not in delivered]
        self._restore_front(keep, [claim])

    def _restore_front(self, raws: list[bytes], taken: list[Path]) -> None:
        """(lock held) inbox := raws + inbox, each id once; then drop the claims."""
        seen: set[str] = set()
        merged: list[bytes] = []
        for raw in raws + read_lines(self.paths.inbox):
            msg = parse(raw).message
            if msg is not None:
                if msg.id in seen:
                    continue
                seen.add(msg.id)
            merged.append(raw)
        atomic_write_bytes(self.paths.inbox, b"".join(merged), durable=False)
        for claim in taken:
            claim.unlink(missing_ok=True)

    def _delivered_ids(self) -> set[str]:
        return delivered_ids(self.paths.delivered)

    def _record_delivered(self, ids: Iterable[str]) -> None:
        # Under the lock: the trim rewrites the file, and an append racing it would
        # be lost (and a lost id can be handed over twice).
        with self._lock():
            record_delivered(self.paths.delivered, ids, self.claims())
