"""The MCP tools end to end: real server processes in real tmux panes, real MCP client."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import MAX_BODY_BYTES
from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    await_until,
    call_into,
    error_code,
    first_message,
    launch_in_pane,
    ok,
)

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-000000000001"
SID_B = "bbbbbbbb-0000-4000-8000-000000000002"
SID_C = "cccccccc-0000-4000-8000-000000000003"


def _agent(
    tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str | None, **kw: str
) -> ServerProc:
    extra = {"CLAUDE_CODE_SESSION_ID": sid} if sid else {}
    return launch_in_pane(tmux, session=name, cwd=cwd, env={**env, **extra}, **kw)


@pytest.fixture
def world(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> dict[str, ServerProc]:
    other = tmp_path / "other-proj"
    (other / ".git").mkdir(parents=True)
    agents = {
        "alpha": _agent(tmux_server, server_env, "alpha", project, SID_A, as_client="claude"),
        "beta": _agent(tmux_server, server_env, "beta", project / "src", SID_B),
        "gamma": _agent(tmux_server, server_env, "gamma", other, SID_C),
    }
    tmux_server.new_session("notes", project)  # a plain shell in the project
    tmux_server.new_session("elsewhere", other)
    return agents


async def test_list_shows_project_agents_and_panes_but_not_other_projects(
    world: dict[str, ServerProc], project: Path
) -> None:
    async with (
        world["alpha"].client() as a,
        world["beta"].client() as _b,
        world["gamma"].client() as _c,
    ):
        listing = ok(await a.call_tool("list_project_sessions", {}))
        assert listing["project_root"] == str(project) and listing["inferred"] is True
        rows = {r["name"]: r for r in listing["sessions"]}
        assert set(rows) == {"alpha", "beta", "notes"}
        assert rows["alpha"]["is_me"] and rows["alpha"]["client_type"] == "claude"
        assert rows["alpha"]["tmux_pane"] == world["alpha"].pane
        assert rows["beta"]["client_session_id"] == SID_B and rows["beta"]["kind"] == "agent"
        assert rows["notes"]["kind"] == "pane" and rows["notes"]["client_session_id"] is None
        explicit = ok(await a.call_tool("list_project_sessions", {"project_root": str(project)}))
        assert explicit["inferred"] is False


async def test_send_and_read_carry_every_field_and_state_cards_show(
    world: dict[str, ServerProc],
) -> None:
    async with world["alpha"].client() as a, world["beta"].client() as b:
        ok(await b.call_tool("set_my_state", {"purpose": "fixing the flaky parser test"}))
        sent = ok(await a.call_tool("send_message", {"target": "beta", "body": "hello beta"}))
        assert sent["target_session_id"] == SID_B and sent["target_pane"] == world["beta"].pane
        rows = {
            r["name"]: r for r in ok(await a.call_tool("list_project_sessions", {}))["sessions"]
        }
        assert rows["beta"]["unread"] == 1
        assert rows["beta"]["purpose"] == "fixing the flaky parser test"
        inbox = ok(await b.call_tool("read_my_messages", {}))
        assert inbox["count"] == 1
        msg = inbox["messages"][0]
        assert msg["message_id"] == sent["message_id"] and msg["body"] == "hello beta"
        assert msg["from_session_id"] == SID_A and msg["request_id"] is None
        assert ok(await b.call_tool("read_my_messages", {}))["count"] == 0


async def test_bad_sends_get_specific_errors_and_deliver_nothing(
    world: dict[str, ServerProc],
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
) -> None:
    # Two agents in one tmux session make the session name ambiguous.
    twin = _agent(
        tmux_server,
        server_env,
        "beta",
        project,
        "dddddddd-0000-4000-8000-000000000004",
        split_into="beta",
    )
    async with (
        world["alpha"].client() as a,
        world["beta"].client() as b,
        twin.client() as _t,
        world["gamma"].client() as _c,
    ):
        cases = {
            "cross-project": {"target": "gamma", "body": "hi"},
            "unknown-target": {"target": "nobody", "body": "hi"},
            "ambiguous-target": {"target": "beta", "body": "hi"},
            "send-to-self": {"target": SID_A, "body": "hi"},
            "no-agent-in-pane": {"target": "notes", "body": "hi"},
            "body-too-large": {"target": SID_B, "body": "x" * (MAX_BODY_BYTES + 1)},
            "empty-body": {"target": SID_B, "body": "  "},
            "invalid-message-id": {"target": SID_B, "body": "hi", "reply_to": "not-an-id"},
        }
        for code, args in cases.items():
            assert error_code(await a.call_tool("send_message", args)) == code, code
        # a unique session-id prefix is fine where the tmux name is ambiguous
        ok(await a.call_tool("send_message", {"target": SID_B[:13], "body": "by prefix"}))
        got = ok(await b.call_tool("read_my_messages", {}))
        assert [m["body"] for m in got["messages"]] == ["by prefix"]


async def test_ask_peer_returns_the_correlated_reply_and_leaves_other_mail(
    world: dict[str, ServerProc],
) -> None:
    async with world["alpha"].client() as a, world["beta"].client() as b:
        result: dict[str, Any] = {}

        async with anyio.create_task_group() as tg:
            tg.start_soon(
                call_into,
                result,
                a,
                "ask_peer",
                {"target": "beta", "body": "which port?", "timeout_ms": 20000},
            )
            with anyio.fail_after(10):
                request = await first_message(b)
            assert request["request_id"] == request["message_id"]
            # Noise first: a plain message and a reply to something else must not end the ask.
            ok(await b.call_tool("send_message", {"target": SID_A, "body": "unrelated"}))
            ok(
                await b.call_tool(
                    "send_message",
                    {"target": SID_A, "body": "wrong one", "reply_to": "0123456789abcdef"},
                )
            )
            ok(
                await b.call_tool(
                    "send_message",
                    {"target": SID_A, "body": "port 8080", "reply_to": request["request_id"]},
                )
            )
        assert result["status"] == "answered"
        assert result["reply"]["body"] == "port 8080"
        assert result["request_id"] == request["request_id"]
        left = ok(await a.call_tool("read_my_messages", {}))
        assert [m["body"] for m in left["messages"]] == ["unrelated", "wrong one"]


async def test_ask_peer_times_out_with_a_clear_status_and_clamps_the_timeout(
    world: dict[str, ServerProc],
) -> None:
    async with world["alpha"].client() as a, world["beta"].client() as _b:
        out = ok(
            await a.call_tool("ask_peer", {"target": "beta", "body": "hello?", "timeout_ms": 300})
        )
        assert out["status"] == "timeout" and out["reply"] is None
        assert out["timeout_ms"] == 300 and out["timeout_clamped"] is False
        assert out["waited_ms"] >= 300
        # beta has no client to type into: the wake says why it did nothing
        assert out["wake_status"].startswith("skipped") and "Claude Code or Codex" in (
            out["wake_detail"]
        ), out
        waking = {"target": "beta", "body": "x", "wake": "auto"}
        sent = ok(await a.call_tool("send_message", waking))
        assert sent["wake_status"] == out["wake_status"] and sent["wake_detail"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_ask_peer_returns_peer_gone_soon_after_the_peers_server_exits(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, sig: signal.Signals
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    beta = _agent(tmux_server, server_env, "beta", project, SID_B)
    box = Mailbox.open(Layout(Path(server_env["AGENTMAIL_HOME"])), SID_A)
    async with alpha.client() as a, beta.client() as b:
        beta_pid = ok(await b.call_tool("get_my_session", {}))["server_pid"]
        result: dict[str, Any] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                call_into,
                result,
                a,
                "ask_peer",
                {"target": "beta", "body": "still there?", "timeout_ms": 60000, "wake": "off"},
            )
            request = await first_message(b)
            killed_at = anyio.current_time()
            os.kill(beta_pid, sig)
        took = anyio.current_time() - killed_at
        assert result["status"] == "peer-gone", result
        assert result["request_id"] == request["request_id"] and result["reply"] is None
        assert took < 5, f"peer-gone came {took:.1f}s after the kill"
        # nothing left dangling: the ask's hold on our inbox is gone
        assert not [p for p in box.paths.directory.iterdir() if p.name.startswith("await.")]


async def test_ask_peer_needs_a_target_with_a_session_id(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    anon = _agent(tmux_server, server_env, "anon", project, None)
    async with alpha.client() as a, anon.client() as _n:
        out = await a.call_tool("ask_peer", {"target": "anon", "body": "hi", "timeout_ms": 100})
        assert error_code(out) == "peer-has-no-session-id"


async def test_unclaimed_server_gets_mail_in_its_pid_box_then_a_sticky_claim_merges_it(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    anon = _agent(tmux_server, server_env, "anon", project, None)
    async with alpha.client() as a, anon.client() as n:
        me = ok(await n.call_tool("get_my_session", {}))
        assert me["session_id"] is None and "claim --server-pid" in me["next_step"]
        ok(await a.call_tool("send_message", {"target": "anon", "body": "before the claim"}))
        new_sid = "eeeeeeee-0000-4000-8000-000000000005"
        claimed = ok(await n.call_tool("claim_session", {"session_id": new_sid}))
        assert claimed["session_id"] == new_sid and claimed["source"] == "claim"
        assert claimed["claimed"] is True
        # a Codex-style threadId later must not override the claim
        me = ok(await n.call_tool("get_my_session", {}, meta={"threadId": SID_C}))
        assert me["session_id"] == new_sid and me["conflicts"]
        got = ok(await n.call_tool("read_my_messages", {}))
        assert [m["body"] for m in got["messages"]] == ["before the claim"]
        assert error_code(await n.call_tool("claim_session", {"session_id": "../x"})) == (
            "invalid-session-id"
        )


async def test_codex_thread_id_in_meta_identifies_the_server_without_a_claim(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
) -> None:
    codex_like = _agent(tmux_server, server_env, "cx", project, None, as_client="codex")
    thread = "0199a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b"
    async with codex_like.client() as c:
        first = ok(await c.call_tool("list_project_sessions", {}, meta={"threadId": thread}))
        mine = next(r for r in first["sessions"] if r["is_me"])
        assert mine["client_session_id"] == thread and mine["client_type"] == "codex"
        me = ok(await c.call_tool("get_my_session", {}, meta={"threadId": "other-thread-1234"}))
        assert me["session_id"] == thread and me["source"] == "meta"
        assert "other-thread-1234" in me["conflicts"][0]


async def test_read_session_reads_a_pane_and_a_transcript_and_refuses_other_projects(
    world: dict[str, ServerProc],
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
) -> None:
    tmux_server.run("send-keys", "-t", "notes", "-l", "echo marker-$((6*7))")
    tmux_server.run("send-keys", "-t", "notes", "Enter")
    # beta's transcript, where Claude keeps it under beta's HOME
    fixtures = sorted((Path(__file__).parents[1] / "fixtures/transcripts/claude").glob("*.jsonl"))
    projects = Path(server_env["HOME"]) / ".claude/projects/-proj"
    projects.mkdir(parents=True)
    (projects / f"{SID_B}.jsonl").write_bytes(_recorded_in(fixtures[0].read_bytes(), project))
    async with (
        world["alpha"].client() as a,
        world["beta"].client() as _b,
        world["gamma"].client() as _c,
    ):
        await await_until(
            lambda: "marker-42" in tmux_server.run("capture-pane", "-p", "-t", "notes")
        )
        pane = ok(await a.call_tool("read_session", {"name": "notes"}))
        assert pane["mode"] == "pane" and "marker-42" in pane["pane_text"]
        # beta has no client type (no claude process above it): pane mode only
        beta_pane = ok(await a.call_tool("read_session", {"name": "beta", "mode": "pane"}))
        assert beta_pane["mode"] == "pane"
        assert error_code(await a.call_tool("read_session", {"name": "gamma"})) == "cross-project"
        assert error_code(
            await a.call_tool("read_session", {"name": "beta", "mode": "transcript"})
        ) == ("no-transcript")


async def test_tools_advertise_output_schemas(world: dict[str, ServerProc]) -> None:
    async with world["alpha"].client() as a:
        tools = {t.name: t for t in (await a.list_tools()).tools}
        assert set(tools) >= {
            "list_project_sessions",
            "read_session",
            "claim_session",
            "register_my_session",
            "get_my_session",
            "set_my_state",
            "send_message",
            "read_my_messages",
            "ask_peer",
        }
        assert all(t.output_schema for t in tools.values())
        assert json.dumps(tools["ask_peer"].input_schema).count("timeout_ms") == 1


async def test_fixed_value_parameters_are_enums_the_schema_checks(
    world: dict[str, ServerProc],
) -> None:
    async with world["alpha"].client() as a, world["beta"].client() as _b:
        tools = {t.name: t for t in (await a.list_tools()).tools}
        enums = {
            ("send_message", "wake"): ["auto", "off"],
            ("ask_peer", "wake"): ["auto", "off"],
            ("read_session", "mode"): ["auto", "transcript", "pane"],
        }
        for (tool, param), values in enums.items():
            assert tools[tool].input_schema["properties"][param]["enum"] == values, (tool, param)
        bad = {
            "send_message": {"target": "beta", "body": "hi", "wake": "loud"},
            "ask_peer": {"target": "beta", "body": "hi", "wake": "loud", "timeout_ms": 100},
            "read_session": {"name": "beta", "mode": "everything"},
        }
        for tool, args in bad.items():
            refused = await a.call_tool(tool, args)
            assert refused.is_error, tool
            text = " ".join(getattr(c, "text", "") for c in refused.content)
            assert "loud" in text or "everything" in text, text
        assert ok(await _b.call_tool("read_my_messages", {}))["count"] == 0  # nothing sent


FIXTURES = Path(__file__).parents[1] / "fixtures" / "transcripts"
_RECORDED_CWD = re.compile(rb'"cwd":"/[^"]*"')


def _recorded_in(data: bytes, project: Path) -> bytes:
    """A fixture transcript as if its session had run in `project` (its recorded cwd)."""
    return _RECORDED_CWD.sub(b'"cwd":' + json.dumps(str(project)).encode(), data)


async def test_read_session_parses_real_claude_and_codex_transcripts_with_budgets(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
) -> None:
    manifest = {
        e["client"] + "/" + e["file"].split("/")[1]: e
        for e in json.loads((FIXTURES / "manifest.json").read_text())
    }
    claude_fx = manifest["claude/tui_two_turns.jsonl"]
    codex_fx = manifest["codex/tui_two_turns.jsonl"]
    home = Path(server_env["HOME"])
    claude_dir = home / ".claude/projects/-anything"
    claude_dir.mkdir(parents=True)
    (claude_dir / f"{claude_fx['session_id']}.jsonl").write_bytes(
        _recorded_in((FIXTURES / claude_fx["file"]).read_bytes(), project)
    )
    # Codex keeps rollouts in date folders; the thread id (UUIDv7) carries the date.
    stamp = codex_fx["original_name"].split("-")[1:4]
    codex_dir = home / ".codex/sessions" / stamp[0] / stamp[1] / stamp[2][:2]
    codex_dir.mkdir(parents=True)
    (codex_dir / codex_fx["original_name"]).write_bytes(
        _recorded_in((FIXTURES / codex_fx["file"]).read_bytes(), project)
    )

    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    claude_peer = _agent(
        tmux_server, server_env, "cl", project, claude_fx["session_id"], as_client="claude"
    )
    codex_peer = _agent(tmux_server, server_env, "cx", project, None, as_client="codex")
    async with alpha.client() as a, claude_peer.client() as _cl, codex_peer.client() as cx:
        ok(await cx.call_tool("get_my_session", {}, meta={"threadId": codex_fx["session_id"]}))
        for name, fixture in (("cl", claude_fx), ("cx", codex_fx)):
            read = ok(await a.call_tool("read_session", {"name": name}))
            assert read["mode"] == "transcript" and read["truncated"] is False
            users = [t["text"] for t in read["turns"] if t["role"] == "user"]
            assert users == [t["prompt"] for t in fixture["turns"]]
            calls = " ".join(c for t in read["turns"] for c in t["tool_calls"])
            assert "whoami" in calls
            last = ok(await a.call_tool("read_session", {"name": name, "limit": 1}))
            assert len(last["turns"]) == 1 and last["truncated"] is True
            assert last["total_turns"] == read["total_turns"]
            small = ok(await a.call_tool("read_session", {"name": name, "max_bytes": 200}))
            assert small["truncated"] and sum(len(t["text"]) for t in small["turns"]) <= 400


async def test_read_session_refuses_a_transcript_recorded_in_another_project(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    """A peer of this project whose (peer-written) entry points at another project's
    transcript: the transcript's own recorded cwd decides, and nothing is read."""
    other = tmp_path / "other-proj"
    fixture = json.loads((FIXTURES / "manifest.json").read_text())[0]
    data = _recorded_in((FIXTURES / fixture["file"]).read_bytes(), other)
    claude_dir = Path(server_env["HOME"]) / ".claude/projects/-other-proj"
    claude_dir.mkdir(parents=True)
    (claude_dir / f"{SID_B}.jsonl").write_bytes(data)
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    peer = _agent(tmux_server, server_env, "cl", project, SID_B, as_client="claude")
    async with alpha.client() as a, peer.client() as _p:
        for mode in ("transcript", "auto"):
            out = await a.call_tool("read_session", {"name": "cl", "mode": mode})
            assert error_code(out) == "transcript-outside-project", mode
            assert "turn one" not in str(out.content)  # no turn of the other session shown
        assert ok(await a.call_tool("read_session", {"name": "cl", "mode": "pane"}))["mode"] == (
            "pane"
        )


