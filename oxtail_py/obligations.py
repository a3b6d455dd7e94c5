"""Delegated work: `send_message(..., action_required=true)` makes the recipient owe an answer.

    obligations/<message id>.json          write-once: who owes what to whom, since when
    obligations/<message id>.blocked.json  the owner's latest block_work (atomic rewrite)
    obligations/<message id>.done.json     write-once: complete_work's result

Keyed by the delegating message's id and by session ids (never by a process), so an
obligation survives restarts of either side.

Lossless under kill -9, with no duplicate: the message line itself carries
`action_required`, and the record is created from it by whichever side gets there first
(the sender right after its enqueue, the recipient just before hand-over), write-once. A
record therefore exists exactly when the message was enqueued (eventually), and never
twice. A completion is written once (a second `complete_work` is refused), with the id of
its result message fixed in advance; the result is enqueued after, and a completion whose
result the completer never recorded as sent is re-sent with the same id (`unsent_results`),
which the recipient's mailbox de-duplicates.

Public API (typed; the cockpit and asks11's re-poke timers read it):

- `open_for(layout, session_ids)`: open or blocked work that these sessions owe.
- `open_delegated_by(layout, session_ids)`: open or blocked work they handed out.
- `list_for_project(layout, project_root)`: every obligation recorded for a project
  (done ones too, newest first) for the wait-for graph.
- `work_status(layout, message_id)`: one obligation's `WorkStatus`, or None.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import (
    atomic_write_json,
    create_marker,
    ensure_tree,
    is_private_dir,
    load_json,
    write_once_json,
)
from oxtail_py.layout import MESSAGE_ID_RE, SESSION_ID_RE, Layout
from oxtail_py.messages import Message, now_iso

SUMMARY_CHARS: Final = 200
MAX_REASON_BYTES: Final = 2000
# A done record holds the result body (<= 8 KB) so that it can be re-sent.
MAX_OBLIGATION_BYTES: Final = 64 * 1024
# One listing reads at most this many records: more is a flood, not a team's work.
MAX_LISTED: Final = 2000


class WorkError(OxtailError):
    code = "unknown-work"


class WorkState(StrEnum):
    OPEN = "open"
    BLOCKED = "blocked"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Obligation:
    message_id: str  # the delegating message
    requester_session_id: str  # who asked (the completion goes back to it)
    owner_session_id: str  # who owes it
    created_at: str
    summary: str  # the start of the request's body
    project_root: str | None = None


@dataclass(frozen=True, slots=True)
class Blocked:
    reason: str
    at: str
    note_message_id: str


@dataclass(frozen=True, slots=True)
class Done:
    result_message_id: str
    body: str
    at: str
    by_session_id: str


@dataclass(frozen=True, slots=True)
class WorkStatus:
    obligation: Obligation
    state: WorkState
    blocked: Blocked | None
    done: Done | None


def from_message(msg: Message, owner_session_id: str, project_root: str | None) -> Obligation:
    if msg.from_session_id is None:
        raise WorkError("delegated work needs the requester's session id", code="no-session-id")
    return Obligation(
        message_id=msg.id,
        requester_session_id=msg.from_session_id,
        owner_session_id=owner_session_id,
        created_at=msg.enqueued_at,
        summary=msg.body[:SUMMARY_CHARS],
        project_root=project_root,
    )


def create(layout: Layout, obligation: Obligation) -> bool:
    """Record `obligation` unless it exists (the first writer wins), and its owner's marker
    (again on every call: a kill between the two is healed by the next)."""
    ensure_tree(layout.root, layout.obligations_dir)
    created = write_once_json(
        layout.obligation_file(obligation.message_id), asdict(obligation)
    )
    owner = obligation.owner_session_id
    if _done(layout, obligation.message_id) is None:
        ensure_tree(layout.root, layout.owed_dir(owner))
        create_marker(layout.owed_marker(owner, obligation.message_id))
    return created


def ensure_for_handover(layout: Layout, owner_key: str, messages: list[Message]) -> None:
    """The recipient's side, before hand-over: the record of each action_required message
    (a no-op where the sender already wrote it). Raises on a full disk: the hand-over is
    then aborted and the mail waits, so no work is handed over untracked."""
    if not SESSION_ID_RE.fullmatch(owner_key):
        return  # a pid box: delegation needs a session id (handover.check_delegation)
    for msg in messages:
        if msg.action_required and msg.from_session_id is not None:
            create(layout, from_message(msg, owner_key, None))


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = load_json(path, max_bytes=MAX_OBLIGATION_BYTES)
    except (OSError, OxtailError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _str(data: dict[str, Any], key: str, limit: int = 256) -> str | None:
    value = data.get(key)
    return value[:limit] if isinstance(value, str) else None


def load(layout: Layout, message_id: str) -> Obligation | None:
    data = _load(layout.obligation_file(message_id))
    if data is None or data.get("message_id") != message_id:
        return None
    requester, owner = _str(data, "requester_session_id"), _str(data, "owner_session_id")
    # Ids name mailboxes: a record must hold real shapes (a planted file aims nowhere).
    if not (requester and SESSION_ID_RE.fullmatch(requester)):
        return None
    if not (owner and (SESSION_ID_RE.fullmatch(owner))):
        return None
    return Obligation(
        message_id=message_id,
        requester_session_id=requester,
        owner_session_id=owner,
        created_at=_str(data, "created_at", 64) or "",
        summary=_str(data, "summary", SUMMARY_CHARS * 4) or "",
        project_root=_str(data, "project_root", 4096),
    )


def _blocked(layout: Layout, message_id: str) -> Blocked | None:
    data = _load(layout.obligation_file(message_id, "blocked"))
    if data is None:
        return None
    reason, at, note = _str(data, "reason", MAX_REASON_BYTES), _str(data, "at", 64), _str(
        data, "note_message_id", 16
    )
    if reason is None or at is None or note is None:
        return None
    return Blocked(reason, at, note)


def _done(layout: Layout, message_id: str) -> Done | None:
    data = _load(layout.obligation_file(message_id, "done"))
    if data is None:
        return None
    result, body, at, by = (
        _str(data, "result_message_id", 16),
        _str(data, "body", 16384),
        _str(data, "at", 64),
        _str(data, "by_session_id"),
    )
    if result is None or not MESSAGE_ID_RE.fullmatch(result) or body is None or at is None:
        return None
    return Done(result, body, at, by or "")


def work_status(layout: Layout, message_id: str) -> WorkStatus | None:
    obligation = load(layout, message_id)
    if obligation is None:
        return None
    done = _done(layout, message_id)
    blocked = None if done else _blocked(layout, message_id)
    state = WorkState.DONE if done else WorkState.BLOCKED if blocked else WorkState.OPEN
    return WorkStatus(obligation, state, blocked, done)


def _all_ids(layout: Layout) -> list[str]:
    directory = layout.obligations_dir
    if not is_private_dir(directory):
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    ids = [n[:-5] for n in names if n.endswith(".json") and MESSAGE_ID_RE.fullmatch(n[:-5])]
    return ids[:MAX_LISTED]


def list_all(layout: Layout) -> list[WorkStatus]:
    """Every obligation on record, oldest first."""
    found = [s for i in _all_ids(layout) if (s := work_status(layout, i)) is not None]
    return sorted(found, key=lambda s: s.obligation.created_at)


def open_for(layout: Layout, session_ids: list[str]) -> list[WorkStatus]:
    """Work these sessions owe (open or blocked), oldest first. Read through their owed
    markers: the cost, and the MAX_LISTED cap, follow what they owe, not every record on
    the machine (a cap over all records, done ones included, hid open work)."""
    found: dict[str, WorkStatus] = {}
    for session_id in session_ids:
        if SESSION_ID_RE.fullmatch(session_id):
            found.update((s.obligation.message_id, s) for s in _owed(layout, session_id))
    return sorted(found.values(), key=lambda s: s.obligation.created_at)


def open_delegated_by(layout: Layout, session_ids: list[str]) -> list[WorkStatus]:
    """Work these sessions handed out that is not done yet (open or blocked), oldest first."""
    mine = set(session_ids)
    return [
        s
        for s in list_all(layout)
        if s.obligation.requester_session_id in mine and s.state != WorkState.DONE
    ]


def list_for_project(layout: Layout, project_root: str) -> list[WorkStatus]:
    """Every obligation recorded with this project root, newest first (the cockpit)."""
    return [s for s in reversed(list_all(layout)) if s.obligation.project_root == project_root]


def count_open_for_keys(layout: Layout, keys: list[str]) -> int:
    """count_open_for over an agent's keys (pid boxes owe nothing: no session id)."""
    return sum(count_open_for(layout, k) for k in keys if SESSION_ID_RE.fullmatch(k))


