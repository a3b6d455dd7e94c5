"""Receipts: what became of a message, written by the recipient's side at hand-over.

    receipts/<message id>.json        write-once: via which path, when, to which session
    receipts/<message id>.wake.json   the wakes tried for it (newest last, capped)

Public API (others read it; keep it stable):

- `handed_over(layout, session_id, messages, via, event=None)`: the recipient's side, at
  hand-over (after the text reached the client or the tool result is final, before the
  mailbox commit). A receipt is write-once (link(2)): a re-delivery after a crash finds
  the first receipt and writes nothing. Never raises: a receipt that cannot be written
  must not hold up the mail (message_status then says `unknown` or `pending`).
- `record_wake_outcome(layout, message_id, status=..., detail=..., by=..., attempt=...)`:
  any server that woke (or re-poked) a peer for `message_id` records the outcome here;
  `message_status` shows the list. Never raises.
- `read_receipt(layout, message_id)` / `read_wake_outcomes(layout, message_id)`.
- `prune(layout)`: receipts older than ledger.RETENTION_S go (time-gated).

A receipt is a hint *about* delivery, never the delivery itself: the mailbox protocol
(mailbox.py) is what keeps mail lossless. A receipt written just before a kill whose
commit never happened stays true (the text did reach the client); the re-delivery that
follows is the mailbox's one allowed duplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Final, Literal

from oxtail_py import ledger
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_json, ensure_tree, load_json, write_once_json
from oxtail_py.layout import MESSAGE_ID_RE, Layout
from oxtail_py.messages import Message, now_iso

log = logging.getLogger(__name__)

Via = Literal["hook", "read_my_messages", "ask_peer"]
VIA_VALUES: Final = ("hook", "read_my_messages", "ask_peer")
MAX_WAKE_OUTCOMES: Final = 10
_MAX_FIELD: Final = 300


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str
    via: Via
    event: str | None  # the hook event (pretooluse, posttooluse, stop, userpromptsubmit)
    session_id: str  # the recipient's mailbox key it was handed over from
    at: str  # ISO time
    at_epoch: float


@dataclass(frozen=True, slots=True)
class WakeOutcome:
    status: str  # a WakeStatus value
    detail: str
    by: str  # who woke: "send_message", "ask_peer", "self-heal", "re-poke", ...
    attempt: int  # 1 for the first wake, then each retry
    at: str


def handed_over(
    layout: Layout,
    session_id: str,
    messages: Sequence[Message],
    via: Via,
    event: str | None = None,
) -> int:
    """Write a receipt for each message handed over; returns how many were new."""
    if not messages:
        return 0
    written = 0
    try:
        ensure_tree(layout.root, layout.receipts_dir)
        now = time.time()
        at = now_iso()
        for msg in messages:
            receipt = Receipt(msg.id, via, event, session_id, at, now)
            if write_once_json(layout.receipt_file(msg.id), asdict(receipt)):
                written += 1
    except (OSError, OxtailError, ValueError) as exc:
        log.warning("receipts not written (%s); the mail itself is unaffected", exc)
    return written


def read_receipt(layout: Layout, message_id: str) -> Receipt | None:
    try:
        data = load_json(layout.receipt_file(message_id), max_bytes=ledger.MAX_RECORD_BYTES)
    except (OSError, OxtailError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("message_id") != message_id:
        return None
    via, event, session, at, epoch = (
        data.get("via"),
        data.get("event"),
        data.get("session_id"),
        data.get("at"),
        data.get("at_epoch"),
    )
    if via not in VIA_VALUES or not isinstance(session, str) or not isinstance(at, str):
        return None
    if event is not None and not isinstance(event, str):
        return None
    if not isinstance(epoch, (int, float)):
        return None
    return Receipt(message_id, via, event, session[:_MAX_FIELD], at[:64], float(epoch))


def record_wake_outcome(
    layout: Layout,
    message_id: str,
    *,
    status: str,
    detail: str = "",
    by: str = "send_message",
    attempt: int = 1,
) -> None:
    """Append one wake outcome for `message_id` (the newest MAX_WAKE_OUTCOMES are kept).
    Read-modify-write without a lock: only the waking side writes it, and a lost
    outcome of two racing wakers costs a line of history, never mail."""
    if not MESSAGE_ID_RE.fullmatch(message_id):
        return
    try:
        ensure_tree(layout.root, layout.receipts_dir)
        outcome = WakeOutcome(str(status), detail[:_MAX_FIELD], by[:64], int(attempt), now_iso())
        history = [asdict(o) for o in read_wake_outcomes(layout, message_id)]
        history = [*history, asdict(outcome)][-MAX_WAKE_OUTCOMES:]
        atomic_write_json(layout.wake_outcome_file(message_id), history)
    except (OSError, OxtailError, ValueError) as exc:
        log.warning("wake outcome for %s not recorded: %s", message_id, exc)


def read_wake_outcomes(layout: Layout, message_id: str) -> list[WakeOutcome]:
    try:
        data = load_json(layout.wake_outcome_file(message_id), max_bytes=ledger.MAX_RECORD_BYTES)
    except (OSError, OxtailError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    found: list[WakeOutcome] = []
    for item in data[-MAX_WAKE_OUTCOMES:]:
        if not isinstance(item, dict):
            continue
        status, detail, by, attempt, at = (
            item.get("status"),
            item.get("detail", ""),
            item.get("by", ""),
            item.get("attempt", 1),
            item.get("at", ""),
        )
        if not all(isinstance(v, str) for v in (status, detail, by, at)):
            continue
        if not isinstance(attempt, int) or isinstance(attempt, bool):
            continue
        found.append(
            WakeOutcome(str(status)[:64], str(detail)[:_MAX_FIELD], str(by)[:64], attempt,
                        str(at)[:64])
        )
    return found


def prune(layout: Layout, *, max_age_s: float = ledger.RETENTION_S) -> int:
    keep = {layout.prune_stamp.name}
    return ledger.prune_old_files(layout.receipts_dir, max_age_s, time.time(), keep)
