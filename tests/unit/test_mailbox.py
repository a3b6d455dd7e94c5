"""Mailbox semantics in one process: order, matching drains, quarantine, recovery, bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from oxtail_py.errors import BodyTooLargeError, InvalidMessageError, UnsafePathError
from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import MAX_BODY_BYTES, Message
from oxtail_py.procs import ProcessIdentity, identity_of


def _msg(body: str, reply_to: str | None = None, expects_reply: bool = False) -> Message:
    return Message.create(
        body, from_session_id="s1", reply_to=reply_to, expects_reply=expects_reply
    )


def _dead_identity() -> ProcessIdentity:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = identity_of(proc.pid)  # None if it already exited: any start time is dead then
    proc.wait()
    return ident or ProcessIdentity(proc.pid, "1.00")


def test_drain_returns_messages_oldest_first_with_all_fields(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    sent = [_msg(f"m{i}", expects_reply=i == 1) for i in range(3)]
    for m in sent:
        box.enqueue(m)
    delivery = box.drain()
    assert [m.id for m in delivery.messages] == [m.id for m in sent]
    assert delivery.messages[0] == sent[0]
    delivery.commit()
    assert box.drain().messages == []
    assert box.claims() == []


def test_drain_first_takes_only_the_match_and_keeps_other_lines_byte_for_byte(
    layout: Layout,
) -> None:
    box = Mailbox.open(layout, "sess-a")
    box.enqueue(_msg("before"))
    # A hand-written line with odd spacing and a corrupt line must survive untouched.
    odd = b'{ "id": "00000000000000aa",  "body": "odd spacing" }\n'
    garbage = b"not json at all\n"
    box.append_lines([odd, garbage])
    target = _msg("the reply", reply_to="1234567890abcdef")
    box.enqueue(target)
    box.enqueue(_msg("after"))
    before = box.paths.inbox.read_bytes()

    delivery = box.drain_first(lambda m: m.reply_to == "1234567890abcdef")
    assert delivery is not None and delivery.messages == [target]
    delivery.commit()
    after = box.paths.inbox.read_bytes()
    assert after == before.replace(target.to_line(), b"")
    assert box.drain_first(lambda m: m.reply_to == "1234567890abcdef") is None


def test_abort_puts_messages_back_in_front(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    first, second = _msg("first"), _msg("second")
    box.enqueue(first)
    delivery = box.drain()
    box.enqueue(second)
    delivery.abort()
    assert [m.id for m in box.drain().messages] == [first.id, second.id]


def test_corrupt_lines_are_quarantined_with_reason_and_others_delivered(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    good = _msg("good")
    box.append_lines([b"{broken json\n", b"\xff\xfe not utf8\n", b'{"id":"nothex","body":"x"}\n'])
    box.enqueue(good)
    delivery = box.drain()
    assert [m.id for m in delivery.messages] == [good.id]
    assert delivery.quarantined == 3
    records = [json.loads(x) for x in box.paths.quarantine.read_text().splitlines()]
    assert [r["raw"] for r in records] == [
        "{broken json",
        "\\xff\\xfe not utf8",
        '{"id":"nothex","body":"x"}',
    ]
    assert all(r["reason"] and r["quarantined_at"] for r in records)


def test_torn_last_line_is_sealed_so_the_next_message_survives(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    box.paths.inbox.write_bytes(b'{"id":"0123456789abcdef","bo')  # writer killed mid-line
    good = _msg("next")
    box.enqueue(good)
    delivery = box.drain()
    assert [m.id for m in delivery.messages] == [good.id]
    assert delivery.quarantined == 1


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        ("x" * (MAX_BODY_BYTES + 1), BodyTooLargeError, "body-too-large"),
        ("é" * (MAX_BODY_BYTES // 2 + 1), BodyTooLargeError, "body-too-large"),
        ("bad \udc80 surrogate", InvalidMessageError, "invalid-message"),
        ("   ", InvalidMessageError, "empty-body"),
    ],
)
def test_bad_bodies_are_refused_with_a_specific_error(
    layout: Layout, body: str, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as info:
        Mailbox.open(layout, "sess-a").enqueue(_msg(body))
    assert getattr(info.value, "code", None) == code
    assert not Mailbox.open(layout, "sess-a").paths.inbox.exists()


def test_body_at_exactly_the_limit_is_accepted(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    box.enqueue(_msg("y" * MAX_BODY_BYTES))
    assert len(box.drain().messages[0].body) == MAX_BODY_BYTES


def test_malformed_reply_to_is_refused() -> None:
    with pytest.raises(InvalidMessageError) as info:
        _msg("hi", reply_to="../../etc")
    assert info.value.code == "invalid-message-id"


def test_symlinked_inbox_is_refused_and_its_target_untouched(
    layout: Layout, tmp_path: Path
) -> None:
    box = Mailbox.open(layout, "sess-a")
    target = tmp_path / "victim"
    target.write_text("precious\n")
    box.paths.inbox.symlink_to(target)
    with pytest.raises(UnsafePathError):
        box.enqueue(_msg("hi"))
    with pytest.raises(UnsafePathError):
        box.drain()
    assert target.read_text() == "precious\n"


def test_symlinked_mailbox_directory_is_refused(layout: Layout, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    boxes = ensure_tree(layout.root, layout.mailboxes_dir)
    boxes.joinpath("sess-b").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        Mailbox.open(layout, "sess-b")


def test_dead_readers_claim_is_recovered_first_minus_delivered_ids(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    handed, not_handed, newer = _msg("handed"), _msg("not handed"), _msg("newer")
    dead = _dead_identity()
    claim = box.paths.claim(dead, "deadbeef")
    claim.write_bytes(handed.to_line() + not_handed.to_line())
    box.paths.delivered.write_text(handed.id + "\n")
    box.enqueue(newer)
    assert [m.id for m in box.drain().messages] == [not_handed.id, newer.id]
    assert not claim.exists()


def test_live_readers_claim_is_left_alone(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    in_flight = box.drain_first(lambda m: True)
    assert in_flight is None
    box.enqueue(_msg("in flight"))
    taken = box.drain_first(lambda m: True)
    assert taken is not None
    box.enqueue(_msg("other"))
    assert [m.body for m in box.drain().messages] == ["other"]
    taken.commit()


def test_move_all_to_carries_every_line_to_another_mailbox(layout: Layout) -> None:
    pid_box = Mailbox.open(layout, "pid-1-2.00")
    session_box = Mailbox.open(layout, "sess-a")
    session_box.enqueue(_msg("already there"))
    moved = [_msg("one"), _msg("two")]
    for m in moved:
        pid_box.enqueue(m)
    assert pid_box.move_all_to(session_box) == 2
    assert [m.body for m in session_box.drain().messages] == ["already there", "one", "two"]
    assert pid_box.drain().messages == []


def test_files_are_0600_and_directories_0700(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    box.enqueue(_msg("x"))
    box.drain().commit()
    box.enqueue(_msg("y"))
    for path in (layout.root, layout.mailboxes_dir, box.paths.directory):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    for path in (box.paths.inbox, box.paths.delivered):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_pending_count_counts_waiting_lines(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    assert box.pending_count() == 0
    box.enqueue(_msg("a"))
    box.enqueue(_msg("b"))
    assert box.pending_count() == 2


def test_drain_leaves_a_reply_that_a_live_ask_awaits(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    request_id = "00112233aabbccdd"
    reply = _msg("the answer", reply_to=request_id)
    other = _msg("unrelated")
    with box.awaiting_reply(request_id):
        box.enqueue(reply)
        box.enqueue(other)
        first = box.drain()
        assert [m.id for m in first.messages] == [other.id]
        first.commit()
        taken = box.drain_first(lambda m: m.reply_to == request_id)
        assert taken is not None and taken.messages == [reply]
        taken.abort()
    assert [m.id for m in box.drain().messages] == [reply.id]


def test_a_dead_waiters_marker_is_swept_and_its_reply_delivered(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    request_id = "00112233aabbccdd"
    marker = box.paths.awaiting(request_id, _dead_identity())
    marker.touch()
    reply = _msg("late answer", reply_to=request_id)
    box.enqueue(reply)
    assert [m.id for m in box.drain().messages] == [reply.id]
    assert not marker.exists()


def test_awaits_and_holds_answer_for_live_waiters_and_unread_ids(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-a")
    msg = _msg("unread")
    box.enqueue(msg)
    assert box.holds(msg.id) and not box.holds("0000000000000000")
    with box.awaiting_reply("00112233aabbccdd"):
        assert box.awaits("00112233aabbccdd") and not box.awaits("ffffffffffffffff")
    assert not box.awaits("00112233aabbccdd")
    box.paths.awaiting("0123456789abcdef", _dead_identity()).touch()
    assert not box.awaits("0123456789abcdef")
    box.drain().commit()
    assert not box.holds(msg.id)


def test_a_failed_move_puts_the_claim_back_instead_of_stranding_it(
    layout: Layout, tmp_path: Path
) -> None:
    pid_box = Mailbox.open(layout, "pid-1-2.00")
    msg = _msg("must survive")
    pid_box.enqueue(msg)
    broken = Mailbox.open(layout, "sess-b")
    broken.paths.inbox.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        pid_box.move_all_to(broken)
    assert pid_box.claims() == []
    assert [m.id for m in pid_box.drain().messages] == [msg.id]
