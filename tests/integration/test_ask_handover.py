"""ask_peer's hand-over, driven in-process on the real core (asking.ask_peer over a real
Agent, real mailboxes, real inotify): a cancel that arrives after the reply was taken
into a claim puts the reply back in the inbox; nothing is committed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from oxtail_py import asking
from oxtail_py.agent import Agent
from oxtail_py.agent_messaging import PendingAsk
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Delivery, Mailbox
from oxtail_py.messages import Message
from oxtail_py.procs import identity_of
from oxtail_py.registry import ClientInfo, Registry, SessionEntry
from oxtail_py.settings import Settings
from oxtail_py.watch import MailboxWatcher

pytestmark = pytest.mark.anyio

SID_ME = "aaaaaaaa-0000-4000-8000-0000000000a1"
SID_PEER = "bbbbbbbb-0000-4000-8000-0000000000b2"
MAILBOX_WORKER = Path(__file__).parents[1] / "mailbox_worker.py"


class CancelledRightAfterTake(Agent):
    """The real Agent; the test's only hook is *when* the cancel comes: at the moment
    take_reply has moved the reply into a claim, before the adapter could answer."""

    scope: anyio.CancelScope | None = None
    taken: Delivery | None = None

    def take_reply(self, pending: PendingAsk, *, wait_for_lock: bool = True) -> Delivery | None:
        found = super().take_reply(pending, wait_for_lock=wait_for_lock)
        if found is not None and self.scope is not None:
            self.taken = found
            try:
                anyio.from_thread.run_sync(self.scope.cancel)
            except RuntimeError:  # taken on the event loop itself (no lock to wait for)
                self.scope.cancel()
        return found


@pytest.fixture
def peer(server_env: dict[str, str], project: Path) -> Iterator[int]:
    """A registered live peer (a real process) with a session id, in the project."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        ident = identity_of(proc.pid)
        assert ident is not None
        Registry(Layout(Path(server_env["AGENTMAIL_HOME"]))).write(
            SessionEntry(
                ident.pid,
                ident.start,
                client=ClientInfo(
                    type="claude", session_id=SID_PEER, cwd=str(project), identity_source="env"
                ),
            )
        )
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _started(
    server_env: dict[str, str], project: Path, agent_class: type[Agent], reader: str
) -> tuple[Agent, MailboxWatcher]:
    """A real Agent with its inbox watcher, read on this loop or on its own thread."""
    settings = Settings.from_env({**server_env, "CLAUDE_CODE_SESSION_ID": SID_ME})
    agent = agent_class(Layout(settings.root), cwd=str(project), settings=settings)
    watcher = MailboxWatcher()
    agent.on_new_mailbox = watcher.watch
    agent.start(follow=False)
    for mailbox in agent.my_mailboxes():
        watcher.watch(mailbox.paths.directory)
    if reader == "thread":
        watcher.start()
    else:
        watcher.attach(asyncio.get_running_loop())
    return agent, watcher


async def _request_as_the_peer(layout: Layout) -> Message:
    """Wait for the ask to land in the peer's inbox and take it, as the peer would."""
    peer_box = Mailbox.open(layout, SID_PEER)
    while not peer_box.pending_count():
        await anyio.sleep(0.005)
    request = peer_box.drain()
    request.commit()
    return request.messages[0]


@pytest.mark.parametrize("reader", ["loop", "thread"])
async def test_a_cancel_after_the_reply_was_taken_returns_it_to_the_inbox(
    server_env: dict[str, str], project: Path, peer: int, reader: str
) -> None:
    agent, watcher = _started(server_env, project, CancelledRightAfterTake, reader)
    assert isinstance(agent, CancelledRightAfterTake)
    layout = agent.layout
    box = Mailbox.open(layout, SID_ME)
    try:
        with anyio.CancelScope() as scope:
            agent.scope = scope
            async with anyio.create_task_group() as tg:

                async def ask() -> None:
                    await asking.ask_peer(
                        agent, watcher, SID_PEER, "q", timeout_ms=30_000, wake=False
                    )

                tg.start_soon(ask)
                request = await _request_as_the_peer(layout)
                answer = Message.create(
                    "the answer", from_session_id=SID_PEER, reply_to=request.id
                )
                box.enqueue(answer)
        assert scope.cancelled_caught, "the ask was not cancelled"
        assert agent.taken is not None, "the reply was never taken into a claim"
        assert not box.claims(), "the claim was left behind"
        assert not box.paths.delivered.exists(), "the cancelled reply was committed"
        back = box.drain()
        back.commit()
        assert [m.body for m in back.messages] == ["the answer"]
    finally:
        watcher.stop()
        agent.stop()


async def test_a_reply_whose_box_lock_is_held_is_taken_once_the_lock_is_free(
    server_env: dict[str, str], project: Path, peer: int
) -> None:
    """The look on the event loop never waits for a lock: while another process holds
    the box's lock, the take moves to a worker thread and the reply still arrives."""
    agent, watcher = _started(server_env, project, Agent, "loop")
    layout = agent.layout
    box = Mailbox.open(layout, SID_ME)
    holder: subprocess.Popen[str] | None = None
    try:
        async with anyio.create_task_group() as tg:
            result: list[asking.AskResult] = []

            async def ask() -> None:
                result.append(
                    await asking.ask_peer(
                        agent, watcher, SID_PEER, "q", timeout_ms=30_000, wake=False
                    )
                )

            tg.start_soon(ask)
            request = await _request_as_the_peer(layout)
            holder = subprocess.Popen(
                [sys.executable, str(MAILBOX_WORKER), "hold-lock", str(box.paths.lock), "0.5"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None and holder.stdout.readline().strip() == "LOCKED"
            answer = Message.create("the answer", from_session_id=SID_PEER, reply_to=request.id)
            # Appended as a writer's bytes land: the event comes while the lock is held.
            started = time.monotonic()
            fd = os.open(box.paths.inbox, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, answer.to_line())
            finally:
                os.close(fd)
        assert result[0].status == asking.AskStatus.ANSWERED
        assert result[0].reply is not None and result[0].reply.body == "the answer"
        assert time.monotonic() - started >= 0.4, "taken while another process held the lock"
        assert holder is not None and holder.wait(10) == 0
        assert not box.claims() and box.pending_count() == 0
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        watcher.stop()
        agent.stop()
