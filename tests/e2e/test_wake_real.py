"""Wake against the real clients: an idle Claude Code / Codex TUI in tmux is asked by
another agent (a real oxtail server driven over MCP by the test), the wake line arrives
in the peer's scripted model as a user turn, the model reads its mail and answers with
send_message(reply_to=...), and ask_peer returns the answer.

Every line the tests print starting with WAKE-STATS is a measurement for the record.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from oxtail_py import wake

from .harness import (
    Agent,
    ClaudeAgent,
    CodexAgent,
    ModelRequest,
    Pane,
    Reply,
    Scenario,
    Text,
    ToolCall,
    wait_until,
)
from .harness.clients import REPO

pytestmark = pytest.mark.e2e

WAKE_MARK = "oxtail: you have a message from"
LIST = ToolCall.mcp("oxtail", "list_project_sessions", {})
READ = ToolCall.mcp("oxtail", "read_my_messages", {})
_REQUEST_ID = re.compile(r'request_id\\*"\s*:\s*\\*"([0-9a-f]{16})')
_SENDER = re.compile(r'from_session_id\\*"\s*:\s*\\*"([0-9A-Za-z_-]+)')


def answer_for(request_id: str) -> str:
    return f"answer to {request_id}"


def peer_script(request: ModelRequest) -> Reply:
    """The asked peer's model: a wake line → read_my_messages → answer each request."""
    if request.ends_with_tool_result():
        calls = {c.call_id: c for c in request.tool_calls()}
        result = request.tool_results()[-1]
        call = calls.get(result.call_id)
        if call is not None and call.name.endswith("read_my_messages"):
            ids, senders = _REQUEST_ID.findall(result.output), _SENDER.findall(result.output)
            if ids and senders:
                args = {"target": senders[-1], "body": answer_for(ids[-1]), "reply_to": ids[-1]}
                return ToolCall.mcp("oxtail", "send_message", args)
            return Text(f"no request in my mail: {result.output[:200]}")
        return Text("done")
    last = request.last_user_text() or ""
    if "list please" in last:
        return LIST
    if WAKE_MARK in last:
        return READ
    return Text("ok")


class Asker:
    """Another agent: a real oxtail server (no client above it, no pane), over MCP."""

    def __init__(self, scenario: Scenario, project: Path, **env: str) -> None:
        self.session_id = str(uuid.uuid4())
        home = scenario.root / "asker-home"
        home.mkdir(exist_ok=True)
        self.layout_root = scenario.agentmail_home
        self.params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "oxtail_py", "serve"],
            cwd=project,
            env={
                "HOME": str(home),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(REPO),
                "AGENTMAIL_HOME": str(scenario.agentmail_home),
                "CLAUDE_CODE_SESSION_ID": self.session_id,
                "OXTAIL_TMUX_SOCKET": str(scenario.tmux.socket),
                **env,
            },
        )

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        async with Client(stdio_client(self.params), mode="legacy") as client:
            yield client

    def last_method(self, target_sid: str) -> str | None:
        path = self.layout_root / "wake" / target_sid / "last.json"
        try:
            return str(json.loads(path.read_text())["method"])
        except (OSError, ValueError, KeyError):
            return None


async def ask(client: Client, target: str, body: str, timeout_ms: int = 45_000) -> dict[str, Any]:
    result = await client.call_tool(
        "ask_peer", {"target": target, "body": body, "timeout_ms": timeout_ms}
    )
    assert not result.is_error and result.structured_content, result.content
    return dict(result.structured_content)


async def blocking(fn: Callable[[], Any]) -> Any:
    return await anyio.to_thread.run_sync(fn)


def _wake_turns(agent: Agent[Any]) -> list[ModelRequest]:
    return [
        r
        for r in agent.model.turns
        if not r.ends_with_tool_result() and WAKE_MARK in (r.last_user_text() or "")
    ]


def _stats(label: str, **values: Any) -> None:
    print(f"WAKE-STATS {label} " + " ".join(f"{k}={v}" for k, v in values.items()))


