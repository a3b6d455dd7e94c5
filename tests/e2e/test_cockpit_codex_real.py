"""The operator's `oxtail-py send` reaching a real Codex (0.169.0) mid-turn: its own
PostToolUse hook hands the message over, framed as the person's (from=operator), once.

The scripted model first calls get_my_session (so the server learns its thread id from
`_meta.threadId` and the thread is addressable), then runs shell steps; during the
first, the test runs `oxtail-py send THREAD TEXT` as the operator would.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox

from .harness import ResponsesRequest, Scenario, Text, ToolCall
from .test_codex_delivery_real import install_hooks, occurrences, shell
from .test_scenarios import mcp_for

pytestmark = pytest.mark.e2e

BODY = "operator here: stop after this step and rebase on main"
HEADER = "from=operator (the person running these agents, not a peer)"


def test_operator_send_reaches_a_real_codex_mid_turn_as_from_the_person(
    scenario: Scenario,
) -> None:
    agent = scenario.codex(mcp=mcp_for(scenario))
    install_hooks(agent)
    sent: list[subprocess.CompletedProcess[str]] = []

    def operator_send(thread: str) -> None:
        env = {**os.environ, "AGENTMAIL_HOME": str(agent.agentmail_home),
               "OXTAIL_TMUX_SOCKET": str(scenario.tmux.socket)}
        sent.append(subprocess.run(
            [sys.executable, "-m", "oxtail_py", "send", thread, BODY],
            cwd=agent.project, env=env, capture_output=True, text=True, timeout=60,
            check=False,
        ))

    def script(request: ResponsesRequest) -> ToolCall | Text:
        done = len(request.tool_results())
        if done == 0:
            return ToolCall.mcp("oxtail", "get_my_session", {})
        if done == 1:
            assert request.session_id is not None
            operator_send(request.session_id)  # while the next shell step runs
            return shell("echo step 1; sleep 0.2")
        if done < 4:
            return shell(f"echo step {done}; sleep 0.2")
        return Text("done")

    agent.model.script = script
    result = agent.run_headless("run the steps")

    assert result.returncode == 0, result.stderr
    assert sent and sent[0].returncode == 0, sent[0].stderr if sent else "never sent"
    turns = list(agent.model.turns)
    assert occurrences(turns, BODY) == 1  # handed over once
    seen = next(t for t in turns if t.context_contains(BODY))
    framed = next(text for text in seen.context_texts() if BODY in text)
    assert HEADER in framed and "from_session_id" not in framed, framed[:600]
    assert "from the operator (the person running these agents" in framed
    assert not any(c.name.endswith("read_my_messages") for t in turns for c in t.tool_calls())
    (thread,) = agent.thread_ids()
    assert Mailbox.open(Layout(agent.agentmail_home), thread).pending_count() == 0
