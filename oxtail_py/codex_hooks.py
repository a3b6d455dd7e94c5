"""The Codex side of hook installation: $CODEX_HOME/hooks.json and the trust Codex keeps.

Codex (0.169.0) runs a user's hook only once it is trusted: `codex exec` skips an
untrusted hook silently, the TUI stops at a "Hooks need review" dialog. When the user
approves, Codex writes, in $CODEX_HOME/config.toml,

    [hooks.state."<hooks file>:<snake_case_event>:<group index>:<handler index>"]
    trusted_hash = "sha256:<hex>"

where the hash covers a normalized identity of the handler (see `trust_hash`), so any
edit of the hook withdraws the trust. `oxtail-py setup` installs exactly these hooks at
the user's request, so it records the same entries (`trust=False` leaves the approval
to Codex's own /hooks review). The format is pinned by tests/unit/test_codex_hooks.py
(hashes the real binary computed) and re-checked live against the pinned binary by
tests/e2e/test_codex_hooks_real.py, which fails loudly if Codex changes it.

Every function takes explicit paths; nothing here reads the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from oxtail_py.config_edit import FileChange, apply, read_text
from oxtail_py.errors import OxtailError
from oxtail_py.hook_entries import is_ours, load_hooks_file, with_groups, without_ours
from oxtail_py.hook_output import EVENT_NAMES, HookEvent

HOOKS_FILE: Final = "hooks.json"
CONFIG_FILE: Final = "config.toml"
CLIENT_ARG: Final = "codex"  # `oxtail-hook codex <event>`: the script's client argument
DEFAULT_TIMEOUT_S: Final = 600  # what Codex assumes when a handler sets none
# Codex ignores the matcher of these events, and leaves it out of the trust hash.
MATCHERLESS_EVENTS: Final = frozenset({"UserPromptSubmit", "Stop"})


@dataclass(frozen=True, slots=True)
class OurHook:
    """One handler we install: the event, the hook script's argument, its timeout."""

    event: HookEvent
    timeout_s: int
    matcher: str | None = None  # a full-match regex on the tool name; None: every tool

    @property
    def event_name(self) -> str:
        return EVENT_NAMES[self.event]


# Codex's file-edit tool as its PreToolUse payload names it (`tool_name`).
APPLY_PATCH_MATCHER: Final = "apply_patch"

# PostToolUse, not PreToolUse: both land in the same next model request (right after
# the tool's output), but PostToolUse runs after the tool, so mail that arrived while a
# long command ran goes out now instead of one tool call later. No matcher: every tool,
# shell (`Bash`) and MCP (`mcp__<server>__<tool>`) alike. Evidence: the e2e probes.
OUR_HOOKS: Final[tuple[OurHook, ...]] = (
    OurHook(HookEvent.SESSION_START, 10),
    OurHook(HookEvent.USER_PROMPT_SUBMIT, 5),
    OurHook(HookEvent.POST_TOOL_USE, 5),
    OurHook(HookEvent.STOP, 5),
    # File reservations (reservations.py): PreToolUse only for the edit tool, so every
    # other tool call pays nothing for it.
    OurHook(HookEvent.PRE_TOOL_USE, 5, matcher=APPLY_PATCH_MATCHER),
)


class CodexHooksError(OxtailError):
    code = "bad-codex-config"


# -- Codex's trust identity ----------------------------------------------------------------


