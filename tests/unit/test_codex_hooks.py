"""Codex hook installation: the trust hash and key as the pinned Codex computes them, the
merge into hooks.json, the trust entries in config.toml, and the diagnosis.

The hashes below were returned by Codex 0.169.0's own `hooks/list` (app-server) for these
exact handlers; tests/e2e/test_codex_hooks_real.py re-checks them live.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from oxtail_py import codex_hooks
from oxtail_py.codex_hooks import (
    OUR_HOOKS,
    CodexHooksError,
    command_entries,
    install,
    trust_hash,
    trust_key,
    trusted_hashes,
    uninstall,
)
from oxtail_py.codex_hooks_check import CodexHooksCheck, CodexHooksProblem, check_codex_hooks
from oxtail_py.hook_output import (
    CODEX_SPILL_BYTES,
    Client,
    HookEvent,
    fits,
    hook_output,
    render,
)

HOOK = "/state/hooks/oxtail-hook"


def check(home: Path) -> CodexHooksCheck:
    return check_codex_hooks(home, HOOK)

# (event, matcher, handler) -> currentHash, as Codex 0.169.0 reported them.
OBSERVED = [
    ("PreToolUse", "*", {"command": "/x/oxtail-hook codex pretooluse", "timeout": 5},
     "sha256:27a69ec4579c1ca71ec9783828ac0b832886c633907788b4c6b7973fccd9a32b"),
    ("SessionStart", None, {"command": "/x/oxtail-hook codex sessionstart", "timeout": 10,
                            "statusMessage": "hi"},
     "sha256:e83cd836c254c699c8be6c4c20f2f5a2343479a56812f9bd6365de6e17952a81"),
    ("UserPromptSubmit", None, {"command": "/x/oxtail-hook codex userpromptsubmit"},
     "sha256:0ebb697e4e5d3aa4ed0928967fdb27fa44cfbee40bdb717309f3b94dece0a839"),
    # Codex ignores Stop's matcher, in the hash too.
    ("Stop", "*", {"command": "/x/oxtail-hook codex stop", "timeout": 5},
     "sha256:080a5d9a9bd524c656848be53f312e555a52d774bd30b55cb3737ee9b990483c"),
    ("Stop", "Bash", {"command": "e", "timeout": 5},
     "sha256:c46e4ef9c45217e1d30655e26b5fce129e102c4b11d73a5c1573760404b0c6c2"),
    # timeout 0 counts as 1; the matcher is hashed untrimmed.
    ("PreToolUse", " * ", {"command": "a", "timeout": 0},
     "sha256:784d3e6dbae10985981d25f46bd918f3d734898938bc78fbf9c83e3b48f84e2c"),
    ("PreToolUse", "", {"command": "b"},
     "sha256:bc336523d12965af1f700798007028345496bc0b44693070b249e1ce87d351c7"),
    ("PreToolUse", "", {"command": "c", "async": True},
     "sha256:6ddf018fe02a4aa3b7a838bf373513270f21334d9d9298f014e106500f8c0f6d"),
    ("PostToolUse", None, {"command": 'd é "q" \x1f', "timeout": 7},
     "sha256:638f77fdd082aa464a93560a58f6c4ab2f317e30ee224c917239a7bb3dbabcab"),
]


@pytest.mark.parametrize(("event", "matcher", "handler", "expected"), OBSERVED)
def test_trust_hash_matches_what_codex_computed(
    event: str, matcher: str | None, handler: dict[str, object], expected: str
) -> None:
    assert trust_hash(event, matcher, {"type": "command", **handler}) == expected


def test_trust_key_names_file_snake_case_event_and_positions() -> None:
    key = trust_key(Path("/h/.codex/hooks.json"), "UserPromptSubmit", 2, 0)
    assert key == "/h/.codex/hooks.json:user_prompt_submit:2:0"


def test_entries_are_numbered_as_codex_numbers_them() -> None:
    hooks = {"PreToolUse": [
        {"hooks": [{"type": "command", "command": "a"}]},
        {"hooks": [{"type": "prompt"}, {"type": "command", "command": "b"}]},
    ]}
    keys = [e.key for e in command_entries(Path("/f"), hooks)]
    assert keys == ["/f:pre_tool_use:0:0", "/f:pre_tool_use:1:1"]


# -- install ---------------------------------------------------------------------------------


def _hooks(home: Path) -> dict[str, list[dict[str, object]]]:
    hooks: dict[str, list[dict[str, object]]] = json.loads((home / "hooks.json").read_text())[
        "hooks"
    ]
    return hooks


def _trust(home: Path) -> dict[str, str]:
    return trusted_hashes(tomlkit.parse((home / "config.toml").read_text()))


def test_install_writes_our_hooks_and_their_trust(tmp_path: Path) -> None:
    changes, trusted = install(tmp_path, HOOK)

    hooks = _hooks(tmp_path)
    assert set(hooks) == {h.event_name for h in OUR_HOOKS}
    assert hooks["PostToolUse"] == [{"hooks": [
        {"type": "command", "command": f"{HOOK} codex posttooluse", "timeout": 5}]}]
    entries = command_entries(tmp_path / "hooks.json", hooks)
    assert _trust(tmp_path) == {e.key: e.current_hash for e in entries}
    assert len(trusted) == len(OUR_HOOKS)
    assert all(c.changed for c in changes)
    assert check(tmp_path).ok


def test_install_is_idempotent(tmp_path: Path) -> None:
    install(tmp_path, HOOK)
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    changes, _ = install(tmp_path, HOOK)
    assert [c.changed for c in changes] == [False, False]
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_other_hooks_config_and_comments_survive_install_and_uninstall(tmp_path: Path) -> None:
    theirs: dict[str, Any] = {"hooks": {"PostToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "command": "their-linter"}]}]}, "note": "kept"}
    (tmp_path / "hooks.json").write_text(json.dumps(theirs))
    config = (
        "# my codex config\n"
        'model = "o3"  # the model\n'
        "\n"
        "[mcp_servers.other]\n"
        'command = "x"\n'
        "\n"
        '[hooks.state."/elsewhere:stop:0:0"]\n'
        'trusted_hash = "sha256:theirs"\n'
    )
    (tmp_path / "config.toml").write_text(config)

    changes, _ = install(tmp_path, HOOK)

    hooks = _hooks(tmp_path)
    assert hooks["PostToolUse"][0] == theirs["hooks"]["PostToolUse"][0]  # ours comes last
    assert json.loads((tmp_path / "hooks.json").read_text())["note"] == "kept"
    text = (tmp_path / "config.toml").read_text()
    assert text.startswith(config.rstrip("\n"))  # comments, order, their trust: untouched
    assert _trust(tmp_path)["/elsewhere:stop:0:0"] == "sha256:theirs"
    assert all(c.backup is not None and c.backup.read_text() for c in changes)

    uninstall(tmp_path)

    assert json.loads((tmp_path / "hooks.json").read_text()) == theirs
    assert (tmp_path / "config.toml").read_text() == config


def test_no_trust_leaves_approval_to_codex_and_the_problem_says_how(tmp_path: Path) -> None:
    _, trusted = install(tmp_path, HOOK, trust=False)

    assert trusted == ()
    assert _hooks(tmp_path)
    assert not (tmp_path / "config.toml").exists()
    found = check(tmp_path)
    assert found.problem == CodexHooksProblem.UNTRUSTED
    assert found.events == tuple(sorted(h.event_name for h in OUR_HOOKS))
    assert "/hooks" in found.fix and "oxtail-py setup" in found.fix


def test_dry_run_writes_nothing_and_shows_the_diff(tmp_path: Path) -> None:
    changes, _ = install(tmp_path, HOOK, dry_run=True)

    assert list(tmp_path.iterdir()) == []
    assert [c.path.name for c in changes] == ["hooks.json", "config.toml"]
    assert "codex posttooluse" in changes[0].diff
    assert "trusted_hash" in changes[1].diff


def test_moved_hook_replaces_old_entries_and_withdraws_their_trust(tmp_path: Path) -> None:
    install(tmp_path, "/old/oxtail-hook")
    install(tmp_path, HOOK)

    commands = [h["command"] for g in _hooks(tmp_path).values() for h in g[0]["hooks"]]  # type: ignore[attr-defined]
    assert all(c.startswith(f"{HOOK} ") for c in commands)
    entries = command_entries(tmp_path / "hooks.json", _hooks(tmp_path))
    assert _trust(tmp_path) == {e.key: e.current_hash for e in entries}


def test_a_hook_inserted_before_ours_is_detected_and_reinstall_fixes_it(tmp_path: Path) -> None:
    install(tmp_path, HOOK)
    data = json.loads((tmp_path / "hooks.json").read_text())
    data["hooks"]["Stop"].insert(0, {"hooks": [{"type": "command", "command": "mine"}]})
    (tmp_path / "hooks.json").write_text(json.dumps(data))

    found = check(tmp_path)
    assert found.problem == CodexHooksProblem.UNTRUSTED and found.events == ("Stop",)

    install(tmp_path, HOOK)
    assert check(tmp_path).ok
    stop_keys = [k for k in _trust(tmp_path) if ":stop:" in k]
    assert stop_keys == [f"{tmp_path / 'hooks.json'}:stop:1:0"]  # "mine" stays untrusted


def test_a_hook_disabled_in_codex_stays_disabled_and_is_reported(tmp_path: Path) -> None:
    install(tmp_path, HOOK)
    (entry,) = [e for e in command_entries(tmp_path / "hooks.json", _hooks(tmp_path))
                if e.event_name == "PostToolUse"]
    doc = tomlkit.parse((tmp_path / "config.toml").read_text())
    doc["hooks"]["state"][entry.key]["enabled"] = False
    (tmp_path / "config.toml").write_text(tomlkit.dumps(doc))

    install(tmp_path, HOOK)

    assert "enabled = false" in (tmp_path / "config.toml").read_text()
    found = check(tmp_path)
    assert found.problem == CodexHooksProblem.DISABLED and found.events == ("PostToolUse",)
    assert "/hooks" in found.fix


def test_a_hook_edited_after_trust_is_reported_modified_with_the_fix(tmp_path: Path) -> None:
    install(tmp_path, HOOK)
    data = json.loads((tmp_path / "hooks.json").read_text())
    data["hooks"]["PostToolUse"][0]["hooks"][0]["timeout"] = 30
    (tmp_path / "hooks.json").write_text(json.dumps(data))

    found = check(tmp_path)
    assert found.problem == CodexHooksProblem.MODIFIED and found.events == ("PostToolUse",)
    assert found.source == tmp_path / "hooks.json"
    assert "/hooks" in found.fix and "oxtail-py setup" in found.fix
    assert found.sentence.startswith(found.detail) and "read_my_messages" in found.detail

    install(tmp_path, HOOK)  # what the fix says: ours restored, trusted again
    assert check(tmp_path).ok


def test_not_installed_is_reported(tmp_path: Path) -> None:
    found = check(tmp_path)
    assert found.problem == CodexHooksProblem.NOT_INSTALLED
    assert "not installed" in found.detail and "oxtail-py install-hook" in found.fix


@pytest.mark.parametrize(("name", "text"), [
    ("hooks.json", "{not json"),
    ("hooks.json", '{"hooks": {"Stop": {"not": "a list"}}}'),
    ("config.toml", "= broken"),
])
def test_a_broken_file_is_refused_and_nothing_changes(
    tmp_path: Path, name: str, text: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(CodexHooksError) as error:
        install(tmp_path, HOOK)
    assert "nothing was changed" in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_text() == text
    found = check(tmp_path)
    assert found.problem == CodexHooksProblem.BAD_CONFIG and found.detail == str(error.value)


def test_uninstall_with_nothing_installed_writes_nothing(tmp_path: Path) -> None:
    assert uninstall(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


# -- output shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("client", list(Client))
def test_context_events_use_hook_specific_output_only(client: Client) -> None:
    for event, name in [(HookEvent.SESSION_START, "SessionStart"),
                        (HookEvent.USER_PROMPT_SUBMIT, "UserPromptSubmit"),
                        (HookEvent.PRE_TOOL_USE, "PreToolUse"),
                        (HookEvent.POST_TOOL_USE, "PostToolUse")]:
        assert hook_output(client, event, "T") == {
            "hookSpecificOutput": {"hookEventName": name, "additionalContext": "T"}}


@pytest.mark.parametrize("client", list(Client))
def test_stop_blocks_with_the_text_as_reason(client: Client) -> None:
    assert hook_output(client, HookEvent.STOP, "T") == {"decision": "block", "reason": "T"}


def test_render_is_one_compact_line() -> None:
    line = render(hook_output(Client.CODEX, HookEvent.STOP, "é\nx"))
    assert line == '{"decision":"block","reason":"é\\nx"}'


def test_fits_counts_utf8_bytes_against_codex_spill_limit() -> None:
    assert fits(Client.CODEX, "a" * CODEX_SPILL_BYTES)
    assert not fits(Client.CODEX, "a" * (CODEX_SPILL_BYTES - 1) + "é")
    # Claude Code persists an additionalContext over 10,000 characters (a 2 KB preview)
    assert fits(Client.CLAUDE, "a" * 10_000)
    assert not fits(Client.CLAUDE, "a" * 10_001)


def test_our_hooks_cover_the_delivery_events() -> None:
    events = {h.event for h in codex_hooks.OUR_HOOKS}
    assert events == {HookEvent.SESSION_START, HookEvent.USER_PROMPT_SUBMIT,
                      HookEvent.POST_TOOL_USE, HookEvent.STOP}


def test_codex_home_from_env_is_named_resolved_the_default_as_is(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert codex_hooks.codex_home_as_named(link, from_env=True) == real
    assert codex_hooks.codex_home_as_named(link, from_env=False) == link