def _run_asks(
    agent: Agent[Any],
    asker: Asker,
    target: str,
    target_sid: str,
    rounds: int,
    label: str,
    expected_method: str,
    *,
    note: bool = True,
) -> None:
    """A note sent with wake='auto' (confirmed by proof alone: nobody answers a note),
    then `rounds` asks of the idle peer; each must be woken, answered and confirmed."""
    outcomes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []

    async def main() -> None:
        async with asker.client() as client:
            if note:
                started = time.monotonic()
                args = {"target": target, "body": "fyi: the build is green", "wake": "auto"}
                sent = await client.call_tool("send_message", args)
                assert not sent.is_error and sent.structured_content, sent.content
                elapsed = time.monotonic() - started
                notes.append({**sent.structured_content, "elapsed_s": elapsed})
                await blocking(lambda: agent.model.wait_for_request(_reads_mail, timeout=30))
                await blocking(agent.wait_idle)
            for n in range(rounds):
                started = time.monotonic()
                out = await ask(client, target, f"question {n}")
                out["elapsed_s"] = round(time.monotonic() - started, 2)
                out["method"] = asker.last_method(target_sid)
                outcomes.append(out)
                await blocking(agent.wait_idle)

    anyio.run(main)
    for sent in notes:
        _stats(label, note_wake_status=sent["wake_status"], send_ms=int(sent["elapsed_s"] * 1000))
        assert sent["wake_status"] == wake.CONFIRMED, sent
    for n, out in enumerate(outcomes):
        _stats(
            label,
            round=n,
            status=out["status"],
            wake_status=out["wake_status"],
            method=out["method"],
            waited_ms=out["waited_ms"],
        )
    for out in outcomes:
        assert out["status"] == "answered", out
        assert out["reply"]["body"] == answer_for(out["request_id"])
        assert out["wake_status"] == wake.CONFIRMED, out
        assert out["method"] == expected_method, out
    # Each wake reached the model as the user turn, once.
    woken = _wake_turns(agent)
    assert len(woken) == rounds + len(notes), [r.last_user_text() for r in woken]
    for request, sent in zip(woken, notes, strict=False):
        assert sent["message_id"] in (request.last_user_text() or "")
    for request, out in zip(woken[len(notes) :], outcomes, strict=True):
        assert f"reply_to={out['request_id']}" in (request.last_user_text() or "")


def _reads_mail(request: ModelRequest) -> bool:
    return any(c.name.endswith("read_my_messages") for c in request.tool_calls())


_HOOK_HEADER = re.compile(r"from_session_id=(\S+)[^\n]*?request_id=([0-9a-f]{16})")


def hooked_peer_script(request: ModelRequest) -> Reply:
    """peer_script for a Claude with our hooks: mail may already be in its context (the
    UserPromptSubmit or Stop hook put it there); answer that, else read the inbox."""
    if not request.ends_with_tool_result():
        answered = {
            str(c.arguments.get("reply_to"))
            for c in request.tool_calls()
            if c.name.endswith("send_message") and isinstance(c.arguments, dict)
        }
        pending = [
            (sender, rid)
            for text in request.context_texts()
            for sender, rid in _HOOK_HEADER.findall(text)
            if rid not in answered
        ]
        if pending:
            sender, rid = pending[-1]
            args = {"target": sender, "body": answer_for(rid), "reply_to": rid}
            return ToolCall.mcp("oxtail", "send_message", args)
    return slow_script(request)


def slow_script(request: ModelRequest) -> Reply:
    """peer_script, but a turn asked to be slow takes 3 s of "thinking"."""
    if not request.ends_with_tool_result() and "slow please" in (request.last_user_text() or ""):
        time.sleep(3)
        return Text("slow done")
    return peer_script(request)


def _codex_thread(agent: CodexAgent) -> str:
    """Prompt the Codex peer once: its model lists the sessions, so its server learns its
    thread id from `_meta.threadId` and the peer becomes addressable by it."""
    agent.prompt("list please")
    return agent.thread_ids()[-1]


def test_claude_tui_idle_is_woken_by_ask_peer_and_answers(scenario: Scenario) -> None:
    project = scenario.project()
    claude: ClaudeAgent = scenario.claude(script=peer_script)
    claude.start_tui()
    assert claude.pane is not None
    asker = Asker(scenario, project)
    sid = _wait_registered(scenario, "claude")
    _run_asks(claude, asker, claude.pane.session, sid, 3, "claude-tmux-paste", wake.PASTE)


