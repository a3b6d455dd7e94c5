"""Which claim files are stale, i.e. hold messages nobody is handing over.

A claim `claim.<owner>.<nonce>.jsonl` is *live* only while a Delivery object of
its owner holds it. Stale are:

* claims whose owner is dead (killed reader), or whose name does not parse;
* claims of this very process that no Delivery holds any more: a put-back
  (abort, a failed read) that could not complete, e.g. on a full disk. Without
  this rule such a claim would hide its messages until this process exits,
  because its owner is alive.

So this process keeps a registry of the claims its Delivery objects hold
(`hold`/`release`, thread-safe; a Delivery dropped without commit or abort
releases its claims when it is collected). A forked child has another identity,
so the parent's registry never makes the child protect the parent's claims.

A claim that is not a regular file, or is over the size cap, is skipped (with a
warning): nobody can read it, and a reader must not fail on it for ever.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from oxtail_py.fsio import MAX_MAILBOX_FILE_BYTES
from oxtail_py.layout import MailboxPaths
from oxtail_py.procs import ProcessIdentity

log = logging.getLogger(__name__)

_held: set[Path] = set()
_held_guard = threading.Lock()


def hold(claims: list[Path]) -> None:
    with _held_guard:
        _held.update(claims)


def release(claims: list[Path]) -> None:
    with _held_guard:
        _held.difference_update(claims)


def is_held(claim: Path) -> bool:
    with _held_guard:
        return claim in _held


def is_stale(claim: Path, me: ProcessIdentity) -> bool:
    owner = MailboxPaths.claim_owner(claim)
    if owner is None:
        return True
    if owner == me:
        return not is_held(claim)
    return not owner.is_alive()


@dataclass
class DirectoryScan:
    """What one listing of a mailbox directory found (the lock is held)."""

    stale_claims: list[Path] = field(default_factory=list)  # oldest first
    awaited: set[str] = field(default_factory=set)  # request ids a live ask_peer waits for
    staged_locks: int = 0


def order_oldest_first(claims: list[Path]) -> list[Path]:
    """Readable claims, oldest content first (a claim's mtime is the last append to
    the inbox it was taken from); unreadable ones are skipped with a warning."""
    dated: list[tuple[int, str, Path]] = []
    for claim in claims:
        try:
            st = os.lstat(claim)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MAILBOX_FILE_BYTES:
            log.warning("%s is not a regular file or is too large; skipped", claim)
            continue
        dated.append((st.st_mtime_ns, claim.name, claim))
    return [path for _, _, path in sorted(dated)]
