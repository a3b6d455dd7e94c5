"""The self-heal cap is counted in the wake-outcome file, which keeps the newest
receipts.MAX_WAKE_OUTCOMES tries: a larger OXTAIL_HEAL_MAX_WAKES must still stop, at
that many, never wake for ever. A real Agent, a real mailbox, the real outcome file."""

from __future__ import annotations

import time
from pathlib import Path

from oxtail_py import receipts
from oxtail_py.agent import Agent
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
from oxtail_py.selfheal import SELF_HEAL, SelfHeal
from oxtail_py.settings import Settings

SID_ME = "aaaaaaaa-0000-4000-8000-0000000000c1"
SID_PEER = "bbbbbbbb-0000-4000-8000-0000000000c2"


def test_a_cap_above_what_the_outcome_file_keeps_stops_at_what_it_keeps(
    server_env: dict[str, str], project: Path
) -> None:
    settings = Settings.from_env(
        {**server_env, "CLAUDE_CODE_SESSION_ID": SID_ME, "OXTAIL_HEAL_MAX_WAKES": "50"}
    )
    assert settings.heal_max_wakes == 50
    agent = Agent(Layout(settings.root), cwd=str(project), settings=settings)
    agent.start(follow=False)
    try:
        unread = Message.create("still unread", from_session_id=SID_PEER)
        Mailbox.open(agent.layout, SID_ME).enqueue(unread)
        healer = SelfHeal(agent, settings)
        for attempt in range(1, receipts.MAX_WAKE_OUTCOMES):
            receipts.record_wake_outcome(
                agent.layout, unread.id, status="confirmed", by=SELF_HEAL, attempt=attempt
            )
        assert [d.message_id for d in healer.plan(time.time())] == [unread.id]
        receipts.record_wake_outcome(
            agent.layout, unread.id, status="confirmed", by=SELF_HEAL,
            attempt=receipts.MAX_WAKE_OUTCOMES,
        )  # fmt: skip
        assert healer.plan(time.time()) == []
    finally:
        agent.stop()
