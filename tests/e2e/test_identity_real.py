"""Identity follows the real Claude Code TUI through `/clear` (issue 9, finding 3).

`/clear` starts a new session id in the same client process; our SessionStart hook
rewrites its drop, and the server must follow it at once: a send by tmux name then
reaches the new conversation through the hooks, and a wake during a busy turn reads the
new id's busy marker (`skipped_busy`) instead of the old id's stale `idle`.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import pytest

from oxtail_py import wake

from .harness import Scenario, wait_until
from .test_wake_real import (
    INSTALL_HOOK,
    Asker,
    _wait_registered,
    _wake_turns,
    answer_for,
    ask,
    blocking,
    hooked_peer_script,
)

pytestmark = pytest.mark.e2e


def _claude_entry(scenario: Scenario) -> dict[str, Any] | None:
    for path in (scenario.agentmail_home / "sessions").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if (data.get("client") or {}).get("type") == "claude":
                return dict(data)
    return None


def test_after_clear_mail_by_tmux_name_reaches_the_new_conversation_and_busy_is_read(
    scenario: Scenario,
) -> None:
    project = scenario.project()
    claude = scenario.claude(script=hooked_peer_script, setup_cmds=[INSTALL_HOOK])
    claude.start_tui()
    old_sid = _wait_registered(scenario, "claude")
    claude.prompt("hello before clear")
    claude.send("/clear")

    def followed() -> dict[str, Any] | None:
        entry = _claude_entry(scenario)
        sid = (entry or {}).get("client", {}).get("session_id")
        return entry if sid and sid != old_sid else None

    entry = wait_until(followed, timeout=30, what="the server to follow /clear")
    new_sid = str(entry["client"]["session_id"])
    assert entry["client"]["previous_session_ids"] == [old_sid]
    assert entry["client"]["identity_source"] == "drop"
    name = str(entry["tmux"]["session"])
    claude.wait_idle()
    asker = Asker(scenario, project)
    out: dict[str, Any] = {}

    async def main() -> None:
        async with asker.client() as client:
            sent = await client.call_tool(
                "send_message", {"target": name, "body": "note after clear: build green"}
            )
            assert not sent.is_error and sent.structured_content, sent.content
            assert sent.structured_content["target_session_id"] == new_sid
            # The next prompt's UserPromptSubmit hook (keyed by the new id) delivers it.
            request = await blocking(lambda: claude.prompt("what is new?"))
            assert request.session_id == new_sid
            assert request.context_contains("note after clear: build green")
            # A wake during a busy turn reads the new id's `busy`, not the old `idle`.
            after = len(claude.model.requests)
            claude.send("slow please")
            await blocking(
                lambda: claude.model.wait_for_request(
                    lambda r: "slow please" in (r.last_user_text() or ""), after=after
                )
            )
            out.update(await ask(client, name, "question while you work"))
            await blocking(claude.wait_idle)

    anyio.run(main)
    old_marker = scenario.agentmail_home / "status" / old_sid
    assert old_marker.read_text() == "idle"  # stale: the old session's last Stop
    assert out["status"] == "answered" and out["wake_status"] == wake.SKIPPED_BUSY, out
    assert out["reply"]["body"] == answer_for(out["request_id"])
    assert out["target_session_id"] == new_sid
    assert _wake_turns(claude) == []
