"""Broadcast and roles end to end: real servers in real tmux panes, the real MCP client.

A group target reaches each member once (its own copy, its own id), never the sender,
never an agent of another project; the result lists who got it and who was skipped and
why; a bad group, an empty one, one over the cap and an oversize body are refused with
nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import MAX_BODY_BYTES
from tests.integration.harness import PrivateTmux, ServerProc, error_code, launch_in_pane, ok

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-0000000000a1"
SID_B = "bbbbbbbb-0000-4000-8000-0000000000b2"
SID_C = "cccccccc-0000-4000-8000-0000000000c3"
SID_X = "eeeeeeee-0000-4000-8000-0000000000e4"


def _agent(
    tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str, **kw: str
) -> ServerProc:
    return launch_in_pane(
        tmux, session=name, cwd=cwd, env={**env, "CLAUDE_CODE_SESSION_ID": sid}, **kw
    )


@pytest.fixture
def world(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> dict[str, ServerProc]:
    other = tmp_path / "other-proj"
    (other / ".git").mkdir(parents=True)
    agents = {
        "alpha": _agent(tmux_server, server_env, "alpha", project, SID_A, as_client="claude"),
        "beta": _agent(tmux_server, server_env, "beta", project, SID_B, as_client="claude"),
        "gamma": _agent(tmux_server, server_env, "gamma", project / "src", SID_C),
        "outsider": _agent(tmux_server, server_env, "outsider", other, SID_X, as_client="claude"),
    }
    tmux_server.new_session("notes", project)  # a plain shell in the project: no agent
    return agents


def _box(server_env: dict[str, str], sid: str) -> Mailbox:
    return Mailbox.open(Layout(Path(server_env["AGENTMAIL_HOME"])), sid)


async def test_at_all_reaches_each_project_agent_once_and_lists_the_bare_pane_as_skipped(
    world: dict[str, ServerProc], server_env: dict[str, str]
) -> None:
    async with (
        world["alpha"].client() as a,
        world["beta"].client() as b,
        world["gamma"].client() as c,
        world["outsider"].client() as x,
    ):
        sent = ok(await a.call_tool("send_message", {"target": "@all", "body": "standup"}))
        assert sent["target"] == "@all" and sent["message_id"] is None
        got = {r["session_id"]: r["message_id"] for r in sent["recipients"]}
        assert set(got) == {SID_B, SID_C}  # never the sender, never another project
        assert len(set(got.values())) == 2  # each its own copy
        assert [(s["name"], s["reason"]) for s in sent["skipped"]] == [("notes", "no-agent")]
        for client, sid in ((b, SID_B), (c, SID_C)):
            inbox = ok(await client.call_tool("read_my_messages", {}))
            assert [(m["message_id"], m["body"]) for m in inbox["messages"]] == [
                (got[sid], "standup")
            ]
            assert inbox["messages"][0]["from_session_id"] == SID_A
        assert ok(await x.call_tool("read_my_messages", {}))["count"] == 0
        assert _box(server_env, SID_A).pending_count() == 0


async def test_roles_target_who_set_them_and_claude_targets_by_client_type(
    world: dict[str, ServerProc],
) -> None:
    async with (
        world["alpha"].client() as a,
        world["beta"].client() as b,
        world["gamma"].client() as c,
        world["outsider"].client() as x,
    ):
        card = ok(await c.call_tool("set_my_state", {"purpose": "reviewing", "role": "Reviewer"}))
        assert card["role"] == "reviewer"
        ok(await x.call_tool("set_my_state", {"purpose": "elsewhere", "role": "reviewer"}))
        rows = ok(await a.call_tool("list_project_sessions", {}))["sessions"]
        assert {r["name"]: r["role"] for r in rows if r["kind"] == "agent"}["gamma"] == "reviewer"
        sent = ok(
            await a.call_tool("send_message", {"target": "@role:reviewer", "body": "review #4"})
        )
        assert [r["session_id"] for r in sent["recipients"]] == [SID_C]
        claude = ok(await c.call_tool("send_message", {"target": "@claude", "body": "hi claudes"}))
        assert {r["session_id"] for r in claude["recipients"]} == {SID_A, SID_B}
        assert ok(await b.call_tool("read_my_messages", {}))["messages"][0]["body"] == "hi claudes"
        # Omitting role keeps it; '' clears it.
        kept = ok(await c.call_tool("set_my_state", {"purpose": "still reviewing"}))
        assert kept["role"] == "reviewer"
        assert ok(await c.call_tool("get_my_session", {}))["role"] == "reviewer"
        assert ok(await c.call_tool("set_my_state", {"purpose": "done", "role": ""}))["role"] == ""
        assert (
            error_code(await a.call_tool("send_message", {"target": "@role:reviewer", "body": "x"}))
            == "empty-broadcast-group"
        )


async def test_bad_groups_are_refused_with_specific_errors_and_nothing_is_sent(
    world: dict[str, ServerProc],
    server_env: dict[str, str],
    tmux_server: PrivateTmux,
    project: Path,
) -> None:
    async with (
        world["alpha"].client() as a,
        world["beta"].client() as _b,
        world["gamma"].client() as _c,
        world["outsider"].client() as _x,
    ):
        cases = {
            "@everyone": "bad-broadcast-target",
            "@role:Bad Role!": "bad-broadcast-target",
            "@codex": "empty-broadcast-group",
            "@role:nobody": "empty-broadcast-group",
        }
        for target, code in cases.items():
            result = await a.call_tool("send_message", {"target": target, "body": "x"})
            assert error_code(result) == code, target
        big = "x" * (MAX_BODY_BYTES + 1)
        assert (
            error_code(await a.call_tool("send_message", {"target": "@all", "body": big}))
            == "body-too-large"
        )
        reply = {"target": "@all", "body": "x", "reply_to": "0123456789abcdef"}
        assert error_code(await a.call_tool("send_message", reply)) == "broadcast-reply-to"
        bad_role = await a.call_tool("set_my_state", {"purpose": "p", "role": "two words"})
        assert error_code(bad_role) == "invalid-role"
        for sid in (SID_B, SID_C):
            assert _box(server_env, sid).pending_count() == 0


async def test_a_group_over_the_cap_is_refused_whole(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    env = {**server_env, "OXTAIL_BROADCAST_CAP": "1"}
    sender = _agent(tmux_server, env, "alpha", project, SID_A)
    peers = [
        _agent(tmux_server, server_env, "beta", project, SID_B),
        _agent(tmux_server, server_env, "gamma", project, SID_C),
    ]
    async with sender.client() as a, peers[0].client() as _b, peers[1].client() as _c:
        result = await a.call_tool("send_message", {"target": "@all", "body": "too many"})
        assert error_code(result) == "broadcast-over-cap"
        assert "at most 1" in result.structured_content["message"]  # type: ignore[index]
        for sid in (SID_B, SID_C):
            assert _box(server_env, sid).pending_count() == 0


async def test_a_member_whose_mailbox_is_hostile_is_skipped_and_the_others_get_theirs(
    world: dict[str, ServerProc], server_env: dict[str, str], tmp_path: Path
) -> None:
    async with (
        world["alpha"].client() as a,
        world["beta"].client() as b,
        world["gamma"].client() as _c,
        world["outsider"].client() as _x,
    ):
        # A symlink planted where gamma's inbox belongs: never followed, never written.
        bait = tmp_path / "bait.jsonl"
        bait.write_text("")
        inbox = _box(server_env, SID_C).paths.inbox
        inbox.unlink(missing_ok=True)
        inbox.symlink_to(bait)
        sent = ok(await a.call_tool("send_message", {"target": "@all", "body": "hello all"}))
        assert [r["session_id"] for r in sent["recipients"]] == [SID_B]
        failed = [s for s in sent["skipped"] if s["reason"] == "send-failed"]
        assert [s["session_id"] for s in failed] == [SID_C]
        assert "unsafe-path" in failed[0]["detail"]
        assert bait.read_text() == ""
        assert ok(await b.call_tool("read_my_messages", {}))["messages"][0]["body"] == "hello all"
