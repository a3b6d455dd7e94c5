"""A real Codex (0.169.0) as a peer of other agents, with the hooks our installer wrote:

- a real Claude Code's ask_peer reaches a Codex in the middle of a long turn: the wake
  is `skipped_busy` (Codex's own hooks stamped it busy), nothing is typed into its pane,
  the request arrives as PostToolUse context, its answer (send_message reply_to) ends
  Claude's ask as `answered`;
- two Codex TUIs on the shared app-server daemon (the default), one CODEX_HOME: each
  model sees its own mail and never the other's (hooks identify by `session_id`; the
  daemon hands every hook the first TUI's TMUX_PANE).

Run: scripts/netns-run .venv/bin/pytest tests/e2e/test_codex_peer_real.py
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import threading
from typing import Any

import anyio
import psutil
import pytest

from oxtail_py import wake
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox

from .harness import (
    CodexAgent,
    ModelRequest,
    Pane,
    Reply,
    ResponsesRequest,
    Scenario,
    Text,
    ToolCall,
    wait_until,
)
from .test_wake_real import Asker  # a real oxtail server driven over MCP: another agent

pytestmark = pytest.mark.e2e

INSTALL_HOOK = shlex.join([sys.executable, "-m", "oxtail_py", "install-hook"])
LIST = ToolCall.mcp("oxtail", "list_project_sessions", {})
WAKE_MARK = "oxtail: you have a message from"
# A header line of our hook text: `--- message 1 of 1 · message_id=... from_session_id=...`
_HEADER = re.compile(r"from_session_id=(\S+)[^\n]*?request_id=([0-9a-f]{16})")
MAX_STEPS = 60  # a turn that never sees its mail gives up (and the test fails)


def shell(cmd: str) -> ToolCall:
    return ToolCall("exec_command", {"cmd": cmd})


def answer_for(request_id: str) -> str:
    return f"CODEX-ANSWER to {request_id}"


def tool_json(request: ModelRequest, tool: str) -> dict[str, Any]:
    """The structured result of `tool` as the client handed it to the model."""
    found = request.result_of(tool)
    assert found is not None, f"no result of {tool} in request #{request.index}"
    assert not found.is_error, found.output
    text = found.output
    if text.startswith("Wall time: "):  # Codex's prefix
        text = text.split("Output:\n", 1)[1]
    data: dict[str, Any] = json.loads(text)
    return data


def _shell_calls(request: ModelRequest) -> int:
    return sum(1 for c in request.tool_calls() if c.name == "exec_command")


def _in_turn(request: ModelRequest, prompt: str) -> bool:
    return prompt in (request.last_user_text() or "")


def _list_then_stop(request: ModelRequest) -> Reply | None:
    """The first turn of a thread: one oxtail call, so its server learns the thread id
    from `_meta.threadId` and the thread becomes addressable."""
    if not _in_turn(request, "list please"):
        return None
    return Text("listed") if request.ends_with_tool_result() else LIST


# -- 1: Claude asks a busy Codex -----------------------------------------------------------


def test_claude_ask_to_a_busy_codex_is_delivered_mid_turn_skipped_busy_and_untyped(
    scenario: Scenario,
) -> None:
    question = "CLAUDE-QUESTION which branch holds the parser?"
    answered = threading.Event()

    def codex_script(request: ResponsesRequest) -> Reply:
        first = _list_then_stop(request)
        if first is not None:
            return first
        if not _in_turn(request, "work please"):
            return Text("ok")
        replied = {str(c.arguments.get("reply_to")) for c in request.tool_calls()
                   if c.name == "send_message" and isinstance(c.arguments, dict)}
        pending = [(sender, rid) for text in request.context_texts()
                   for sender, rid in _HEADER.findall(text) if rid not in replied]
        if pending:
            sender, rid = pending[-1]
            args = {"target": sender, "body": answer_for(rid), "reply_to": rid}
            return ToolCall.mcp("oxtail", "send_message", args)
        if replied:
            answered.set()
            return Text("answered the peer, work done")
        if _shell_calls(request) >= MAX_STEPS:
            return Text("gave up waiting")
        return shell("sleep 1")  # a long turn: one-second steps until the question comes

    codex = scenario.codex(script=codex_script, setup_cmds=[INSTALL_HOOK])
    codex.start_tui()
    assert "review" not in codex.screen().lower()  # trusted by the installer: no dialog
    codex.prompt("list please")
    (thread,) = codex.thread_ids()
    layout = Layout(scenario.agentmail_home)
    wait_until(lambda: layout.status_file(thread).read_text() == "idle", timeout=15,
               what="the first turn's Stop hook stamping idle")

    def claude_script(request: ModelRequest) -> Reply:
        if request.ends_with_tool_result():
            return Text("asked")
        args = {"target": thread, "body": question, "timeout_ms": 90_000}
        return ToolCall.mcp("oxtail", "ask_peer", args)

    claude = scenario.claude(script=claude_script)

    # Codex starts a long turn; once it is inside its first shell call it is busy.
    after = len(codex.model.requests)
    codex.send("work please")
    codex.model.wait_for_request(
        lambda r: _in_turn(r, "work please") and r.ends_with_tool_result(), after=after,
        timeout=60, what="the Codex turn inside its shell calls")
    assert layout.status_file(thread).read_text() == "busy"
    screen_before = codex.screen()

    result = claude.run_headless("ask the codex agent", timeout=150)

    assert result.returncode == 0, result.stderr
    out = tool_json(claude.model.turns[-1], "mcp__oxtail__ask_peer")
    print(f"CODEX-PEER-STATS ask-busy-codex waited_ms={out.get('waited_ms')} "
          f"wake_status={out.get('wake_status')}")
    assert out["status"] == "answered", out
    assert out["wake_status"] == wake.SKIPPED_BUSY, out
    assert out["reply"]["body"] == answer_for(out["request_id"])
    assert out["reply"]["from_session_id"] == thread
    assert answered.wait(30)
    codex.wait_idle(timeout=60)

    turn = [r for r in codex.model.turns if _in_turn(r, "work please")]
    # The request reached the Codex model mid-turn, after a shell call, by PostToolUse:
    # its first appearance is a developer message between a function_call and its output.
    first = next(r for r in turn if r.context_contains(question))
    assert first.ends_with_tool_result() and _shell_calls(first) >= 1
    at = [i for i, item in enumerate(first.items) if item.get("role") == "developer"
          and question in json.dumps(item)]
    assert len(at) == 1 and first.items[at[0] - 1].get("type") == "function_call"
    # ... once: later requests carry it only as history.
    seen = 0
    for request in turn:
        seen = max(seen, sum(json.dumps(i).count(question) for i in request.items
                             if i.get("role") == "developer"))
    assert seen == 1
    # Nothing was typed: no wake line reached the model, the pane never showed one, and
    # no wake was recorded for the thread.
    assert not any(WAKE_MARK in t for r in codex.model.turns for t in r.user_texts())
    assert WAKE_MARK not in screen_before and WAKE_MARK not in codex.screen()
    assert not (scenario.agentmail_home / "wake" / thread / "last.json").exists()
    assert not any(c.name.endswith("read_my_messages")
                   for r in codex.model.turns for c in r.tool_calls())
    assert Mailbox.open(layout, thread).pending_count() == 0
    wait_until(lambda: layout.status_file(thread).read_text() == "idle", timeout=15,
               what="the thread stamped idle by its Stop hook")


# -- 2: two Codex TUIs on the shared daemon ------------------------------------------------


def _second_tui(agent: CodexAgent, scenario: Scenario) -> Pane:
    """Another TUI of the same agent: same HOME (so the same CODEX_HOME and app-server
    daemon), same project, its own tmux session. Teardown finds it by the marker."""
    pane = scenario.tmux.new_pane(agent.tui_argv(()), cwd=agent.project, env=agent.env,
                                  name=f"codex2-{agent.marker[:6]}")
    wait_until(lambda: agent.is_idle(pane.capture()), timeout=60, what="second Codex TUI idle",
               describe=pane.capture)
    return pane


def _assert_served_by_one_daemon(agent: CodexAgent) -> None:
    """The point of the test: both threads' MCP servers hang off one `codex app-server`
    daemon, not off their TUIs."""
    servers = [p for p in agent.processes() if p.cmdline()[1:4] == ["-m", "oxtail_py", "serve"]]
    assert len(servers) == 2, [p.cmdline() for p in agent.processes()]
    (parent,) = {p.ppid() for p in servers}
    assert "app-server" in psutil.Process(parent).cmdline()


def _thread_of(agent: CodexAgent, prompt: str) -> str:
    request = agent.model.wait_for_request(lambda r: _in_turn(r, prompt), timeout=60,
                                           what=f"a turn of {prompt!r}")
    assert request.session_id is not None
    return request.session_id


def test_two_codex_tuis_on_the_shared_daemon_each_get_only_their_own_mail(
    scenario: Scenario,
) -> None:
    bodies: dict[str, str] = {}  # thread id -> the body sent to it
    mail_seen: dict[str, int] = {}  # thread -> shell calls done when its mail first showed

    def script(request: ResponsesRequest) -> Reply:
        first = _list_then_stop(request)
        if first is not None:
            return first
        if not _in_turn(request, "work please"):
            return Text("ok")
        thread = request.session_id
        assert thread is not None
        done = _shell_calls(request)
        if thread not in mail_seen and any(request.context_contains(b) for b in bodies.values()):
            mail_seen[thread] = done
        # Two more steps after the mail showed: a wrongly routed copy would show there too.
        if (thread in mail_seen and done >= mail_seen[thread] + 2) or done >= MAX_STEPS:
            return Text("work done")
        return shell("sleep 0.5")

    codex = scenario.codex(script=script, daemon_auto_start=None, setup_cmds=[INSTALL_HOOK])
    one = codex.start_tui()
    two = _second_tui(codex, scenario)
    codex.prompt("list please one")
    one_thread = _thread_of(codex, "list please one")
    codex.wait_idle()
    after = len(codex.model.requests)
    two.paste_line("list please two")
    two_thread = codex.model.wait_for_request(
        lambda r: _in_turn(r, "list please two") and r.ends_with_tool_result(), after=after,
        timeout=60, what="the second TUI's first turn").session_id
    assert two_thread is not None and two_thread != one_thread
    _assert_served_by_one_daemon(codex)
    wait_until(lambda: codex.is_idle(two.capture()), timeout=60, what="second TUI idle")

    # Both threads start a long turn; both are busy inside shell calls.
    after = len(codex.model.requests)
    one.paste_line("work please one")
    two.paste_line("work please two")
    for prompt in ("work please one", "work please two"):
        codex.model.wait_for_request(lambda r, p=prompt: _in_turn(r, p) and _shell_calls(r) >= 1,
                                     after=after, timeout=60, what=f"{prompt} mid-turn")
    layout = Layout(scenario.agentmail_home)
    assert layout.status_file(one_thread).read_text() == "busy"
    assert layout.status_file(two_thread).read_text() == "busy"

    # A peer (a real oxtail server, as a Claude session) sends one message to each thread.
    asker = Asker(scenario, codex.project)
    bodies[one_thread] = "MAIL-FOR-ONE only the first TUI may see this"
    bodies[two_thread] = "MAIL-FOR-TWO only the second TUI may see this"
    receipts: dict[str, dict[str, Any]] = {}

    async def send_both() -> None:
        async with asker.client() as client:
            for thread, body in bodies.items():
                sent = await client.call_tool(
                    "send_message", {"target": thread, "body": body, "wake": "auto"})
                assert not sent.is_error and sent.structured_content, sent.content
                receipts[thread] = dict(sent.structured_content)

    anyio.run(send_both)
    for thread in (one_thread, two_thread):
        wait_until(lambda t=thread: t in mail_seen, timeout=60, what=f"mail seen by {thread}")
    for pane in (one, two):
        wait_until(lambda p=pane: codex.is_idle(p.capture()), timeout=60, what="TUIs idle",
                   describe=pane.capture)

    for thread, body in bodies.items():
        assert receipts[thread]["target_session_id"] == thread
        assert receipts[thread]["wake_status"] == wake.SKIPPED_BUSY, receipts[thread]
        other = next(b for t, b in bodies.items() if t != thread)
        mine = [r for r in codex.model.turns if r.session_id == thread]
        assert mine and any(r.context_contains(body) for r in mine)
        assert not any(r.context_contains(other) for r in mine), f"{thread} saw the other's mail"
        # Delivered by the hooks mid-turn (no read_my_messages), as one developer message.
        assert not any(c.name.endswith("read_my_messages") for r in mine for c in r.tool_calls())
        last = mine[-1]
        assert sum(json.dumps(i).count(body) for i in last.items
                   if i.get("role") == "developer") == 1
        assert Mailbox.open(layout, thread).pending_count() == 0
        # The Stop hook may still be running when the TUI already draws its idle prompt.
        wait_until(lambda t=thread: layout.status_file(t).read_text() == "idle", timeout=15,
                   what=f"{thread} stamped idle by its Stop hook",
                   describe=lambda t=thread: layout.status_file(t).read_text())
    assert not any(WAKE_MARK in t for r in codex.model.turns for t in r.user_texts())
