"""The moments of a message's life that obligations and receipts hang on.

The sender, right after its enqueue, calls `sent(...)`: its sent-ledger record (for
message_status) and, for action_required, the obligation record. Never raises: the
message is already out, and an error would make the caller send it again.

Every path that hands mail to an agent (the hooks, read_my_messages, ask_peer) calls:

1. `before(layout, key, messages)` after taking the messages and before the client
   sees them: the received-ledger records (reply_to_message needs them) and the
   obligation records of action_required messages. Raises on failure (a full disk):
   the caller aborts, and the mail waits in the inbox.
2. `after(layout, key, messages, via, event)` once the hand-over is certain and before
   the mailbox commit: the receipts. Never raises.

`key` is the recipient's session id (or its pid box key if it has none).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from oxtail_py import ledger, obligations, receipts
from oxtail_py.errors import OxtailError
from oxtail_py.layout import Layout
from oxtail_py.messages import Message
from oxtail_py.receipts import Via

__all__ = ["Via", "after", "before", "check_delegation", "prune", "sent"]

if TYPE_CHECKING:  # the hook imports this module: discovery (tmux, psutil) stays out
    from oxtail_py.discovery import Row

log = logging.getLogger(__name__)


def prune(layout: Layout, *, max_age_s: float = ledger.RETENTION_S, force: bool = False) -> int:
    """Receipts, ledger records and completed work older than `max_age_s` go; open work
    never does. At most hourly (ledger.due: a stamp file) unless `force`."""
    now = time.time()
    if not force and not ledger.due(layout, now):
        return 0
    try:
        return (
            ledger.prune(layout, max_age_s=max_age_s, now=now)
            + receipts.prune(layout, max_age_s=max_age_s)
            + obligations.prune(layout, max_age_s=max_age_s, now=now)
        )
    except (OSError, OxtailError) as exc:
        log.warning("pruning receipts and ledgers failed: %s", exc)
        return 0


def check_delegation(sender_session_id: str | None, row: Row) -> None:
    """Delegated work is keyed by session ids on both sides: refuse it without them."""
    if sender_session_id is None:
        raise obligations.WorkError(
            "you have no session id yet, so completed work could not come back to you; "
            "get_my_session says how to claim it, then send again",
            code="no-session-id",
        )
    if not row.client_session_id:
        raise obligations.WorkError(
            f"{row.name!r} has no session id yet, so work delegated to it could not outlive "
            "its server; send without action_required, or ask it to claim its session",
            code="peer-has-no-session-id",
        )


def sent(layout: Layout, sender_key: str, msg: Message, row: Row, project_root: str) -> None:
    try:
        if msg.action_required and row.client_session_id:
            obligation = obligations.from_message(msg, row.client_session_id, project_root)
            obligations.create(layout, obligation)
        record = ledger.SentRecord(
            message_id=msg.id,
            to_key=row.mailbox_key,
            to_session_id=row.client_session_id,
            to_name=row.name,
            sent_at=msg.enqueued_at,
            at_epoch=time.time(),
            action_required=msg.action_required,
            reply_to=msg.reply_to,
            project_root=project_root,
        )
        ledger.record_sent(layout, sender_key, record)
    except (OSError, OxtailError, ValueError) as exc:
        # The recipient creates the obligation at hand-over too; only message_status
        # of this one message loses its record.
        log.warning("sent-ledger record for %s not written: %s", msg.id, exc)


def before(layout: Layout, key: str, messages: Sequence[Message]) -> None:
    if not messages:
        return
    ledger.record_received(layout, key, list(messages))
    obligations.ensure_for_handover(layout, key, list(messages))


def after(
    layout: Layout, key: str, messages: Sequence[Message], via: Via, event: str | None = None
) -> None:
    if messages:
        receipts.handed_over(layout, key, messages, via, event)
        prune(layout)  # one stat unless an hour has passed
