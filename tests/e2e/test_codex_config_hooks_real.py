"""Our hooks in config.toml's `[hooks]` table, checked against the real, pinned Codex:
`oxtail-py install-hook` (run as a user would) puts them where the user keeps theirs,
Codex's own `hooks/list` reports them trusted under exactly our keys and hashes with no
"hooks in both files" warning, a `codex exec` run actually fires them (mail reaches the
model mid-turn), `uninstall-hook` restores the file; a hook edited after trust is what
Codex calls "modified", and our check says so with the fix.

Run: scripts/netns-run .venv/bin/pytest tests/e2e/test_codex_config_hooks_real.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from oxtail_py.codex_hooks import command_entries
from oxtail_py.codex_hooks_check import CodexHooksProblem, check_codex_hooks
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox

from .harness import CodexAgent, Scenario
from .harness.codex_app_server import list_hooks
from .test_codex_delivery_real import mail_script, occurrences, polled

pytestmark = pytest.mark.e2e

USER_HOOKS = """
# the user's own hooks live here, not in hooks.json
[[hooks.PostToolUse]]
matcher = "Bash"  # shell calls only
[[hooks.PostToolUse.hooks]]
type = "command"
command = "true user-post-hook"
"""


def cli(agent: CodexAgent, *args: str) -> str:
    """The product's CLI, run as the user would, with this agent's HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("CODEX_HOME", "CLAUDE_CONFIG_DIR")}
    env.update(HOME=str(agent.home), AGENTMAIL_HOME=str(agent.agentmail_home))
    out = subprocess.run([sys.executable, "-m", "oxtail_py", *args], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _hook_command(agent: CodexAgent) -> str:
    return str(agent.agentmail_home / "hooks" / "oxtail-hook")


def test_installed_in_config_toml_codex_trusts_and_runs_them_and_uninstall_restores(
    scenario: Scenario,
) -> None:
    bodies = {1: "MAIL-TOML-ONE via config.toml hooks", 2: "MAIL-TOML-TWO still there"}
    agent = scenario.codex(config=USER_HOOKS)
    agent.model.script = mail_script(agent, bodies, calls=4)
    config = agent.codex_home / "config.toml"
    original = config.read_text()

    out = cli(agent, "install-hook")

    assert "as Codex's /hooks would" in out
    assert not (agent.codex_home / "hooks.json").exists()
    listed, warnings = list_hooks(agent)
    assert warnings == []  # one representation for the layer: no "both files" warning
    hooks = {k: v for k, v in tomlkit.parse(config.read_text())["hooks"].unwrap().items()
             if k != "state"}
    ours = {e.key: e for e in command_entries(config, hooks)}
    assert {h.key for h in listed} == set(ours)
    for hook in listed:
        assert hook.key.startswith(f"{config}:")
        assert hook.current_hash == ours[hook.key].current_hash, hook
        assert hook.trust_status == ("trusted" if ours[hook.key].ours else "untrusted"), hook
    assert check_codex_hooks(agent.codex_home, _hook_command(agent)).ok

    result = agent.run_headless("run four steps")  # the hooks really fire

    assert result.returncode == 0, result.stderr
    turns = list(agent.model.turns)
    for body in bodies.values():
        assert occurrences(turns, body) == 1, body
    assert not polled(turns)
    (thread,) = agent.thread_ids()
    layout = Layout(agent.agentmail_home)
    assert Mailbox.open(layout, thread).pending_count() == 0
    assert layout.status_file(thread).read_text() == "idle"  # Stop ran too

    cli(agent, "uninstall-hook")
    assert config.read_text() == original
    listed, warnings = list_hooks(agent)
    assert warnings == [] and [h.command for h in listed] == ["true user-post-hook"]


def test_a_hook_edited_after_trust_is_modified_for_codex_and_for_our_check(
    scenario: Scenario,
) -> None:
    agent = scenario.codex(config=USER_HOOKS)
    cli(agent, "install-hook")
    config = agent.codex_home / "config.toml"
    doc = tomlkit.parse(config.read_text())
    doc["hooks"]["Stop"][0]["hooks"][0]["timeout"] = 30  # type: ignore[index]
    config.write_text(tomlkit.dumps(doc))

    listed, _ = list_hooks(agent)

    statuses = {h.event_name: h.trust_status for h in listed if "oxtail-hook" in h.command}
    assert statuses["stop"] == "modified" and statuses["postToolUse"] == "trusted", statuses
    found = check_codex_hooks(agent.codex_home, _hook_command(agent))
    assert found.problem == CodexHooksProblem.MODIFIED and found.events == ("Stop",)
    assert "/hooks" in found.fix and "oxtail-py setup" in found.fix

    cli(agent, "install-hook")  # the fix: ours restored and trusted again
    listed, _ = list_hooks(agent)
    assert {h.trust_status for h in listed if "oxtail-hook" in h.command} == {"trusted"}
    assert check_codex_hooks(agent.codex_home, _hook_command(agent)).ok


def test_a_symlinked_config_toml_is_named_by_its_link_in_codex_trust_keys(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A dotfile manager's link: Codex keys the hooks by the link's path (not the
    target's), which is what our installer records; it edits the target."""
    agent = scenario.codex(config=USER_HOOKS)
    config = agent.codex_home / "config.toml"
    target = tmp_path / "dotfiles" / "codex.toml"
    target.parent.mkdir()
    config.rename(target)
    config.symlink_to(target)

    cli(agent, "install-hook")

    assert config.is_symlink() and "oxtail-hook" in target.read_text()
    listed, warnings = list_hooks(agent)
    assert warnings == []
    ours = [h for h in listed if "oxtail-hook" in h.command]
    assert len(ours) == 4 and all(h.key.startswith(f"{config}:") for h in ours)
    assert {h.trust_status for h in ours} == {"trusted"}
    assert check_codex_hooks(agent.codex_home, _hook_command(agent)).ok
