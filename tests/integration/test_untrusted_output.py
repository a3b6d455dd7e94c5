"""What peers wrote reaches the model through the MCP tools neutralised: message bodies,
state cards (refused at set time, neutralised when a registry file was written by hand),
transcript turns and pane text. Real servers in real panes, a real MCP client."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from oxtail_py.fsio import atomic_write_json, load_json
from oxtail_py.layout import Layout
from tests.integration.harness import PrivateTmux, await_until, error_code, launch_in_pane, ok

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-000000000001"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "transcripts"
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b\u202e\x00"
STEERING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


async def test_peer_text_reaches_the_model_neutralised_through_every_tool(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    fixture = next(
        e
        for e in json.loads((FIXTURES / "manifest.json").read_text())
        if e["client"] == "claude" and e["file"].endswith("tui_two_turns.jsonl")
    )
    prompt = fixture["turns"][0]["prompt"]
    raw = (FIXTURES / fixture["file"]).read_text()
    assert json.dumps(prompt)[1:-1] in raw
    hostile_transcript = raw.replace(json.dumps(prompt)[1:-1], json.dumps(prompt + HOSTILE)[1:-1])
    # recorded in this project: read_session refuses a transcript of another project's session
    hostile_transcript = hostile_transcript.replace(
        json.dumps(fixture["cwd"]), json.dumps(str(project))
    )
    claude_dir = Path(server_env["HOME"]) / ".claude/projects/-anything"
    claude_dir.mkdir(parents=True)
    (claude_dir / f"{fixture['session_id']}.jsonl").write_text(hostile_transcript)

    peer_sid = fixture["session_id"]
    alpha = launch_in_pane(
        tmux_server,
        session="alpha",
        cwd=project,
        env={**server_env, "CLAUDE_CODE_SESSION_ID": SID_A},
    )
    peer = launch_in_pane(
        tmux_server,
        session="cl",
        cwd=project,
        env={**server_env, "CLAUDE_CODE_SESSION_ID": peer_sid},
        as_client="claude",
    )
    tmux_server.new_session("notes", project)
    # U+202E (RIGHT-TO-LEFT OVERRIDE) as octal bytes: POSIX printf in any shell.
    tmux_server.run("send-keys", "-t", "notes", "-l", r"printf 'pane-\342\200\256-mark\n'")
    tmux_server.run("send-keys", "-t", "notes", "Enter")
    async with alpha.client() as a, peer.client() as p:
        # State card: refused at set time...
        assert error_code(await p.call_tool("set_my_state", {"purpose": "hi" + HOSTILE})) == (
            "invalid-purpose"
        )
        # ...and neutralised on display when the registry file was written by hand.
        server_pid = ok(await p.call_tool("get_my_session", {}))["server_pid"]
        entry_path = Layout(Path(server_env["AGENTMAIL_HOME"])).session_file(server_pid)
        entry = load_json(entry_path)
        entry["state"]["purpose"] = "busy" + HOSTILE
        atomic_write_json(entry_path, entry)
        rows = ok(await a.call_tool("list_project_sessions", {}))["sessions"]
        card = next(r for r in rows if r["name"] == "cl")["purpose"]
        assert card.startswith("busy␛[2J") and STEERING.search(card) is None

        ok(await a.call_tool("send_message", {"target": "cl", "body": "look" + HOSTILE}))
        got = ok(await p.call_tool("read_my_messages", {}))["messages"]
        assert [m["body"] for m in got] == ["look␛[2J␛]0;owned␇<U+009B><U+202E>␀"]

        read = ok(await a.call_tool("read_session", {"name": "cl"}))
        assert read["mode"] == "transcript"
        first = next(t["text"] for t in read["turns"] if t["role"] == "user")
        assert first.startswith(prompt) and first != prompt
        assert STEERING.search(json.dumps(read, ensure_ascii=False)) is None

        await await_until(lambda: "pane-" in tmux_server.run("capture-pane", "-p", "-t", "notes"))
        pane = ok(await a.call_tool("read_session", {"name": "notes"}))
        assert "pane-<U+202E>-mark" in pane["pane_text"]
