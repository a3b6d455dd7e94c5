"""ask_peer's hand-over, driven in-process on the real core (asking.ask_peer over a real
Agent, real mailboxes, real inotify): a cancel that arrives after the reply was taken
into a claim puts the reply back in the inbox; nothing is committed."""

from __future__ import annotations

import subprocess
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


class CancelledRightAfterTake(Agent):
    """The real Agent; the test's only hook is *when* the cancel comes: at the moment
    take_reply has moved the reply into a claim, before the adapter could answer."""

    scope: anyio.CancelScope | None = None
    taken: Delivery | None = None

    def take_reply(self, pending: PendingAsk) -> Delivery | None:
        found = super().take_reply(pending)
        if found is not None and self.scope is not None:
            self.taken = found
            anyio.from_thread.run_sync(self.scope.cancel)
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


async def test_a_cancel_after_the_reply_was_taken_returns_it_to_the_inbox(
    server_env: dict[str, str], project: Path, peer: int
) -> None:
    settings = Settings.from_env({**server_env, "CLAUDE_CODE_SESSION_ID": SID_ME})
    layout = Layout(settings.root)
    agent = CancelledRightAfterTake(layout, cwd=str(project), settings=settings)
    watcher = MailboxWatcher()
    agent.on_new_mailbox = watcher.watch
    agent.start(follow=False)
    for mailbox in agent.my_mailboxes():
        watcher.watch(mailbox.paths.directory)
    watcher.start()
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
                peer_box = Mailbox.open(layout, SID_PEER)
                while not peer_box.pending_count():
                    await anyio.sleep(0.005)
                request = peer_box.drain()
                request.commit()
                answer = Message.create(
                    "the answer", from_session_id=SID_PEER, reply_to=request.messages[0].id
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