def event_label(event_name: str) -> str:
    """`PreToolUse` -> `pre_tool_use`: the event as Codex spells it in trust keys."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event_name).lower()


def codex_home_as_named(codex_home: Path, *, from_env: bool) -> Path:
    """$CODEX_HOME as Codex spells it in trust keys: set by the environment, Codex
    canonicalizes it (symlinks resolved); the default ~/.codex it takes as it is, even
    when it is a symlink (observed with 0.169.0). Every function below wants this form."""
    return Path(os.path.realpath(codex_home)) if from_env else codex_home


def trust_key(source: Path, event_name: str, group_index: int, handler_index: int) -> str:
    """The `hooks.state` key of one handler; `source` as Codex names the file (under
    `codex_home_as_named`)."""
    return f"{source}:{event_label(event_name)}:{group_index}:{handler_index}"


def trust_hash(event_name: str, matcher: str | None, handler: Mapping[str, Any]) -> str:
    """The sha256 Codex stores as `trusted_hash` for a command handler.

    Codex hashes the compact, key-sorted JSON of `{"event_name": <label>, "matcher":
    <unless None or a matcherless event>, "hooks": [<handler normalized>]}`, the handler
    normalized to type, command, timeout (600 if unset, at least 1), async (false if
    unset) and statusMessage (only when set)."""
    normalized: dict[str, Any] = {
        "type": "command",
        "command": handler["command"],
        "timeout": max(1, int(handler.get("timeout", DEFAULT_TIMEOUT_S))),
        "async": bool(handler.get("async", False)),
    }
    if handler.get("statusMessage") is not None:
        normalized["statusMessage"] = handler["statusMessage"]
    identity: dict[str, Any] = {"event_name": event_label(event_name), "hooks": [normalized]}
    if matcher is not None and event_name not in MATCHERLESS_EVENTS:
        identity["matcher"] = matcher
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class HookEntry:
    """One command handler of a hooks file, with its trust key and current hash."""

    key: str
    event_name: str
    command: str
    current_hash: str
    ours: bool


def command_entries(source: Path, hooks: Mapping[str, Any]) -> list[HookEntry]:
    """Every command handler in `hooks`, numbered the way Codex numbers them (index of
    the group within its event, of the handler within its group, whatever its type)."""
    entries = []
    for event_name, groups in hooks.items():
        if not isinstance(groups, list):
            continue
        for group_index, group in enumerate(groups):
            if not isinstance(group, Mapping) or not isinstance(group.get("hooks"), list):
                continue
            matcher = group.get("matcher")
            for handler_index, handler in enumerate(group["hooks"]):
                if not isinstance(handler, Mapping) or handler.get("type") != "command":
                    continue
                if not isinstance(handler.get("command"), str):
                    continue
                entries.append(
                    HookEntry(
                        key=trust_key(source, event_name, group_index, handler_index),
                        event_name=event_name,
                        command=handler["command"],
                        current_hash=trust_hash(
                            event_name, matcher if isinstance(matcher, str) else None, handler
                        ),
                        ours=is_ours(handler),
                    )
                )
    return entries


# -- hooks.json ------------------------------------------------------------------------------


def our_groups(hook_command: str) -> dict[str, dict[str, Any]]:
    """Our hooks.json group per event; `hook_command` is the hook script, shell-quoted."""
    return {
        hook.event_name: {
            **({} if hook.matcher is None else {"matcher": hook.matcher}),
            "hooks": [
                {
                    "type": "command",
                    "command": f"{hook_command} {CLIENT_ARG} {hook.event.value}",
                    "timeout": hook.timeout_s,
                }
            ],
        }
        for hook in OUR_HOOKS
    }


def _load_hooks_json(path: Path) -> tuple[str | None, dict[str, Any]]:
    text, data = load_hooks_file(path, CodexHooksError)
    hooks = data.get("hooks", {})
    # Codex is stricter than Claude: every event must map to a list of groups.
    if not all(isinstance(g, list) for g in hooks.values()):
        raise CodexHooksError(
            f"{path}: expected a JSON object whose 'hooks' maps each event to a list; "
            "fix it by hand, nothing was changed"
        )
    return text, data


def _dump_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# -- config.toml trust entries ---------------------------------------------------------------


def _load_config(path: Path) -> tuple[str | None, tomlkit.TOMLDocument]:
    text = read_text(path)
    try:
        return text, tomlkit.parse(text or "")
    except tomlkit.exceptions.ParseError as exc:
        raise CodexHooksError(f"{path} is not valid TOML ({exc}); nothing was changed") from exc


def _state_of(doc: tomlkit.TOMLDocument) -> Mapping[str, Any]:
    hooks = doc.get("hooks")
    state = hooks.get("state") if isinstance(hooks, Mapping) else None
    return state if isinstance(state, Mapping) else {}


def trusted_hashes(doc: tomlkit.TOMLDocument) -> dict[str, str]:
    """`hooks.state.<key>.trusted_hash` of every key that has one."""
    found = {}
    for key, value in _state_of(doc).items():
        if isinstance(value, Mapping) and isinstance(value.get("trusted_hash"), str):
            found[str(key)] = str(value["trusted_hash"])
    return found


def _state_table(doc: tomlkit.TOMLDocument) -> Table:
    hooks = doc.get("hooks")
    if hooks is None:
        hooks = tomlkit.table(is_super_table=True)
        doc["hooks"] = hooks
    state = hooks.get("state")
    if state is None:
        state = tomlkit.table(is_super_table=True)
        hooks["state"] = state
    if not isinstance(hooks, Table) or not isinstance(state, Table):
        raise CodexHooksError(
            "config.toml: `hooks` / `hooks.state` is not a table; fix it by hand, "
            "nothing was changed"
        )
    return state


def _retrust(
    doc: tomlkit.TOMLDocument,
    source: Path,
    old: Sequence[HookEntry],
    new: Sequence[HookEntry],
    trust: bool,
) -> None:
    """Withdraw every trust entry of ours that no longer matches a handler as it is now,
    then (with `trust`) record trust for each of our new handlers. An entry is ours when
    its key is in `source` and its hash is that of one of our handlers, before or after
    the edit (the hash covers the command, so it names our hook): a user's own trust,
    even at a key we once used, stays."""
    current = {(e.key, e.current_hash) for e in new}
    our_hashes = {e.current_hash for e in (*old, *new)}
    recorded = trusted_hashes(doc)
    stale = [key for key, digest in recorded.items()
             if key.startswith(f"{source}:") and digest in our_hashes
             and (key, digest) not in current]
    if stale:
        state = _state_table(doc)
        for key in stale:
            item = state[key]
            del item["trusted_hash"]
            if not item:
                del state[key]
    if trust:
        for entry in new:
            if recorded.get(entry.key) == entry.current_hash:
                continue
            state = _state_table(doc)
            item = state.get(entry.key)
            if isinstance(item, Table):
                item["trusted_hash"] = entry.current_hash  # keeps e.g. `enabled`
            else:
                table = tomlkit.table()
                table["trusted_hash"] = entry.current_hash
                state[entry.key] = table
    _drop_empty(doc)


def _dump_toml(doc: tomlkit.TOMLDocument, old: str | None) -> str:
    """The document's text, ending as the old file did: tomlkit leaves the blank line it
    put before a table it added, even once that table is gone again."""
    text = tomlkit.dumps(doc)
    if old is None or not text.strip():
        return text if text.strip() else ""
    ending = len(old) - len(old.rstrip("\n"))
    return text.rstrip("\n") + "\n" * max(ending, 1)


def _drop_empty(doc: tomlkit.TOMLDocument) -> None:
    hooks = doc.get("hooks")
    if isinstance(hooks, Table):
        state = hooks.get("state")
        if isinstance(state, Table) and not state:
            del hooks["state"]
        if not hooks:
            del doc["hooks"]


# -- install / uninstall / diagnose ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodexHooksPlan:
    """What an install (or uninstall) will write, before anything is written."""

    hooks_path: Path
    config_path: Path
    old_hooks_text: str | None
    new_hooks_text: str | None  # None: leave the file as it is
    old_config_text: str | None
    new_config_text: str
    trusted: tuple[HookEntry, ...]  # our entries whose trust is recorded afterwards


def plan(codex_home: Path, hook_command: str | None, *, trust: bool) -> CodexHooksPlan:
    """The edit that installs our hooks (`hook_command` None: removes them)."""
    hooks_path = codex_home / HOOKS_FILE
    config_path = codex_home / CONFIG_FILE
    old_text, data = _load_hooks_json(hooks_path)
    old_config, doc = _load_config(config_path)
    hooks = data.get("hooks", {})
    merged = with_groups(hooks, our_groups(hook_command)) if hook_command else without_ours(hooks)
    new_data = {**data, "hooks": merged} if merged else {k: v for k, v in data.items()
                                                         if k != "hooks"}
    old_ours = [e for e in command_entries(hooks_path, hooks) if e.ours]
    new_ours = [e for e in command_entries(hooks_path, merged) if e.ours]
    _retrust(doc, hooks_path, old_ours, new_ours, trust)
    trusted = trusted_hashes(doc)
    return CodexHooksPlan(
        hooks_path=hooks_path,
        config_path=config_path,
        old_hooks_text=old_text,
        # An absent hooks.json stays absent when there is nothing to put in it.
        new_hooks_text=_dump_json(new_data) if new_data or old_text is not None else None,
        old_config_text=old_config,
        new_config_text=_dump_toml(doc, old_config),
        trusted=tuple(e for e in new_ours if trusted.get(e.key) == e.current_hash),
    )


def _write(p: CodexHooksPlan, *, dry_run: bool) -> list[FileChange]:
    changes = []
    if p.new_hooks_text is not None:
        changes.append(apply(p.hooks_path, p.old_hooks_text, p.new_hooks_text, dry_run=dry_run))
    if p.old_config_text is not None or p.new_config_text:
        changes.append(
            apply(p.config_path, p.old_config_text, p.new_config_text, dry_run=dry_run)
        )
    return changes


def install(
    codex_home: Path, hook_command: str, *, trust: bool = True, dry_run: bool = False
) -> tuple[list[FileChange], tuple[HookEntry, ...]]:
    """Install our Codex hooks; returns the file changes and the entries now trusted."""
    p = plan(codex_home, hook_command, trust=trust)
    return _write(p, dry_run=dry_run), p.trusted


def uninstall(codex_home: Path, *, dry_run: bool = False) -> list[FileChange]:
    """Remove our Codex hooks and the trust entries we recorded for them."""
    return _write(plan(codex_home, None, trust=False), dry_run=dry_run)


def codex_hooks_problem(codex_home: Path, hook_command: str) -> str | None:
    """Why a Codex session would get no mail from its hooks, as a sentence that says how
    to fix it; None when our hooks are installed as `hook_command` and trusted."""
    hooks_path = codex_home / HOOKS_FILE
    try:
        _, data = _load_hooks_json(hooks_path)
        _, doc = _load_config(codex_home / CONFIG_FILE)
    except CodexHooksError as exc:
        return str(exc)
    entries = [e for e in command_entries(hooks_path, data.get("hooks", {})) if e.ours]
    wanted = {g["hooks"][0]["command"]: event for event, g in our_groups(hook_command).items()}
    missing = sorted(set(wanted.values()) - {wanted[e.command] for e in entries
                                             if e.command in wanted})
    if missing:
        return (
            f"the oxtail Codex hooks are not installed in {hooks_path} (missing: "
            f"{', '.join(missing)}): run `oxtail-py setup` (or `oxtail-py install-hook`)"
        )
    state = _state_of(doc)
    disabled = [e.event_name for e in entries
                if isinstance(state.get(e.key), Mapping) and state[e.key].get("enabled") is False]
    if disabled:
        return (
            f"the oxtail Codex hooks for {', '.join(sorted(disabled))} are disabled in Codex: "
            "enable them in Codex's /hooks view"
        )
    recorded = trusted_hashes(doc)
    untrusted = sorted(e.event_name for e in entries if e.command in wanted
                       and recorded.get(e.key) != e.current_hash)
    if untrusted:
        return (
            f"Codex has not trusted the oxtail hooks ({', '.join(untrusted)}), so it does not "
            "run them and mail reaches this agent only when it calls read_my_messages: in "
            "the Codex TUI type /hooks and trust them, or run `oxtail-py setup`, which "
            "records the trust for you"
        )
    return None
