"""Obligations and receipts against the real clients (scripted models, loopback only):

- Claude delegates to Codex with action_required; Codex's model calls my_open_work, then
  complete_work; the idle Claude is woken, receives the completion, and message_status
  says the task was delivered and the work is done.
- Codex answers an ask with reply_to_message, and the ask returns it.
- A message to a Claude that exited is kept, and delivered after `claude --resume` of
  that session.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import pytest

from .harness import ModelRequest, Reply, Scenario, Text, ToolCall, wait_until
from .test_codex_delivery_real import install_hooks
from .test_scenarios import mcp_for, session_of, tool_json
from .test_wake_real import WAKE_MARK, Asker, _codex_thread, ask, blocking

pytestmark = pytest.mark.e2e

TASK = "TASK-4411: count the lines of README.md and report"
RESULT = "RESULT-4411: README.md has 149 lines"
LIST = "mcp__oxtail__list_project_sessions"
SEND = "mcp__oxtail__send_message"
READ = "mcp__oxtail__read_my_messages"
STATUS = "mcp__oxtail__message_status"
OPEN = "mcp__oxtail__my_open_work"
COMPLETE = "mcp__oxtail__complete_work"
_MESSAGE_ID = re.compile(r'message_id\\*"\s*:\s*\\*"([0-9a-f]{16})')


def mcp(tool: str, arguments: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall.mcp("oxtail", tool, arguments)


def _last_call(request: ModelRequest) -> str:
    calls = {c.call_id: c.name for c in request.tool_calls()}
    results = request.tool_results()
    return calls.get(results[-1].call_id, "") if results else ""


def test_claude_delegates_to_codex_which_completes_and_claude_is_told(
    scenario: Scenario,
) -> None:
    def claude_script(request: ModelRequest) -> Reply:
        last = request.last_user_text() or ""
        if not request.ends_with_tool_result():
            if WAKE_MARK in last:
                return mcp("read_my_messages")
            return mcp("list_project_sessions") if "delegate" in last else Text("ok")
        called = _last_call(request)
        if called.endswith("list_project_sessions"):
            rows = tool_json(request, LIST)["sessions"]
            (codex_row,) = [r for r in rows if r["client_type"] == "codex"]
            return mcp("send_message", {"target": codex_row["client_session_id"], "body": TASK,
                                        "action_required": True})
        if called.endswith("read_my_messages"):
            task_id = tool_json(request, SEND)["message_id"]
            return mcp("message_status", {"message_id": task_id})
        return Text("noted")

    def codex_script(request: ModelRequest) -> Reply:
        last = request.last_user_text() or ""
        if not request.ends_with_tool_result():
            if "list please" in last:
                return mcp("list_project_sessions")
            return mcp("my_open_work") if "open work" in last else Text("ok")
        if _last_call(request).endswith("my_open_work"):
            (item,) = tool_json(request, OPEN)["work"]
            return mcp("complete_work", {"message_id": item["message_id"], "body": RESULT})
        return Text("done")

    codex = scenario.codex(script=codex_script, mcp=mcp_for(scenario))
    install_hooks(codex)  # Codex's own hooks hand the task over
    claude = scenario.claude(script=claude_script, mcp=mcp_for(scenario))
    claude.start_tui(wait_idle=False)
    codex.start_tui(wait_idle=False)
    claude.wait_idle(timeout=45)
    codex.wait_idle(timeout=45)
    thread = _codex_thread(codex)

    claude.prompt("delegate the line count to codex")
    claude_session = session_of(claude.model.turns[0])
    sent = tool_json(claude.model.turns[-1], SEND)
    assert sent["target_session_id"] == thread and sent["action_required"] is True
    task_id = sent["message_id"]

    codex.prompt("check your open work")
    owed = tool_json(next(r for r in codex.model.turns if r.result_of(OPEN)), OPEN)
    assert [(w["message_id"], w["requester_session_id"]) for w in owed["work"]] == [
        (task_id, claude_session)
    ]
    done = tool_json(codex.model.turns[-1], COMPLETE)
    assert done["state"] == "done" and done["sent_message_id"]
    # The task reached Codex's model as hook context.
    assert any(TASK in json.dumps(r.items) for r in codex.model.turns)

    # complete_work woke the idle Claude; its model reads the result and asks the status.
    final = claude.model.wait_for_request(
        lambda r: r.result_of(STATUS) is not None, timeout=60, what="Claude's message_status"
    )
    inbox = tool_json(final, READ)
    (result,) = inbox["messages"]
    assert (result["body"], result["reply_to"]) == (RESULT, task_id)
    assert result["from_session_id"] == thread
    assert result["message_id"] == done["sent_message_id"]
    status = tool_json(final, STATUS)
    assert status["status"] == "delivered" and status["delivered_to_session_id"] == thread
    # Codex's UserPromptSubmit hook handed the task over with the prompt of that turn.
    assert status["delivered_via"] == "hook" and status["delivered_event"] == "userpromptsubmit"
    assert status["work"]["state"] == "done"
    assert status["work"]["result_message_id"] == done["sent_message_id"]


def test_codex_answers_an_ask_with_reply_to_message(scenario: Scenario) -> None:
    answer = "ANSWER-7733: the port is 8123"

    def codex_script(request: ModelRequest) -> Reply:
        last = request.last_user_text() or ""
        if not request.ends_with_tool_result():
            if "list please" in last:
                return mcp("list_project_sessions")
            return mcp("read_my_messages") if WAKE_MARK in last else Text("ok")
        if _last_call(request).endswith("read_my_messages"):
            ids = _MESSAGE_ID.findall(request.tool_results()[-1].output)
            return mcp("reply_to_message", {"message_id": ids[-1], "body": answer})
        return Text("answered")

    codex = scenario.codex(script=codex_script, daemon_auto_start=None)
    codex.start_tui()
    thread = _codex_thread(codex)
    asker = Asker(scenario, scenario.project())
    outcome: dict[str, Any] = {}

    async def main() -> None:
        async with asker.client() as client:
            outcome.update(await ask(client, thread, "which port does the dev server use?"))
            await blocking(codex.wait_idle)

    anyio.run(main)
    assert outcome["status"] == "answered", outcome
    assert outcome["reply"]["body"] == answer
    assert outcome["reply"]["reply_to"] == outcome["request_id"]
    assert outcome["reply"]["from_session_id"] == thread
    replied = tool_json(codex.model.turns[-1], "mcp__oxtail__reply_to_message")
    assert replied["answered_waiting_ask"] is True


def test_mail_to_an_exited_claude_is_delivered_after_claude_resume(scenario: Scenario) -> None:
    note = "NOTE-5150: the staging db was reset while you were away"

    def script(request: ModelRequest) -> Reply:
        last = request.last_user_text() or ""
        if not request.ends_with_tool_result():
            return mcp("read_my_messages") if "any mail" in last else Text("hello")
        return Text("read it")

    claude = scenario.claude(script=script, mcp=mcp_for(scenario))
    first = claude.run_headless("say hello")
    assert first.returncode == 0, first.stderr
    session = session_of(claude.model.turns[0])
    # Gone: no live server holds the session now.
    wait_until(
        lambda: not list((scenario.agentmail_home / "sessions").glob("*.json")),
        timeout=20, what="the exited Claude's server to unregister",
    )
    # The sender shares the user's HOME, where Claude's transcript says where it ran.
    asker = Asker(scenario, scenario.project(), HOME=str(claude.home))
    state: dict[str, Any] = {}

    async def send_and_check() -> None:
        async with asker.client() as client:
            sent = await client.call_tool("send_message", {"target": session, "body": note})
            assert not sent.is_error, sent.content
            state["sent"] = dict(sent.structured_content or {})
            status = await client.call_tool(
                "message_status", {"message_id": state["sent"]["message_id"]}
            )
            state["before"] = dict(status.structured_content or {})

    anyio.run(send_and_check)
    assert state["sent"]["recipient_offline"] is True
    assert state["before"]["status"] == "undeliverable" and state["before"]["gone_since"]

    resumed = claude.run_headless("any mail for me?", args=["--resume", session])
    assert resumed.returncode == 0, resumed.stderr
    last = claude.model.turns[-1]
    assert session_of(last) == session  # the same session came back
    inbox = tool_json(last, READ)
    assert [m["body"] for m in inbox["messages"]] == [note]

    async def status_after() -> None:
        async with asker.client() as client:
            status = await client.call_tool(
                "message_status", {"message_id": state["sent"]["message_id"]}
            )
            state["after"] = dict(status.structured_content or {})

    anyio.run(status_after)
    assert state["after"]["status"] == "delivered", state["after"]
    assert state["after"]["delivered_to_session_id"] == session
    assert state["after"]["delivered_via"] == "read_my_messages"
