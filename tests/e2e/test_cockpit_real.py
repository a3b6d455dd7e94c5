"""The operator's `oxtail-py send --wake` reaching a real Claude Code TUI: the wake line
starts a turn, the UserPromptSubmit hook hands the message over, and the model sees it
framed as coming from the person (from=operator), not from a peer."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox

from .harness import ModelRequest, Reply, Scenario, Text
from .test_scenarios import INSTALL_HOOK, mcp_for
from .test_wake_real import _wait_registered

pytestmark = pytest.mark.e2e

BODY = "operator here: pause the refactor and rebase on main"
OPERATOR_HEADER = re.compile(
    r"--- message 1 of 1 · message_id=([0-9a-f]{16}) · "
    r"from=operator \(the person running these agents, not a peer\)"
)


def script(request: ModelRequest) -> Reply:
    if request.context_contains(BODY):
        return Text("ack: pausing for the operator")
    return Text("idle")


def test_operator_send_reaches_a_real_claude_tui_as_from_the_person(scenario: Scenario) -> None:
    project = scenario.project()
    claude = scenario.claude(script=script, mcp=mcp_for(scenario), setup_cmds=[INSTALL_HOOK])
    claude.start_tui()
    sid = _wait_registered(scenario, "claude")
    env = {
        **os.environ,
        "AGENTMAIL_HOME": str(scenario.agentmail_home),
        "OXTAIL_TMUX_SOCKET": str(scenario.tmux.socket),
    }
    before = len(claude.model.requests)
    sent = subprocess.run(
        [sys.executable, "-m", "oxtail_py", "send", sid, BODY, "--wake"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert sent.returncode == 0, sent.stderr
    message_id = re.search(r"sent ([0-9a-f]{16}) to", sent.stdout)
    assert message_id, sent.stdout
    assert "wake: confirmed" in sent.stdout, sent.stdout

    seen = claude.model.wait_for_request(lambda r: r.context_contains(BODY), after=before,
                                         timeout=60)
    framed = [t for t in seen.context_texts() if BODY in t]
    assert framed, seen.context_texts()
    text = framed[0]
    header = OPERATOR_HEADER.search(text)
    assert header and header.group(1) == message_id.group(1), text[:600]
    assert "from the operator (the person running these agents" in text
    assert "from_session_id" not in text  # not dressed as a peer
    assert f'body: "{BODY}"' in text
    claude.wait_idle()
    box = Mailbox.existing(Layout(scenario.agentmail_home), sid)
    assert box is not None and box.pending_count() == 0  # handed over once, not left behind
