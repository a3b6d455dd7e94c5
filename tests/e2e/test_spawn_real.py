"""Spawning against the real clients: an agent (or the CLI) starts a Claude Code or Codex
helper in tmux, with the user's own configuration (oxtail wired in ~/.claude.json and
~/.codex/config.toml, as `oxtail-py setup` does), and works with it.

The helpers share their spawner's HOME and so its scripted model: each script tells the
agents apart by the first prompt of the conversation. Lines starting SPAWN-STATS are
measurements for the record.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from .harness import (
    AnthropicModel,
    ClaudeAgent,
    CodexAgent,
    ModelRequest,
    Reply,
    ResponsesModel,
    Scenario,
    Text,
    ToolCall,
    oxtail_server,
    wait_until,
)
from .harness.agents import CODEX_KEY_VAR
from .harness.clients import REPO

pytestmark = pytest.mark.e2e

READ = ToolCall.mcp("oxtail", "read_my_messages", {})
WAKE_MARK = "oxtail: you have a message from"
_REQUEST_ID = re.compile(r'request_id\\*"\s*:\s*\\*"([0-9a-f]{16})')
_SENDER = re.compile(r'from_session_id\\*"\s*:\s*\\*"([0-9A-Za-z_-]+)')


@pytest.fixture(autouse=True)
def clients_on_path(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    """The clients on the user's PATH, as where users run them. The TUIs' PATH comes from
    the tmux client that starts them (tmux sets a new session's PATH from its client's
    environment, over `-e`), so it is set here, before the scenario's tmux starts."""
    bin_dir = str(scenario.clients.bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def first_user_text(request: ModelRequest) -> str:
    texts = request.user_texts()
    return texts[0] if texts else ""


def last_result(request: ModelRequest) -> tuple[str, str, bool]:
    """(tool name, output, is_error) of the newest tool result."""
    calls = {c.call_id: c for c in request.tool_calls()}
    result = request.tool_results()[-1]
    call = calls.get(result.call_id)
    return (call.name if call else "", result.output, result.is_error)


def stats(label: str, **values: Any) -> None:
    print(f"SPAWN-STATS {label} " + " ".join(f"{k}={v}" for k, v in values.items()))


def wire_claude(agent: ClaudeAgent, scenario: Scenario) -> None:
    """oxtail in the user's own Claude config (user scope), as `oxtail-py setup` writes it:
    a spawned Claude gets no --mcp-config, only what the user configured."""
    path = agent.home / ".claude.json"
    state = json.loads(path.read_text())
    server = oxtail_server(scenario.agentmail_home)
    state["mcpServers"] = {
        "oxtail": {"type": "stdio", "command": server.command, "args": list(server.args),
                   "env": dict(server.env)}
    }
    path.write_text(json.dumps(state, indent=2))


def user_claude(scenario: Scenario, script: Any, **kwargs: Any) -> ClaudeAgent:
    """A Claude whose user config wires oxtail (no --mcp-config server of the harness)."""
    agent = scenario.claude(script=script, mcp=None, allow=["Bash", "mcp__oxtail"], **kwargs)
    wire_claude(agent, scenario)
    return agent


def codex_in_same_home(scenario: Scenario, claude: ClaudeAgent, script: Any) -> CodexAgent:
    """Codex configured in the Claude agent's HOME (the user's one machine account)."""
    model = ResponsesModel(script)
    scenario.models.append(model)
    codex = CodexAgent(
        clients=scenario.clients, root=claude.root, model=model,
        agentmail_home=scenario.agentmail_home, project=claude.project,
        mcp=oxtail_server(scenario.agentmail_home), tmux=scenario.tmux,
    )  # fmt: skip
    scenario.agents.append(codex)
    return codex


class Observer:
    """A real oxtail server of the test (no client above it), driven over MCP."""

    def __init__(self, scenario: Scenario, project: Path) -> None:
        home = scenario.root / "observer-home"
        home.mkdir(exist_ok=True)
        self.params = StdioServerParameters(
            command=sys.executable, args=["-m", "oxtail_py", "serve"], cwd=project,
            env={
                "HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(REPO), "AGENTMAIL_HOME": str(scenario.agentmail_home),
                "OXTAIL_TMUX_SOCKET": str(scenario.tmux.socket),
            },
        )  # fmt: skip

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        async with Client(stdio_client(self.params), mode="legacy") as client:
            yield client

    def sessions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        async def main() -> None:
            async with self.client() as client:
                result = await client.call_tool("list_project_sessions", {})
                assert not result.is_error and result.structured_content, result.content
                out.extend(result.structured_content["sessions"])

        anyio.run(main)
        return out


def run_cli(scenario: Scenario, agent: ClaudeAgent, *args: str) -> subprocess.CompletedProcess[str]:
    """`oxtail-py ARGS` as the person runs it in the project, outside tmux."""
    env = {**agent.env, "PYTHONPATH": str(REPO), "OXTAIL_TMUX_SOCKET": str(scenario.tmux.socket)}
    return subprocess.run(
        [sys.executable, "-m", "oxtail_py", *args], cwd=agent.project, env=env,
        capture_output=True, text=True, timeout=150,
    )  # fmt: skip


def helper_script(request: ModelRequest) -> Reply:
    """A helper: sets its state at its first turn (so a Codex learns its thread id), and
    answers a request it is woken for."""
    if request.ends_with_tool_result():
        name, output, _ = last_result(request)
        if name.endswith("read_my_messages"):
            ids, senders = _REQUEST_ID.findall(output), _SENDER.findall(output)
            if ids and senders:
                args = {"target": senders[-1], "body": f"42 for {ids[-1]}", "reply_to": ids[-1]}
                return ToolCall.mcp("oxtail", "send_message", args)
        return Text("helper done")
    last = request.last_user_text() or ""
    if WAKE_MARK in last:
        return READ
    if "HELPER-TASK" in last:
        return ToolCall.mcp("oxtail", "set_my_state", {"purpose": "helping"})
    return Text("ok")


def quiet_helper(request: ModelRequest) -> Reply:
    """helper_script, but its first turn calls no tool (a Codex server then has no
    `_meta.threadId` to learn its thread from)."""
    if "HELPER-TASK" in (request.last_user_text() or "") and not request.ends_with_tool_result():
        return Text("ready")
    return helper_script(request)


def test_claude_spawns_codex_asks_it_and_gets_the_correlated_reply(scenario: Scenario) -> None:
    outcome: dict[str, Any] = {}

    def parent(request: ModelRequest) -> Reply:
        if request.ends_with_tool_result():
            name, output, is_error = last_result(request)
            if name.endswith("spawn_peer"):
                outcome["spawn"] = output
                if is_error:
                    return Text("spawn failed")
                args = {"target": "helper1", "body": "what is 6x7?", "timeout_ms": 60_000}
                return ToolCall.mcp("oxtail", "ask_peer", args)
            if name.endswith("ask_peer"):
                outcome["ask"] = output
                return ToolCall.mcp("oxtail", "stop_peer", {"target": "helper1"})
            if name.endswith("stop_peer"):
                outcome["stop"] = output
            return Text("parent done")
        if "please spawn" in (request.last_user_text() or ""):
            args = {"client": "codex", "prompt": "HELPER-TASK get ready", "name": "helper1",
                    "role": "calculator"}
            return ToolCall.mcp("oxtail", "spawn_peer", args)
        return Text("ok")

    claude = user_claude(scenario, parent, env={CODEX_KEY_VAR: "scripted-model-key"})
    codex = codex_in_same_home(scenario, claude, quiet_helper)
    claude.start_tui()
    claude.prompt("please spawn a codex helper", timeout=200)
    spawned = json.loads(outcome["spawn"])
    asked = json.loads(outcome["ask"])
    stats("claude-spawns-codex", spawn_ms=spawned.get("elapsed_ms"), ask_ms=asked.get("waited_ms"),
          wake=asked.get("wake_status"))
    assert spawned["name"] == "helper1" and spawned["client"] == "codex", spawned
    assert spawned["session_id"] and spawned["prompt_confirmed"] is True, spawned
    assert spawned["depth"] == 1 and spawned["detached"] is False, spawned
    assert claude.pane is not None and spawned["tmux_session"] == claude.pane.session, spawned
    assert asked["status"] == "answered", asked
    assert asked["reply"]["body"] == f"42 for {asked['request_id']}"
    assert asked["target_session_id"] == spawned["session_id"]
    stopped = json.loads(outcome["stop"])
    assert stopped["ended"] is True and stopped["session_id"] == spawned["session_id"], stopped
    assert "helper1" not in scenario.tmux.run("list-windows", "-a", "-F", "#{window_name}")
    # Known without a tool call: proven from the rollout its TUI holds open.
    assert spawned["session_id"] == codex.thread_ids()[-1]
    # The order: the first prompt was the helper's first turn, complete before spawn_peer
    # returned; the ask's wake line came as a later turn of its own, not into that one.
    prompts = [r.last_user_text() or "" for r in codex.model.turns
               if not r.ends_with_tool_result()]
    assert "HELPER-TASK get ready" in prompts[0], prompts
    assert WAKE_MARK not in prompts[0] and any(WAKE_MARK in p for p in prompts[1:]), prompts


def test_cli_outside_tmux_spawns_claude_in_a_detached_session_listed_with_its_parent(
    scenario: Scenario,
) -> None:
    claude = user_claude(scenario, helper_script)
    prompt = "HELPER-TASK hello\nsecond line \u2014 \u00fcber\n\x1b[201~ not a paste end"
    done = run_cli(scenario, claude, "spawn", "claude", "--name", "helper", "--role", "tester",
                   "--prompt", prompt)
    assert done.returncode == 0, done.stderr + done.stdout
    print(done.stdout)
    project_session = claude.project.name
    assert f"tmux session {project_session}" in done.stdout, done.stdout
    assert f"attach -t {project_session}" in done.stdout, done.stdout
    sessions = scenario.tmux.run("list-sessions", "-F", "#{session_name}").split()
    assert project_session in sessions
    rows = {r["name"]: r for r in Observer(scenario, claude.project).sessions()}
    helper = rows["helper"]
    assert helper["parent"] == "person" and helper["spawn_depth"] == 1, helper
    assert helper["role"] == "tester" and helper["client_type"] == "claude", helper
    assert helper["tmux_session"] == project_session, helper
    # Its model got the prompt as its first turn, proven submitted before spawn returned.
    assert "first prompt: submitted" in done.stdout, done.stdout
    first = next(first_user_text(r) for r in claude.model.turns
                 if "HELPER-TASK hello" in first_user_text(r))
    # All of it, multi-line and non-ASCII, in one turn; the ESC arrived neutralised.
    assert "second line \u2014 \u00fcber" in first and "\x1b" not in first, first
    assert "[201~ not a paste end" in first, first
    stopped = run_cli(scenario, claude, "stop", "helper")
    assert stopped.returncode == 0, stopped.stderr
    assert "ended" in stopped.stdout, stopped.stdout


def test_depth_limit_refuses_a_third_level(scenario: Scenario) -> None:
    results: dict[str, tuple[str, bool]] = {}

    def script(request: ModelRequest) -> Reply:
        first = first_user_text(request)
        level = "L1" if "LEVEL-1" in first else "L2" if "LEVEL-2" in first else None
        if request.ends_with_tool_result():
            name, output, is_error = last_result(request)
            if level and name.endswith("spawn_peer"):
                results[level] = (output, is_error)
            return Text("done")
        if level == "L1":
            return ToolCall.mcp("oxtail", "spawn_peer",
                                {"client": "claude", "prompt": "LEVEL-2 go", "name": "lvl2"})
        if level == "L2":
            return ToolCall.mcp("oxtail", "spawn_peer",
                                {"client": "claude", "prompt": "LEVEL-3 go", "name": "lvl3"})
        return Text("ok")

    claude = user_claude(scenario, script)
    done = run_cli(scenario, claude, "spawn", "claude", "--name", "lvl1", "--prompt", "LEVEL-1 go")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: len(results) == 2 or None, timeout=150, what="both levels to try")
    l1_output, l1_error = results["L1"]
    assert not l1_error and json.loads(l1_output)["depth"] == 2, l1_output
    l2_output, l2_error = results["L2"]
    assert l2_error and "spawn-depth-limit" in l2_output, l2_output
    assert "lvl3" not in scenario.tmux.run("list-windows", "-a", "-F", "#{window_name}")


