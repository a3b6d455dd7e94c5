"""Mail reaches a real Codex (0.169.0) mid-turn and at turn end through the product's own
hooks, installed by `oxtail-py install-hook` into the agent's HOME: no read_my_messages.

A peer's mail is enqueued by the test into the thread's mailbox (what send_message does)
while the scripted model runs a turn of shell calls. Each body must reach the model
exactly once: counted over the items each request adds to the previous one.
Run: scripts/netns-run .venv/bin/pytest tests/e2e/test_codex_delivery_real.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message

from .harness import CodexAgent, ResponsesRequest, Scenario, Text, ToolCall

pytestmark = pytest.mark.e2e

PEER = "peer-session-0001"


def polled(requests: list[ResponsesRequest]) -> bool:
    """Did the model call read_my_messages (by any spelling: namespaced or not)?"""
    return any(c.name.endswith("read_my_messages") for t in requests for c in t.tool_calls())


def shell(cmd: str) -> ToolCall:
    return ToolCall("exec_command", {"cmd": cmd})


def install_hooks(agent: CodexAgent) -> str:
    """The product's installer, run as a user would, with this agent's HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("CODEX_HOME", "CLAUDE_CONFIG_DIR")}
    env.update(HOME=str(agent.home), AGENTMAIL_HOME=str(agent.agentmail_home))
    out = subprocess.run([sys.executable, "-m", "oxtail_py", "install-hook"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "as Codex's /hooks would" in out.stdout, out.stdout
    return out.stdout


def send(agent: CodexAgent, thread: str, body: str) -> None:
    Mailbox.open(Layout(agent.agentmail_home), thread).enqueue(
        Message.create(body, from_session_id=PEER)
    )


def new_items_text(requests: list[ResponsesRequest]) -> list[str]:
    """Per request, the JSON of the items it adds to the previous request's input."""
    seen, out = 0, []
    for request in requests:
        items = request.items
        out.append(json.dumps(items[seen:]))
        seen = len(items)
    return out


def occurrences(requests: list[ResponsesRequest], body: str) -> int:
    return sum(text.count(body) for text in new_items_text(requests))


def mail_script(
    agent: CodexAgent, mail_at: dict[int, str], calls: int, *, at_end: str | None = None
) -> Callable[[ResponsesRequest], ToolCall | Text]:
    """`calls` shell calls; before the n-th call runs (returned by the model), the peer's
    mail `mail_at[n]` is enqueued; `at_end` is enqueued while the model gives its final
    answer (after the last PostToolUse: only Stop can deliver it)."""
    sent: set[int] = set()

    def script(request: ResponsesRequest) -> ToolCall | Text:
        if any("<hook_prompt" in t for t in request._messages("user")):
            return Text("read the late mail")
        done = len(request.tool_results())
        thread = request.session_id
        assert thread is not None
        if done in mail_at and done not in sent:
            sent.add(done)
            send(agent, thread, mail_at[done])
        if done < calls:
            return shell(f"echo step {done}; sleep 0.2")
        if at_end is not None and -1 not in sent:
            sent.add(-1)
            send(agent, thread, at_end)
        return Text("done")

    return script


def _turn_requests(agent: CodexAgent) -> list[ResponsesRequest]:
    return list(agent.model.turns)


def test_exec_mail_mid_turn_reaches_the_model_once_by_post_tool_use(
    scenario: Scenario,
) -> None:
    bodies = {1: "MAIL-ALPHA the schema moved to v2", 2: "MAIL-BETA tests are green"}
    agent = scenario.codex()
    agent.model.script = mail_script(agent, bodies, calls=4)
    install_hooks(agent)

    result = agent.run_headless("run four steps")

    assert result.returncode == 0, result.stderr
    turns = _turn_requests(agent)
    for body in bodies.values():
        assert occurrences(turns, body) == 1, body
    # delivered right after the call during which it arrived (PostToolUse)
    assert turns[2].context_contains(bodies[1]) and turns[3].context_contains(bodies[2])
    assert not turns[1].context_contains(bodies[1])
    assert not polled(turns)
    assert [c.name for c in turns[-1].tool_calls()] == ["exec_command"] * 4
    (thread,) = agent.thread_ids()
    assert Mailbox.open(Layout(agent.agentmail_home), thread).pending_count() == 0
    assert (Layout(agent.agentmail_home).status_file(thread)).read_text() == "idle"


def test_exec_mail_after_the_last_tool_call_is_delivered_by_stop_once(
    scenario: Scenario,
) -> None:
    last = "MAIL-LAST arrived during the last call"
    late = "MAIL-LATE arrived during the final answer"
    agent = scenario.codex()
    agent.model.script = mail_script(agent, {3: last}, calls=4, at_end=late)
    install_hooks(agent)

    result = agent.run_headless("run four steps")

    assert result.returncode == 0, result.stderr
    turns = _turn_requests(agent)
    # 4 calls + the final answer + exactly one extra step from Stop: no loop
    assert len(turns) == 6, [len(t.items) for t in turns]
    assert occurrences(turns, last) == 1 and turns[4].context_contains(last)
    assert occurrences(turns, late) == 1
    assert any(late in t for t in turns[5]._messages("user"))
    assert not polled(turns)
    (thread,) = agent.thread_ids()
    assert Mailbox.open(Layout(agent.agentmail_home), thread).pending_count() == 0
    assert Layout(agent.agentmail_home).status_file(thread).read_text() == "idle"


def test_tui_mail_mid_turn_reaches_the_model_once(scenario: Scenario) -> None:
    bodies = {1: "MAIL-TUI-ONE rebase done", 2: "MAIL-TUI-TWO ship it"}
    agent = scenario.codex()
    agent.model.script = mail_script(agent, bodies, calls=4)
    install_hooks(agent)

    agent.start_tui()
    assert "review" not in agent.screen().lower()
    agent.prompt("run four steps")

    turns = [t for t in _turn_requests(agent) if t.tool_names()]  # not the title request
    for body in bodies.values():
        assert occurrences(turns, body) == 1, body
    assert not polled(turns)
    thread = turns[-1].session_id
    assert thread is not None
    assert Mailbox.open(Layout(agent.agentmail_home), thread).pending_count() == 0