async def test_a_claude_server_warns_once_on_stderr_when_hooks_are_missing(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    claude_like = _agent(tmux_server, server_env, "cl", project, SID_A, as_client="claude")
    plain = _agent(tmux_server, server_env, "pl", project, SID_B)
    async with claude_like.client() as c, plain.client() as p:
        ok(await c.call_tool("get_my_session", {}))
        ok(await p.call_tool("get_my_session", {}))
    warned = (claude_like.fifo_dir / "err").read_text()
    assert warned.count("oxtail hooks are not installed: run `oxtail-py install-hook`") == 1
    assert "hooks" not in (plain.fifo_dir / "err").read_text()


async def test_a_parallel_hook_drain_never_takes_the_reply_an_ask_waits_for(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    """The reply lands while the asker is frozen (SIGSTOP); the PreToolUse hook's drain of
    a parallel tool call runs then, takes the other mail, and leaves the reply."""
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    beta = _agent(tmux_server, server_env, "beta", project, SID_B)
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    box = Mailbox.open(layout, SID_A)
    async with alpha.client() as a, beta.client() as b:
        alpha_pid = ok(await a.call_tool("get_my_session", {}))["server_pid"]
        result: dict[str, Any] = {}

        async with anyio.create_task_group() as tg:
            tg.start_soon(
                call_into,
                result,
                a,
                "ask_peer",
                {"target": "beta", "body": "status?", "timeout_ms": 30000},
            )
            await await_until(
                lambda: any(p.name.startswith("await.") for p in box.paths.directory.iterdir())
            )
            request = await first_message(b)
            os.kill(alpha_pid, signal.SIGSTOP)
            try:
                ok(await b.call_tool("send_message", {"target": SID_A, "body": "fyi: unrelated"}))
                ok(
                    await b.call_tool(
                        "send_message",
                        {"target": SID_A, "body": "all green", "reply_to": request["request_id"]},
                    )
                )
                hook = subprocess.run(
                    [sys.executable, "-m", "oxtail_py.hookdrain", "pretooluse", SID_A],
                    env={**os.environ, **server_env},
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                context = json.loads(hook.stdout)["hookSpecificOutput"]["additionalContext"]
                assert "fyi: unrelated" in context and "all green" not in context
                assert box.pending_count() == 1  # the reply, left for the frozen asker
            finally:
                os.kill(alpha_pid, signal.SIGCONT)
        assert result["status"] == "answered"
        assert result["reply"]["body"] == "all green"
        assert box.pending_count() == 0


async def test_an_ask_survives_its_asker_learning_its_session_id_mid_wait(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    anon = _agent(tmux_server, server_env, "anon", project, None)
    beta = _agent(tmux_server, server_env, "beta", project, SID_B)
    new_sid = "ffffffff-0000-4000-8000-000000000006"
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    async with anon.client() as n, beta.client() as b:
        result: dict[str, Any] = {}

        async with anyio.create_task_group() as tg:
            tg.start_soon(
                call_into,
                result,
                n,
                "ask_peer",
                {"target": "beta", "body": "q", "timeout_ms": 20000, "wake": "off"},
            )
            request = await first_message(b)
            ok(await n.call_tool("claim_session", {"session_id": new_sid}))
            # the new session box is held for the ask too: a hook drain must leave it
            marker = f"await.{request['request_id']}."
            box = Mailbox.open(layout, new_sid)
            assert any(p.name.startswith(marker) for p in box.paths.directory.iterdir())
            ok(
                await b.call_tool(
                    "send_message",
                    {"target": new_sid, "body": "answer", "reply_to": request["request_id"]},
                )
            )
        assert result["status"] == "answered"
        assert result["reply"]["body"] == "answer"
