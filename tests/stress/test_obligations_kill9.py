"""kill -9 at every step of delegated work: no obligation is lost or duplicated.

Real Agents (forked, as the servers run them; the peer is an offline session of the
project, as after its client exited) walk the three paths of an obligation, and each
worker SIGKILLs itself just before its N-th file-system mutation (tests/mailbox_worker.py),
so the kill point crosses every step:

1. delegate: `send_message(action_required)`: enqueue, obligation record, sent-ledger;
2. hand over: `read_my_messages`: drain, received-ledger + obligation record, receipt,
   commit;
3. complete: `complete_work`: the completion record, the result's enqueue, its sent record;
4. block: `block_work`: the note's enqueue, then the blocked state.

After each kill the survivors do what a restarted agent does (read again; my_open_work,
which re-sends a completion whose result was never recorded as sent; complete again if
the work is still open), and the checks are: the obligation exists exactly when its
message was enqueued, once; the owner's open work lists it until it is completed; the
requester gets the result exactly once.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from oxtail_py import ledger, obligations, receipts, work
from oxtail_py.agent import Agent
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.settings import Settings
from tests.mailbox_worker import Emit, arm_kill, mutations_so_far
from tests.stress.test_mailbox_kill9 import _forked

REQ = "aaaaaaaa-0000-4000-8000-00000000000a"
OWNER = "bbbbbbbb-0000-4000-8000-00000000000b"


def _world(tmp: Path) -> Path:
    project = tmp / "proj"
    (project / ".git").mkdir(parents=True)
    home = tmp / "home"
    # Both sessions' transcripts say they ran in this project: each is a provable
    # offline recipient of the other (no live server, no tmux needed).
    for sid in (REQ, OWNER):
        directory = home / ".claude" / "projects" / str(project).replace("/", "-")
        directory.mkdir(parents=True, exist_ok=True)
        line = {"type": "user", "cwd": str(project), "sessionId": sid}
        (directory / f"{sid}.jsonl").write_text(json.dumps(line) + "\n")
    return tmp


def _agent(tmp: Path, sid: str) -> Agent:
    # Only ever in a forked worker: the transcript roots are read from this process's HOME.
    os.environ["HOME"] = str(tmp / "home")
    os.environ.pop("CLAUDE_CONFIG_DIR", None)
    settings = Settings.from_env({
        "HOME": str(tmp / "home"),
        "AGENTMAIL_HOME": str(tmp / "root"),
        "CLAUDE_CODE_SESSION_ID": sid,
        "OXTAIL_TMUX_SOCKET": str(tmp / "no-tmux"),
    })
    agent = Agent(Layout(settings.root), cwd=str(tmp / "proj"), settings=settings)
    agent.refresh_identity()
    return agent


def _delegate(tmp: Path, kill_at: int, emit: Emit) -> None:
    agent = _agent(tmp, REQ)
    arm_kill(kill_at)
    sent = agent.send(OWNER, "please do the task", action_required=True)
    emit(f"SENT {sent.message_id}")
    emit(f"MUTATIONS {mutations_so_far()}")


def _hand_over(tmp: Path, kill_at: int, emit: Emit) -> None:
    agent = _agent(tmp, OWNER)
    arm_kill(kill_at)
    taken = agent.read()
    emit("HANDED " + " ".join(m.id for m in taken.messages))
    agent.handed_over(taken.messages, "read_my_messages")
    taken.commit()
    emit("COMMITTED")
    emit(f"MUTATIONS {mutations_so_far()}")


def _complete(tmp: Path, kill_at: int, emit: Emit) -> None:
    agent = _agent(tmp, OWNER)
    (task,) = obligations.open_for(agent.layout, [OWNER])
    arm_kill(kill_at)
    closed = work.complete_work(agent, task.obligation.message_id, "the result")
    emit(f"DONE {closed.sent.message_id if closed.sent else '-'}")
    emit(f"MUTATIONS {mutations_so_far()}")


def _mutations(tmp: Path, phase: object, prepare: list[object]) -> int:
    base = _world(tmp / "count")
    for step in prepare:
        assert not _forked(lambda emit, s=step: s(base, 0, emit))[0]  # type: ignore[operator]
    killed, lines = _forked(lambda emit: phase(base, 0, emit))  # type: ignore[operator]
    assert not killed
    return int(lines[-1].split()[1])


def _points(seed: int) -> list[int]:
    return list(range(48)) + [random.Random(seed).randint(0, 10_000) for _ in range(12)]


def _inbox_ids(tmp: Path, key: str) -> list[str]:
    box = Mailbox.existing(Layout(tmp / "root"), key)
    if box is None:
        return []
    delivery = box.drain()
    delivery.commit()
    return [m.id for m in delivery.messages]


@pytest.mark.parametrize("point", _points(11))
def test_delegation_killed_anywhere_makes_the_obligation_exactly_when_mail_went(
    tmp_path: Path, point: int
) -> None:
    total = _mutations(tmp_path, _delegate, [])
    tmp = _world(tmp_path / "run")
    killed, _lines = _forked(lambda emit: _delegate(tmp, point % total + 1, emit))
    assert killed
    layout = Layout(tmp / "root")
    before = {s.obligation.message_id for s in obligations.list_all(layout)}
    # The owner comes back and reads: whatever mail went out is work it now owes.
    _forked(lambda emit: _hand_over(tmp, 0, emit))
    handed = obligations.open_for(layout, [OWNER])
    receipts_written = [
        s.obligation.message_id
        for s in handed
        if receipts.read_receipt(layout, s.obligation.message_id) is not None
    ]
    box = Mailbox.existing(layout, OWNER)
    delivered = box._delivered_ids() if box is not None else set()
    assert {s.obligation.message_id for s in handed} == delivered, "lost or phantom work"
    assert before <= delivered, "an obligation exists for mail that never went"
    assert receipts_written == [s.obligation.message_id for s in handed]
    assert len(handed) <= 1


@pytest.mark.parametrize("point", _points(12))
def test_hand_over_killed_anywhere_keeps_the_work_owed_once(tmp_path: Path, point: int) -> None:
    total = _mutations(tmp_path, _hand_over, [_delegate])
    tmp = _world(tmp_path / "run")
    _, sent_lines = _forked(lambda emit: _delegate(tmp, 0, emit))
    task_id = sent_lines[0].split()[1]
    killed, _lines = _forked(lambda emit: _hand_over(tmp, point % total + 1, emit))
    assert killed
    _forked(lambda emit: _hand_over(tmp, 0, emit))  # the owner's next read
    layout = Layout(tmp / "root")
    owed = [s.obligation.message_id for s in obligations.open_for(layout, [OWNER])]
    assert owed == [task_id]
    assert ledger.find_received(layout, [OWNER], task_id) is not None
    receipt = receipts.read_receipt(layout, task_id)
    assert receipt is not None and receipt.session_id == OWNER
    assert _inbox_ids(tmp, OWNER) == []  # nothing left behind


@pytest.mark.parametrize("point", _points(13))
def test_completion_killed_anywhere_delivers_the_result_exactly_once(
    tmp_path: Path, point: int
) -> None:
    total = _mutations(tmp_path, _complete, [_delegate, _hand_over])
    tmp = _world(tmp_path / "run")
    _, sent_lines = _forked(lambda emit: _delegate(tmp, 0, emit))
    task_id = sent_lines[0].split()[1]
    _forked(lambda emit: _hand_over(tmp, 0, emit))
    killed, _lines = _forked(lambda emit: _complete(tmp, point % total + 1, emit))
    assert killed

    def recover(emit: Emit) -> None:
        agent = _agent(tmp, OWNER)
        still = work.my_open_work(agent)  # re-sends a recorded, unsent result
        for status in still:
            work.complete_work(agent, status.obligation.message_id, "the result")
        emit(f"OPEN {len(still)}")

    assert not _forked(recover)[0]
    layout = Layout(tmp / "root")
    status = obligations.work_status(layout, task_id)
    assert status is not None and status.state == obligations.WorkState.DONE
    assert status.done is not None
    results = Counter(_inbox_ids(tmp, REQ))
    assert results == Counter({status.done.result_message_id: 1}), "result lost or doubled"
    assert obligations.open_for(layout, [OWNER]) == []


def _block(tmp: Path, kill_at: int, emit: Emit) -> None:
    agent = _agent(tmp, OWNER)
    (task,) = obligations.open_for(agent.layout, [OWNER])
    arm_kill(kill_at)
    closed = work.block_work(agent, task.obligation.message_id, "need a password")
    emit(f"BLOCKED {closed.sent.message_id if closed.sent else '-'}")
    emit(f"MUTATIONS {mutations_so_far()}")


@pytest.mark.parametrize("point", _points(14))
def test_block_killed_anywhere_keeps_the_work_owed_once_and_tells_the_requester(
    tmp_path: Path, point: int
) -> None:
    total = _mutations(tmp_path, _block, [_delegate, _hand_over])
    tmp = _world(tmp_path / "run")
    _, sent_lines = _forked(lambda emit: _delegate(tmp, 0, emit))
    task_id = sent_lines[0].split()[1]
    _forked(lambda emit: _hand_over(tmp, 0, emit))
    killed, _lines = _forked(lambda emit: _block(tmp, point % total + 1, emit))
    assert killed
    layout = Layout(tmp / "root")
    state = obligations.work_status(layout, task_id)
    assert state is not None and state.state != obligations.WorkState.DONE
    if state.state == obligations.WorkState.OPEN:  # killed before the mark: block again
        assert not _forked(lambda emit: _block(tmp, 0, emit))[0]
    owed = obligations.open_for(layout, [OWNER])
    assert [(s.obligation.message_id, s.state) for s in owed] == [
        (task_id, obligations.WorkState.BLOCKED)
    ]
    assert obligations.count_open_for(layout, OWNER) == 1
    notes = _inbox_ids(tmp, REQ)
    assert 1 <= len(notes) <= 2  # told at least once (twice only if the mark was lost)
