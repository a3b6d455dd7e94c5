"""Receipts, reply by id and delegated work, end to end: real servers in real tmux panes,
driven by the real MCP client; the hook path through the real rendered hook."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from oxtail_py.layout import Layout
from oxtail_py.messages import MAX_BODY_BYTES
from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    call_into,
    error_code,
    launch_in_pane,
    ok,
)

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-00000000000a"
SID_B = "bbbbbbbb-0000-4000-8000-00000000000b"


def _agent(tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str | None,
           **kw: str) -> ServerProc:
    extra = {"CLAUDE_CODE_SESSION_ID": sid} if sid else {}
    return launch_in_pane(tmux, session=name, cwd=cwd, env={**env, **extra}, **kw)


@pytest.fixture
def pair(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> dict[str, ServerProc]:
    return {
        "alpha": _agent(tmux_server, server_env, "alpha", project, SID_A),
        "beta": _agent(tmux_server, server_env, "beta", project, SID_B),
    }


async def _read(client: Any) -> dict[str, Any]:
    inbox: dict[str, Any] = {}

    def got() -> bool:
        return bool(inbox.get("messages"))

    while not got():
        inbox = ok(await client.call_tool("read_my_messages", {}))
        if not got():
            await anyio.sleep(0.01)
    return inbox


async def test_delegated_work_round_trip_with_receipts(pair: dict[str, ServerProc]) -> None:
    async with pair["alpha"].client() as a, pair["beta"].client() as b:
        sent = ok(await a.call_tool("send_message", {
            "target": "beta", "body": "please rename foo to bar", "action_required": True,
        }))
        assert sent["action_required"] is True and sent["recipient_offline"] is False
        mid = sent["message_id"]
        before = ok(await a.call_tool("message_status", {"message_id": mid}))
        assert before["status"] == "pending" and before["recipient_live"] is True
        assert before["work"]["state"] == "open" and before["age_s"] >= 0

        inbox = await _read(b)
        msg = inbox["messages"][0]
        assert msg["message_id"] == mid and msg["action_required"] is True
        assert inbox["open_work"] == 1
        after = ok(await a.call_tool("message_status", {"message_id": mid}))
        assert after["status"] == "delivered"
        assert after["delivered_via"] == "read_my_messages"
        assert after["delivered_to_session_id"] == SID_B and after["delivered_at"]

        owed = ok(await b.call_tool("my_open_work", {}))
        assert owed["count"] == 1
        item = owed["work"][0]
        assert item["message_id"] == mid and item["requester_session_id"] == SID_A
        assert item["summary"] == "please rename foo to bar" and item["since"]

        done = ok(await b.call_tool("complete_work", {
            "message_id": mid, "body": "renamed in 3 files", "wake": "off",
        }))
        assert done["state"] == "done" and done["sent_message_id"]
        result = (await _read(a))["messages"][0]
        assert result["reply_to"] == mid and result["body"] == "renamed in 3 files"
        assert result["message_id"] == done["sent_message_id"]
        final = ok(await a.call_tool("message_status", {"message_id": mid}))
        assert final["work"]["state"] == "done"
        assert final["work"]["result_message_id"] == done["sent_message_id"]

        again = await b.call_tool("complete_work", {"message_id": mid, "body": "twice"})
        assert error_code(again) == "already-completed"
        assert ok(await b.call_tool("my_open_work", {}))["count"] == 0
        # The result itself is tracked like any message the completer sent.
        of_result = ok(await b.call_tool("message_status", {"message_id": done["sent_message_id"]}))
        assert of_result["status"] == "delivered"


async def test_block_then_complete_tells_the_requester_each_time(
    pair: dict[str, ServerProc],
) -> None:
    async with pair["alpha"].client() as a, pair["beta"].client() as b:
        mid = ok(await a.call_tool("send_message", {
            "target": SID_B, "body": "migrate the db", "action_required": True,
        }))["message_id"]
        await _read(b)
        assert error_code(await b.call_tool("block_work", {"message_id": mid, "reason": " "})) \
            == "empty-reason"
        blocked = ok(await b.call_tool("block_work", {
            "message_id": mid, "reason": "need the staging password", "wake": "off",
        }))
        assert blocked["state"] == "blocked"
        note = (await _read(a))["messages"][0]
        assert note["reply_to"] == mid and "need the staging password" in note["body"]
        status = ok(await a.call_tool("message_status", {"message_id": mid}))
        assert status["work"]["state"] == "blocked"
        assert status["work"]["blocked_reason"] == "need the staging password"
        owed = ok(await b.call_tool("my_open_work", {}))
        assert owed["work"][0]["state"] == "blocked"
        ok(await b.call_tool("complete_work", {"message_id": mid, "body": "done", "wake": "off"}))
        assert (await _read(a))["messages"][0]["body"] == "done"


async def test_bad_ids_and_bodies_get_specific_errors(
    pair: dict[str, ServerProc], tmux_server: PrivateTmux, server_env: dict[str, str],
    project: Path,
) -> None:
    nameless = _agent(tmux_server, server_env, "nameless", project, None)
    async with pair["alpha"].client() as a, pair["beta"].client() as b, nameless.client() as _n:
        mid = ok(await a.call_tool("send_message", {
            "target": "beta", "body": "work", "action_required": True,
        }))["message_id"]
        # Foreign: beta did not send it; unknown: nobody did; malformed: not an id.
        assert error_code(await b.call_tool("message_status", {"message_id": mid})) \
            == "unknown-message"
        assert error_code(await a.call_tool("message_status", {"message_id": "0" * 16})) \
            == "unknown-message"
        assert error_code(await a.call_tool("message_status", {"message_id": "../x"})) \
            == "invalid-message-id"
        # Not handed to alpha: it cannot reply to it by id.
        assert error_code(await a.call_tool("reply_to_message", {
            "message_id": mid, "body": "hi"})) == "unknown-message"
        await _read(b)
        assert error_code(await a.call_tool("complete_work", {
            "message_id": mid, "body": "mine now"})) == "not-your-work"
        assert error_code(await b.call_tool("complete_work", {
            "message_id": "0" * 16, "body": "x"})) == "unknown-work"
        assert error_code(await b.call_tool("complete_work", {
            "message_id": mid, "body": "x" * (MAX_BODY_BYTES + 1)})) == "body-too-large"
        assert error_code(await b.call_tool("block_work", {
            "message_id": mid, "reason": "y" * 2001})) == "reason-too-large"
        # Nothing above closed it.
        assert ok(await b.call_tool("my_open_work", {}))["count"] == 1
        assert error_code(await a.call_tool("send_message", {
            "target": "nameless", "body": "do it", "action_required": True,
        })) == "peer-has-no-session-id"


async def test_reply_to_message_answers_a_waiting_ask_and_a_plain_note(
    pair: dict[str, ServerProc],
) -> None:
    async with pair["alpha"].client() as a, pair["beta"].client() as b:
        asked: dict[str, Any] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(call_into, asked, a, "ask_peer",
                          {"target": "beta", "body": "which port?", "timeout_ms": 20000,
                           "wake": "off"})
            request = (await _read(b))["messages"][0]
            replied = ok(await b.call_tool("reply_to_message", {
                "message_id": request["message_id"], "body": "8080"}))
            assert replied["answered_waiting_ask"] is True
        assert asked["status"] == "answered" and asked["reply"]["body"] == "8080"
        assert asked["reply"]["reply_to"] == asked["request_id"]
        asked_status = ok(await a.call_tool("message_status", {"message_id": asked["request_id"]}))
        assert asked_status["status"] == "delivered"
        assert asked_status["delivered_via"] == "read_my_messages"
        # The ask's reply was handed over by ask_peer: beta's message_status says so.
        status = ok(await b.call_tool("message_status", {"message_id": replied["message_id"]}))
        assert status["status"] == "delivered" and status["delivered_via"] == "ask_peer"

        note = ok(await a.call_tool("send_message", {"target": "beta", "body": "fyi: merged"}))
        await _read(b)
        back = ok(await b.call_tool("reply_to_message", {
            "message_id": note["message_id"], "body": "thanks"}))
        assert back["answered_waiting_ask"] is False
        got = (await _read(a))["messages"][0]
        assert got["reply_to"] == note["message_id"] and got["from_session_id"] == SID_B


def _claude_transcript(home: Path, cwd: Path, sid: str) -> None:
    directory = home / ".claude" / "projects" / str(cwd).replace("/", "-")
    directory.mkdir(parents=True, exist_ok=True)
    line = {"type": "user", "cwd": str(cwd), "sessionId": sid,
            "message": {"role": "user", "content": "hi"}}
    (directory / f"{sid}.jsonl").write_text(json.dumps(line) + "\n")


async def test_offline_recipient_keeps_its_mail_until_the_session_comes_back(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    async with alpha.client() as a:
        # No live server and no transcript of this project: not provably ours.
        assert error_code(await a.call_tool("send_message", {
            "target": SID_B, "body": "hello?"})) == "unknown-target"
        _claude_transcript(Path(server_env["HOME"]), project, SID_B)
        sent = ok(await a.call_tool("send_message", {
            "target": SID_B, "body": "for when you are back", "action_required": True,
            "wake": "auto"}))
        assert sent["recipient_offline"] is True
        assert sent["wake_status"] == "skipped_no_target"
        status = ok(await a.call_tool("message_status", {"message_id": sent["message_id"]}))
        assert status["status"] == "undeliverable" and status["recipient_live"] is False
        assert status["recipient_state"] == "offline" and status["gone_since"]

        # The session comes back (a resumed client's server has the same session id).
        beta = _agent(tmux_server, server_env, "beta", project, SID_B)
        async with beta.client() as b:
            pending = ok(await a.call_tool("message_status", {"message_id": sent["message_id"]}))
            assert pending["status"] == "pending" and pending["recipient_live"] is True
            inbox = await _read(b)
            assert inbox["messages"][0]["body"] == "for when you are back"
            assert inbox["open_work"] == 1
        status = ok(await a.call_tool("message_status", {"message_id": sent["message_id"]}))
        assert status["status"] == "delivered" and status["delivered_to_session_id"] == SID_B


def _hook(
    server_env: dict[str, str], event: str, sid: str, client: str = "claude"
) -> subprocess.CompletedProcess[str]:
    """The installed hook, run as Claude Code runs it (JSON on stdin, event argument)."""
    from oxtail_py.hooks_install import install
    from oxtail_py.settings import Settings

    env = {**server_env, "PATH": "/usr/bin:/bin"}
    hook = Path(server_env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    if not hook.exists():
        install(Settings.from_env(env))
    payload = json.dumps({"session_id": sid, "hook_event_name": event}, separators=(",", ":"))
    proc = subprocess.run([str(hook), client, event], input=payload, capture_output=True, text=True,
                          env=env, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def _context(proc: subprocess.CompletedProcess[str]) -> str:
    return str(json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"])


async def test_hook_hand_over_writes_the_ledger_and_receipt_and_counts_open_work(
    pair: dict[str, ServerProc], server_env: dict[str, str]
) -> None:
    async with pair["alpha"].client() as a, pair["beta"].client() as b:
        mid = ok(await a.call_tool("send_message", {
            "target": "beta", "body": "review PR 7", "action_required": True,
        }))["message_id"]
        text = _context(_hook(server_env, "pretooluse", SID_B))
        assert f"message_id={mid}" in text and "action_required=true" in text
        assert "complete_work(message_id" in text
        assert "You have 1 open work item delegated to you" in text
        assert text.rstrip().endswith("--- end of oxtail messages")
        status = ok(await a.call_tool("message_status", {"message_id": mid}))
        assert status["status"] == "delivered" and status["delivered_via"] == "hook"
        assert status["delivered_event"] == "pretooluse"

        # No mail now: a tool call's hook says nothing; a new turn hears what is owed.
        assert _hook(server_env, "pretooluse", SID_B).stdout == ""
        notice = _context(_hook(server_env, "userpromptsubmit", SID_B))
        assert notice.startswith("oxtail: you have 1 open work item delegated to you")
        # Codex takes only the keys it knows: the same notice, in exactly its shape.
        codex = json.loads(_hook(server_env, "userpromptsubmit", SID_B, "codex").stdout)
        assert codex == {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit",
                                                "additionalContext": notice}}

        # Handed over by the hook, it can be answered by id and completed.
        ok(await b.call_tool("reply_to_message", {"message_id": mid, "body": "on it"}))
        ok(await b.call_tool("complete_work", {"message_id": mid, "body": "lgtm", "wake": "off"}))
        bodies = [m["body"] for m in (await _read(a))["messages"]]
        assert bodies == ["on it", "lgtm"]
        assert _hook(server_env, "userpromptsubmit", SID_B).stdout == ""


async def test_oversize_and_empty_replies_are_refused_and_send_nothing(
    pair: dict[str, ServerProc],
) -> None:
    async with pair["alpha"].client() as a, pair["beta"].client() as b:
        mid = ok(await a.call_tool("send_message", {"target": "beta", "body": "q"}))["message_id"]
        await _read(b)
        too_big = {"message_id": mid, "body": "x" * (MAX_BODY_BYTES + 1)}
        assert error_code(await b.call_tool("reply_to_message", too_big)) == "body-too-large"
        empty = {"message_id": mid, "body": "  "}
        assert error_code(await b.call_tool("reply_to_message", empty)) == "empty-body"
        assert ok(await a.call_tool("read_my_messages", {}))["count"] == 0


def test_receipts_are_write_once_and_files_private(tmp_path: Path) -> None:
    from oxtail_py import receipts
    from oxtail_py.messages import Message

    layout = Layout(tmp_path / "root")
    msg = Message.create("x", from_session_id=SID_A)
    assert receipts.handed_over(layout, SID_B, [msg], "hook", "stop") == 1
    assert receipts.handed_over(layout, SID_B, [msg], "read_my_messages") == 0
    got = receipts.read_receipt(layout, msg.id)
    assert got is not None and got.via == "hook" and got.event == "stop"
    mode = layout.receipt_file(msg.id).stat().st_mode & 0o777
    assert mode == 0o600 and (layout.receipts_dir.stat().st_mode & 0o777) == 0o700


async def test_work_survives_a_restart_of_its_owner(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    beta = _agent(tmux_server, server_env, "beta", project, SID_B)
    async with alpha.client() as a:
        async with beta.client() as b:
            mid = ok(await a.call_tool("send_message", {
                "target": "beta", "body": "port the tests", "action_required": True,
            }))["message_id"]
            assert (await _read(b))["open_work"] == 1
        # Beta's server is gone (its client closed); a new server of the same session.
        again = _agent(tmux_server, server_env, "beta2", project, SID_B)
        async with again.client() as b2:
            owed = ok(await b2.call_tool("my_open_work", {}))
            assert [w["message_id"] for w in owed["work"]] == [mid]
            ok(await b2.call_tool("complete_work", {"message_id": mid, "body": "ported",
                                                    "wake": "off"}))
        result = (await _read(a))["messages"][0]
        assert (result["body"], result["reply_to"]) == ("ported", mid)
        status = ok(await a.call_tool("message_status", {"message_id": mid}))
        assert status["work"]["state"] == "done"


def test_a_planted_owed_marker_or_linked_owed_dir_never_hangs_or_misleads_the_hook(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    owed = layout.owed_dir(SID_B)
    owed.mkdir(parents=True, mode=0o700)
    os.mkfifo(owed / ("ab" * 8))  # a FIFO named like a marker, no record behind it
    proc = _hook(server_env, "userpromptsubmit", SID_B)
    assert proc.stdout == ""  # no record: no claim of owed work
    assert not (owed / ("ab" * 8)).exists()  # and the stale marker is gone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ("cd" * 8)).touch()
    owed.rmdir()
    owed.symlink_to(elsewhere)  # a link where our directory belongs is never followed
    assert _hook(server_env, "userpromptsubmit", SID_B).stdout == ""
    assert (elsewhere / ("cd" * 8)).exists()


async def test_message_status_neutralizes_what_other_servers_wrote(
    pair: dict[str, ServerProc], server_env: dict[str, str]
) -> None:
    """A wake outcome (any server records one) carrying ESC/CSI and a bidi override reaches
    the model made visible, like every other string a peer could write."""
    from oxtail_py import receipts

    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    async with pair["alpha"].client() as a, pair["beta"].client() as _b:
        sent = ok(await a.call_tool("send_message", {"target": "beta", "body": "hi"}))
        mid = sent["message_id"]
        receipts.record_wake_outcome(
            layout, mid, status="confirmed\x1b[31m", detail="typed \u202eevil\x1b]0;x\x07",
            by="self-heal\x9b",
        )
        status = ok(await a.call_tool("message_status", {"message_id": mid}))
    text = json.dumps(status, ensure_ascii=False)
    assert status["wakes"] and "evil" in text
    assert not any(ch in text for ch in ("\x1b", "\u202e", "\x07", "\x9b"))