def count_open_for(layout: Layout, session_id: str) -> int:
    """How much work `session_id` owes, for a hook: its markers, each checked against the
    records (so the cost follows what it owes, not all work on record). Drops the markers
    of work no longer open (a kill after mark_done). A marker is (re)made by every
    `create`, the recipient's before each hand-over among them, so none is missing."""
    return len(_owed(layout, session_id, drop_stale=True))


def _owed(layout: Layout, session_id: str, *, drop_stale: bool = False) -> list[WorkStatus]:
    """The open or blocked work behind `session_id`'s owed markers; `drop_stale` removes
    the markers of work that is done or not its own."""
    directory = layout.owed_dir(session_id)
    if not is_private_dir(directory):
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    owed: list[WorkStatus] = []
    for name in names[:MAX_LISTED]:
        if not MESSAGE_ID_RE.fullmatch(name):
            continue
        status = work_status(layout, name)
        if (
            status is not None
            and status.state != WorkState.DONE
            and status.obligation.owner_session_id == session_id
        ):
            owed.append(status)
        elif drop_stale:
            try:  # noqa: SIM105 (a marker left behind costs a re-check, never a delivery)
                (directory / name).unlink()
            except OSError:
                pass
    return owed


# -- the owner's transitions ----------------------------------------------------------