def test_stop_peer_ends_only_a_spawned_peer(scenario: Scenario) -> None:
    results: dict[str, tuple[str, bool]] = {}

    def script(request: ModelRequest) -> Reply:
        first = first_user_text(request)
        if "PARENT" not in first:
            return helper_script(request)
        if request.ends_with_tool_result():
            name, output, is_error = last_result(request)
            if name.endswith("spawn_peer"):
                results["spawn"] = (output, is_error)
                return ToolCall.mcp("oxtail", "stop_peer", {"target": "bystander-session"})
            if name.endswith("stop_peer") and "stranger" not in results:
                results["stranger"] = (output, is_error)
                return ToolCall.mcp("oxtail", "stop_peer", {"target": "kid"})
            if name.endswith("stop_peer"):
                results["kid"] = (output, is_error)
            return Text("parent done")
        return ToolCall.mcp("oxtail", "spawn_peer",
                            {"client": "claude", "prompt": "HELPER-TASK kid", "name": "kid"})

    parent = user_claude(scenario, script)
    bystander = user_claude(scenario, script)
    bystander.start_tui()
    assert bystander.pane is not None
    scenario.tmux.run("rename-session", "-t", bystander.pane.session, "bystander-session")
    bystander_client = psutil.Process(bystander.pane.pid)  # the pane runs `exec claude`
    parent.start_tui()
    parent.prompt("PARENT: spawn a kid, then tidy up", timeout=200)
    assert not results["spawn"][1], results
    kid = json.loads(results["spawn"][0])
    output, is_error = results["stranger"]
    assert is_error and "not-your-spawn" in output, output
    output, is_error = results["kid"]
    assert not is_error and json.loads(output)["ended"] is True, output
    assert not psutil.pid_exists(kid["server_pid"]) or psutil.Process(
        kid["server_pid"]).status() == psutil.STATUS_ZOMBIE
    assert bystander_client.is_running() and not bystander.pane.is_dead(), "bystander touched"
    assert any("oxtail_py" in " ".join(c.cmdline()) for c in bystander_client.children())


