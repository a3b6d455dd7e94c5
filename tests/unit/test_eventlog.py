"""eventlog: one metadata line per message moved, appended by whoever moves it, bounded
by rotation, read back tolerantly, and never a reason for the traffic to fail."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from oxtail_py import eventlog
from oxtail_py.layout import Layout
from oxtail_py.messages import Message


def note(body: str = "hello", **kw: object) -> Message:
    origin = {"cwd": "/p/src", "tmux_session": "alpha"}
    return Message.create(body, from_session_id="sid-a", origin=origin, **kw)  # type: ignore[arg-type]


def test_sent_and_delivered_lines_carry_metadata_and_no_body(layout: Layout) -> None:
    msg = note("the secret plan")
    eventlog.sent(layout, msg, "sid-b")
    eventlog.delivered(layout, [msg], "sid-b", "hook claude pretooluse")
    raw = layout.event_log.read_bytes()
    assert b"the secret plan" not in raw
    assert os.stat(layout.event_log).st_mode & 0o777 == 0o600
    tail = eventlog.read_tail(layout)
    assert [(e.event, e.kind, e.via) for e in tail.events] == [
        ("sent", "message", "inbox"), ("delivered", "message", "hook claude pretooluse")]
    first = tail.events[0]
    assert (first.message_id, first.sender, first.sender_name, first.recipient, first.cwd) == (
        msg.id, "sid-a", "alpha", "sid-b", "/p/src")


def test_bodies_only_as_a_short_preview_when_asked(layout: Layout) -> None:
    eventlog.sent(layout, note("x" * 500), "sid-b", bodies=True)
    (event,) = eventlog.read_tail(layout).events
    assert event.preview == "x" * eventlog.PREVIEW_CHARS


def test_kinds_request_reply_work_operator(layout: Layout) -> None:
    request = note("q?", expects_reply=True)
    reply = note("a!", reply_to=request.id)
    work = note("port it", action_required=True)
    operator = Message.create("stop", from_session_id=None, origin={"operator": True})
    for m in (request, reply, work, operator):
        eventlog.sent(layout, m, "sid-b")
    events = eventlog.read_tail(layout).events
    assert [e.kind for e in events] == ["request", "reply", "work", "operator"]
    assert events[1].request_id == request.id and events[3].sender == "operator"
    # A peer's message that names a sender is never the operator's, whatever its origin.
    forged = Message.create("x", from_session_id="sid-a", origin={"operator": True})
    assert eventlog.kind_of(forged) == "message"


def test_the_log_rotates_and_stays_bounded(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog, "MAX_LOG_BYTES", 4096)
    msgs = [note(f"m{i}") for i in range(200)]
    for m in msgs:
        eventlog.sent(layout, m, "sid-b")
    current = layout.event_log.stat().st_size if layout.event_log.exists() else 0
    assert current <= 4096 and layout.event_log_rotated.stat().st_size <= 4096 + 1024
    ids = [e.message_id for e in eventlog.read_tail(layout).events]
    assert ids == [m.id for m in msgs][-len(ids):] and len(ids) > 10  # newest kept, in order
    assert eventlog.read_tail(layout, limit=3).events[-1].message_id == msgs[-1].id


def test_a_bounded_read_takes_the_newest_end_from_a_line_start(layout: Layout) -> None:
    msgs = [note(f"m{i}") for i in range(50)]
    for m in msgs:
        eventlog.sent(layout, m, "sid-b")
    tail = eventlog.read_tail(layout, max_bytes=1000)
    assert tail.skipped == 0 and 0 < len(tail.events) < 50
    assert [e.message_id for e in tail.events] == [m.id for m in msgs][-len(tail.events):]


def test_corrupt_and_foreign_lines_are_skipped_and_counted(layout: Layout) -> None:
    eventlog.sent(layout, note(), "sid-b")
    with layout.event_log.open("ab") as f:
        f.write(b'not json\n{"event":"sent"}\n[1]\n\xff\xfe\n' + b"{" * 5000 + b"\n")
    eventlog.sent(layout, note(), "sid-c")
    tail = eventlog.read_tail(layout)
    assert [e.recipient for e in tail.events] == ["sid-b", "sid-c"] and tail.skipped == 5


def test_a_fifo_or_symlink_log_is_refused_and_the_traffic_goes_on(
    layout: Layout, tmp_path: Path
) -> None:
    layout.events_dir.mkdir(parents=True, mode=0o700)
    os.mkfifo(layout.event_log)
    eventlog.sent(layout, note(), "sid-b")  # does not hang, does not raise
    tail = eventlog.read_tail(layout)
    assert tail.events == [] and "not a regular file" in tail.problems[0]
    layout.event_log.unlink()
    target = tmp_path / "elsewhere"
    layout.event_log.symlink_to(target)
    eventlog.sent(layout, note(), "sid-b")
    assert not target.exists()


def test_lines_round_trip_as_compact_json(layout: Layout) -> None:
    msg = note()
    eventlog.sent(layout, msg, "sid-b")
    line = layout.event_log.read_bytes().splitlines()[0]
    record = json.loads(line)
    assert "preview" not in record and "request_id" not in record  # absent, not null
    assert eventlog.Event.from_record(record).message_id == msg.id


def test_a_symlinked_events_directory_is_neither_written_nor_read(
    layout: Layout, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "traffic.jsonl").write_bytes(b"")
    layout.root.mkdir(mode=0o700)
    layout.events_dir.symlink_to(elsewhere)
    eventlog.sent(layout, note(), "sid-b")
    assert (elsewhere / "traffic.jsonl").read_bytes() == b""
    tail = eventlog.read_tail(layout)
    assert tail.events == [] and "not a directory of ours" in tail.problems[0]
