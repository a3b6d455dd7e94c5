"""Codex's trust gate: the key and hash it stores per hook handler, and those entries in
$CODEX_HOME/config.toml.

Codex (0.169.0) runs a user's hook only once it is trusted: `codex exec` skips an
untrusted hook silently, the TUI stops at a "Hooks need review" dialog. When the user
approves, Codex writes, in $CODEX_HOME/config.toml,

    [hooks.state."<hooks file>:<snake_case_event>:<group index>:<handler index>"]
    trusted_hash = "sha256:<hex>"

where the hooks file is the one holding the handler (hooks.json, or config.toml itself
for a `[hooks]` table there) and the hash covers a normalized identity of the handler
(see `trust_hash`), so any edit of the hook withdraws the trust. The format is pinned by
tests/unit/test_codex_hooks.py (hashes the real binary computed) and re-checked live
against the pinned binary by tests/e2e/test_codex_hooks_real.py and
test_codex_config_hooks_real.py, which fail loudly if Codex changes it.

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
from tomlkit.items import Table

from oxtail_py.errors import OxtailError
from oxtail_py.hook_entries import is_ours

DEFAULT_TIMEOUT_S: Final = 600  # what Codex assumes when a handler sets none
# Codex ignores the matcher of these events, and leaves it out of the trust hash.
MATCHERLESS_EVENTS: Final = frozenset({"UserPromptSubmit", "Stop"})
STATE: Final = "state"  # hooks.state: Codex's per-handler trust and enablement


class CodexHooksError(OxtailError):
    code = "bad-codex-config"


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
    source: Path  # the file holding it (hooks.json or config.toml)


def command_entries(source: Path, hooks: Mapping[str, Any]) -> list[HookEntry]:
    """Every command handler in `hooks` (plain data: event -> groups), numbered the way
    Codex numbers them (index of the group within its event, of the handler within its
    group, whatever its type). Anything that is not a list of groups (e.g. config.toml's
    `hooks.state`) holds no handler."""
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
                        source=source,
                    )
                )
    return entries


# -- hooks.state in config.toml --------------------------------------------------------------


def state_of(doc: tomlkit.TOMLDocument) -> Mapping[str, Any]:
    hooks = doc.get("hooks")
    state = hooks.get(STATE) if isinstance(hooks, Mapping) else None
    return state if isinstance(state, Mapping) else {}


def trusted_hashes(doc: tomlkit.TOMLDocument) -> dict[str, str]:
    """`hooks.state.<key>.trusted_hash` of every key that has one."""
    found = {}
    for key, value in state_of(doc).items():
        if isinstance(value, Mapping) and isinstance(value.get("trusted_hash"), str):
            found[str(key)] = str(value["trusted_hash"])
    return found


def disabled_keys(doc: tomlkit.TOMLDocument) -> set[str]:
    """Keys the user switched off in Codex's /hooks view (`enabled = false`)."""
    return {str(key) for key, value in state_of(doc).items()
            if isinstance(value, Mapping) and value.get("enabled") is False}


def hooks_table(doc: tomlkit.TOMLDocument) -> Table:
    """config.toml's `[hooks]` table, created (as a super table: it shows only through
    its children) when missing."""
    hooks = doc.get("hooks")
    if hooks is None:
        hooks = tomlkit.table(is_super_table=True)
        doc["hooks"] = hooks
    if not isinstance(hooks, Table):
        raise CodexHooksError(
            "config.toml: `hooks` is not a table; fix it by hand, nothing was changed"
        )
    return hooks


def _state_table(doc: tomlkit.TOMLDocument) -> Table:
    hooks = hooks_table(doc)
    state = hooks.get(STATE)
    if state is None:
        state = tomlkit.table(is_super_table=True)
        hooks[STATE] = state
    if not isinstance(state, Table):
        raise CodexHooksError(
            "config.toml: `hooks.state` is not a table; fix it by hand, nothing was changed"
        )
    return state


def retrust(
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
                table.add(tomlkit.nl())  # a blank line before whatever follows
                state[entry.key] = table
    drop_empty(doc)


def drop_empty(doc: tomlkit.TOMLDocument) -> None:
    """No empty `[hooks.state]` or `[hooks]` left behind by our removals."""
    hooks = doc.get("hooks")
    if isinstance(hooks, Table):
        state = hooks.get(STATE)
        if isinstance(state, Table) and not state:
            del hooks[STATE]
        if not hooks:
            del doc["hooks"]
