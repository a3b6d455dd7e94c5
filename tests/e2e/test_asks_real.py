"""Durable asks, would-deadlock and broadcast against the real clients (scripted models).

- An idle Claude Code asker whose ask_peer timed out gets a new turn carrying the late
  reply, with no human prompt: its own oxtail server (selfheal.py) wakes it. With our
  hooks the reply arrives as context marked late_reply_to_ask; an idle Codex asker too.
- A peer asks Claude while Claude's model asks that peer back: the second ask is refused
  with `would-deadlock` in under a second, and the first still gets its answer.
- A broadcast to @codex reaches each Codex once.

The other agent is a real oxtail server (no client above it) driven over MCP by the test.
Every line starting with ASKS-STATS is a measurement for the record.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from .harness import ModelRequest, Reply, Scenario, Text, ToolCall
from .test_wake_real import (
    INSTALL_HOOK,
    READ,
    WAKE_MARK,
    Asker,
    _codex_thread,
    _wait_registered,
    blocking,
)

pytestmark = pytest.mark.e2e

_RID = re.compile(r'request_id\\*"\s*:\s*\\*"([0-9a-f]{16})')
_SENDER = re.compile(r'from_session_id\\*"\s*:\s*\\*"([0-9A-Za-z_-]+)')
_LATE = re.compile(r'late_reply_to_ask\\*"\s*:\s*\\*"([0-9a-f]{16})')


def _stats(label: str, **values: Any) -> None:
    print(f"ASKS-STATS {label} " + " ".join(f"{k}={v}" for k, v in values.items()))


def _last_result(request: ModelRequest) -> tuple[str, str] | None:
    """(tool name, output) of the tool result this request ends with."""
    if not request.ends_with_tool_result():
        return None
    calls = {c.call_id: c for c in request.tool_calls()}
    result = request.tool_results()[-1]
    call = calls.get(result.call_id)
    return (call.name if call else "", result.output)


def _tool_seconds(transcript: Path, tool: str) -> float:
    """Seconds between the tool_use of the last `tool` call and its tool_result, from the
    timestamps Claude Code writes on each transcript entry."""
    used: dict[str, float] = {}
    took: float | None = None
    for line in transcript.read_text().splitlines():
        entry = json.loads(line)
        content = (entry.get("message") or {}).get("content")
        stamp = entry.get("timestamp")
        if not isinstance(content, list) or not isinstance(stamp, str):
            continue
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        for block in content:
            if block.get("type") == "tool_use" and str(block.get("name", "")).endswith(tool):
                used[block["id"]] = at
            elif block.get("type") == "tool_result" and block.get("tool_use_id") in used:
                took = at - used[block["tool_use_id"]]
    assert took is not None, f"no {tool} call in {transcript}"
    return round(took, 3)


def test_an_idle_claude_asker_gets_a_new_turn_carrying_the_late_reply(
    scenario: Scenario,
) -> None:
    project = scenario.project()
    peer = Asker(scenario, project)

    def script(request: ModelRequest) -> Reply:
        done = _last_result(request)
        if done is not None:
            name, output = done
            if name.endswith("ask_peer"):
                return Text("the ask timed out; I will carry on")
            return Text(f"read: {output[:400]}")
        last = request.last_user_text() or ""
        if "ask the peer" in last:
            args = {"target": peer.session_id, "body": "which port?", "timeout_ms": 1500,
                    "wake": "off"}  # fmt: skip
            return ToolCall.mcp("oxtail", "ask_peer", args)
        if WAKE_MARK in last:
            return READ
        return Text("ok")

    claude = scenario.claude(script=script)
    claude.start_tui()
    sid = _wait_registered(scenario, "claude")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with peer.client() as client:
            await blocking(lambda: claude.prompt("ask the peer"))  # the only human prompt
            asked = next(
                r for r in reversed(claude.model.requests)
                if (d := _last_result(r)) and d[0].endswith("ask_peer")
            )  # fmt: skip
            output = asked.tool_results()[-1].output
            assert '"timeout"' in output or "timeout" in output, output
            rid = _RID.findall(output)[0]
            after = len(claude.model.requests)
            started = time.monotonic()
            args = {"target": sid, "body": "port 8080", "reply_to": rid, "wake": "off"}
            sent = await client.call_tool("send_message", args)
            assert not sent.is_error and sent.structured_content, sent.content
            woken = await blocking(
                lambda: claude.model.wait_for_request(
                    lambda r: WAKE_MARK in (r.last_user_text() or ""), after=after, timeout=30
                )
            )
            out["wake_s"] = round(time.monotonic() - started, 2)
            out["wake_line"] = woken.last_user_text()
            read = await blocking(
                lambda: claude.model.wait_for_request(
                    lambda r: bool((d := _last_result(r)) and d[0].endswith("read_my_messages")),
                    after=after,
                    timeout=30,
                )
            )
            out["read"] = read.tool_results()[-1].output
            out["rid"] = rid
            out["reply_id"] = sent.structured_content["message_id"]
            await blocking(claude.wait_idle)

    anyio.run(main)
    _stats("late-reply-wake", seconds=out["wake_s"])
    assert out["reply_id"] in out["wake_line"]
    assert "port 8080" in out["read"]
    assert _LATE.findall(out["read"]) == [out["rid"]]
    prompts = [t for r in claude.model.turns for t in r.user_texts() if "ask the peer" in t]
    assert prompts and all("ask the peer" in t for t in prompts)  # one human prompt, kept
    outcomes = json.loads(
        (scenario.agentmail_home / "receipts" / f"{out['reply_id']}.wake.json").read_text()
    )
    assert [(o["by"], o["status"]) for o in outcomes] == [("self-heal", "confirmed")]


def test_with_hooks_the_late_reply_arrives_marked_in_the_woken_turns_context(
    scenario: Scenario,
) -> None:
    """With our hooks installed, the wake's prompt makes UserPromptSubmit hand the late
    reply over as context, its header carrying late_reply_to_ask; the ledger records it."""
    project = scenario.project()
    peer = Asker(scenario, project)

    def script(request: ModelRequest) -> Reply:
        if request.ends_with_tool_result():
            return Text("the ask timed out; I will carry on")
        last = request.last_user_text() or ""
        if "ask the peer" in last:
            args = {"target": peer.session_id, "body": "which port?", "timeout_ms": 1500,
                    "wake": "off"}  # fmt: skip
            return ToolCall.mcp("oxtail", "ask_peer", args)
        return Text("noted")

    claude = scenario.claude(script=script, setup_cmds=[INSTALL_HOOK])
    claude.start_tui()
    sid = _wait_registered(scenario, "claude")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with peer.client() as client:
            await blocking(lambda: claude.prompt("ask the peer"))
            asked = next(
                r for r in reversed(claude.model.requests)
                if (d := _last_result(r)) and d[0].endswith("ask_peer")
            )  # fmt: skip
            rid = _RID.findall(asked.tool_results()[-1].output)[0]
            await blocking(claude.wait_idle)  # its Stop hook marks it idle
            after = len(claude.model.requests)
            args = {"target": sid, "body": "port 8080", "reply_to": rid}
            sent = await client.call_tool("send_message", args)
            assert not sent.is_error and sent.structured_content, sent.content
            woken = await blocking(
                lambda: claude.model.wait_for_request(
                    lambda r: WAKE_MARK in (r.last_user_text() or ""), after=after, timeout=30
                )
            )
            out.update(rid=rid, context="\n".join(woken.context_texts()))
            await blocking(claude.wait_idle)

    anyio.run(main)
    assert f"late_reply_to_ask={out['rid']}" in out["context"], out["context"][:2000]
    assert "port 8080" in out["context"]
    record = json.loads(
        (scenario.agentmail_home / "asks" / sid / f"{out['rid']}.json").read_text()
    )
    assert record["state"] == "late-answered"


def test_an_idle_codex_asker_gets_a_new_turn_carrying_the_late_reply(scenario: Scenario) -> None:
    project = scenario.project()
    peer = Asker(scenario, project)

    def script(request: ModelRequest) -> Reply:
        done = _last_result(request)
        if done is not None:
            name, output = done
            if name.endswith("ask_peer"):
                return Text("the ask timed out; I will carry on")
            return Text(f"read: {output[:400]}")
        last = request.last_user_text() or ""
        if "ask the peer" in last:
            args = {"target": peer.session_id, "body": "which port?", "timeout_ms": 1500,
                    "wake": "off"}  # fmt: skip
            return ToolCall.mcp("oxtail", "ask_peer", args)
        if WAKE_MARK in last:
            return READ
        return Text("ok")

    codex = scenario.codex(script=script, daemon_auto_start=False)
    codex.start_tui()
    out: dict[str, Any] = {}

    async def main() -> None:
        async with peer.client() as client:
            await blocking(lambda: codex.prompt("ask the peer"))
            thread = codex.thread_ids()[-1]
            asked = next(
                r for r in reversed(codex.model.requests)
                if (d := _last_result(r)) and d[0].endswith("ask_peer")
            )  # fmt: skip
            rid = _RID.findall(asked.tool_results()[-1].output)[0]
            await blocking(codex.wait_idle)
            after = len(codex.model.requests)
            args = {"target": thread, "body": "port 8080", "reply_to": rid}
            sent = await client.call_tool("send_message", args)
            assert not sent.is_error and sent.structured_content, sent.content
            read = await blocking(
                lambda: codex.model.wait_for_request(
                    lambda r: bool((d := _last_result(r)) and d[0].endswith("read_my_messages")),
                    after=after,
                    timeout=60,
                )
            )
            out.update(rid=rid, read=read.tool_results()[-1].output)
            await blocking(codex.wait_idle)

    anyio.run(main)
    assert "port 8080" in out["read"]
    assert _LATE.findall(out["read"]) == [out["rid"]]


def test_a_crossing_ask_from_claude_is_refused_with_would_deadlock_in_under_a_second(
    scenario: Scenario,
) -> None:
    project = scenario.project()
    timing: dict[str, float] = {}
    refused: dict[str, str] = {}

    def script(request: ModelRequest) -> Reply:
        done = _last_result(request)
        if done is not None:
            name, output = done
            if name.endswith("read_my_messages"):
                rid, sender = _RID.findall(output)[-1], _SENDER.findall(output)[-1]
                refused.update(rid=rid, sender=sender)
                timing["asked"] = time.monotonic()
                args = {"target": sender, "body": "which branch do you mean?",
                        "timeout_ms": 30_000, "wake": "off"}  # fmt: skip
                return ToolCall.mcp("oxtail", "ask_peer", args)
            if name.endswith("ask_peer"):
                timing["refused"] = time.monotonic()
                refused["output"] = output
                args = {"target": refused["sender"], "body": "main, I assume",
                        "reply_to": refused["rid"]}  # fmt: skip
                return ToolCall.mcp("oxtail", "send_message", args)
            return Text("answered")
        if WAKE_MARK in (request.last_user_text() or ""):
            return READ
        return Text("ok")

    claude = scenario.claude(script=script)
    claude.start_tui()
    sid = _wait_registered(scenario, "claude")
    peer = Asker(scenario, project)
    out: dict[str, Any] = {}

    async def main() -> None:
        async with peer.client() as client:
            result = await client.call_tool(
                "ask_peer",
                {"target": sid, "body": "can you rebase the branch?", "timeout_ms": 60_000},
            )
            assert not result.is_error and result.structured_content, result.content
            out.update(result.structured_content)
            await blocking(claude.wait_idle)

    anyio.run(main)
    model_s = timing["refused"] - timing["asked"]
    tool_s = _tool_seconds(claude.transcripts()[-1], "ask_peer")
    _stats("would-deadlock", tool_s=tool_s, model_round_s=round(model_s, 3),
           ask_wake=out["wake_status"])  # fmt: skip
    assert "would-deadlock" in refused["output"], refused["output"]
    # The call as Claude Code recorded it (tool_use -> tool_result); the model-side figure
    # adds the client's own turnaround, and the machine is shared.
    assert tool_s < 1.0
    assert out["status"] == "answered" and out["reply"]["body"] == "main, I assume"


def test_a_broadcast_to_at_codex_reaches_each_codex_once(scenario: Scenario) -> None:
    project = scenario.project()
    body = "broadcast: the schema changed, rebase before pushing"

    def script(request: ModelRequest) -> Reply:
        done = _last_result(request)
        if done is not None:
            return Text("noted")
        last = request.last_user_text() or ""
        if "list please" in last:
            return ToolCall.mcp("oxtail", "list_project_sessions", {})
        if WAKE_MARK in last:
            return READ
        return Text("ok")

    codexes = [scenario.codex(script=script, daemon_auto_start=False) for _ in range(2)]
    threads = []
    for codex in codexes:
        codex.start_tui()
        threads.append(_codex_thread(codex))
    sender = Asker(scenario, project)
    out: dict[str, Any] = {}

    async def main() -> None:
        async with sender.client() as client:
            sent = await client.call_tool(
                "send_message", {"target": "@codex", "body": body, "wake": "auto"}
            )
            assert not sent.is_error and sent.structured_content, sent.content
            out.update(sent.structured_content)
            for codex in codexes:
                await blocking(
                    lambda c=codex: c.model.wait_for_request(
                        lambda r: bool(
                            (d := _last_result(r)) and d[0].endswith("read_my_messages")
                            and body in d[1]
                        ),
                        timeout=60,
                    )
                )  # fmt: skip
            for codex in codexes:
                await blocking(codex.wait_idle)

    anyio.run(main)
    got = {r["session_id"]: r for r in out["recipients"]}
    _stats("broadcast-codex", **{f"wake_{n}": r["wake_status"] for n, r in enumerate(got.values())})
    assert set(got) == set(threads) and len(threads) == 2
    assert len({r["message_id"] for r in got.values()}) == 2
    for codex in codexes:
        # Once: the body reached this Codex's model in exactly one tool result.
        results = {
            res.call_id: res.output
            for r in codex.model.requests
            for res in r.tool_results()
            if body in res.output
        }
        assert len(results) == 1, results
