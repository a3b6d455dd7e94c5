"""Scope and identity at the trust boundary (issue 9, findings 2 and 3), with real servers
in real tmux panes and the real MCP client.

- An argument never widens an agent beyond its own project (`project_root`).
- A claim never takes another live agent's id, nor a session of another project.
- A server follows its own Claude client to the next session (/clear rewrites the
  SessionStart drop), without a tool call, and mail to the old id still reaches it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oxtail_py.fsio import atomic_write_json, ensure_tree
from oxtail_py.identity import detect_client
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
from oxtail_py.wake import SKIPPED_BUSY
from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    await_until,
    error_code,
    launch_in_pane,
    ok,
    wait_until,
)

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-1111-4000-8000-000000000001"
SID_B = "bbbbbbbb-1111-4000-8000-000000000002"
SID_C = "cccccccc-1111-4000-8000-000000000003"
SID_NEW = "dddddddd-1111-4000-8000-000000000004"
SID_NEWER = "eeeeeeee-1111-4000-8000-000000000005"


def _agent(
    tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str | None, **kw: str
) -> ServerProc:
    extra = {"CLAUDE_CODE_SESSION_ID": sid} if sid else {}
    return launch_in_pane(tmux, session=name, cwd=cwd, env={**env, **extra}, **kw)


def _registered(layout: Layout, sid: str) -> dict[str, object]:
    """The registry entry whose session id is `sid` (waits until it is there)."""

    def find() -> dict[str, object] | None:
        for path in layout.sessions_dir.glob("*.json"):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if entry["client"]["session_id"] == sid:
                return dict(entry)
        return None

    found = wait_until(find, what=f"a registry entry for {sid}")
    assert isinstance(found, dict)
    return found


def _write_drop(layout: Layout, server_pid: int, sid: str, source: str) -> None:
    """What hookdrain.session_start writes when the client above `server_pid` starts a
    session (its own test, and the real client's, are in test_hooks / e2e)."""
    client = detect_client(server_pid)
    assert client is not None and client.start is not None
    ensure_tree(layout.root, layout.drops_dir)
    atomic_write_json(
        layout.drop_file(client.pid),
        {
            "session_id": sid,
            "cwd": None,
            "transcript_path": None,
            "client_pid": client.pid,
            "client_start": client.start,
            "source": source,
        },
    )


@pytest.fixture
def layout(server_env: dict[str, str]) -> Layout:
    return Layout(Path(server_env["AGENTMAIL_HOME"]))


@pytest.fixture
def other(tmp_path: Path) -> Path:
    path = tmp_path / "other-proj"
    (path / ".git").mkdir(parents=True)
    return path


# -- finding 2: scope ----------------------------------------------------------------


async def test_project_root_may_narrow_but_never_widen_the_callers_scope(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, other: Path
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    gamma = _agent(tmux_server, server_env, "gamma", other, SID_C)
    async with alpha.client() as a, gamma.client() as _c:
        for outside in ("/", str(other), str(project.parent), "..", str(project / ".." / "x")):
            got = await a.call_tool("list_project_sessions", {"project_root": outside})
            assert error_code(got) == "cross-project", outside
            assert "outside this agent's project" in got.structured_content["message"]  # type: ignore[index]
        # a symlink that points out of the project is judged by its target
        (project / "src" / "escape").symlink_to(other)
        escape = str(project / "src" / "escape")
        got = await a.call_tool("list_project_sessions", {"project_root": escape})
        assert error_code(got) == "cross-project"
        inside = ok(await a.call_tool("list_project_sessions", {"project_root": str(project)}))
        assert SID_C not in {r["client_session_id"] for r in inside["sessions"]}
        sub = ok(
            await a.call_tool("list_project_sessions", {"project_root": str(project / "src")})
        )
        assert sub["project_root"] == str(project / "src") and sub["inferred"] is False


async def test_read_session_cannot_reach_another_project_through_project_root(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, other: Path
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    gamma = _agent(tmux_server, server_env, "gamma", other, SID_C)
    async with alpha.client() as a, gamma.client() as _c:
        for root in ("/", str(other)):
            args = {"name": SID_C, "project_root": root, "mode": "pane"}
            assert error_code(await a.call_tool("read_session", args)) == "cross-project"
            args = {"name": "gamma", "project_root": root, "mode": "pane"}
            assert error_code(await a.call_tool("read_session", args)) == "cross-project"


async def test_a_claim_cannot_take_another_live_agents_id_in_or_across_projects(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    other: Path,
    layout: Layout,
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    beta = _agent(tmux_server, server_env, "beta", project, None)
    gamma = _agent(tmux_server, server_env, "gamma", other, SID_C)
    async with alpha.client() as a, beta.client() as b, gamma.client() as _c:
        for victim in (SID_A, SID_C):
            got = await b.call_tool("claim_session", {"session_id": victim})
            assert error_code(got) == "session-taken", victim
            assert "belongs to the live oxtail server" in got.structured_content["message"]  # type: ignore[index]
        me = ok(await b.call_tool("get_my_session", {}))
        assert me["session_id"] is None and me["claimed"] is False
        # alpha's mail still reaches alpha, not the would-be thief
        Mailbox.open(layout, SID_A).enqueue(Message.create("for alpha", from_session_id=SID_C))
        got_a = ok(await a.call_tool("read_my_messages", {}))
        assert [m["body"] for m in got_a["messages"]] == ["for alpha"]
        assert ok(await b.call_tool("read_my_messages", {}))["count"] == 0
        # a claim of its own, fresh id works
        mine = ok(await b.call_tool("claim_session", {"session_id": SID_B}))
        assert mine["session_id"] == SID_B and mine["claimed"] is True


async def test_a_claim_of_a_session_whose_transcript_lies_in_another_project_is_refused(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    other: Path,
) -> None:
    home = Path(server_env["HOME"])
    transcripts = home / ".claude" / "projects" / "-other-proj"
    transcripts.mkdir(parents=True)
    line = {"type": "user", "cwd": str(other), "message": {"role": "user", "content": "hi"}}
    (transcripts / f"{SID_C}.jsonl").write_text(json.dumps(line) + "\n")
    line_here = {**line, "cwd": str(project / "src")}
    (transcripts / f"{SID_NEW}.jsonl").write_text(json.dumps(line_here) + "\n")
    beta = _agent(tmux_server, server_env, "beta", project, None, as_client="claude")
    async with beta.client() as b:
        got = await b.call_tool("claim_session", {"session_id": SID_C})
        assert error_code(got) == "cross-project"
        assert str(other) in got.structured_content["message"]  # type: ignore[index]
        mine = ok(await b.call_tool("claim_session", {"session_id": SID_NEW}))
        assert mine["session_id"] == SID_NEW


async def test_oxtail_py_claim_is_refused_for_another_agents_id_and_so_is_a_forged_file(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    layout: Layout,
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    beta = _agent(tmux_server, server_env, "beta", project, None)
    async with alpha.client() as a, beta.client() as b:
        beta_pid = int(ok(await b.call_tool("get_my_session", {}))["server_pid"])
        env = {**os.environ, **server_env}
        cli = [sys.executable, "-m", "oxtail_py", "claim", "--server-pid", str(beta_pid), SID_A]
        done = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2 and "belongs to the live oxtail server" in done.stderr
        # Writing the claim file by hand (skipping the CLI's check) gains nothing: the
        # server checks again when it adopts a claim.
        from oxtail_py.procs import identity_of

        server = identity_of(beta_pid)
        assert server is not None
        atomic_write_json(layout.claim_drop_file(server), {"session_id": SID_A})
        me = ok(await b.call_tool("get_my_session", {}))
        assert me["session_id"] is None
        assert "refused oxtail-py claim" in me["diagnosis"]["claim"]
        assert ok(await a.call_tool("get_my_session", {}))["session_id"] == SID_A


# -- finding 3: identity follows the client -----------------------------------------


async def test_after_clear_the_server_follows_its_client_and_no_mail_is_stranded(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    layout: Layout,
) -> None:
    peer = _agent(tmux_server, server_env, "peer", project, SID_A, as_client="claude")
    sender = _agent(tmux_server, server_env, "sender", project, SID_B)
    async with peer.client() as p, sender.client() as s:
        peer_pid = int(ok(await p.call_tool("get_my_session", {}))["server_pid"])
        _write_drop(layout, peer_pid, SID_A, "startup")  # the startup drop: same id
        # A sender resolves the peer by tmux name just before /clear...
        ok(await s.call_tool("send_message", {"target": "peer", "body": "before clear"}))
        # ...then /clear: the client's SessionStart hook rewrites the drop.
        time.sleep(0.05)
        _write_drop(layout, peer_pid, SID_NEW, "clear")
        # No tool call on the peer: its server follows on the file event.
        entry = await await_until(lambda: _entry_of(layout, peer_pid, SID_NEW), what="follow")
        assert entry["client"]["previous_session_ids"] == [SID_A]
        assert entry["client"]["identity_source"] == "drop"
        new_box = Mailbox.open(layout, SID_NEW)
        # the mail sent before the move is where the new session's hooks look
        await await_until(lambda: new_box.pending_count() == 1, what="old mail forwarded")
        ok(await s.call_tool("send_message", {"target": "peer", "body": "by tmux name"}))
        ok(await s.call_tool("send_message", {"target": SID_A, "body": "to the old id"}))
        # a racing sender that wrote into the old box after the move is forwarded too
        Mailbox.open(layout, SID_A).enqueue(Message.create("late", from_session_id=SID_B))
        await await_until(lambda: new_box.pending_count() == 4, what="late mail forwarded")
        assert Mailbox.open(layout, SID_A).pending_count() == 0
        me = ok(await p.call_tool("get_my_session", {}))
        assert me["session_id"] == SID_NEW and me["previous_session_ids"] == [SID_A]
        assert "source clear" in me["proof"]
        # The wake gate reads busy/idle for the current id: the old id's stale `idle`
        # must not let a wake type into the pane of a turn that is running.
        ensure_tree(layout.root, layout.status_dir)
        layout.status_file(SID_A).write_text("idle")
        layout.status_file(SID_NEW).write_text("busy")
        sent = ok(
            await s.call_tool("send_message", {"target": "peer", "body": "x", "wake": "auto"})
        )
        assert sent["target_session_id"] == SID_NEW
        assert sent["wake_status"] == SKIPPED_BUSY


def _entry_of(layout: Layout, server_pid: int, sid: str) -> dict[str, object] | None:
    try:
        entry = json.loads(layout.session_file(server_pid).read_text())
    except (OSError, ValueError):
        return None
    return dict(entry) if entry["client"]["session_id"] == sid else None


async def test_a_claim_sticks_against_older_drops_but_the_clients_next_session_moves_it(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    layout: Layout,
) -> None:
    peer = _agent(tmux_server, server_env, "peer", project, None, as_client="claude")
    async with peer.client() as p:
        peer_pid = int(ok(await p.call_tool("get_my_session", {}))["server_pid"])
        _write_drop(layout, peer_pid, SID_A, "startup")
        assert ok(await p.call_tool("get_my_session", {}))["session_id"] == SID_A
        claimed = ok(await p.call_tool("claim_session", {"session_id": SID_B}))
        assert claimed["session_id"] == SID_B and claimed["claimed"] is True
        # the drop written before the claim does not override it
        again = ok(await p.call_tool("get_my_session", {}))
        assert again["session_id"] == SID_B and "older" in again["diagnosis"]["follow"]
        time.sleep(0.05)
        _write_drop(layout, peer_pid, SID_NEWER, "clear")
        await await_until(lambda: _entry_of(layout, peer_pid, SID_NEWER), what="follow")
        me = ok(await p.call_tool("get_my_session", {}))
        assert me["session_id"] == SID_NEWER and me["source"] == "drop"
        assert me["claimed"] is False and me["previous_session_ids"] == [SID_A, SID_B]
        _registered(layout, SID_NEWER)


async def test_a_drop_of_a_process_that_is_not_this_servers_client_is_ignored(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    layout: Layout,
) -> None:
    peer = _agent(tmux_server, server_env, "peer", project, SID_A, as_client="claude")
    async with peer.client() as p:
        peer_pid = int(ok(await p.call_tool("get_my_session", {}))["server_pid"])
        client = detect_client(peer_pid)
        assert client is not None
        # the right file name, the wrong start time: a dead process that had this pid
        atomic_write_json(
            layout.drop_file(client.pid),
            {"session_id": SID_NEW, "client_pid": client.pid, "client_start": "12.34"},
        )
        me = ok(await p.call_tool("get_my_session", {}))
        assert me["session_id"] == SID_A and "another process" in me["diagnosis"]["drop"]
