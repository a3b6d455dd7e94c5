"""Self-healing wakes, inside each server (no daemon): one thread, asleep on a timer.

Two healers, both bounded (at most `heal_max_wakes` tries per message, each try waiting
twice as long as the one before) and both recording every try with
`receipts.record_wake_outcome`, where `message_status` shows it:

- **self-heal** (`by="self-heal"`): our own agent has mail that has sat unread for
  `heal_idle_s` (counted from when this server first saw it: a sender's clock or a forged
  `enqueued_at` cannot hurry or hold it). If its hooks say it is mid-turn, they will deliver
  it and nothing is typed; otherwise the agent is woken (wake.py, with every gate a peer's
  wake has). A late reply to one of our asks that timed out (asks_ledger) is due after
  `LATE_GRACE_S` instead: the asker gave up waiting, and an idle asker would otherwise hold
  the answer until a human types.
- **re-poke** (`by="re-poke"`): work we delegated (obligations.py, receipts11) that is still
  open, neither completed nor blocked, `delegate_silent_s` after it was handed out: the
  delegate is woken again for that message.

Nothing polls. The thread sleeps on a condition with the timeout of the earliest due
time (none: it sleeps until kicked). It is kicked by file events: our inboxes (the
server's MailboxWatcher) and the obligations directory. An idle server with nothing due
makes no system calls at all (bench/idle_cpu.py measures it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from oxtail_py import asks_ledger, obligations, receipts
from oxtail_py.agent import Agent
from oxtail_py.discovery import Row
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import is_pid_box_key
from oxtail_py.mailbox_files import parse, read_lines
from oxtail_py.messages import Message
from oxtail_py.obligations import WorkState
from oxtail_py.settings import Settings
from oxtail_py.status import read_status
from oxtail_py.watch import MailboxWatcher

log = logging.getLogger("oxtail_py")

SELF_HEAL: Final = "self-heal"
RE_POKE: Final = "re-poke"
# A late reply gets this long for a busy agent's hooks to take it before a wake is tried.
LATE_GRACE_S: Final = 2.0
# The longest one sleep lasts with something due later (clock steps are caught by then).
MAX_SLEEP_S: Final = 3600.0
# A kicked pass waits for file events to go quiet this long, and never more than the max.
KICK_SETTLE_S: Final = 0.2
KICK_SETTLE_MAX_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Due:
    """One thing the healer will do, and when (wall clock)."""

    at: float
    message_id: str
    kind: str  # SELF_HEAL | RE_POKE
    attempt: int  # the try this will be (1 = first)
    target_session_id: str | None  # RE_POKE: the delegate; SELF_HEAL: None (ourselves)
    sender: str | None  # who the wake line names as the message's sender


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def _tries(agent: Agent, message_id: str, kind: str) -> tuple[int, float | None]:
    """How many tries of `kind` were made for `message_id` (by any server: the record is
    durable, so a restarted server keeps the count), and when the last was."""
    mine = [o for o in receipts.read_wake_outcomes(agent.layout, message_id) if o.by == kind]
    return len(mine), (_epoch(mine[-1].at) if mine else None)


class SelfHeal:
    def __init__(self, agent: Agent, settings: Settings) -> None:
        self.agent = agent
        self.settings = settings
        self._cond = threading.Condition()
        self._kicked = True  # the first pass runs at once
        self._settling = False  # waiting out a burst: a kick is noted, not a wake-up
        self._stopped = False
        self._first_seen: dict[str, float] = {}  # unread message id -> when we saw it
        self._deferred: dict[str, float] = {}  # message id -> not before (agent was busy)
        self._last_wake = 0.0  # when this healer last woke our own agent
        # Delegated work is re-read only when obligations/ changed or a re-poke is due:
        # inbox events come with every message, and a ledger can hold many records.
        self._work_dirty = True
        self._work_plan: list[Due] = []
        self._thread = threading.Thread(target=self._run, name="oxtail-heal", daemon=True)
        self._unsubscribe: Callable[[], None] = lambda: None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, watcher: MailboxWatcher) -> None:
        if self.settings.heal_max_wakes <= 0:
            return  # turned off (OXTAIL_HEAL_MAX_WAKES=0)
        self._unsubscribe = watcher.subscribe(self.kick)
        try:
            ensure_tree(self.agent.layout.root, self.agent.layout.obligations_dir)
            watcher.watch_any(self.agent.layout.obligations_dir, self.kick_work)
        except (OSError, OxtailError) as exc:  # re-pokes then run on the timer alone
            log.warning("self-heal: obligations not watched: %s", exc)
        self._thread.start()

    def stop(self) -> None:
        self._unsubscribe()
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def kick(self) -> None:
        """Look again now (called by the inbox watcher, on the server's loop: must not
        block)."""
        with self._cond:
            self._note_kick()

    def kick_work(self) -> None:
        """Delegated work changed (obligations/ saw an event): re-read it, now."""
        with self._cond:
            self._work_dirty = True
            self._note_kick()

    def _note_kick(self) -> None:
        """(cond held) While a burst settles the kick is only noted: waking this thread
        for each event of an ask's hand-over took the interpreter from it."""
        self._kicked = True
        if not self._settling:
            self._cond.notify()

    def _run(self) -> None:
        next_at: float | None = None
        while True:
            with self._cond:
                while not self._kicked and not self._stopped:
                    wait = MAX_SLEEP_S if next_at is None else next_at - time.time()
                    if wait <= 0:
                        break
                    self._cond.wait(min(wait, MAX_SLEEP_S))
                if self._stopped:
                    return
                # A burst of file events (a reply landing, then taken by its ask_peer)
                # is one look, taken once the burst settles: reading the inboxes in the
                # middle of a hand-over only competes with it for the interpreter, and
                # nothing here is due sooner than the late-reply grace. Bounded, so
                # steady traffic cannot put a pass off for ever.
                settle_until = time.monotonic() + KICK_SETTLE_MAX_S
                self._settling = True
                while self._kicked and not self._stopped and time.monotonic() < settle_until:
                    self._kicked = False
                    self._cond.wait(KICK_SETTLE_S)
                self._settling = False
                if self._stopped:
                    return
                self._kicked = False
            try:
                next_at = self.heal_once(time.time())
            except Exception:  # a bug here must not end healing for the server's life
                log.exception("self-heal pass failed")
                next_at = time.time() + self.settings.heal_idle_s

    # -- one pass -------------------------------------------------------------------------

    def heal_once(self, now: float) -> float | None:
        """Do what is due now; return when the next thing is due (None: nothing is)."""
        pending = self.plan(now)
        for due in [d for d in pending if d.at <= now]:
            self._act(due, now)
        later = [d.at for d in self.plan(now) if d.at > now]
        return min(later) if later else None

    def plan(self, now: float) -> list[Due]:
        """Everything the healer would do, with its due time."""
        with self._cond:
            stale, self._work_dirty = self._work_dirty, False
        if stale or any(d.at <= now for d in self._work_plan):
            self._work_plan = self._plan_delegated(now)
        return [*self._plan_inbox(now), *self._work_plan]

    def _unread(self) -> list[Message]:
        in_flight = self.agent.asks_in_flight()
        found: list[Message] = []
        for box in self.agent.my_mailboxes():
            try:
                raws = read_lines(box.paths.inbox)
            except (OSError, OxtailError):
                continue  # an unreadable inbox: the drains report it
            for raw in raws:
                msg = parse(raw).message
                if msg is not None and msg.reply_to not in in_flight:
                    found.append(msg)
        return found

    def _plan_inbox(self, now: float) -> list[Due]:
        unread = self._unread()
        ids = {m.id for m in unread}
        for gone in [i for i in self._first_seen if i not in ids]:
            del self._first_seen[gone]
            self._deferred.pop(gone, None)
        late = asks_ledger.late_replies(self.agent.layout, self.agent.my_keys(), unread)
        limit, idle = self._max_tries(), float(self.settings.heal_idle_s)
        best: Due | None = None
        for msg in unread:
            seen = self._first_seen.setdefault(msg.id, now)
            count, last = _tries(self.agent, msg.id, SELF_HEAL)
            if count >= limit:
                continue
            if count == 0 or last is None:
                at = seen + (LATE_GRACE_S if late.of(msg) else idle)
                if not late.of(msg):
                    # A wake makes the agent read all its mail: other mail that came
                    # with the woken message is given the time that wake needs.
                    at = max(at, self._last_wake + idle)
            else:
                at = last + idle * 2**count
            at = max(at, self._deferred.get(msg.id, 0.0))
            if best is None or at < best.at:
                best = Due(at, msg.id, SELF_HEAL, count + 1, None, msg.from_session_id)
        # One wake makes the agent read all of its mail: one due item is enough.
        return [best] if best is not None else []

    def _max_tries(self) -> int:
        """The tries per message, counted in the wake-outcome file: it keeps the newest
        MAX_WAKE_OUTCOMES, so a larger setting would never be reached (wakes for ever)."""
        return min(self.settings.heal_max_wakes, receipts.MAX_WAKE_OUTCOMES)

    def _plan_delegated(self, now: float) -> list[Due]:
        mine = [k for k in self.agent.my_keys() if not is_pid_box_key(k)]
        if not mine:
            return []
        limit, silent = self._max_tries(), float(self.settings.delegate_silent_s)
        plan: list[Due] = []
        for work in obligations.open_delegated_by(self.agent.layout, mine):
            if work.state != WorkState.OPEN:
                continue  # blocked: the delegate has spoken
            ob = work.obligation
            count, last = _tries(self.agent, ob.message_id, RE_POKE)
            created = _epoch(ob.created_at)
            if count >= limit or created is None:
                continue
            at = created + silent if count == 0 or last is None else last + silent * 2**count
            plan.append(
                Due(at, ob.message_id, RE_POKE, count + 1, ob.owner_session_id,
                    ob.requester_session_id)
            )  # fmt: skip
        return plan

    # -- acting -------------------------------------------------------------------------

    def _act(self, due: Due, now: float) -> None:
        if due.kind == SELF_HEAL:
            sid = self.agent.identity.session_id
            if sid and read_status(self.agent.layout, sid).busy:
                # Mid-turn: its hooks deliver at the next tool call or turn end.
                self._deferred[due.message_id] = now + self.settings.heal_idle_s
                return
            self._last_wake = now
        row = self._row(due)
        if row is None:
            status, detail = "skipped_no_target", "no live agent for that session in this project"
        else:
            report = self.agent.wake(row, due.message_id, sender=due.sender)
            status, detail = str(report.status), report.detail
        log.info("%s %s try %d: %s %s", due.kind, due.message_id, due.attempt, status, detail)
        if due.kind == RE_POKE:
            self._work_dirty = True  # its next try is due later now
        receipts.record_wake_outcome(
            self.agent.layout, due.message_id, status=status, detail=detail, by=due.kind,
            attempt=due.attempt,
        )  # fmt: skip

    def _row(self, due: Due) -> Row | None:
        try:
            listing = self.agent.list_sessions(count_unread=False)
        except (OSError, OxtailError) as exc:
            log.warning("self-heal: no listing: %s", exc)
            return None
        for row in listing.rows:
            if row.kind != "agent":
                continue
            if due.target_session_id is None and row.is_me:
                return row
            if due.target_session_id is not None and due.target_session_id in (
                row.client_session_id,
                *(row.entry.client.previous_session_ids if row.entry else []),
            ):
                return row
        return None
