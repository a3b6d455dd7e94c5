"""The installed hook, run as the clients run it, marks a late reply to the reader's own
pending ask (from its asks ledger, never from the message) and records the hand-over."""

from __future__ import annotations

import time
from pathlib import Path

from oxtail_py import asks_ledger
from oxtail_py.asks_ledger import AskRecord, AskState
from oxtail_py.layout import Layout
from oxtail_py.messages import new_message_id, now_iso
from oxtail_py.procs import self_identity
from tests.integration.hookkit import SID, home, hook, run_hook, send
from tests.integration.hookkit import context as _context
from tests.integration.hookkit import payload as _payload

__all__ = ["home", "hook"]  # fixtures

PEER = "bbbbbbbb-0000-4000-8000-0000000000b2"


def _pending_ask(layout: Layout) -> str:
    rid = new_message_id()
    asks_ledger.open_ask(
        layout,
        AskRecord(rid, SID, SID, self_identity().token(), PEER, "peer", "/proj",
                  AskState.WAITING, now_iso(), now_iso(), time.time()),
    )  # fmt: skip
    asks_ledger.set_state(layout, SID, rid, AskState.PENDING)
    return rid


def test_a_late_reply_is_marked_in_the_hook_text_and_its_ask_becomes_late_answered(
    layout: Layout, hook: Path
) -> None:
    rid = _pending_ask(layout)
    first = late = send(layout, "the answer, late", reply_to=rid)
    stray = send(layout, "not an answer to anything of yours", reply_to=new_message_id())
    for event, client in (("PostToolUse", None), ("PostToolUse", "codex")):
        if client == "codex":  # the Codex hook: a second late reply, same marking
            late = send(layout, "again, late", reply_to=rid)
            stray = send(layout, "still nothing", reply_to=new_message_id())
        text = _context(
            run_hook(hook, event.lower(), _payload(event, tool_name="Bash"), client=client),
            event,
        )
        assert f"reply_to={rid} · late_reply_to_ask={rid}" in text
        assert f"message_id={stray.id}" in text
        assert text.count("late_reply_to_ask=") == 1
    record = asks_ledger.load(layout, SID, rid)
    assert record is not None and record.state == AskState.LATE_ANSWERED
    assert record.reply_id == first.id  # the first late answer is the one on record
    assert late.id != first.id
