"""Our entries in a client's hook config (Claude settings.json `hooks`, Codex hooks.json).

Both clients use one shape: `{EventName: [{"matcher": ..., "hooks": [handler, ...]}]}`.
An entry is ours when its command's first word is a file named `oxtail-hook`, whatever
its directory (the state root may move), so every other hook stays exactly as it was.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from oxtail_py.config_edit import ConfigFileError, read_text
from oxtail_py.errors import OxtailError
from oxtail_py.hook_output import EVENT_NAMES, HookEvent

HOOK_NAME: Final = "oxtail-hook"

Hooks = dict[str, Any]  # parsed JSON: anything a user wrote may be there
Groups = dict[str, list[dict[str, Any]]]  # event name -> our groups for it


@dataclass(frozen=True, slots=True)
class OurHook:
    """One handler we install: its event (also the hook script's argument), the matcher
    of its group (None: no matcher, every tool) and its timeout. An installer's list of
    these is all it installs: one more entry is one more line."""

    event: HookEvent
    timeout_s: int
    matcher: str | None = None

    @property
    def event_name(self) -> str:
        return EVENT_NAMES[self.event]


def groups_for(hooks: Sequence[OurHook], command_base: str) -> Groups:
    """One group per handler, `command_base EVENT` its command, in the order given."""
    groups: Groups = {}
    for hook in hooks:
        group: dict[str, Any] = {} if hook.matcher is None else {"matcher": hook.matcher}
        group["hooks"] = [{"type": "command", "command": f"{command_base} {hook.event.value}",
                           "timeout": hook.timeout_s}]
        groups.setdefault(hook.event_name, []).append(group)
    return groups


def load_hooks_file(path: Path, error: type[OxtailError]) -> tuple[str | None, dict[str, Any]]:
    """(text, parsed) of a client's hook config; a missing or empty file is `{}`. Anything
    that is not a JSON object with an object `hooks` raises `error`: we never rewrite a
    file we could not read."""
    try:
        text = read_text(path)
    except ConfigFileError as exc:  # a FIFO, a huge file, not UTF-8: as unreadable JSON
        raise error(str(exc)) from exc
    if text is None or not text.strip():
        return text, {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it by hand, nothing was changed"
        ) from exc
    except RecursionError as exc:
        raise error(f"{path}: JSON nested too deeply; nothing was changed") from exc
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise error(f"{path}: expected a JSON object with an object 'hooks'; unchanged")
    return text, data


def is_ours(handler: object) -> bool:
    if not isinstance(handler, Mapping) or not isinstance(handler.get("command"), str):
        return False
    try:
        words = shlex.split(handler["command"])
    except ValueError:
        return False
    return bool(words) and os.path.basename(words[0]) == HOOK_NAME


def without_ours(hooks: Mapping[str, Any]) -> Hooks:
    """`hooks` with every oxtail handler removed; a group left with no handler is
    dropped, and so is an event left with no group (what was already empty stays)."""
    cleaned: Hooks = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            cleaned[event] = groups
            continue
        kept = []
        for group in groups:
            if isinstance(group, Mapping) and isinstance(group.get("hooks"), list):
                inner = [h for h in group["hooks"] if not is_ours(h)]
                if not inner and group["hooks"]:
                    continue
                group = {**group, "hooks": inner}
            kept.append(group)
        if kept or not groups:
            cleaned[event] = kept
    return cleaned


def with_groups(hooks: Mapping[str, Any], groups: Mapping[str, Sequence[dict[str, Any]]]
                ) -> Hooks:
    """`hooks` without our old entries, then our groups appended per event (last, so the
    position of every other group, which Codex's trust keys use, is unchanged)."""
    merged = without_ours(hooks)
    for event, ours in groups.items():
        existing = merged.get(event)
        merged[event] = [*(existing if isinstance(existing, list) else []), *ours]
    return merged
