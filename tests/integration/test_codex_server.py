"""A Codex-hosted server with the real hooks: the start-up warning, and the wake gate
reading the busy/idle marker the Codex hooks write (no typing into a busy Codex)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxtail_py.layout import Layout
from tests.integration.harness import PrivateTmux, ok
from tests.integration.hookkit import payload
from tests.integration.test_server_tools import _agent
from tests.integration.test_wake import _fake, _lines, _remove_fifo_dirs, asker, asker_env

__all__ = ["_remove_fifo_dirs", "asker", "asker_env"]  # fixtures

pytestmark = pytest.mark.anyio

SID_PEER = "019ac0de-0000-7000-8000-00000000c0de"


async def test_a_codex_server_warns_once_when_its_hooks_would_not_run(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    codex_like = _agent(tmux_server, server_env, "cx", project, None, as_client="codex")
    async with codex_like.client() as c:
        ok(await c.call_tool("get_my_session", {}, meta={"threadId": SID_PEER}))
        ok(await c.call_tool("get_my_session", {}, meta={"threadId": SID_PEER}))
    warned = (codex_like.fifo_dir / "err").read_text()
    assert warned.count("run `oxtail-py install-hook`") == 1, warned


async def test_a_codex_server_whose_hook_was_edited_after_trust_says_how_to_approve(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    """Trust invalidated (our Stop hook edited after setup trusted it): the warning at
    start names the edit and both fixes, Codex's /hooks review and `oxtail-py setup`."""
    _install(server_env)
    hooks_json = Path(server_env["HOME"]) / ".codex" / "hooks.json"
    data = json.loads(hooks_json.read_text())
    data["hooks"]["Stop"][0]["hooks"][0]["timeout"] = 30
    hooks_json.write_text(json.dumps(data))
    codex_like = _agent(tmux_server, server_env, "cx", project, None, as_client="codex")
    async with codex_like.client() as c:
        ok(await c.call_tool("get_my_session", {}, meta={"threadId": SID_PEER}))
    warned = (codex_like.fifo_dir / "err").read_text()
    assert warned.count("changed after Codex trusted them") == 1, warned
    assert "(Stop)" in warned and "/hooks" in warned and "`oxtail-py setup`" in warned


def _install(server_env: dict[str, str]) -> Path:
    env = {**os.environ, **server_env}
    env.pop("CODEX_HOME", None)
    out = subprocess.run([sys.executable, "-m", "oxtail_py", "install-hook"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return Path(server_env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"


def _codex_hook(hook: Path, server_env: dict[str, str], event: str, stdin: str) -> None:
    proc = subprocess.run([str(hook), "codex", event], input=stdin, capture_output=True,
                          text=True, env={**os.environ, **server_env}, timeout=30)
    assert (proc.returncode, proc.stderr) == (0, "")


async def test_the_wake_gate_reads_the_codex_hooks_busy_marker(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, asker: object
) -> None:
    hook = _install(server_env)
    codex, submitted = _fake(tmux_server, server_env, "cx", project, SID_PEER, kind="codex")
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    async with asker.client() as a, codex.client() as _c:  # type: ignore[attr-defined]
        # mid-turn: Codex ran our PostToolUse hook for its thread
        _codex_hook(hook, server_env, "posttooluse", payload("PostToolUse", session_id=SID_PEER))
        assert layout.status_file(SID_PEER).read_text() == "busy"
        args = {"target": "cx", "body": "mid-turn", "wake": "auto"}
        assert ok(await a.call_tool("send_message", args))["wake_status"] == "skipped_busy"
        assert _lines(submitted) == []
        # turn end: Stop delivers the waiting mail once and marks idle
        _codex_hook(hook, server_env, "stop", payload("Stop", session_id=SID_PEER,
                                                      stop_hook_active=False))
        assert layout.status_file(SID_PEER).read_text() == "idle"
        args = {"target": "cx", "body": "now idle", "wake": "auto"}
        assert ok(await a.call_tool("send_message", args))["wake_status"] == "confirmed"
        assert len(_lines(submitted)) == 1
