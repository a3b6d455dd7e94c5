"""Pid boxes always reach a session: forwarding record, sweep, adoption by the same client."""

from __future__ import annotations

import subprocess
import sys

from oxtail_py.layout import Layout, pid_box_key
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
from oxtail_py.pidbox import forward, forwarded_to, open_pid_box, sweep_orphans
from oxtail_py.procs import ProcessIdentity, identity_of, self_identity


def _dead() -> ProcessIdentity:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = identity_of(proc.pid) or ProcessIdentity(proc.pid, "1.00")
    proc.wait()
    return ident


def _send(layout: Layout, key: str, body: str) -> Message:
    msg = Message.create(body, from_session_id="peer")
    Mailbox.open(layout, key).enqueue(msg)
    return msg


def _bodies(layout: Layout, key: str) -> list[str]:
    delivery = Mailbox.open(layout, key).drain()
    delivery.commit()
    return [m.body for m in delivery.messages]


def test_forward_records_the_session_then_merges(layout: Layout) -> None:
    me = self_identity()
    box = open_pid_box(layout, me, None)
    _send(layout, pid_box_key(me), "early")
    assert forward(layout, me, "sess-a") == 1
    assert forwarded_to(box) == "sess-a"
    assert _bodies(layout, "sess-a") == ["early"]


def test_mail_sent_to_a_dead_forwarded_server_reaches_its_session(layout: Layout) -> None:
    dead = _dead()
    open_pid_box(layout, dead, None)
    forward(layout, dead, "sess-a")
    _send(layout, pid_box_key(dead), "after the merge")  # a sender with a stale registry
    result = sweep_orphans(layout, self_identity(), None)
    assert result.forwarded == {pid_box_key(dead): 1}
    assert _bodies(layout, "sess-a") == ["after the merge"]


def test_an_unforwarded_box_is_adopted_by_the_next_server_of_the_same_client(
    layout: Layout,
) -> None:
    client = self_identity()
    dead = _dead()
    open_pid_box(layout, dead, client)  # killed before it learned its session
    _send(layout, pid_box_key(dead), "for this client")
    me = ProcessIdentity(dead.pid + 1_000_000, "2.00")
    result = sweep_orphans(layout, me, client)
    assert result.adopted == {pid_box_key(dead): 1}
    forward(layout, me, "sess-b")
    assert _bodies(layout, "sess-b") == ["for this client"]


def test_another_clients_unforwarded_box_is_left_and_reported(layout: Layout) -> None:
    dead = _dead()
    open_pid_box(layout, dead, _dead())
    _send(layout, pid_box_key(dead), "nobody's")
    result = sweep_orphans(layout, self_identity(), self_identity())
    assert result.unroutable == [pid_box_key(dead)]
    assert Mailbox.open(layout, pid_box_key(dead)).pending_count() == 1  # kept, not lost


def test_a_live_servers_box_and_a_bad_forwarding_record_are_not_touched(layout: Layout) -> None:
    live = self_identity()
    open_pid_box(layout, live, None)
    forward(layout, live, "sess-a")
    _send(layout, pid_box_key(live), "its own server reads this")
    dead = _dead()
    box = open_pid_box(layout, dead, None)
    box.paths.forward.write_text('{"session_id": "../../etc"}')
    _send(layout, pid_box_key(dead), "kept")
    result = sweep_orphans(layout, ProcessIdentity(1, "1.00"), None)
    assert result.forwarded == {} and result.unroutable == [pid_box_key(dead)]
    assert Mailbox.open(layout, pid_box_key(live)).pending_count() == 1
