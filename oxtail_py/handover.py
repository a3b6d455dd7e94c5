"""The two moments of a hand-over that obligations and receipts hang on.

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

from collections.abc import Sequence

from oxtail_py import ledger, obligations, receipts
from oxtail_py.layout import Layout
from oxtail_py.messages import Message
from oxtail_py.receipts import Via


def before(layout: Layout, key: str, messages: Sequence[Message]) -> None:
    if not messages:
        return
    ledger.record_received(layout, key, list(messages))
    obligations.ensure_for_handover(layout, key, list(messages))


def after(
    layout: Layout, key: str, messages: Sequence[Message], via: Via, event: str | None = None
) -> None:
    receipts.handed_over(layout, key, messages, via, event)
