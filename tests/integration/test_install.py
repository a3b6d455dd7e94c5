"""install-hook / uninstall-hook / setup on temporary HOMEs, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

THIRD_PARTY = {
    "model": "sonnet",
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "/opt/guard.sh"}]}
        ],
        "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
    },
    "permissions": {"allow": ["Bash(ls:*)"]},
}

CODEX_TOML = """# my codex config
model = "o4"  # keep this comment

[mcp_servers.other]
command = "other-server"   # and this one
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".codex").mkdir()
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "AGENTMAIL_HOME")
    }
    return {**clean, "HOME": str(home), "AGENTMAIL_HOME": str(tmp_path / "am")}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxtail_py", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings(env: dict[str, str]) -> Path:
    return Path(env["HOME"]) / ".claude" / "settings.json"


def test_install_keeps_third_party_hooks_and_keys_and_is_idempotent(env: dict[str, str]) -> None:
    settings = _settings(env)
    settings.write_text(json.dumps(THIRD_PARTY, indent=4))
    first = cli(env, "install-hook")
    assert first.returncode == 0, first.stderr
    data = json.loads(settings.read_text())
    assert data["model"] == "sonnet" and data["permissions"] == THIRD_PARTY["permissions"]
    assert data["hooks"]["Notification"] == THIRD_PARTY["hooks"]["Notification"]
    pre = data["hooks"]["PreToolUse"]
    assert pre[0] == THIRD_PARTY["hooks"]["PreToolUse"][0]
    ours = pre[1]["hooks"][0]
    assert pre[1]["matcher"] == "*" and ours["command"].endswith(
        "/hooks/oxtail-hook claude pretooluse"
    )
    assert ours["timeout"] == 5
    for event in ("Stop", "UserPromptSubmit", "SessionStart"):
        assert len(data["hooks"][event]) == 1
    backups = list(settings.parent.glob("settings.json.oxtail-backup-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == THIRD_PARTY
    script = Path(env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    assert script.stat().st_mode & 0o777 == 0o700
    before = settings.read_text()
    again = cli(env, "install-hook")
    assert "unchanged" in again.stdout and settings.read_text() == before
    assert len(list(settings.parent.glob("settings.json.oxtail-backup-*"))) == 1


def test_uninstall_removes_only_ours(env: dict[str, str]) -> None:
    settings = _settings(env)
    settings.write_text(json.dumps(THIRD_PARTY))
    assert cli(env, "install-hook").returncode == 0
    assert cli(env, "uninstall-hook").returncode == 0
    assert json.loads(settings.read_text()) == THIRD_PARTY
    assert not (Path(env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook").exists()


def test_dry_run_prints_the_diff_and_changes_nothing(env: dict[str, str]) -> None:
    settings = _settings(env)
    settings.write_text(json.dumps(THIRD_PARTY))
    out = cli(env, "install-hook", "--dry-run")
    assert out.returncode == 0 and "would change" in out.stdout
    assert '+            "command": ' in out.stdout
    assert "oxtail-hook claude pretooluse" in out.stdout
    assert json.loads(settings.read_text()) == THIRD_PARTY
    assert not (Path(env["AGENTMAIL_HOME"]) / "hooks").exists()


def test_malformed_settings_is_a_clear_error_and_left_untouched(env: dict[str, str]) -> None:
    settings = _settings(env)
    settings.write_text('{"hooks": {,}')
    out = cli(env, "install-hook")
    assert out.returncode == 2
    assert "not valid JSON (line 1" in out.stderr and "nothing was changed" in out.stderr
    assert settings.read_text() == '{"hooks": {,}'


def test_setup_registers_both_clients_keeps_toml_comments_and_installs_skills(
    env: dict[str, str],
) -> None:
    home = Path(env["HOME"])
    claude_json = home / ".claude.json"
    claude_json.write_text(json.dumps({"numStartups": 3, "mcpServers": {"x": {"command": "x"}}}))
    config = home / ".codex" / "config.toml"
    config.write_text(CODEX_TOML)
    home.chmod(0o755)
    out = cli({**env, "PATH": "/usr/bin:/bin"}, "setup")
    assert out.returncode == 0, out.stderr
    assert home.stat().st_mode & 0o777 == 0o755, "setup must not change the mode of ~"
    data = json.loads(claude_json.read_text())
    assert data["numStartups"] == 3 and data["mcpServers"]["x"] == {"command": "x"}
    entry = data["mcpServers"]["oxtail"]
    assert entry["command"] == sys.executable and entry["args"] == ["-m", "oxtail_py", "serve"]
    assert entry["env"] == {"AGENTMAIL_HOME": env["AGENTMAIL_HOME"]}
    text = config.read_text()
    assert "# keep this comment" in text and "# and this one" in text
    doc = tomlkit.parse(text)
    assert doc["mcp_servers"]["oxtail"]["command"] == sys.executable  # type: ignore[index]
    assert doc["mcp_servers"]["oxtail"]["required"] is True  # type: ignore[index]
    assert (home / ".codex/skills/oxtail-join/SKILL.md").read_text().startswith("---\nname:")
    assert (home / ".codex/skills/oxtail-join/agents/openai.yaml").exists()
    assert (home / ".claude/commands/oxtail-join.md").exists()
    assert (home / ".claude/settings.json").exists()
    assert "tmux" in out.stdout
    again = cli({**env, "PATH": "/usr/bin:/bin"}, "setup")
    assert "changed" not in again.stdout.replace("unchanged", "")


def test_setup_refuses_malformed_toml_without_touching_it(env: dict[str, str]) -> None:
    config = Path(env["HOME"]) / ".codex" / "config.toml"
    config.write_text("model = \n[broken")
    out = cli(env, "setup", "--dry-run")
    assert out.returncode == 2 and "not valid TOML" in out.stderr
    assert config.read_text() == "model = \n[broken"


# -- Codex hooks ------------------------------------------------------------------------------

CODEX_THIRD_PARTY = {
    "hooks": {
        "PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/opt/a.sh"}]}]
    }
}


def _codex_env(env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    """CODEX_HOME set, through a symlink: Codex names its files by the resolved path."""
    real = tmp_path / "codex-real"
    real.mkdir()
    link = tmp_path / "codex-link"
    link.symlink_to(real)
    (real / "hooks.json").write_text(json.dumps(CODEX_THIRD_PARTY))
    (real / "config.toml").write_text(CODEX_TOML)
    return {**env, "CODEX_HOME": str(link)}, real


def test_install_hook_installs_trusted_codex_hooks_idempotently_keeping_others(
    env: dict[str, str], tmp_path: Path
) -> None:
    from oxtail_py.codex_hooks import trusted_hashes
    from oxtail_py.codex_hooks_check import check_codex_hooks

    cenv, real = _codex_env(env, tmp_path)
    out = cli(cenv, "install-hook")
    assert out.returncode == 0, out.stderr
    assert "as Codex's /hooks would" in out.stdout
    hooks = json.loads((real / "hooks.json").read_text())["hooks"]
    assert hooks["PostToolUse"][0] == CODEX_THIRD_PARTY["hooks"]["PostToolUse"][0]
    script = Path(env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    assert hooks["PostToolUse"][1]["hooks"][0]["command"] == f"{script} codex posttooluse"
    assert set(hooks) == {"SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"}
    text = (real / "config.toml").read_text()
    assert "# keep this comment" in text
    keys = trusted_hashes(tomlkit.parse(text))
    assert f"{real}/hooks.json:post_tool_use:1:0" in keys and len(keys) == 4  # not /a.sh
    assert check_codex_hooks(real, str(script)).ok
    backups = sorted(p.name for p in real.iterdir() if "backup" in p.name)
    assert backups  # the first edit of each file kept a copy
    again = cli(cenv, "install-hook")
    assert "changed" not in again.stdout.replace("unchanged", "")
    # uninstall: ours and our trust go, the third-party hook and the comments stay
    assert cli(cenv, "uninstall-hook").returncode == 0
    assert json.loads((real / "hooks.json").read_text()) == CODEX_THIRD_PARTY
    after = (real / "config.toml").read_text()
    assert trusted_hashes(tomlkit.parse(after)) == {} and "# keep this comment" in after
    assert not check_codex_hooks(real, str(script)).ok


def test_codex_dry_run_changes_nothing_and_no_trust_leaves_approval_to_codex(
    env: dict[str, str], tmp_path: Path
) -> None:
    from oxtail_py.codex_hooks import trusted_hashes
    from oxtail_py.codex_hooks_check import check_codex_hooks

    cenv, real = _codex_env(env, tmp_path)
    before = {p.name: p.read_text() for p in real.iterdir()}
    out = cli(cenv, "install-hook", "--dry-run")
    assert out.returncode == 0 and "would change" in out.stdout
    assert str(real / "hooks.json") in out.stdout and "dry run" in out.stdout
    assert {p.name: p.read_text() for p in real.iterdir()} == before
    for command in ("install-hook", "setup"):
        out = cli(cenv, command, "--no-trust")
        assert out.returncode == 0, out.stderr
        assert "NOT trusted" in out.stdout and "/hooks" in out.stdout
        assert trusted_hashes(tomlkit.parse((real / "config.toml").read_text())) == {}
    script = Path(env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    assert "/hooks" in check_codex_hooks(real, str(script)).fix


CODEX_TOML_HOOKS = CODEX_TOML + """
# my hooks are kept here
[[hooks.Stop]]
[[hooks.Stop.hooks]]
type = "command"
command = "/opt/on-stop.sh"  # mine
"""


def test_setup_puts_codex_hooks_in_config_toml_when_the_user_keeps_theirs_there(
    env: dict[str, str], tmp_path: Path
) -> None:
    from oxtail_py.codex_hooks import trusted_hashes
    from oxtail_py.codex_hooks_check import check_codex_hooks

    cenv, real = _codex_env(env, tmp_path)
    (real / "hooks.json").unlink()
    (real / "config.toml").write_text(CODEX_TOML_HOOKS)
    dry = cli(cenv, "setup", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+[[hooks.PostToolUse]]" in dry.stdout
    assert (real / "config.toml").read_text() == CODEX_TOML_HOOKS

    out = cli(cenv, "setup")

    assert out.returncode == 0, out.stderr
    assert f"Codex hooks in {real}/config.toml trusted" in out.stdout
    assert "as Codex's /hooks would" in out.stdout
    assert not (real / "hooks.json").exists()  # one hooks file in the layer
    text = (real / "config.toml").read_text()
    assert "# my hooks are kept here" in text and 'command = "/opt/on-stop.sh"  # mine' in text
    doc = tomlkit.parse(text)
    assert doc["mcp_servers"]["oxtail"]["required"] is True  # type: ignore[index]
    keys = trusted_hashes(doc)
    assert len(keys) == 4 and all(k.startswith(f"{real}/config.toml:") for k in keys)
    assert f"{real}/config.toml:stop:1:0" in keys  # ours after theirs; theirs untrusted
    script = Path(env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    assert check_codex_hooks(real, str(script)).ok
    again = cli(cenv, "setup")
    assert "changed" not in again.stdout.replace("unchanged", "")

    assert cli(cenv, "uninstall-hook").returncode == 0
    after = tomlkit.parse((real / "config.toml").read_text())
    assert trusted_hashes(after) == {}
    assert [g["hooks"][0]["command"] for g in after["hooks"]["Stop"]] == [  # type: ignore[index,union-attr]
        "/opt/on-stop.sh"]
    assert "oxtail-hook" not in (real / "config.toml").read_text()