def test_codex_tui_is_woken_by_codex_queue_through_its_daemon(scenario: Scenario) -> None:
    project = scenario.project()
    codex: CodexAgent = scenario.codex(script=peer_script, daemon_auto_start=None)
    started = time.monotonic()
    codex.start_tui()
    _stats("codex-daemon-start", seconds=round(time.monotonic() - started, 1))
    thread = _codex_thread(codex)
    asker = Asker(scenario, project)
    _run_asks(codex, asker, thread, thread, 3, "codex-queue-daemon", wake.QUEUE)


def test_codex_tui_without_daemon_is_woken_by_bracketed_paste(scenario: Scenario) -> None:
    project = scenario.project()
    codex: CodexAgent = scenario.codex(script=peer_script, daemon_auto_start=False)
    codex.start_tui()
    thread = _codex_thread(codex)
    asker = Asker(scenario, project, OXTAIL_WAKE_STRATEGY="tmux")
    _run_asks(codex, asker, thread, thread, 3, "codex-tmux-paste", wake.PASTE)


def test_codex_tui_without_daemon_takes_codex_queue_too(scenario: Scenario) -> None:
    # Without the daemon the TUI itself picks queued messages up, after 3-9 s.
    project = scenario.project()
    codex: CodexAgent = scenario.codex(script=peer_script, daemon_auto_start=False)
    codex.start_tui()
    thread = _codex_thread(codex)
    asker = Asker(scenario, project)
    _run_asks(codex, asker, thread, thread, 1, "codex-queue-no-daemon", wake.QUEUE, note=False)


def test_codex_composer_does_not_submit_typed_text_followed_at_once_by_enter(
    scenario: Scenario,
) -> None:
    """Regression guard for the Codex path: plain `send-keys -l` + immediate Enter is taken
    as a paste burst (the Enter becomes a newline); bracketed paste + Enter submits."""
    codex: CodexAgent = scenario.codex(script=peer_script, mcp=None)
    pane = codex.start_tui()
    tries = 3
    submitted = 0
    for n in range(tries):
        after = len(codex.model.requests)
        text = f"typed guard {n}"
        pane.tmux.run(
            "send-keys", "-t", pane.pane_id, "-l", text, ";", "send-keys", "-t", pane.pane_id,
            "Enter",
        )  # fmt: skip
        pane.wait_for_text(text)
        time.sleep(1.0)  # not being submitted takes a wait; a submit shows within ~0.1 s
        if any(r.is_turn for r in codex.model.requests[after:]):
            submitted += 1
        assert text in (_composer(pane) or ""), pane.capture()
        pane.send_keys("C-c")  # clear the composer
        wait_until(lambda: _composer(pane) == "", timeout=5, what="an empty composer")
    _stats("codex-keys-immediate-enter", tries=tries, submitted=submitted)
    assert submitted == 0
    # The same text by bracketed paste + Enter is submitted.
    codex.prompt("pasted guard")
    _stats("codex-paste-enter", tries=1, submitted=1)


def _composer(pane: Pane) -> str | None:
    """What the pane's input line holds, read as the wake reads it (styles: placeholders)."""
    return wake.composer_text(pane.tmux.run("capture-pane", "-p", "-e", "-t", pane.pane_id))


def _wait_registered(scenario: Scenario, client_type: str) -> str:
    """The session id of the one registered `client_type` server (read from the registry,
    as a test: the wake itself never trusts it for targeting)."""

    def find() -> str | None:
        for path in (scenario.agentmail_home / "sessions").glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text())
                client = data.get("client") or {}
                if client.get("type") == client_type and client.get("session_id"):
                    return str(client["session_id"])
        return None

    found: str = wait_until(find, timeout=20, what=f"a registered {client_type} server")
    return found


