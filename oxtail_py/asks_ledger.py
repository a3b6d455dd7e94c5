"""The asks ledger: one file per ask_peer, `asks/<asker mailbox key>/<request id>.json`.

An ask is `waiting` while its ask_peer call blocks, `pending` once the call has ended
without an answer (timeout, peer gone, cancelled), `answered` when the call returned the
reply, `late-answered` when a reply to a pending ask was handed over later. `waiting` is
believed only while the asker's server (pid + start time, recorded) is alive: a killed
asker leaves an ask that is effectively `pending`, never a phantom edge in the graph.

The ledger is the wait-for graph. An edge asker -> target exists for every live waiting
ask. A new ask asker -> target that closes a cycle (the target, or someone it waits on,
waits on the asker) is refused at once with `would-deadlock`: the check and the record
are made under one lock (`asks/lock`), so of two crossing asks exactly the second is
refused, never both, never neither. The graph is read from `asks/waiting/`, a copy of
each waiting ask's record, made after the record and removed before the ask leaves
`waiting`; a copy whose asker's server died is dropped by the next new ask. Every ask of
every agent on the machine takes that lock, so what it reads must stay small: the
askers' own directories hold a day of answered asks and a week of pending ones.

Only the asker's side writes its records (its server, or its own hooks marking a late
reply handed over). Reads are capped and type-checked (fsio); a record that does not
parse is skipped with a warning, never trusted.

For a cockpit: `list_asks(layout, project_root)` lists records (typed `AskRecord`),
`effective_state` says what a record means now, `find_cycles` flags the cycles.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from oxtail_py.ask_record import PARSED, AskRecord, AskState, load, records_in
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_bytes, ensure_tree, is_private_dir
from oxtail_py.layout import MESSAGE_ID_RE, Layout
from oxtail_py.locks import DirLock
from oxtail_py.messages import Message, now_iso
from oxtail_py.scope import contains

__all__ = [
    "AskRecord",
    "AskState",
    "LateReplies",
    "WouldDeadlockError",
    "discard",
    "find_cycles",
    "late_replies",
    "list_asks",
    "load",
    "open_ask",
    "path_between",
    "prune",
    "record_handed_over",
    "same_agent",
    "set_state",
    "wait_for_edges",
]

log = logging.getLogger("oxtail_py")

# An answered ask is kept this long (the cockpit shows recent ones); a pending one this
# long, after which its late reply, if any ever comes, is plain mail.
KEEP_DONE_S: Final = 24 * 3600.0
KEEP_PENDING_S: Final = 7 * 24 * 3600.0
# One asker's directory holds at most this many records; past it the oldest done ones go.
MAX_ASKS_PER_ASKER: Final = 256
LOCK_TIMEOUT_S: Final = 5.0
# An asker's old records are pruned at most this often per process (each prune reads them).
PRUNE_EVERY_S: Final = 600.0
_LAST_PRUNE: dict[str, float] = {}


class WouldDeadlockError(OxtailError):
    code = "would-deadlock"


def list_asks(
    layout: Layout, project_root: Path | None = None, *, asker: str | None = None
) -> list[AskRecord]:
    """Every readable record, oldest first: of one asker, or of askers in `project_root`
    (the asker's recorded project lies inside it), or all."""
    base = layout.asks_dir
    if not is_private_dir(base):
        return []
    if asker is not None:
        directories = [layout.asker_dir(asker)]
    else:
        try:
            not_askers = {layout.asks_lock.name, layout.waiting_asks_dir.name}
            directories = [
                base / n for n in os.listdir(base) if n not in not_askers and n[:1] != "."
            ]
        except OSError:
            return []
    records = [r for d in directories if is_private_dir(d) for r in records_in(d)]
    if project_root is not None:
        records = [r for r in records if contains(project_root, r.project_root)]
    return sorted(records, key=lambda r: r.created_ts)


def wait_for_edges(records: Iterable[AskRecord]) -> dict[str, set[str]]:
    """asker node -> the nodes it waits on now (live waiting asks only). A target named by
    an id its agent had before /clear is that agent's current node (`same_agent`)."""
    live = [r for r in records if r.effective_state() == AskState.WAITING]
    same = same_agent(live)
    edges: dict[str, set[str]] = {}
    for record in live:
        target = same.get(record.target_session_id, record.target_session_id)
        edges.setdefault(record.node, set()).add(target)
    return edges


def same_agent(records: Iterable[AskRecord]) -> dict[str, str]:
    """Each asker's session ids before /clear -> its node now. *A peer that resolved an
    agent before its /clear waits on the old id; without this, that agent asking the peer
    back closed a cycle the graph could not see, and both waited out their timeouts.*"""
    return {
        old: record.node
        for record in records
        for old in record.asker_previous_session_ids
        if old != record.node
    }


def path_between(edges: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A chain of waits start -> ... -> goal, or None."""
    parents: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            chain: list[str] = []
            at: str | None = node
            while at is not None:
                chain.append(at)
                at = parents[at]
            return chain[::-1]
        for nxt in edges.get(node, ()):
            if nxt not in parents:
                parents[nxt] = node
                frontier.append(nxt)
    return None


def find_cycles(records: Iterable[AskRecord]) -> list[list[str]]:
    """Every cycle among live waiting asks, each as [a, b, ..., a] (the cockpit flags them;
    opening asks refuses them, so one here means a record was forged or raced a crash)."""
    edges = wait_for_edges(records)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for node, targets in edges.items():
        for target in targets:
            chain = path_between(edges, target, node)
            if chain is not None and frozenset(chain) not in seen:
                seen.add(frozenset(chain))
                cycles.append([node, *chain])
    return cycles


# -- writing (the asker's side only) ---------------------------------------------------


def open_ask(layout: Layout, record: AskRecord) -> None:
    """Record `record` (state waiting), unless it would close a cycle of waits: then
    raise WouldDeadlockError naming the chain, with nothing recorded."""
    ensure_tree(layout.root, layout.asker_dir(record.asker))
    ensure_tree(layout.root, layout.waiting_asks_dir)
    with DirLock(layout.asks_lock, LOCK_TIMEOUT_S):
        records = _live_waiting(layout)
        # With the new ask among them: its ids before /clear name it, and its own edge
        # leaves the goal, so it can never make a chain that was not there.
        with_new = [*records, record]
        edges = wait_for_edges(with_new)
        target = same_agent(with_new).get(record.target_session_id, record.target_session_id)
        chain = path_between(edges, target, record.node)
        if chain is not None:
            raise WouldDeadlockError(_deadlock_message(record, chain, records))
        _write(layout, record)
        # After the record: a kill between the two leaves a record and no copy, and no
        # request has gone out yet (it goes after this returns).
        try:
            _write_to(layout.waiting_ask_file(record.request_id), record)
        except BaseException:
            # A full disk: no ask at all, rather than one the graph cannot see.
            layout.ask_file(record.asker, record.request_id).unlink(missing_ok=True)
            raise
    if time.monotonic() - _LAST_PRUNE.get(record.asker, -PRUNE_EVERY_S) >= PRUNE_EVERY_S:
        _LAST_PRUNE[record.asker] = time.monotonic()
        prune(layout, record.asker)


def _live_waiting(layout: Layout) -> list[AskRecord]:
    """(asks lock held) The asks waiting now. A copy whose asker's server is gone is
    removed: that ask will never wait again (a killed asker's copy stays until then)."""
    directory = layout.waiting_asks_dir
    live: list[AskRecord] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = directory / name
        try:
            record = PARSED.load(path)
        except FileNotFoundError:
            continue
        except (OSError, OxtailError, ValueError) as exc:
            log.warning("waiting ask %s skipped: %s", path, exc)
            continue
        if f"{record.request_id}.json" == name and record.effective_state() == AskState.WAITING:
            live.append(record)
        else:
            path.unlink(missing_ok=True)
    return live


def _deadlock_message(record: AskRecord, chain: list[str], records: list[AskRecord]) -> str:
    """Who waits on whom, and the request waiting on the caller (the one to answer)."""
    shown = " -> ".join([record.node, *chain])
    me = {record.node, *record.asker_previous_session_ids}
    waiting_on_me = next(
        (
            r.request_id
            for r in records
            if r.node == chain[-2]
            and r.target_session_id in me
            and r.effective_state() == AskState.WAITING
        ),
        None,
    )
    answer = (
        f"Answer its request {waiting_on_me} first (reply_to_message with message_id "
        f"{waiting_on_me}, or send_message with reply_to={waiting_on_me})"
        if waiting_on_me
        else "Answer the request waiting on you first (read_my_messages shows it)"
    )
    return (
        f"{record.target_name!r} is itself waiting (through ask_peer) for an answer from "
        f"you: {shown}. Asking it now would leave both waiting until the timeout. "
        f"{answer}, or use send_message, which does not wait"
    )


def _write(layout: Layout, record: AskRecord) -> None:
    _write_to(layout.ask_file(record.asker, record.request_id), record)


def _write_to(path: Path, record: AskRecord) -> None:
    """Atomic (rename), not fsynced: like the mailbox, safe against a killed process, not a
    power cut; the fsync was most of an ask's ledger cost."""
    data = (json.dumps(record.to_dict(), ensure_ascii=False, indent=1) + "\n").encode()
    atomic_write_bytes(path, data, durable=False)


def set_state(
    layout: Layout,
    asker: str,
    request_id: str,
    state: AskState,
    *,
    reply_id: str | None = None,
) -> AskRecord | None:
    """Move one ask on. Only forward: waiting -> pending | answered, pending ->
    late-answered (or answered); a done ask stays done. Returns the record as now stored."""
    record = load(layout, asker, request_id)
    if record is None:
        return None
    allowed = {
        AskState.WAITING: {AskState.PENDING, AskState.ANSWERED},
        AskState.PENDING: {AskState.LATE_ANSWERED, AskState.ANSWERED},
    }
    # A waiting ask whose asker's server died is pending in effect (its late reply may
    # be handed over by the asker's next server or its hooks).
    if state not in allowed.get(record.effective_state(), set()):
        return record
    moved = replace(record, state=state, updated_at=now_iso(), reply_id=reply_id)
    # The copy goes first: a kill between the two leaves a waiting record whose server
    # is dead (pending in effect), never a copy in the graph after the wait is over.
    layout.waiting_ask_file(request_id).unlink(missing_ok=True)
    _write(layout, moved)
    return moved


@dataclass(frozen=True, slots=True)
class LateReplies:
    """Which of a batch of messages answer asks of the reader's that ended unanswered."""

    by_request: dict[str, str]  # request id -> asker key (where its record lives)

    @property
    def request_ids(self) -> frozenset[str]:
        return frozenset(self.by_request)

    def of(self, message: Message) -> str | None:
        """The request id `message` is a late reply to, or None."""
        return message.reply_to if message.reply_to in self.by_request else None


def late_replies(layout: Layout, askers: Iterable[str], messages: Iterable[Message]) -> LateReplies:
    """The messages among `messages` that reply to a pending (or already late-answered)
    ask of one of `askers`: the reader should see them marked as late replies."""
    wanted = {m.reply_to for m in messages if m.reply_to and MESSAGE_ID_RE.fullmatch(m.reply_to)}
    found: dict[str, str] = {}
    for asker in askers:
        for request_id in wanted - found.keys():
            record = load(layout, asker, request_id)
            if record is not None and record.effective_state() in (
                AskState.PENDING,
                AskState.LATE_ANSWERED,
            ):
                found[request_id] = asker
    return LateReplies(found)


def record_handed_over(layout: Layout, late: LateReplies, messages: Iterable[Message]) -> None:
    """The late replies among `messages` were handed over: their asks are late-answered.
    Best effort: the reader has the reply whatever the ledger says."""
    for message in messages:
        request_id = late.of(message)
        if request_id is None:
            continue
        try:
            set_state(
                layout, late.by_request[request_id], request_id, AskState.LATE_ANSWERED,
                reply_id=message.id,
            )  # fmt: skip
        except (OSError, OxtailError) as exc:
            log.warning("ask %s: not marked late-answered: %s", request_id, exc)


def prune(layout: Layout, asker: str, now: float | None = None) -> int:
    """Drop an asker's done records after KEEP_DONE_S, pending ones after KEEP_PENDING_S,
    and the oldest done ones past MAX_ASKS_PER_ASKER. Returns how many went."""
    now = time.time() if now is None else now
    records = list_asks(layout, asker=asker)
    gone: list[AskRecord] = []
    done = [r for r in records if r.state in (AskState.ANSWERED, AskState.LATE_ANSWERED)]
    for record in records:
        keep = KEEP_DONE_S if record in done else KEEP_PENDING_S
        if now - record.created_ts > keep and record.effective_state() != AskState.WAITING:
            gone.append(record)
    excess = len(records) - len(gone) - MAX_ASKS_PER_ASKER
    if excess > 0:
        gone += [r for r in done if r not in gone][:excess]
    for record in gone:
        layout.ask_file(asker, record.request_id).unlink(missing_ok=True)
    return len(gone)


def discard(layout: Layout, asker: str, request_id: str) -> None:
    """Forget an ask that never went out (its send failed after it was recorded)."""
    layout.waiting_ask_file(request_id).unlink(missing_ok=True)
    layout.ask_file(asker, request_id).unlink(missing_ok=True)
