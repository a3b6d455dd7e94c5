"""The two files of a user's Codex hooks layer: $CODEX_HOME/hooks.json and the `[hooks]`
table of $CODEX_HOME/config.toml.

Codex reads both and runs every hook in either, but prints a warning ("loading hooks
from both ... prefer a single representation for this layer") when both hold hooks, so
ours go where the user keeps theirs (`choose`). config.toml is edited in place with
tomlkit, so its comments, its layout and every other key survive; its `hooks.state`
(Codex's trust entries) is not an event and is never treated as one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Array, InlineTable, Table

from oxtail_py.codex_trust import STATE, CodexHooksError, hooks_table
from oxtail_py.config_edit import ConfigFileError, read_text
from oxtail_py.hook_entries import is_ours, load_hooks_file, without_ours

HOOKS_FILE: Final = "hooks.json"
CONFIG_FILE: Final = "config.toml"


class Source(StrEnum):
    """Where a Codex hook is kept (the file name under $CODEX_HOME)."""

    HOOKS_JSON = HOOKS_FILE
    CONFIG_TOML = CONFIG_FILE


@dataclass(slots=True)
class CodexConfig:
    """Both files as read: texts (None: absent) and parsed forms; `doc` is edited."""

    hooks_path: Path
    config_path: Path
    hooks_text: str | None
    hooks_data: dict[str, Any]
    config_text: str | None
    doc: tomlkit.TOMLDocument

    def path(self, source: Source) -> Path:
        return self.hooks_path if source == Source.HOOKS_JSON else self.config_path

    @property
    def json_hooks(self) -> dict[str, Any]:
        hooks: dict[str, Any] = self.hooks_data.get("hooks", {})
        return hooks

    def toml_hooks(self) -> dict[str, Any]:
        """The `[hooks]` table as plain data, events only (no `state`)."""
        hooks = self.doc.get("hooks")
        if not isinstance(hooks, Table | InlineTable):
            return {}
        return {str(k): v for k, v in hooks.unwrap().items() if k != STATE}


def read(codex_home: Path) -> CodexConfig:
    """Both files; one we could not read raises CodexHooksError (nothing is written)."""
    hooks_path = codex_home / HOOKS_FILE
    config_path = codex_home / CONFIG_FILE
    text, data = load_hooks_file(hooks_path, CodexHooksError)
    # Codex is stricter than Claude: every event must map to a list of groups.
    if not all(isinstance(g, list) for g in data.get("hooks", {}).values()):
        raise CodexHooksError(
            f"{hooks_path}: expected a JSON object whose 'hooks' maps each event to a list; "
            "fix it by hand, nothing was changed"
        )
    try:
        config_text = read_text(config_path)
    except ConfigFileError as exc:
        raise CodexHooksError(str(exc)) from exc
    try:
        doc = tomlkit.parse(config_text or "")
    except (tomlkit.exceptions.ParseError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CodexHooksError(
            f"{config_path} is not valid TOML ({reason}); nothing was changed"
        ) from exc
    hooks = doc.get("hooks")
    if hooks is not None and not isinstance(hooks, Table | InlineTable):
        raise CodexHooksError(
            f"{config_path}: `hooks` is not a table; fix it by hand, nothing was changed"
        )
    return CodexConfig(hooks_path, config_path, text, data, config_text, doc)


def _holds(hooks: Mapping[str, Any]) -> bool:
    return any(isinstance(groups, list) and groups for groups in hooks.values())


def choose(config: CodexConfig) -> Source:
    """Where our hooks go: config.toml when the user keeps their own Codex hooks there
    and none in hooks.json, hooks.json otherwise (also when both hold some: Codex warns
    already, and we add no third reason). With no hook of the user's anywhere, ours stay
    where they are, in hooks.json by default."""
    user_json, user_toml = without_ours(config.json_hooks), without_ours(config.toml_hooks())
    if _holds(user_toml) and not _holds(user_json):
        return Source.CONFIG_TOML
    if not _holds(user_json) and not _holds(user_toml):
        ours_in_toml = _holds(config.toml_hooks()) and not _holds(config.json_hooks)
        return Source.CONFIG_TOML if ours_in_toml else Source.HOOKS_JSON
    return Source.HOOKS_JSON


# -- editing the [hooks] table ---------------------------------------------------------------


def toml_remove_ours(doc: tomlkit.TOMLDocument) -> None:
    """Every oxtail handler out of config.toml's `[hooks]` table, in place; a group left
    with no handler goes, and so does an event left with no group (what was already
    empty stays: the user's)."""
    hooks = doc.get("hooks")
    if not isinstance(hooks, Table | InlineTable):
        return
    for event in [k for k in hooks if k != STATE]:
        groups = hooks[event]
        if not isinstance(groups, AoT | Array) or not groups:
            continue
        for gi in reversed(range(len(groups))):
            group = groups[gi]
            handlers = group.get("hooks") if isinstance(group, Mapping) else None
            if not isinstance(handlers, AoT | Array) or not any(is_ours(h) for h in handlers):
                continue
            for hi in reversed(range(len(handlers))):
                if is_ours(handlers[hi]):
                    del handlers[hi]
            if not handlers:
                del groups[gi]
        if not groups:
            del hooks[event]


def toml_add_groups(doc: tomlkit.TOMLDocument, groups: Mapping[str, Sequence[dict[str, Any]]]
                    ) -> None:
    """Our groups appended to each event's list (last, so the position of every other
    group, which Codex's trust keys use, is unchanged), in the list's own style: array
    of tables (`[[hooks.Stop]]`) or inline array."""
    hooks = hooks_table(doc)
    for event, new in groups.items():
        existing = hooks.get(event)
        if existing is None:
            existing = tomlkit.aot()
            hooks[event] = existing
        for group in new:
            if isinstance(existing, AoT):
                existing.append(_table(group))
            elif isinstance(existing, Array):
                existing.append(_inline(group))
            else:
                raise CodexHooksError(
                    f"config.toml: `hooks.{event}` is not a list of hook groups; fix it by "
                    "hand, nothing was changed"
                )


def _table(group: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    handlers = tomlkit.aot()
    for key, value in group.items():
        if key != "hooks":
            table[key] = value
    for handler in group["hooks"]:
        item = tomlkit.table()
        item.update(handler)
        handlers.append(item)
    item.add(tomlkit.nl())  # a blank line after the group, as a person would leave
    table["hooks"] = handlers
    return table


def _inline(group: Mapping[str, Any]) -> InlineTable:
    table = tomlkit.inline_table()
    for key, value in group.items():
        if key != "hooks":
            table[key] = value
    handlers = tomlkit.array()
    for handler in group["hooks"]:
        item = tomlkit.inline_table()
        item.update(handler)
        handlers.append(item)
    table["hooks"] = handlers
    return table


# -- text ------------------------------------------------------------------------------------


def dump_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def dump_toml(doc: tomlkit.TOMLDocument, old: str | None) -> str:
    """The document's text, ending as the old file did: tomlkit leaves the blank line it
    put before a table it added, even once that table is gone again."""
    text = tomlkit.dumps(doc)
    if not text.strip():
        return ""
    ending = 1 if old is None else len(old) - len(old.rstrip("\n"))
    return text.rstrip("\n") + "\n" * max(ending, 1)