def owned(layout: Layout, message_id: str, my_keys: list[str]) -> WorkStatus:
    """The obligation `message_id` if the caller owes it, else a specific error."""
    status = work_status(layout, message_id)
    if status is None:
        raise WorkError(
            f"no delegated work has message id {message_id}: my_open_work lists yours "
            "(to answer a plain message, use reply_to_message)",
            code="unknown-work",
        )
    if status.obligation.owner_session_id not in my_keys:
        raise WorkError(
            f"work {message_id} was delegated to {status.obligation.owner_session_id}, not "
            "to you; only its owner can complete or block it (my_open_work lists yours)",
            code="not-your-work",
        )
    if status.state == WorkState.DONE:
        raise WorkError(
            f"work {message_id} is already completed (result message "
            f"{status.done.result_message_id if status.done else '?'}); nothing to do",
            code="already-completed",
        )
    return status


def mark_blocked(layout: Layout, message_id: str, reason: str, note_message_id: str) -> Blocked:
    blocked = Blocked(reason, now_iso(), note_message_id)
    atomic_write_json(layout.obligation_file(message_id, "blocked"), asdict(blocked))
    return blocked


def mark_done(layout: Layout, message_id: str, done: Done, owner_session_id: str) -> bool:
    """Write the completion once; False if another completion won the race. The owner's
    marker goes after (a kill between leaves a stale one: count_open_for drops it)."""
    won = write_once_json(layout.obligation_file(message_id, "done"), asdict(done))
    layout.owed_marker(owner_session_id, message_id).unlink(missing_ok=True)
    return won


def completions_by(layout: Layout, my_keys: list[str]) -> list[WorkStatus]:
    """Done obligations these sessions completed (to find results never sent)."""
    mine = set(my_keys)
    return [
        s
        for s in list_all(layout)
        if s.done is not None and s.done.by_session_id in mine
    ]


def prune(layout: Layout, *, max_age_s: float, now: float) -> int:
    """Forget completed work whose completion is older than `max_age_s`. Open and blocked
    work is never pruned: it is owed until its owner closes it."""
    removed = 0
    for message_id in _all_ids(layout):
        done_file = layout.obligation_file(message_id, "done")
        try:
            age = now - os.lstat(done_file).st_mtime
        except OSError:
            continue
        if age > max_age_s:
            for part in ("blocked", ""):  # the record last: no orphan "done" is left
                layout.obligation_file(message_id, part).unlink(missing_ok=True)
            done_file.unlink(missing_ok=True)
            removed += 1
    return removed
