"""The event log on a full disk, for real (a small tmpfs): the write fails quietly, the
torn line is sealed by the next writer and skipped alone; no later event is lost."""

from __future__ import annotations

from oxtail_py import eventlog
from oxtail_py.layout import Layout
from oxtail_py.messages import Message
from tests.unit.test_mailbox_disk_full import SmallDisk, disk

__all__ = ["disk"]  # the fixture, shared


def note(body: str) -> Message:
    return Message.create(body, from_session_id="sid-a", origin={"cwd": "/p"})


def test_a_full_disk_tears_at_most_one_line_and_loses_no_later_event(disk: SmallDisk) -> None:
    layout = Layout(disk.root)
    first = note("before")
    eventlog.sent(layout, first, "sid-b")
    disk.fill()
    batch = [eventlog._event(note(f"x{i}"), "sent", "sid-b", "inbox") for i in range(200)]
    eventlog.append(layout, batch)  # fails part way: logged, never raised
    disk.free()
    after = note("after")
    eventlog.sent(layout, after, "sid-b")
    tail = eventlog.read_tail(layout)
    ids = [e.message_id for e in tail.events]
    assert ids[0] == first.id and ids[-1] == after.id
    assert 1 < len(ids) < 202 and tail.skipped == 1  # part written, the torn line alone
    assert layout.event_log.read_bytes().endswith(b"\n")
