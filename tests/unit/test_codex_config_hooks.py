"""Our Codex hooks in config.toml's `[hooks]` table, when that is where the user keeps
theirs: edited with tomlkit (comments and the user's hooks survive), trust keyed for
config.toml as Codex keys it, idempotent, backups, dry run, uninstall, and never a
second hooks file in the layer (Codex warns when hooks.json and config.toml both hold
hooks). tests/e2e/test_codex_config_hooks_real.py checks the same against the real Codex.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import tomlkit

from oxtail_py.codex_hooks import (
    OUR_HOOKS,
    CodexHooksError,
    Source,
    command_entries,
    install,
    plan,
    trusted_hashes,
    uninstall,
)
from oxtail_py.codex_hooks_check import CodexHooksProblem, check_codex_hooks

HOOK = "/state/hooks/oxtail-hook"

USER_CONFIG = """\
# my codex config
model = "o3"  # the model

# my hooks: keep them here
[[hooks.PostToolUse]]
matcher = "Bash"  # shell only
[[hooks.PostToolUse.hooks]]
type = "command"
command = "their-linter"

[hooks.state."/elsewhere/config.toml:stop:0:0"]
trusted_hash = "sha256:theirs"

[mcp_servers.other]
command = "x"
"""


def _toml(home: Path) -> tomlkit.TOMLDocument:
    return tomlkit.parse((home / "config.toml").read_text())


def _toml_hooks(home: Path) -> dict[str, object]:
    hooks = _toml(home)["hooks"].unwrap()  # type: ignore[union-attr]
    return {k: v for k, v in hooks.items() if k != "state"}


def test_user_hooks_in_config_toml_get_ours_there_trusted_for_that_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)

    changes, trusted = install(tmp_path, HOOK)

    assert not (tmp_path / "hooks.json").exists()  # no second file in the layer
    assert [c.path.name for c in changes] == ["config.toml"]
    assert changes[0].backup is not None and changes[0].backup.read_text() == USER_CONFIG
    hooks = _toml_hooks(tmp_path)
    assert set(hooks) == {h.event_name for h in OUR_HOOKS}
    post = hooks["PostToolUse"]
    assert isinstance(post, list) and post[0]["hooks"][0]["command"] == "their-linter"
    assert post[1] == {"hooks": [{"type": "command", "command": f"{HOOK} codex posttooluse",
                                  "timeout": 5}]}
    text = (tmp_path / "config.toml").read_text()
    for line in USER_CONFIG.splitlines():  # comments, values, their trust: all kept
        assert line in text
    source = tmp_path / "config.toml"
    ours = [e for e in command_entries(source, hooks) if e.ours]
    assert len(ours) == len(trusted) == len(OUR_HOOKS)
    assert f"{source}:post_tool_use:1:0" in {e.key for e in ours}
    assert trusted_hashes(_toml(tmp_path)) == {
        "/elsewhere/config.toml:stop:0:0": "sha256:theirs",
        **{e.key: e.current_hash for e in ours}}
    found = check_codex_hooks(tmp_path, HOOK)
    assert found.ok and found.source == source


def test_config_toml_install_is_idempotent_and_uninstall_restores_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)
    install(tmp_path, HOOK)
    installed = (tmp_path / "config.toml").read_text()

    changes, _ = install(tmp_path, HOOK)
    assert [c.changed for c in changes] == [False]
    assert (tmp_path / "config.toml").read_text() == installed

    changes = uninstall(tmp_path)
    assert [c.changed for c in changes] == [True]
    assert (tmp_path / "config.toml").read_text() == USER_CONFIG
    assert not (tmp_path / "hooks.json").exists()
    assert check_codex_hooks(tmp_path, HOOK).problem == CodexHooksProblem.NOT_INSTALLED


def test_config_toml_dry_run_writes_nothing_and_shows_the_diff(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)

    changes, _ = install(tmp_path, HOOK, dry_run=True)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
    assert (tmp_path / "config.toml").read_text() == USER_CONFIG
    (change,) = changes
    assert "+[[hooks.PostToolUse]]" in change.diff and "codex posttooluse" in change.diff
    assert "trusted_hash" in change.diff


def test_an_inline_hook_list_gets_ours_inline(tmp_path: Path) -> None:
    config = ('[hooks]\nStop = [{ hooks = [{ type = "command", command = "theirs" }] }]'
              "  # inline\n")
    (tmp_path / "config.toml").write_text(config)

    install(tmp_path, HOOK)

    stop = _toml_hooks(tmp_path)["Stop"]
    assert isinstance(stop, list) and [g["hooks"][0]["command"] for g in stop] == [
        "theirs", f"{HOOK} codex stop"]
    assert "# inline" in (tmp_path / "config.toml").read_text()
    assert check_codex_hooks(tmp_path, HOOK).ok
    uninstall(tmp_path)
    assert (tmp_path / "config.toml").read_text() == config


def test_ours_move_to_config_toml_once_the_user_keeps_hooks_there(tmp_path: Path) -> None:
    """Installed in hooks.json first (no hooks of the user's anywhere); the user then
    writes their hooks in config.toml: a reinstall moves ours there, withdraws the trust
    keyed to hooks.json and leaves hooks.json holding no hooks (Codex warns otherwise)."""
    install(tmp_path, HOOK)
    json_keys = set(trusted_hashes(_toml(tmp_path)))
    assert json_keys and all(k.startswith(f"{tmp_path / 'hooks.json'}:") for k in json_keys)
    with (tmp_path / "config.toml").open("a") as file:
        file.write('\n[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ntype = "command"\n'
                   'command = "their-stop"\n')

    assert plan(tmp_path, HOOK, trust=True).source == Source.CONFIG_TOML
    install(tmp_path, HOOK)

    assert json.loads((tmp_path / "hooks.json").read_text()) == {}
    keys = set(trusted_hashes(_toml(tmp_path)))
    assert keys.isdisjoint(json_keys)
    assert len(keys) == len(OUR_HOOKS)
    assert f"{tmp_path / 'config.toml'}:stop:1:0" in keys  # their Stop stays untrusted
    found = check_codex_hooks(tmp_path, HOOK)
    assert found.ok and found.source == tmp_path / "config.toml"


def test_user_hooks_in_both_files_keep_ours_in_hooks_json(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)
    theirs = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "j"}]}]}}
    (tmp_path / "hooks.json").write_text(json.dumps(theirs))

    install(tmp_path, HOOK)

    hooks = json.loads((tmp_path / "hooks.json").read_text())["hooks"]
    assert set(hooks) == {h.event_name for h in OUR_HOOKS}
    assert [g["hooks"][0]["command"] for g in _toml_hooks(tmp_path)["PostToolUse"]] == [  # type: ignore[attr-defined]
        "their-linter"]
    assert check_codex_hooks(tmp_path, HOOK).source == tmp_path / "hooks.json"


def test_untrusted_in_config_toml_is_reported_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)
    _, trusted = install(tmp_path, HOOK, trust=False)

    assert trusted == ()
    found = check_codex_hooks(tmp_path, HOOK)
    assert found.problem == CodexHooksProblem.UNTRUSTED
    assert found.source == tmp_path / "config.toml"
    assert "/hooks" in found.fix and "oxtail-py setup" in found.fix


def test_a_hook_edited_in_config_toml_after_trust_is_reported_modified(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)
    install(tmp_path, HOOK)
    doc = _toml(tmp_path)
    doc["hooks"]["Stop"][0]["hooks"][0]["timeout"] = 30  # type: ignore[index]
    (tmp_path / "config.toml").write_text(tomlkit.dumps(doc))

    found = check_codex_hooks(tmp_path, HOOK)

    assert found.problem == CodexHooksProblem.MODIFIED and found.events == ("Stop",)
    assert "/hooks" in found.fix and "oxtail-py setup" in found.fix


@pytest.mark.parametrize("config", [
    'hooks = 3\n',
    '[[hooks.Stop]]\nhooks = []\n[hooks.PostToolUse]\nnot_a_list = 1\n',
], ids=["hooks-not-a-table", "event-not-a-list"])
def test_a_hooks_table_we_cannot_extend_is_refused_and_nothing_changes(
    tmp_path: Path, config: str
) -> None:
    (tmp_path / "config.toml").write_text(config)
    (tmp_path / "config.toml").write_text(config.replace("hooks = []", 'hooks = [{ type = '
                                                         '"command", command = "x" }]'))
    before = (tmp_path / "config.toml").read_text()

    with pytest.raises(CodexHooksError) as error:
        install(tmp_path, HOOK)

    assert "nothing was changed" in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]
    assert (tmp_path / "config.toml").read_text() == before


@pytest.mark.parametrize("name", ["hooks.json", "config.toml"])
def test_a_fifo_in_place_of_a_codex_file_is_refused_without_blocking(
    tmp_path: Path, name: str
) -> None:
    """Neither the installer nor the check (which a server runs at start) may block on
    a FIFO planted where a Codex file belongs: a clear error, nothing written."""
    os.mkfifo(tmp_path / name)

    with pytest.raises(CodexHooksError) as error:
        install(tmp_path, HOOK)
    assert "not a regular file" in str(error.value) and "nothing was changed" in str(error.value)
    found = check_codex_hooks(tmp_path, HOOK)
    assert found.problem == CodexHooksProblem.BAD_CONFIG and name in found.detail
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize(("name", "data"), [
    ("hooks.json", b'{"hooks": {}, "x": "\xff"}'),
    ("config.toml", b'model = "\xff"\n'),
    ("hooks.json", b"[" * 200_000),
    ("config.toml", b"a = " + b"[" * 200_000),
])
def test_an_unreadable_codex_file_is_refused_and_reported(
    tmp_path: Path, name: str, data: bytes
) -> None:
    (tmp_path / name).write_bytes(data)

    with pytest.raises(CodexHooksError) as error:
        install(tmp_path, HOOK)

    assert "nothing was changed" in str(error.value)
    assert check_codex_hooks(tmp_path, HOOK).problem == CodexHooksProblem.BAD_CONFIG
    assert (tmp_path / name).read_bytes() == data


def test_a_symlinked_config_toml_is_edited_at_its_target(tmp_path: Path) -> None:
    """Dotfile managers link config.toml: read through the link, written at the target,
    the link kept."""
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "codex.toml").write_text(USER_CONFIG)
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").symlink_to(dotfiles / "codex.toml")

    install(home, HOOK)

    assert (home / "config.toml").is_symlink()
    assert "oxtail-hook codex stop" in (dotfiles / "codex.toml").read_text()
    assert check_codex_hooks(home, HOOK).ok


def test_a_hooks_json_without_hooks_is_left_byte_for_byte(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)
    (tmp_path / "hooks.json").write_text('{ "hooks": {} }')

    changes, _ = install(tmp_path, HOOK)

    assert (tmp_path / "hooks.json").read_text() == '{ "hooks": {} }'
    assert {c.path.name: c.changed for c in changes} == {"hooks.json": False,
                                                         "config.toml": True}
    assert check_codex_hooks(tmp_path, HOOK).source == tmp_path / "config.toml"


@pytest.mark.parametrize("where", ["hooks.json", "config.toml"])
def test_one_more_entry_in_our_hooks_is_installed_trusted_and_checked(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installer is data-driven: a PreToolUse entry with a matcher (as the reservation
    work adds for apply_patch) is one more OurHook, and install, trust (its hash covers
    the matcher), the check and uninstall follow with no other change."""
    from oxtail_py import codex_hooks
    from oxtail_py.hook_entries import OurHook
    from oxtail_py.hook_output import HookEvent

    extra = OurHook(HookEvent.PRE_TOOL_USE, 5, "apply_patch")
    monkeypatch.setattr(codex_hooks, "OUR_HOOKS", (*codex_hooks.OUR_HOOKS, extra))
    if where == "config.toml":
        (tmp_path / "config.toml").write_text(USER_CONFIG)

    _, trusted = install(tmp_path, HOOK)

    source = tmp_path / where
    assert check_codex_hooks(tmp_path, HOOK).source == source
    (pre,) = [e for e in trusted if e.event_name == "PreToolUse"]
    assert pre.key == f"{source}:pre_tool_use:0:0"
    assert pre.current_hash == codex_hooks.trust_hash(
        "PreToolUse", "apply_patch", {"command": f"{HOOK} codex pretooluse", "timeout": 5})
    assert len(trusted) == len(OUR_HOOKS) + 1
    assert check_codex_hooks(tmp_path, HOOK).ok
    uninstall(tmp_path)
    assert not check_codex_hooks(tmp_path, HOOK).ok
    assert "oxtail-hook" not in (tmp_path / "config.toml").read_text()


def test_ours_move_back_to_hooks_json_when_the_user_moves_theirs_there(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(USER_CONFIG)
    install(tmp_path, HOOK)  # into config.toml, beside theirs
    doc = _toml(tmp_path)
    del doc["hooks"]["PostToolUse"][0]  # type: ignore[union-attr]  # theirs leave config.toml
    (tmp_path / "config.toml").write_text(tomlkit.dumps(doc))
    theirs = {"hooks": {"PostToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "command": "their-linter"}]}]}}
    (tmp_path / "hooks.json").write_text(json.dumps(theirs))

    install(tmp_path, HOOK)

    assert "oxtail-hook" not in (tmp_path / "config.toml").read_text()  # ours left it
    keys = set(trusted_hashes(_toml(tmp_path)))
    assert len(keys - {"/elsewhere/config.toml:stop:0:0"}) == len(OUR_HOOKS)
    assert all(k.startswith(f"{tmp_path / 'hooks.json'}:") for k in keys
               if not k.startswith("/elsewhere"))
    found = check_codex_hooks(tmp_path, HOOK)
    assert found.ok and found.source == tmp_path / "hooks.json"
