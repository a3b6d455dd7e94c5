"""File reservations against the real clients: Claude Code's PreToolUse deny for Edit and
Codex's for apply_patch, both produced by our rendered hook (installed with
`oxtail-py install-hook`), with the holder a real Claude agent whose server holds the
reservation while it sits inside a tool call (a Gate).

Run: scripts/netns-run .venv/bin/python -m pytest -m e2e tests/e2e/test_reservations_real.py
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest

from oxtail_py.layout import Layout
from oxtail_py.registry import Registry

from .harness import (
    AnthropicRequest,
    ClaudeAgent,
    Headless,
    Reply,
    ResponsesRequest,
    Scenario,
    Text,
    ToolCall,
    wait_until,
)
from .test_scenarios import INSTALL_HOOK, Gate, in_background, mcp, mcp_for, tool_json

pytestmark = pytest.mark.e2e

RESERVE = "mcp__oxtail__reserve_files"
RELEASE = "mcp__oxtail__release_files"
ORIGINAL = "value = 1\n"
EDIT_ALLOW = ["Read", "Edit", "Write", "Bash", "mcp__oxtail"]


@dataclass
class Holder:
    """Claude A: reserved `paths`, now waits in a gate; after it, releases (or not)."""

    run: Future[Headless]
    gate: Gate
    session_id: str
    server_pid: int


def start_holder(scenario: Scenario, paths: list[str], *, release: bool) -> Holder:
    gate = Gate(scenario.root, "holder")

    def script(request: AnthropicRequest) -> Reply:
        if not request.ends_with_tool_result():
            return mcp("reserve_files", {"paths": paths, "reason": "renaming the config keys"})
        if gate.passed_in(request):
            return mcp("release_files") if release else Text("A done")
        if request.result_of(RELEASE) is not None:
            return Text("A released")
        return gate.bash()

    a = scenario.claude(script=script, mcp=mcp_for(scenario))
    run = in_background(lambda: a.run_headless("reserve the config"))
    gate.wait_started(timeout=60)
    granted = tool_json(a.model.turns[-1], RESERVE)
    assert granted["conflicts"] == [] and [g["path"] for g in granted["granted"]] == paths
    session_id = str(a.model.turns[0].session_id)
    [entry] = [e for e in Registry(Layout(scenario.agentmail_home)).read_all()
               if e.client.session_id == session_id]
    return Holder(run, gate, session_id, entry.server_pid)


@pytest.fixture
def app(scenario: Scenario) -> Iterator[Path]:
    path = scenario.project() / "src" / "app.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ORIGINAL)
    yield path


def claude_editor(scenario: Scenario, app: Path, new: str) -> ClaudeAgent:
    """Claude B: Read the file, then Edit it; the model's last request is recorded."""
    def script(request: AnthropicRequest) -> Reply:
        done = len(request.tool_results())
        if done == 0:
            return ToolCall("Read", {"file_path": str(app)})
        if done == 1:
            return ToolCall("Edit", {"file_path": str(app), "old_string": ORIGINAL.strip(),
                                     "new_string": new})
        return Text("B done")

    b = scenario.claude(script=script, mcp=mcp_for(scenario), setup_cmds=[INSTALL_HOOK],
                        allow=EDIT_ALLOW)
    return b


def edit_result(b: ClaudeAgent) -> tuple[bool, str]:
    """(is_error, text) of B's Edit as its model saw it."""
    last = b.model.turns[-1]
    result = last.tool_results()[-1]
    return result.is_error, result.output


def test_claude_edit_is_denied_until_the_holder_releases(scenario: Scenario, app: Path) -> None:
    holder = start_holder(scenario, ["src/app.py"], release=True)
    b = claude_editor(scenario, app, "value = 2")
    first = b.run_headless("change the value")
    assert first.returncode == 0, first.stderr
    is_error, text = edit_result(b)
    assert is_error and app.read_text() == ORIGINAL
    # Claude Code 2.1.330 shows a deny as an error tool_result with this prefix
    assert text.startswith("PreToolUse:Edit hook error: oxtail: this Edit was NOT run")
    # B's model sees who holds it, why, until when, and exactly how to ask
    for part in ("renaming the config keys", holder.session_id, "until ",
                 f'ask_peer(target="{holder.session_id}"', "NOT run"):
        assert part in text, (part, text)

    holder.gate.open()
    done = holder.run.result(timeout=90)
    assert done.returncode == 0, done.stderr
    b2 = claude_editor(scenario, app, "value = 3")
    second = b2.run_headless("change the value again")
    assert second.returncode == 0, second.stderr
    assert edit_result(b2)[0] is False and app.read_text() == "value = 3\n"


