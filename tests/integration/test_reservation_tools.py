"""reserve_files / release_files / list_reservations and the notes tools end to end: real
servers in real tmux panes, the real MCP client, and the real rendered hook deciding
an Edit of a peer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from oxtail_py.hooks_install import install
from oxtail_py.layout import Layout
from oxtail_py.settings import Settings
from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    error_code,
    launch_in_pane,
    ok,
    wait_until,
)

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-000000000001"
SID_B = "bbbbbbbb-0000-4000-8000-000000000002"
SID_C = "cccccccc-0000-4000-8000-000000000003"


def _agent(tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str) -> ServerProc:
    return launch_in_pane(tmux, session=name, cwd=cwd, env={**env, "CLAUDE_CODE_SESSION_ID": sid})


@pytest.fixture
def world(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> dict[str, ServerProc]:
    other = tmp_path / "other-proj"
    (other / ".git").mkdir(parents=True)
    (project / "src" / "app.py").write_text("print('hi')\n")
    (project / "docs").mkdir()
    return {
        "alpha": _agent(tmux_server, server_env, "alpha", project, SID_A),
        "beta": _agent(tmux_server, server_env, "beta", project / "src", SID_B),
        "gamma": _agent(tmux_server, server_env, "gamma", other, SID_C),
    }


def _edit(hook: Path, env: dict[str, str], sid: str, path: Path, cwd: Path) -> str:
    """The rendered hook's stdout for a Claude Edit of `path` by session `sid`."""
    payload = json.dumps({"session_id": sid, "transcript_path": "/tmp/t.jsonl", "cwd": str(cwd),
                          "hook_event_name": "PreToolUse", "tool_name": "Edit",
                          "tool_input": {"file_path": str(path), "old_string": "a",
                                         "new_string": "b"}}, separators=(",", ":"))
    done = subprocess.run([str(hook), "claude", "pretooluse"], input=payload, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_reserve_conflict_release_and_the_hook_in_between(
    world: dict[str, ServerProc], server_env: dict[str, str], project: Path
) -> None:
    install(Settings.from_env(server_env))
    hook = Path(server_env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    app = project / "src" / "app.py"
    async with world["alpha"].client() as a, world["beta"].client() as b:
        got = ok(await a.call_tool("reserve_files", {"paths": ["src/app.py"],
                                                      "reason": "splitting the router"}))
        [mine] = got["granted"]
        assert (mine["path"], mine["pattern"], mine["kind"], mine["exclusive"]) == (
            "src/app.py", "/src/app.py", "file", True)
        assert got["conflicts"] == []

        # B: a glob over the same file conflicts, naming the holder and how to ask
        clash = ok(await b.call_tool("reserve_files", {"paths": ["src/*.py", "docs/"]}))
        assert [g["path"] for g in clash["granted"]] == ["docs/"]
        [c] = clash["conflicts"]
        assert (c["requested"], c["holder"], c["holder_session_id"], c["pattern"]) == (
            "src/*.py", "alpha", SID_A, "src/app.py")
        assert c["reason"] == "splitting the router" and c["example_path"] == "src/app.py"
        assert c["expires_at"] == mine["expires_at"] and f'target="{SID_A}"' in c["ask"]

        # the hook: B's Edit is denied with the holder, the reason and the ask_peer call
        out = json.loads(_edit(hook, server_env, SID_B, app, project / "src"))
        decision = out["hookSpecificOutput"]
        assert set(out) == {"hookSpecificOutput"} and set(decision) == {
            "hookEventName", "permissionDecision", "permissionDecisionReason"}
        assert decision["permissionDecision"] == "deny"
        reason = decision["permissionDecisionReason"]
        assert "alpha" in reason and "splitting the router" in reason
        assert f'ask_peer(target="{SID_A}"' in reason and "until " in reason
        # A's own Edit passes
        assert _edit(hook, server_env, SID_A, app, project) == ""
        # docs/ is B's, shared? no: exclusive too, so A is denied there
        assert "deny" in _edit(hook, server_env, SID_A, project / "docs" / "x.md", project)

        # reserving again renews: one entry, a later expiry
        time.sleep(1.1)
        again = ok(await a.call_tool("reserve_files", {"paths": ["src/app.py"],
                                                        "reason": "still at it"}))
        assert again["granted"][0]["expires_at"] > mine["expires_at"]
        listing = ok(await b.call_tool("list_reservations", {}))
        rows = {(r["path"], r["holder"], r["is_mine"]) for r in listing["reservations"]}
        assert rows == {("src/app.py", "alpha", False), ("docs/", "beta", True)}

        # B may not release A's; A releases; then B's Edit goes through
        assert error_code(await b.call_tool("release_files", {"paths": ["src/app.py"]})) == (
            "not-your-reservation")
        assert _edit(hook, server_env, SID_B, app, project / "src") != ""
        gone = ok(await a.call_tool("release_files", {}))
        assert [r["path"] for r in gone["released"]] == ["src/app.py"]
        assert _edit(hook, server_env, SID_B, app, project / "src") == ""
        assert ok(await b.call_tool("reserve_files", {"paths": ["src/*.py"]}))["conflicts"] == []


async def test_a_killed_holder_loses_its_reservations_at_once(
    world: dict[str, ServerProc], server_env: dict[str, str], project: Path
) -> None:
    install(Settings.from_env(server_env))
    hook = Path(server_env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    app = project / "src" / "app.py"
    async with world["alpha"].client() as a, world["beta"].client() as b:
        alpha_pid = ok(await a.call_tool("get_my_session", {}))["server_pid"]
        ok(await a.call_tool("reserve_files", {"paths": ["src/"]}))
        assert "deny" in _edit(hook, server_env, SID_B, app, project)
        os.kill(alpha_pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{alpha_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the pane's shell reaps it
        assert _edit(hook, server_env, SID_B, app, project) == ""
        assert ok(await b.call_tool("list_reservations", {}))["reservations"] == []
        assert ok(await b.call_tool("reserve_files", {"paths": ["src/app.py"]}))["granted"]
        # the first reader after the kill deleted the dead holder's file
        layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
        names = [p.name for p in layout.reservations(project).directory.iterdir()]
        assert not [n for n in names if n.startswith(f"h.{alpha_pid}-")]


async def test_bad_reservations_get_specific_errors_and_change_nothing(
    world: dict[str, ServerProc], project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "src" / "escape").symlink_to(outside)
    cases = {
        "empty-paths": {"paths": []},
        "empty-path": {"paths": [""]},
        "outside-project": {"paths": ["/etc/passwd"]},
        "symlink-outside-project": {"paths": ["src/escape/x.py"]},
        "invalid-glob": {"paths": ["src/[oops"]},
        "whole-project": {"paths": ["."]},
        "bad-ttl": {"paths": ["src/app.py"], "ttl_s": 0},
        "bad-reason": {"paths": ["src/app.py"], "reason": "two\nlines"},
    }
    async with world["alpha"].client() as a, world["gamma"].client() as g:
        for code, args in cases.items():
            assert error_code(await a.call_tool("reserve_files", args)) == code, code
        for path in ("../other-proj/x", "src/../../x"):
            assert error_code(await a.call_tool("reserve_files", {"paths": [path]})) == (
                "outside-project")
        assert error_code(await a.call_tool("reserve_files", {
            "paths": ["x"], "ttl_s": 10**9})) == "bad-ttl"
        assert error_code(await a.call_tool("reserve_files", {"paths": ["src/escape/*.py"]})) == (
            "symlink-outside-project")
        assert error_code(await a.call_tool("release_files", {"paths": []})) == "empty-paths"
        assert ok(await a.call_tool("list_reservations", {}))["reservations"] == []
        # scope: another project sees none of this one's reservations
        ok(await a.call_tool("reserve_files", {"paths": ["src/"]}))
        assert ok(await g.call_tool("list_reservations", {}))["reservations"] == []
        assert ok(await g.call_tool("reserve_files", {"paths": ["src/"]}))["conflicts"] == []


async def test_notes_are_project_scoped_with_author_time_and_caps(
    world: dict[str, ServerProc],
) -> None:
    async with (world["alpha"].client() as a, world["beta"].client() as b,
                world["gamma"].client() as g):
        note = ok(await a.call_tool("set_note", {"key": "build.cmd", "value": "make -j2\nthen test",
                                                 "category": "howto"}))
        assert (note["author"], note["category"]) == (SID_A, "howto") and note["updated_at"]
        ok(await b.call_tool("set_note", {"key": "owner/db", "value": "beta does the schema"}))
        everything = ok(await b.call_tool("get_notes", {}))["notes"]
        assert [n["key"] for n in everything] == ["build.cmd", "owner/db"]
        howto = ok(await b.call_tool("get_notes", {"category": "howto"}))["notes"]
        assert [(n["key"], n["value"]) for n in howto] == [("build.cmd", "make -j2\nthen test")]
        assert ok(await g.call_tool("get_notes", {}))["notes"] == []  # another project
        assert ok(await b.call_tool("delete_note", {"key": "build.cmd"}))["author"] == SID_A
        assert [n["key"] for n in ok(await a.call_tool("get_notes", {}))["notes"]] == ["owner/db"]
        errors = {
            "bad-note-key": ("set_note", {"key": "../x", "value": "v"}),
            "note-too-large": ("set_note", {"key": "k", "value": "x" * 4001}),
            "bad-note-value": ("set_note", {"key": "k", "value": "\x1b[31mred"}),
            "bad-note-category": ("set_note", {"key": "k", "value": "v", "category": "a b"}),
            "no-such-note": ("delete_note", {"key": "build.cmd"}),
            "bad-note-query": ("get_notes", {"key": "k", "category": "c"}),
        }
        for code, (tool, args) in errors.items():
            assert error_code(await a.call_tool(tool, args)) == code, code


async def test_an_expired_reservation_ends_and_its_server_removes_the_file(
    world: dict[str, ServerProc], server_env: dict[str, str], project: Path
) -> None:
    paths = Layout(Path(server_env["AGENTMAIL_HOME"])).reservations(project)
    async with world["alpha"].client() as a, world["beta"].client() as b:
        ok(await a.call_tool("reserve_files", {"paths": ["src/app.py"], "ttl_s": 1}))
        assert list(paths.directory.glob("h.*.json"))
        # the server's own timer rewrites its file at the expiry: no file, no helper start
        wait_until(lambda: not list(paths.directory.glob("h.*.json")), timeout=10,
                   what="the expired reservation's file to go")
        assert ok(await b.call_tool("list_reservations", {}))["reservations"] == []
        assert ok(await b.call_tool("reserve_files", {"paths": ["src/app.py"]}))["granted"]


async def test_an_agent_without_a_session_id_cannot_reserve(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    anon = launch_in_pane(tmux_server, session="anon", cwd=project, env=server_env)
    async with anon.client() as n:
        out = await n.call_tool("reserve_files", {"paths": ["src/"]})
        assert error_code(out) == "no-session-id"
        assert "get_my_session" in str(out.structured_content)


async def test_the_tools_advertise_their_schemas(world: dict[str, ServerProc]) -> None:
    async with world["alpha"].client() as a:
        tools = {t.name: t for t in (await a.list_tools()).tools}
        ours = ["reserve_files", "release_files", "list_reservations", "set_note", "get_notes",
                "delete_note"]
        assert all(tools[name].output_schema for name in ours)
        reserve = tools["reserve_files"].input_schema["properties"]
        assert (reserve["exclusive"]["default"], reserve["ttl_s"]["default"]) == (True, 1800)
        assert tools["reserve_files"].input_schema["required"] == ["paths"]
