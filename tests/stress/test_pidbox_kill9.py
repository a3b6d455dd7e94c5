"""A server killed at every step of learning its session (forwarding record, merge):
the next server's sweep brings every message of its pid box to a session box, once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from oxtail_py.layout import Layout, pid_box_key
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
from oxtail_py.pidbox import forward, open_pid_box, sweep_orphans
from oxtail_py.procs import ProcessIdentity, self_identity
from tests.mailbox_worker import Emit, arm_kill, mutations_so_far
from tests.stress.test_mailbox_kill9 import _forked

SESSION = "sess-forwarded"


def _server(root: Path, client: ProcessIdentity, kill_at: int, emit: Emit) -> None:
    """A server: its pid box holds mail, then it learns its session and merges."""
    layout = Layout(root)
    me = self_identity()
    emit(f"ME {me.token()}")
    box = open_pid_box(layout, me, client)
    for i in range(4):
        box.enqueue(Message.create(f"early:{i}", from_session_id="peer"))
    arm_kill(kill_at)
    forward(layout, me, SESSION)
    emit(f"MUTATIONS {mutations_so_far()}")


def _full_run(tmp: Path, client: ProcessIdentity) -> int:
    killed, lines = _forked(lambda emit: _server(tmp / "count", client, 0, emit))
    assert not killed
    return int(lines[-1].split()[1])


@pytest.mark.parametrize("point", range(40))
def test_a_server_killed_anywhere_in_forwarding_strands_no_mail(tmp_path: Path, point: int) -> None:
    # The test process plays the client; a second "server" of that client sweeps.
    client = self_identity()
    total = _full_run(tmp_path, client)
    kill_at = point % total + 1
    root = tmp_path / "am"
    killed, lines = _forked(lambda emit: _server(root, client, kill_at, emit))
    assert killed, f"kill point {kill_at} of {total} was not reached"
    dead = ProcessIdentity.parse_token(lines[0].split()[1])
    assert dead is not None
    layout = Layout(root)
    # A late sender that resolved the dead server before it died.
    late = Message.create("late", from_session_id="peer")
    Mailbox.open(layout, pid_box_key(dead)).enqueue(late)

    successor = ProcessIdentity(dead.pid + 1_000_000, dead.start)  # never alive
    sweep_orphans(layout, successor, client)
    forward(layout, successor, SESSION)  # the successor learns the same session

    session = Mailbox.open(layout, SESSION)
    delivery = session.drain()
    delivery.commit()
    bodies = Counter(m.body for m in delivery.messages)
    assert set(bodies) == {f"early:{i}" for i in range(4)} | {"late"}, "mail stranded"
    assert max(bodies.values()) == 1
    assert Mailbox.open(layout, pid_box_key(dead)).pending_count() == 0
    assert Mailbox.open(layout, pid_box_key(dead)).claims() == []
