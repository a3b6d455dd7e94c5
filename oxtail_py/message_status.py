"""message_status: what became of a message this agent sent.

One of:
- `delivered`: a receipt (receipts.py) says via which path, when, to which session;
- `pending`: it waits in the recipient's inbox (or a reader's uncommitted claim); with its
  age and whether the recipient is live, and busy or idle;
- `undeliverable`: it waits, but no live server has the recipient's session: the
  recipient is gone (since when: its last sign of life). The mail is kept; it is
  delivered if the session comes back (`claude --resume`), and the status follows;
- `unknown`: neither a receipt nor the message in the recipient's box (a receipt that
  could not be written, or one pruned after ledger.RETENTION_S).

Only the sender may ask (its sent-ledger must hold the id): a foreign id or one never
sent is refused with `unknown-message`, so no agent learns about others' mail.
Cost: two small file reads, one inbox read and one registry scan (bench/
message_status.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from oxtail_py import ledger, obligations, receipts
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import MAX_MAILBOX_FILE_BYTES, read_private
from oxtail_py.layout import Layout, pid_box_key
from oxtail_py.ledger import UnknownMessageError
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import validate_message_id
from oxtail_py.obligations import WorkStatus
from oxtail_py.receipts import Receipt, WakeOutcome
from oxtail_py.registry import Registry, SessionEntry
from oxtail_py.status import read_status

Status = Literal["delivered", "pending", "undeliverable", "unknown"]
RecipientState = Literal["busy", "idle", "unknown", "offline"]


@dataclass(frozen=True, slots=True)
class StatusReport:
    message_id: str
    status: Status
    to_session_id: str | None
    to_name: str
    sent_at: str
    age_s: float
    receipt: Receipt | None
    recipient_live: bool
    recipient_state: RecipientState
    gone_since: str | None  # undeliverable: the recipient's last sign of life (ISO time)
    work: WorkStatus | None  # action_required: the obligation's state
    wakes: list[WakeOutcome]
    detail: str


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


def _live_entry(layout: Layout, session_id: str | None, key: str) -> SessionEntry | None:
    for entry in Registry(layout).read_all():
        client = entry.client
        if session_id and (
            client.session_id == session_id or session_id in client.previous_session_ids
        ):
            return entry
        if not session_id and key == pid_box_key(entry.identity):
            return entry
    return None


def _waiting(box: Mailbox | None, message_id: str) -> bool:
    """The message still waits in `box`: its inbox, or a claim not yet committed."""
    if box is None:
        return False
    if box.holds(message_id):
        return True
    needle = f'"id":"{message_id}"'.encode()
    for claim in box.claims():
        try:
            if needle in read_private(claim, max_bytes=MAX_MAILBOX_FILE_BYTES):
                return True
        except (OSError, OxtailError):
            continue
    return False


def message_status(layout: Layout, my_keys: list[str], message_id: str) -> StatusReport:
    validate_message_id(message_id)
    sent = ledger.find_sent(layout, my_keys, message_id)
    if sent is None:
        raise UnknownMessageError(
            f"{message_id} is not a message you sent (or it is older than the "
            f"{int(ledger.RETENTION_S // 86400)}-day retention); message_status answers only "
            "for your own messages: use the message_id send_message returned"
        )
    work = obligations.work_status(layout, message_id) if sent.action_required else None
    wakes = receipts.read_wake_outcomes(layout, message_id)
    age = max(0.0, time.time() - sent.at_epoch)
    entry = _live_entry(layout, sent.to_session_id, sent.to_key)
    live = entry is not None
    state: RecipientState = "offline"
    if entry is not None:
        current = entry.client.session_id
        hooks = read_status(layout, current) if current else None
        state = "unknown"
        if hooks is not None and hooks.busy:
            state = "busy"
        elif hooks is not None and hooks.state == "idle":
            state = "idle"

    def report(
        status: Status,
        detail: str,
        receipt: Receipt | None = None,
        gone_since: str | None = None,
    ) -> StatusReport:
        return StatusReport(
            message_id=message_id,
            status=status,
            to_session_id=sent.to_session_id,
            to_name=sent.to_name,
            sent_at=sent.sent_at,
            age_s=round(age, 3),
            recipient_live=live,
            recipient_state=state,
            work=work,
            wakes=wakes,
            detail=detail,
            receipt=receipt,
            gone_since=gone_since,
        )

    found = receipts.read_receipt(layout, message_id)
    if found is not None:
        return report("delivered", f"handed over via {found.via}", receipt=found)
    boxes = [Mailbox.existing(layout, sent.to_key)]
    if entry is not None and entry.client.session_id and entry.client.session_id != sent.to_key:
        boxes.append(Mailbox.existing(layout, entry.client.session_id))  # moved after /clear
    if any(_waiting(box, message_id) for box in boxes):
        if live:
            return report("pending", f"waiting in the recipient's inbox; it is {state}")
        since = _gone_since(layout, sent.to_session_id, sent.at_epoch)
        return report(
            "undeliverable",
            "no live agent has that session now; the message is kept and is delivered if "
            "the session comes back",
            gone_since=since,
        )
    return report(
        "unknown",
        "no receipt, and the message no longer waits in the recipient's inbox",
    )


def _gone_since(layout: Layout, session_id: str | None, sent_epoch: float) -> str:
    """The recipient's last sign of life we know of: its hooks' busy/idle marker."""
    if session_id:
        status = read_status(layout, session_id)
        if status.mtime is not None:
            return _iso(status.mtime)
    return _iso(sent_epoch)
