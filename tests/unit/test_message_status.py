"""message_status's decisions, from the files alone: unknown-message, undeliverable,
pending, delivered, unknown."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from oxtail_py import ledger, receipts
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.message_status import UnknownMessageError, message_status
from oxtail_py.messages import Message
from oxtail_py.procs import identity_of
from oxtail_py.registry import ClientInfo, Registry, SessionEntry

ME = "aaaaaaaa-0000-4000-8000-00000000000a"
PEER = "bbbbbbbb-0000-4000-8000-00000000000b"


def _sent(layout: Layout, body: str = "hello") -> Message:
    msg = Message.create(body, from_session_id=ME)
    Mailbox.open(layout, PEER).enqueue(msg)
    ledger.record_sent(layout, ME, ledger.SentRecord(
        message_id=msg.id, to_key=PEER, to_session_id=PEER, to_name="peer",
        sent_at=msg.enqueued_at, at_epoch=time.time() - 5,
    ))
    return msg


def test_only_the_sender_may_ask(layout: Layout) -> None:
    msg = _sent(layout)
    with pytest.raises(UnknownMessageError):
        message_status(layout, [PEER], msg.id)  # the recipient did not send it
    with pytest.raises(UnknownMessageError):
        message_status(layout, [ME], "f" * 16)  # nobody did


def test_waiting_for_a_gone_recipient_is_undeliverable_then_pending_then_delivered(
    layout: Layout,
) -> None:
    msg = _sent(layout)
    gone = message_status(layout, [ME], msg.id)
    assert gone.status == "undeliverable" and gone.recipient_state == "offline"
    assert gone.gone_since and gone.age_s >= 5
    # A live server for that session (a real process of ours stands in for it).
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ident = identity_of(proc.pid)
        assert ident is not None
        Registry(layout).write(SessionEntry(
            ident.pid, ident.start, client=ClientInfo(type="claude", session_id=PEER, cwd="/")
        ))
        live = message_status(layout, [ME], msg.id)
        assert live.status == "pending" and live.recipient_live
        assert live.recipient_state == "unknown"  # no hook has said busy or idle
        taken = Mailbox.open(layout, PEER).drain()  # a reader holds it, uncommitted
        assert message_status(layout, [ME], msg.id).status == "pending"
        receipts.handed_over(layout, PEER, taken.messages, "read_my_messages")
        taken.commit()
        done = message_status(layout, [ME], msg.id)
        assert done.status == "delivered" and done.receipt is not None
        assert done.receipt.via == "read_my_messages" and done.receipt.session_id == PEER
    finally:
        proc.kill()
        proc.wait()


def test_neither_receipt_nor_mail_is_unknown(layout: Layout) -> None:
    msg = _sent(layout)
    Mailbox.open(layout, PEER).drain().commit()  # taken by a reader that wrote no receipt
    assert message_status(layout, [ME], msg.id).status == "unknown"


def test_a_planted_sent_record_with_wrong_types_is_not_used(layout: Layout) -> None:
    msg = _sent(layout)
    path = layout.ledger_record(layout.sent_dir(ME), msg.id)
    path.unlink()
    planted = {"message_id": msg.id, "to_key": "../../x", "to_session_id": None,
               "to_name": "p", "sent_at": "t", "at_epoch": "yesterday"}
    path.write_text(json.dumps(planted))
    with pytest.raises(UnknownMessageError):
        message_status(layout, [ME], msg.id)
