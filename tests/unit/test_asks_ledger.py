"""The asks ledger: states move forward only, a waiting ask counts only while its asker's
server lives, a new ask closing a cycle of waits is refused, hostile files are skipped."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from oxtail_py import asks_ledger
from oxtail_py.asks_ledger import AskRecord, AskState, WouldDeadlockError
from oxtail_py.fsio import atomic_write_json, ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.messages import Message, new_message_id, now_iso
from oxtail_py.procs import ProcessIdentity, identity_of, self_identity

A = "aaaaaaaa-0000-4000-8000-00000000000a"
B = "bbbbbbbb-0000-4000-8000-00000000000b"
C = "cccccccc-0000-4000-8000-00000000000c"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "agentmail")


@pytest.fixture
def dead_server() -> ProcessIdentity:
    proc = subprocess.Popen(["sleep", "60"])
    ident = identity_of(proc.pid)
    proc.kill()
    proc.wait()
    assert ident is not None
    return ident


def record(
    asker: str,
    target: str,
    *,
    server: ProcessIdentity | None = None,
    state: AskState = AskState.WAITING,
    project: str = "/proj",
    age_s: float = 0.0,
) -> AskRecord:
    return AskRecord(
        request_id=new_message_id(),
        asker=asker,
        asker_session_id=asker,
        asker_server=(server or self_identity()).token(),
        target_session_id=target,
        target_name=target[:8],
        project_root=project,
        state=state,
        created_at=now_iso(),
        updated_at=now_iso(),
        created_ts=time.time() - age_s,
    )


def test_a_waiting_ask_then_its_crossing_ask_is_refused_as_would_deadlock(
    layout: Layout,
) -> None:
    first = record(A, B)
    asks_ledger.open_ask(layout, first)
    crossing = record(B, A)
    with pytest.raises(WouldDeadlockError) as refused:
        asks_ledger.open_ask(layout, crossing)
    assert refused.value.code == "would-deadlock"
    assert f"{B} -> {A} -> {B}" in str(refused.value)
    # It names the request waiting on the refused asker: the one to answer.
    assert f"Answer its request {first.request_id} first" in str(refused.value)
    assert asks_ledger.load(layout, B, crossing.request_id) is None  # nothing recorded


def test_a_longer_cycle_is_refused_and_an_open_chain_is_not(layout: Layout) -> None:
    asks_ledger.open_ask(layout, record(A, B))
    asks_ledger.open_ask(layout, record(B, C))  # A -> B -> C: no cycle
    with pytest.raises(WouldDeadlockError) as refused:
        asks_ledger.open_ask(layout, record(C, A))
    assert f"{C} -> {A} -> {B} -> {C}" in str(refused.value)
    asks_ledger.open_ask(layout, record(A, C))  # a second edge A -> C closes nothing


def test_a_waiting_ask_of_a_dead_server_is_pending_and_closes_no_cycle(
    layout: Layout, dead_server: ProcessIdentity
) -> None:
    stale = record(A, B, server=dead_server)
    asks_ledger.open_ask(layout, stale)
    loaded = asks_ledger.load(layout, A, stale.request_id)
    assert loaded is not None and loaded.state == AskState.WAITING
    assert loaded.effective_state() == AskState.PENDING
    asks_ledger.open_ask(layout, record(B, A))  # not refused: A no longer waits


def test_an_ask_that_ended_closes_no_cycle(layout: Layout) -> None:
    first = record(A, B)
    asks_ledger.open_ask(layout, first)
    asks_ledger.set_state(layout, A, first.request_id, AskState.PENDING)
    asks_ledger.open_ask(layout, record(B, A))


def test_states_move_only_forward(layout: Layout) -> None:
    ask = record(A, B)
    asks_ledger.open_ask(layout, ask)
    rid = ask.request_id
    late_reply = new_message_id()
    skipped = asks_ledger.set_state(layout, A, rid, AskState.LATE_ANSWERED)
    assert skipped is not None and skipped.state == AskState.WAITING  # no skipping ahead
    pending = asks_ledger.set_state(layout, A, rid, AskState.PENDING)
    assert pending is not None and pending.state == AskState.PENDING
    moved = asks_ledger.set_state(layout, A, rid, AskState.LATE_ANSWERED, reply_id=late_reply)
    assert moved is not None and moved.state == AskState.LATE_ANSWERED
    assert moved.reply_id == late_reply
    again = asks_ledger.set_state(layout, A, rid, AskState.PENDING)
    assert again is not None and again.state == AskState.LATE_ANSWERED
    assert asks_ledger.set_state(layout, A, new_message_id(), AskState.PENDING) is None


def test_late_replies_are_those_answering_a_pending_ask_of_the_reader(layout: Layout) -> None:
    pending, waiting = record(A, B), record(A, C)
    for ask in (pending, waiting):
        asks_ledger.open_ask(layout, ask)
    asks_ledger.set_state(layout, A, pending.request_id, AskState.PENDING)
    late = Message.create("late", from_session_id=B, reply_to=pending.request_id)
    on_time = Message.create("on time", from_session_id=C, reply_to=waiting.request_id)
    note = Message.create("plain", from_session_id=B)
    found = asks_ledger.late_replies(layout, [A], [late, on_time, note])
    assert found.of(late) == pending.request_id
    assert found.of(on_time) is None and found.of(note) is None
    assert asks_ledger.late_replies(layout, [B], [late]).request_ids == frozenset()
    asks_ledger.record_handed_over(layout, found, [late, on_time, note])
    done = asks_ledger.load(layout, A, pending.request_id)
    assert done is not None and done.state == AskState.LATE_ANSWERED and done.reply_id == late.id


def test_list_asks_filters_by_project_and_find_cycles_flags_a_forged_one(
    layout: Layout, tmp_path: Path
) -> None:
    inside, outside = tmp_path / "proj", tmp_path / "other"
    inside.mkdir()
    outside.mkdir()
    asks_ledger.open_ask(layout, record(A, B, project=str(inside)))
    asks_ledger.open_ask(layout, record(C, A, project=str(outside)))
    listed = asks_ledger.list_asks(layout, inside)
    assert [(r.asker, r.target_session_id) for r in listed] == [(A, B)]
    # A cycle can only exist if a record bypassed open_ask (forged, or hand-written).
    forged = record(B, A, project=str(inside))
    ensure_tree(layout.root, layout.asker_dir(B))
    atomic_write_json(layout.ask_file(B, forged.request_id), forged.to_dict())
    cycles = asks_ledger.find_cycles(asks_ledger.list_asks(layout, inside))
    assert len(cycles) == 1 and set(cycles[0]) == {A, B}


def test_hostile_files_in_the_ledger_are_skipped_never_followed_or_blocking(
    layout: Layout, tmp_path: Path
) -> None:
    good = record(A, B)
    asks_ledger.open_ask(layout, good)
    directory = layout.asker_dir(A)
    os.mkfifo(directory / f"{new_message_id()}.json")
    target = tmp_path / "elsewhere.json"
    atomic_write_json(target, record(A, C).to_dict())
    os.symlink(target, directory / f"{new_message_id()}.json")
    (directory / f"{new_message_id()}.json").write_bytes(b"{" * 100_000)
    huge = directory / f"{new_message_id()}.json"
    huge.write_bytes(b" " * (2 << 20))
    mislabeled = record(A, C)
    atomic_write_json(directory / f"{new_message_id()}.json", mislabeled.to_dict())
    listed = asks_ledger.list_asks(layout)
    assert [r.request_id for r in listed] == [good.request_id]


def test_crossing_asks_from_two_threads_refuse_exactly_one(layout: Layout) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def ask(asker: str, target: str) -> None:
        barrier.wait()
        try:
            asks_ledger.open_ask(layout, record(asker, target))
            outcomes.append("open")
        except WouldDeadlockError:
            outcomes.append("refused")

    for _ in range(20):
        outcomes.clear()
        for path in layout.asks_dir.glob("*/*.json"):
            path.unlink()
        threads = [threading.Thread(target=ask, args=p) for p in ((A, B), (B, A))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["open", "refused"]


def test_prune_drops_old_done_asks_and_keeps_waiting_ones(layout: Layout) -> None:
    old_done = record(A, B, state=AskState.ANSWERED, age_s=asks_ledger.KEEP_DONE_S + 5)
    old_pending = record(A, B, state=AskState.PENDING, age_s=asks_ledger.KEEP_DONE_S + 5)
    old_waiting = record(A, C, age_s=asks_ledger.KEEP_PENDING_S + 5)
    ensure_tree(layout.root, layout.asker_dir(A))
    for ask in (old_done, old_pending, old_waiting):
        atomic_write_json(layout.ask_file(A, ask.request_id), ask.to_dict())
    assert asks_ledger.prune(layout, A) == 1
    left = {r.request_id for r in asks_ledger.list_asks(layout, asker=A)}
    assert left == {old_pending.request_id, old_waiting.request_id}


def test_files_are_private(layout: Layout) -> None:
    ask = record(A, B)
    asks_ledger.open_ask(layout, ask)
    assert os.stat(layout.asks_dir).st_mode & 0o777 == 0o700
    assert os.stat(layout.asker_dir(A)).st_mode & 0o777 == 0o700
    assert os.stat(layout.ask_file(A, ask.request_id)).st_mode & 0o777 == 0o600


def test_a_late_reply_to_the_ask_of_a_killed_asker_is_recorded_late_answered(
    layout: Layout, dead_server: ProcessIdentity
) -> None:
    stale = record(A, B, server=dead_server)  # killed mid-wait: the file still says waiting
    asks_ledger.open_ask(layout, stale)
    late = Message.create("late", from_session_id=B, reply_to=stale.request_id)
    found = asks_ledger.late_replies(layout, [A], [late])
    assert found.of(late) == stale.request_id
    asks_ledger.record_handed_over(layout, found, [late])
    done = asks_ledger.load(layout, A, stale.request_id)
    assert done is not None and done.state == AskState.LATE_ANSWERED


def test_the_graph_holds_a_copy_of_each_waiting_ask_and_only_while_it_waits(
    layout: Layout,
) -> None:
    answered, pending, dropped = record(A, B), record(A, C), record(B, C)
    for ask in (answered, pending, dropped):
        asks_ledger.open_ask(layout, ask)
    copies = {p.name for p in layout.waiting_asks_dir.iterdir()}
    assert copies == {f"{a.request_id}.json" for a in (answered, pending, dropped)}
    assert os.stat(layout.waiting_asks_dir).st_mode & 0o777 == 0o700
    assert os.stat(layout.waiting_ask_file(answered.request_id)).st_mode & 0o777 == 0o600
    asks_ledger.set_state(layout, A, answered.request_id, AskState.ANSWERED)
    asks_ledger.set_state(layout, A, pending.request_id, AskState.PENDING)
    asks_ledger.discard(layout, B, dropped.request_id)  # its send failed: never asked
    assert list(layout.waiting_asks_dir.iterdir()) == []
    # The records themselves stay, in their askers' directories.
    assert {r.request_id for r in asks_ledger.list_asks(layout)} == {
        answered.request_id,
        pending.request_id,
    }
    asks_ledger.open_ask(layout, record(B, A))  # A waits on nobody now


def test_a_killed_askers_copy_blocks_nobody_and_the_next_ask_removes_it(
    layout: Layout, dead_server: ProcessIdentity
) -> None:
    stale = record(A, B, server=dead_server)
    asks_ledger.open_ask(layout, stale)
    assert layout.waiting_ask_file(stale.request_id).exists()
    asks_ledger.open_ask(layout, record(B, A))  # not refused: A's server is gone
    assert not layout.waiting_ask_file(stale.request_id).exists()
    loaded = asks_ledger.load(layout, A, stale.request_id)
    assert loaded is not None and loaded.effective_state() == AskState.PENDING


def test_hostile_files_among_the_waiting_copies_are_skipped_never_followed(
    layout: Layout, tmp_path: Path
) -> None:
    live = record(A, B)
    asks_ledger.open_ask(layout, live)
    directory = layout.waiting_asks_dir
    os.mkfifo(directory / f"{new_message_id()}.json")
    elsewhere = tmp_path / "elsewhere.json"
    atomic_write_json(elsewhere, record(C, A).to_dict())
    os.symlink(elsewhere, directory / f"{new_message_id()}.json")  # would close C -> A -> B
    (directory / f"{new_message_id()}.json").write_bytes(b"[" * 100_000)
    misnamed = record(C, A)
    atomic_write_json(directory / f"{new_message_id()}.json", misnamed.to_dict())
    asks_ledger.open_ask(layout, record(B, C))  # no edge C -> A was believed
    with pytest.raises(WouldDeadlockError):
        asks_ledger.open_ask(layout, record(B, A))  # the live one still counts


A_BEFORE_CLEAR = "aaaaaaaa-0000-4000-8000-0000000000a0"


def test_a_peer_waiting_on_an_agents_id_before_clear_waits_on_that_agent(
    layout: Layout,
) -> None:
    """B resolved A before A's /clear and waits on A's old id; A (new id, its server
    following its client) asking B back closes a cycle, and is refused."""
    waiting_on_old_id = record(B, A_BEFORE_CLEAR)
    asks_ledger.open_ask(layout, waiting_on_old_id)
    after_clear = replace(record(A, B), asker_previous_session_ids=(A_BEFORE_CLEAR,))
    with pytest.raises(WouldDeadlockError) as refused:
        asks_ledger.open_ask(layout, after_clear)
    assert f"{A} -> {B} -> {A}" in str(refused.value)
    assert f"Answer its request {waiting_on_old_id.request_id} first" in str(refused.value)
    asks_ledger.open_ask(layout, record(A, C))  # a third agent: no cycle


def test_an_agent_waiting_after_clear_is_the_agent_its_old_id_names(layout: Layout) -> None:
    """A waits (new id, old one recorded); B asking A by the old id is refused too, and the
    cockpit's cycle finder sees one agent, not two."""
    asks_ledger.open_ask(
        layout, replace(record(A, B), asker_previous_session_ids=(A_BEFORE_CLEAR,))
    )
    with pytest.raises(WouldDeadlockError):
        asks_ledger.open_ask(layout, record(B, A_BEFORE_CLEAR))
    forged = record(B, A_BEFORE_CLEAR)  # as if written past open_ask
    ensure_tree(layout.root, layout.asker_dir(B))
    atomic_write_json(layout.ask_file(B, forged.request_id), forged.to_dict())
    cycles = asks_ledger.find_cycles(asks_ledger.list_asks(layout))
    assert len(cycles) == 1 and set(cycles[0]) == {A, B}


@pytest.mark.parametrize(
    "previous", [["not a session id!"], "aaaa", [A] * 17, [7]], ids=["shape", "type", "many", "int"]
)
def test_a_record_with_malformed_previous_ids_is_skipped(
    layout: Layout, previous: object
) -> None:
    bad = record(A, B)
    ensure_tree(layout.root, layout.asker_dir(A))
    atomic_write_json(
        layout.ask_file(A, bad.request_id),
        {**bad.to_dict(), "asker_previous_session_ids": previous},
    )
    assert asks_ledger.list_asks(layout) == []
