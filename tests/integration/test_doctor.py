"""`oxtail-py doctor` on temporary HOMEs through the real CLI: it fails with the fix named
on a HOME without hooks and on Codex hooks whose trust was invalidated, passes after
`oxtail-py setup`, and reports running servers, stale entries and quarantined lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import PrivateTmux, launch_in_pane, ok, wait_until

pytestmark = pytest.mark.anyio

SID = "aaaaaaaa-0000-4000-8000-0000000000f1"


@pytest.fixture
def env(tmp_path: Path, tmux_server: PrivateTmux) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".codex").mkdir()
    (home / ".claude.json").write_text("{}")  # Claude Code has run here
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "AGENTMAIL_HOME")}
    return {**clean, "HOME": str(home), "AGENTMAIL_HOME": str(tmp_path / "am"),
            "OXTAIL_TMUX_SOCKET": str(tmux_server.socket)}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oxtail_py", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def checks(out: str) -> dict[str, tuple[str, str]]:
    """check name -> (status, the line after it if it is a fix, else '')."""
    lines = out.splitlines()
    found = {}
    for i, line in enumerate(lines):
        status, _, rest = line.partition("  ")
        if status.strip() in ("OK", "WARN", "FAIL"):
            name = rest.strip().split(": ", 1)[0]
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            found[name] = (status.strip(), nxt if nxt.startswith("fix:") else "")
    return found


def test_a_home_without_hooks_fails_with_each_fix_named(env: dict[str, str]) -> None:
    done = cli(env, "doctor")
    assert done.returncode == 1, done.stdout
    found = checks(done.stdout)
    assert found["MCP server registered for Claude Code"] == ("FAIL", "fix: run `oxtail-py setup`")
    assert found["MCP server registered for Codex"][0] == "FAIL"
    status, fix = found["Claude Code hooks installed and current"]
    assert status == "FAIL" and "oxtail-py" in fix
    status, fix = found["Codex hooks installed, current and trusted"]
    assert status == "FAIL" and "oxtail-py" in fix
    assert found["tmux present"][0] == "OK"
    assert done.stdout.strip().endswith("4 check(s) failed")


def test_setup_makes_doctor_pass_and_an_edited_codex_hook_loses_its_trust(
    env: dict[str, str],
) -> None:
    assert cli(env, "setup").returncode == 0
    done = cli(env, "doctor")
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().endswith("all checks passed")
    assert checks(done.stdout)["MCP server registered for Claude Code"][0] == "OK"

    # Editing a hook invalidates Codex's trust in it (its hash changes): doctor says so.
    hooks_file = Path(env["HOME"]) / ".codex" / "hooks.json"
    data = json.loads(hooks_file.read_text())
    for groups in data["hooks"].values():
        for group in groups:
            for handler in group["hooks"]:
                handler["timeout"] = int(handler.get("timeout", 600)) + 1
    hooks_file.write_text(json.dumps(data))
    done = cli(env, "doctor")
    assert done.returncode == 1
    status, fix = checks(done.stdout)["Codex hooks installed, current and trusted"]
    assert status == "FAIL" and "codex-hooks-modified" in done.stdout
    assert "/hooks" in fix and "oxtail-py setup" in fix

    # A registered interpreter that is gone is a failure too.
    claude_json = Path(env["HOME"]) / ".claude.json"
    config = json.loads(claude_json.read_text())
    config["mcpServers"]["oxtail"]["command"] = "/nonexistent/python3"
    claude_json.write_text(json.dumps(config))
    status, fix = checks(cli(env, "doctor").stdout)["MCP server registered for Claude Code"]
    assert status == "FAIL" and fix == "fix: run `oxtail-py setup`"


async def test_servers_stale_entries_and_quarantine_are_reported(
    env: dict[str, str], tmux_server: PrivateTmux, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)
    server = launch_in_pane(tmux_server, session="alpha", cwd=project,
                            env={k: env[k] for k in ("HOME", "AGENTMAIL_HOME",
                                                     "OXTAIL_TMUX_SOCKET")}
                            | {"CLAUDE_CODE_SESSION_ID": SID})
    root = Path(env["AGENTMAIL_HOME"])
    async with server.client() as a:
        ok(await a.call_tool("get_my_session", {}))  # a client that never calls raced close
        wait_until(lambda: list((root / "sessions").glob("*.json")), what="the entry")
        (root / "sessions" / "4000000.json").write_text(json.dumps(
            {"server_pid": 4000000, "server_start": "12345.67"}))
        (root / "sessions" / "4000001.json").write_text('{"server_pid": "x"}')
        box = root / "mailboxes" / SID
        box.mkdir(parents=True, exist_ok=True, mode=0o700)
        (box / "quarantine.jsonl").write_text('{"line": "bad", "reason": "x"}\n')
        # A claim whose reader (pid 4000000) is gone: the owner's next read takes it.
        (box / "claim.4000000-12345.67.0011223344556677.jsonl").write_text("")
        done = cli(env, "doctor")
    out = done.stdout
    assert f"session {SID[:8]} from env; pane {server.pane} (proven)" in out
    assert "WARN  server pid 4000000 (unknown client): stale entry" in out
    assert "WARN  registry 4000001.json: corrupt entry ignored" in out
    assert "WARN  quarantined lines: 1 corrupt line(s)" in out
    assert "WARN  stranded claims: 1 claim(s) of readers that are gone" in out
