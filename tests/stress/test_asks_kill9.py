"""kill -9 at every step of an ask's life in the asks ledger: never a torn record, never a
request out without its record, never a phantom edge that refuses later asks.

A forked asker walks the steps asking.ask_peer takes, in its order: record the ask
(waiting, under the ledger lock), enqueue the request into the peer's mailbox, settle it
pending (the call timed out); then, as its hooks do for a late reply, take the reply from
its inbox, hand it over, commit, and mark the ask late-answered. It SIGKILLs itself just
before its N-th file-system mutation (31 in a full run: the sweep covers each, then
random repeats), so the kill walks every step (tests/mailbox_worker.py).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from oxtail_py import asks_ledger
from oxtail_py.asks_ledger import AskRecord, AskState
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message, now_iso
from oxtail_py.procs import self_identity
from tests.mailbox_worker import Emit, arm_kill, mutations_so_far
from tests.stress.test_mailbox_kill9 import _forked

ASKER = "aaaaaaaa-0000-4000-8000-0000000000a1"
PEER = "bbbbbbbb-0000-4000-8000-0000000000b2"


def _record(request: Message) -> AskRecord:
    return AskRecord(
        request_id=request.id,
        asker=ASKER,
        asker_session_id=ASKER,
        asker_server=self_identity().token(),  # the forked child's own identity
        target_session_id=PEER,
        target_name="peer",
        project_root="/proj",
        state=AskState.WAITING,
        created_at=now_iso(),
        updated_at=now_iso(),
        created_ts=time.time(),
    )


def _asker(root: Path, kill_at: int, emit: Emit) -> None:
    """The asker, with its late reply waiting in its inbox before the kill counter starts."""
    layout = Layout(root)
    request = Message.create("q", from_session_id=ASKER, expects_reply=True)
    reply = Message.create("late answer", from_session_id=PEER, reply_to=request.id)
    Mailbox.open(layout, ASKER).enqueue(reply)
    emit(f"REQUEST {request.id}")
    mine, peers = Mailbox.open(layout, ASKER), Mailbox.open(layout, PEER)
    arm_kill(kill_at)
    asks_ledger.open_ask(layout, _record(request))
    emit("RECORDED")
    peers.enqueue(request)
    emit("SENT")
    asks_ledger.set_state(layout, ASKER, request.id, AskState.PENDING)
    emit("PENDING")
    delivery = mine.drain()
    late = asks_ledger.late_replies(layout, [ASKER], delivery.messages)
    assert late.of(delivery.messages[0]) == request.id
    emit("HANDED")
    delivery.commit()
    asks_ledger.record_handed_over(layout, late, delivery.messages)
    emit("LATE")
    emit(f"MUTATIONS {mutations_so_far()}")


def _total(tmp: Path) -> int:
    killed, lines = _forked(lambda emit: _asker(tmp / "count", 0, emit))
    assert not killed and lines[-2] == "LATE"
    return int(lines[-1].split()[1])


@pytest.mark.parametrize("point", list(range(40)) + [random.Random(3).randint(0, 999)
                                                     for _ in range(20)])  # fmt: skip
def test_an_asker_killed_anywhere_leaves_a_consistent_ledger(tmp_path: Path, point: int) -> None:
    total = _total(tmp_path)
    kill_at = point % total + 1
    root = tmp_path / "am"
    layout = Layout(root)
    killed, lines = _forked(lambda emit: _asker(root, kill_at, emit))
    assert killed, f"kill point {kill_at} of {total} was not reached"
    request_id = lines[0].split()[1]
    steps = set(lines[1:])
    records = asks_ledger.list_asks(layout)
    # Never a torn or half-written record: there is one, whole, or none.
    assert len(records) <= 1
    sent = Mailbox.open(layout, PEER).drain()
    sent_ids = [m.id for m in sent.messages]
    assert sent_ids in ([], [request_id])  # the request went out once or not at all
    if sent_ids:
        assert records, "a request went out with no record of its ask"
    if "RECORDED" in steps:
        assert records and records[0].request_id == request_id
    if records:
        record = records[0]
        # The asker is dead: whatever the file says, it blocks nobody now.
        assert record.effective_state() != AskState.WAITING
        if "LATE" in steps:
            assert record.state == AskState.LATE_ANSWERED
        elif "PENDING" in steps:
            assert record.state in (AskState.PENDING, AskState.LATE_ANSWERED)
    # No phantom edge: the peer may now ask the dead asker without would-deadlock.
    crossing = Message.create("q2", from_session_id=PEER, expects_reply=True)
    back = _record(crossing)
    asks_ledger.open_ask(
        layout,
        AskRecord(**{**back.to_dict(), "asker": PEER, "asker_session_id": PEER,
                     "target_session_id": ASKER, "state": AskState.WAITING}),
    )  # fmt: skip
    # The late reply is never lost: handed over (and committed) or still waiting.
    left = Mailbox.open(layout, ASKER).drain()
    if "HANDED" not in steps:
        assert [m.body for m in left.messages] == ["late answer"]