def test_a_killed_holder_lets_the_next_edit_through_at_once(
    scenario: Scenario, app: Path
) -> None:
    holder = start_holder(scenario, ["src/"], release=False)
    b = claude_editor(scenario, app, "value = 2")
    assert b.run_headless("change the value").returncode == 0
    assert edit_result(b)[0] is True and app.read_text() == ORIGINAL
    os.kill(holder.server_pid, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{holder.server_pid}").exists()
               or "Z" in Path(f"/proc/{holder.server_pid}/stat").read_text().split()[2],
               timeout=10, what="the holder's server to die")
    b2 = claude_editor(scenario, app, "value = 4")
    assert b2.run_headless("change the value").returncode == 0
    assert edit_result(b2)[0] is False and app.read_text() == "value = 4\n"
    holder.gate.open()
    holder.run.result(timeout=90)


CODEX_PATCH_MODEL = "gpt-5.6-sol"  # its metadata offers apply_patch (freeform)


def test_codex_apply_patch_on_a_reserved_file_is_denied(scenario: Scenario, app: Path) -> None:
    holder = start_holder(scenario, ["src/app.py"], release=False)
    patch = ("*** Begin Patch\n*** Update File: src/app.py\n@@\n-value = 1\n+value = 9\n"
             "*** End Patch\n")

    def script(request: ResponsesRequest) -> ToolCall | Text:
        if not request.tool_results():
            return ToolCall.freeform("apply_patch", patch)
        return Text("codex done")

    c = scenario.codex(script=script, mcp=mcp_for(scenario), setup_cmds=[INSTALL_HOOK])
    config = c.codex_home / "config.toml"
    text = config.read_text()
    assert 'model = "gpt-scripted"' in text
    config.write_text(text.replace('model = "gpt-scripted"', f'model = "{CODEX_PATCH_MODEL}"'))
    result = c.run_headless("change the value")
    assert result.returncode == 0, result.stderr
    assert app.read_text() == ORIGINAL
    output = c.model.turns[-1].tool_results()[-1].output
    assert holder.session_id in output and "ask_peer" in output, output
    # Codex 0.169.0 shows a deny as the call's output, the reason after this prefix
    assert output.startswith("Command blocked by PreToolUse hook: oxtail: this apply_patch")
    holder.gate.open()
    holder.run.result(timeout=90)


def test_clear_keeps_the_reservation_and_the_holders_own_edits(
    scenario: Scenario, app: Path
) -> None:
    """A real Claude TUI reserves, then `/clear`s: the same server follows its client to
    the new session, so the reservation stays, the agent's own Edit under its new session
    id passes, and a peer's deny names the new id as the one to ask."""

    def script(request: AnthropicRequest) -> Reply:
        last = request.last_user_text() or ""
        done = len(request.tool_results())
        if "reserve" in last:
            return mcp("reserve_files", {"paths": ["src/app.py"], "reason": "mine"}) if (
                done == 0) else Text("reserved")
        if "edit" in last:
            if done == 0:
                return ToolCall("Read", {"file_path": str(app)})
            if done == 1:
                return ToolCall("Edit", {"file_path": str(app), "old_string": "value = 1",
                                         "new_string": "value = 7"})
            return Text("edited")
        return Text("ok")

    a = scenario.claude(script=script, mcp=mcp_for(scenario), setup_cmds=[INSTALL_HOOK],
                        allow=EDIT_ALLOW)
    a.start_tui()
    a.prompt("reserve the app")
    registry = Registry(Layout(scenario.agentmail_home))
    [before] = [e for e in registry.read_all() if e.client.type == "claude"]
    old_sid = before.client.session_id
    assert old_sid and tool_json(a.model.turns[-1], RESERVE)["granted"]
    a.send("/clear")

    def followed() -> str | None:
        entries = [e for e in registry.read_all() if e.server_pid == before.server_pid]
        sid = entries[0].client.session_id if entries else None
        return sid if sid and sid != old_sid else None

    new_sid = wait_until(followed, timeout=30, what="the server to follow /clear")
    a.wait_idle()

    b = claude_editor(scenario, app, "value = 2")
    assert b.run_headless("change the value").returncode == 0
    is_error, text = edit_result(b)
    assert is_error and f'ask_peer(target="{new_sid}"' in text and app.read_text() == ORIGINAL

    a.prompt("now edit it")
    assert app.read_text() == "value = 7\n"  # its own reservation, under the new session