@pytest.mark.parametrize("peer", ["claude", "codex-daemon", "codex-tmux"])
def test_a_peer_mid_turn_without_hooks_gets_the_line_once(scenario: Scenario, peer: str) -> None:
    """No busy marker (no hooks installed): the line is typed/queued during a running turn.
    Claude queues it, Codex steers a paste into the turn or runs a queued line after it; a
    retry must never add a second copy."""
    project = scenario.project()
    agent: Agent[Any]
    env: dict[str, str] = {}
    if peer == "claude":
        agent = scenario.claude(script=slow_script)
        agent.start_tui()
        assert agent.pane is not None
        target = agent.pane.session
        _wait_registered(scenario, "claude")  # its MCP server starts after the TUI
    else:
        codex = scenario.codex(script=slow_script, daemon_auto_start=peer == "codex-daemon")
        codex.start_tui()
        target = _codex_thread(codex)
        agent = codex
        env = {"OXTAIL_WAKE_STRATEGY": "tmux"} if peer == "codex-tmux" else {}
    asker = Asker(scenario, project, **env)
    out: dict[str, Any] = {}

    async def main() -> None:
        async with asker.client() as client:
            after = len(agent.model.requests)
            agent.send("slow please")
            await blocking(
                lambda: agent.model.wait_for_request(
                    lambda r: "slow please" in (r.last_user_text() or ""), after=after
                )
            )
            started = time.monotonic()
            args = {"target": target, "body": "fyi while you work", "wake": "auto"}
            sent = await client.call_tool("send_message", args)
            assert not sent.is_error and sent.structured_content, sent.content
            out.update(sent.structured_content, ms=int((time.monotonic() - started) * 1000))
            await blocking(lambda: agent.model.wait_for_request(_reads_mail, timeout=30))
            await blocking(agent.wait_idle)

    anyio.run(main)
    _stats(f"{peer}-mid-turn", wake_status=out["wake_status"], send_ms=out["ms"])
    assert out["wake_status"] in (wake.CONFIRMED, wake.FIRED_UNCONFIRMED)
    last = agent.model.turns[-1]
    copies = [t for t in last.user_texts() if out["message_id"] in t]
    assert len(copies) == 1, last.user_texts()


INSTALL_HOOK = shlex.join([sys.executable, "-m", "oxtail_py", "install-hook"])


def test_claude_with_hooks_idle_is_woken_and_its_busy_marker_confirms(
    scenario: Scenario,
) -> None:
    """With our hooks, the wake's prompt makes UserPromptSubmit stamp `busy` (the proof)
    and hand the waiting request over as context; the model answers it at once."""
    project = scenario.project()
    claude = scenario.claude(script=hooked_peer_script, setup_cmds=[INSTALL_HOOK])
    claude.start_tui()
    sid = _wait_registered(scenario, "claude")
    asker = Asker(scenario, project)
    outcomes: list[dict[str, Any]] = []

    async def main() -> None:
        async with asker.client() as client:
            for n in range(2):
                outcomes.append(await ask(client, sid, f"hooked question {n}"))
                await blocking(claude.wait_idle)

    anyio.run(main)
    marker = (scenario.agentmail_home / "status" / sid).read_text()
    for n, out in enumerate(outcomes):
        _stats("claude-hooks-idle", round=n, wake_status=out["wake_status"], ms=out["waited_ms"])
        assert out["status"] == "answered" and out["wake_status"] == wake.CONFIRMED, out
        assert out["reply"]["body"] == answer_for(out["request_id"])
    assert marker == "idle"  # the Stop hook's, after the last turn
    assert len(_wake_turns(claude)) == 2


def test_claude_with_hooks_mid_turn_is_not_typed_into_its_stop_hook_delivers(
    scenario: Scenario,
) -> None:
    project = scenario.project()
    claude = scenario.claude(script=hooked_peer_script, setup_cmds=[INSTALL_HOOK])
    claude.start_tui()
    sid = _wait_registered(scenario, "claude")
    asker = Asker(scenario, project)
    out: dict[str, Any] = {}

    async def main() -> None:
        async with asker.client() as client:
            after = len(claude.model.requests)
            claude.send("slow please")
            await blocking(
                lambda: claude.model.wait_for_request(
                    lambda r: "slow please" in (r.last_user_text() or ""), after=after
                )
            )
            out.update(await ask(client, sid, "question while you work"))
            await blocking(claude.wait_idle)

    anyio.run(main)
    _stats("claude-hooks-mid-turn", wake_status=out["wake_status"], ms=out["waited_ms"])
    assert out["status"] == "answered" and out["wake_status"] == wake.SKIPPED_BUSY, out
    assert out["reply"]["body"] == answer_for(out["request_id"])
    assert _wake_turns(claude) == []  # nothing was typed: the Stop hook delivered
