"""A Delivery: messages a reader took from a mailbox, to commit() or abort().

It holds the claim files they came from (claims.py registers them as live while
it exists). Every ending leaves nothing hidden: commit deletes the claims even if
the ids could not be recorded (a full disk: with no claim left, nothing can be
recovered and delivered twice); abort and commit_first that cannot put messages
back leave the claims stale, and the next drain takes them first.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from oxtail_py import claims as held_claims
from oxtail_py.errors import DiskFullError, LockTimeoutError, OxtailError
from oxtail_py.messages import Message

if TYPE_CHECKING:
    from oxtail_py.mailbox import Mailbox

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """Messages taken from a mailbox; the caller must commit() or abort()."""

    mailbox: Mailbox
    messages: list[Message]
    quarantined: int = 0
    _claims: list[Path] = field(default_factory=list)
    _raw: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Held from creation; dropped without commit/abort, the claims become stale
        # (recovered by the next drain) instead of hidden for the process's life.
        weakref.finalize(self, held_claims.release, list(self._claims))

    def commit(self, *, record: bool = True) -> None:
        """The messages were handed over: remember their ids, drop the claims."""
        if not self._claims:
            return
        try:
            if record and self.messages:
                try:
                    self.mailbox._record_delivered(m.id for m in self.messages)
                except (DiskFullError, LockTimeoutError) as exc:
                    # The ids only filter a recovered claim, and the claims go next:
                    # none will be recovered, so nothing is delivered twice.
                    log.warning("%s: delivered ids not recorded: %s", self.mailbox, exc)
            for claim in self._claims:
                claim.unlink(missing_ok=True)
        finally:
            self._let_go()

    def commit_first(self, count: int) -> None:
        """The first `count` messages were handed over; the rest go back in front."""
        if not self._claims:
            return
        if count >= len(self.messages):
            self.commit()
            return
        try:
            # Record before restoring: a crash in between recovers the claims, and
            # the recorded ids are filtered out of them, the rest restored.
            self.mailbox._record_delivered(m.id for m in self.messages[:count])
            with self.mailbox._lock():
                self.mailbox._restore_front(self._raw[count:], self._claims)
        except (DiskFullError, LockTimeoutError) as exc:
            log.warning("%s: could not put messages back (%s); next drain takes them", self, exc)
        finally:
            self._let_go()

    def abort(self) -> None:
        """Hand-over failed: put the messages back at the front of the inbox.

        Never raises for a full disk or a held lock: the claims then stay, stale,
        and the next drain (of this process too) takes them first.
        """
        if not self._claims:
            return
        try:
            with self.mailbox._lock():
                self.mailbox._restore_front(self._raw, self._claims)
        except (DiskFullError, LockTimeoutError) as exc:
            log.warning("%s: could not put messages back (%s); next drain takes them", self, exc)
        finally:
            self._let_go()

    def _let_go(self) -> None:
        held_claims.release(self._claims)
        self._claims = []


@dataclass
class InboxRead:
    """Messages taken from every box of ours (oldest first), not yet handed over."""

    messages: list[Message]
    quarantined: int
    _deliveries: list[Delivery] = field(repr=False)

    def commit(self) -> None:
        self._settle(handed_over=True)

    def abort(self) -> None:
        self._settle(handed_over=False)

    def _settle(self, *, handed_over: bool) -> None:
        # Each box on its own: a failure in one must not strand the others. A claim left
        # behind is recovered once we exit (a duplicate at worst, never a loss).
        for d in self._deliveries:
            try:
                d.commit() if handed_over else d.abort()
            except OxtailError as exc:
                log.warning("could not settle a mailbox claim: %s", exc)
