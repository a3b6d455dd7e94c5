"""Finding 5 of issue 9: one bad file must not break everyone.

A peer (or anything running as the user) can leave garbage where our files belong:
a registry entry with a number too large for int(), JSON nested past the parser's
recursion limit, a FIFO where a JSON file, an inbox or a busy/idle marker belongs.
Every tool of every other server keeps working, nothing hangs, and the bad entry is
rejected with its reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.registry import Registry
from tests.integration.harness import PrivateTmux, launch_in_pane, ok

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-00000000000a"
SID_B = "bbbbbbbb-0000-4000-8000-00000000000b"
# Each tool call below must come back well within this: a FIFO opened for blocking
# I/O would hang it for ever.
CALL_LIMIT_S = 15


def _plant_hostile_files(layout: Layout) -> None:
    sessions = ensure_tree(layout.root, layout.sessions_dir)
    (sessions / "4001.json").write_text('{"server_pid": 1e400, "server_start": "1.00"}')
    (sessions / "4002.json").write_text("[" * 100_000 + "]" * 100_000)
    (sessions / "4003.json").write_text(json.dumps({"server_pid": True, "server_start": "1.00"}))
    os.mkfifo(sessions / "4004.json")
    status = ensure_tree(layout.root, layout.status_dir)
    os.mkfifo(status / SID_B)


async def test_hostile_registry_entries_and_fifos_break_no_tool(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    _plant_hostile_files(layout)
    alpha = launch_in_pane(
        tmux_server, session="alpha", cwd=project,
        env={**server_env, "CLAUDE_CODE_SESSION_ID": SID_A},
    )
    beta = launch_in_pane(
        tmux_server, session="beta", cwd=project,
        env={**server_env, "CLAUDE_CODE_SESSION_ID": SID_B},
    )
    async with alpha.client() as a, beta.client() as b:
        with anyio.fail_after(CALL_LIMIT_S):
            rows = ok(await a.call_tool("list_project_sessions", {}))["sessions"]
        assert {r["name"] for r in rows if r["kind"] == "agent"} == {"alpha", "beta"}
        # The status marker of beta is a FIFO: the wake gate must not block on it.
        with anyio.fail_after(CALL_LIMIT_S):
            sent = ok(await a.call_tool(
                "send_message", {"target": "beta", "body": "still here?", "wake": "auto"}
            ))
        assert sent["target_session_id"] == SID_B
        with anyio.fail_after(CALL_LIMIT_S):
            inbox = ok(await b.call_tool("read_my_messages", {}))
        assert [m["body"] for m in inbox["messages"]] == ["still here?"]

    rejected = {r.path.name: r.reason for r in Registry(layout).scan().rejected}
    assert "server_pid" in rejected["4001.json"] and "4001.json" in rejected
    assert "nested too deeply" in rejected["4002.json"]
    assert "not a process id" in rejected["4003.json"]
    assert "not a regular file" in rejected["4004.json"]