def test_cli_inside_tmux_opens_a_window_in_the_persons_own_session(scenario: Scenario) -> None:
    claude = user_claude(scenario, helper_script)
    out = claude.root / "cli.out"
    env = {**claude.env, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "oxtail_py", "spawn", "claude", "--name", "win",
               "--prompt", "HELPER-TASK in a window"]
    shell = f"{' '.join(map(shlex.quote, command))} > {shlex.quote(str(out))} 2>&1; sleep 600"
    pane = scenario.tmux.new_pane(["sh", "-c", shell], cwd=claude.project, env=env,
                                  name="persons-session")
    wait_until(lambda: "spawned" in (out.read_text() if out.exists() else "") or None,
               timeout=120, what="the CLI to finish", describe=lambda: out.read_text())
    text = out.read_text()
    assert "tmux session persons-session" in text and "attach" not in text, text
    windows = scenario.tmux.run("list-windows", "-t", pane.session, "-F", "#{window_name}")
    assert "win" in windows.split(), windows
    assert "first prompt: submitted" in text, text


def test_codex_spawns_claude_with_its_own_environment(scenario: Scenario) -> None:
    """A Codex parent (no daemon): its server's environment is filtered by Codex, so the
    helper gets the Codex client's own environment (the kernel's copy), which holds what
    Claude needs."""
    outcome: dict[str, Any] = {}

    def parent(request: ModelRequest) -> Reply:
        if request.ends_with_tool_result():
            name, output, _ = last_result(request)
            if name.endswith("spawn_peer"):
                outcome["spawn"] = output
            return Text("parent done")
        if "please spawn" in (request.last_user_text() or ""):
            args = {"client": "claude", "prompt": "HELPER-TASK from codex", "name": "kid"}
            return ToolCall.mcp("oxtail", "spawn_peer", args)
        return Text("ok")

    root = scenario.root / "machine"
    claude_model = AnthropicModel(helper_script)
    scenario.models.append(claude_model)
    helper_side = ClaudeAgent(
        clients=scenario.clients, root=root, model=claude_model,
        agentmail_home=scenario.agentmail_home, project=scenario.project(), mcp=None,
        allow=["Bash", "mcp__oxtail"],
    )  # fmt: skip
    scenario.agents.append(helper_side)
    wire_claude(helper_side, scenario)
    codex_model = ResponsesModel(parent)
    scenario.models.append(codex_model)
    server = oxtail_server(scenario.agentmail_home)
    codex = CodexAgent(
        clients=scenario.clients, root=root, model=codex_model,
        agentmail_home=scenario.agentmail_home, project=helper_side.project, tmux=scenario.tmux,
        mcp=replace(server, env={**server.env, "OXTAIL_TMUX_SOCKET": str(scenario.tmux.socket)}),
        env=helper_side.client_env(),
    )  # fmt: skip
    scenario.agents.append(codex)
    codex.start_tui()
    codex.prompt("please spawn a claude helper", timeout=200)
    raw = outcome["spawn"]  # Codex shows a tool's output after "Wall time ... Output:"
    spawned = json.loads(raw[raw.index("{"):])
    stats("codex-spawns-claude", spawn_ms=spawned.get("elapsed_ms"))
    assert spawned["client"] == "claude" and spawned["session_id"], spawned
    assert spawned["prompt_confirmed"] is True, spawned
    assert any("HELPER-TASK from codex" in (r.last_user_text() or "") for r in claude_model.turns)
