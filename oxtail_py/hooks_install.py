"""`oxtail-py install-hook` / `uninstall-hook`: the Claude Code hooks.

Copies hooks/oxtail-hook under the state root (interpreter, state root and
version filled in) and adds one entry per event to ~/.claude/settings.json.
Our entries are recognised by their command (`.../oxtail-hook <event>`), so every
other hook and key in the file stays exactly as it was.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Final

from oxtail_py import __version__
from oxtail_py.client_paths import claude_config_dir
from oxtail_py.config_edit import FileChange, apply, read_text
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_bytes, ensure_tree
from oxtail_py.layout import Layout

HOOK_NAME: Final = "oxtail-hook"
VERSION_MARK: Final = "# oxtail-hooks-version: "
# event name in settings.json -> (argument, matcher or None, timeout seconds)
EVENTS: Final = {
    "PreToolUse": ("pretooluse", "*", 5),
    "UserPromptSubmit": ("userpromptsubmit", None, 5),
    "Stop": ("stop", None, 5),
    "SessionStart": ("sessionstart", None, 10),
}


class SettingsError(OxtailError):
    code = "bad-settings"


def packaged(relative: str) -> Path:
    """A file shipped with the package: wheel data, or the source checkout's copy."""
    inside = resources.files("oxtail_py") / "_data" / relative
    if inside.is_file() or inside.is_dir():
        return Path(str(inside))
    return Path(__file__).resolve().parent.parent / relative


def rendered_hook(layout: Layout) -> str:
    template = packaged(f"hooks/{HOOK_NAME}").read_text(encoding="utf-8")
    return (
        template.replace("@VERSION@", __version__)
        .replace("@ROOT@", shlex.quote(str(layout.root)))
        .replace("@PYTHON@", shlex.quote(sys.executable))
    )


def hook_path(layout: Layout) -> Path:
    return layout.root / "hooks" / HOOK_NAME


def installed_version(layout: Layout) -> str | None:
    try:
        text = hook_path(layout).read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines()[:5]:
        if line.startswith(VERSION_MARK):
            return line[len(VERSION_MARK) :].strip()
    return None


def _is_ours(hook: Any) -> bool:
    if not isinstance(hook, dict) or not isinstance(hook.get("command"), str):
        return False
    try:
        words = shlex.split(hook["command"])
    except ValueError:
        return False
    return bool(words) and os.path.basename(words[0]) == HOOK_NAME


def _load_settings(path: Path) -> tuple[str | None, dict[str, Any]]:
    text = read_text(path)
    if text is None or not text.strip():
        return text, {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it by hand, nothing was changed"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise SettingsError(f"{path}: expected a JSON object with an object 'hooks'; unchanged")
    return text, data


def _without_ours(hooks: dict[str, Any]) -> dict[str, Any]:
    """hooks with every oxtail entry removed (and groups/events left empty dropped)."""
    cleaned: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            cleaned[event] = groups
            continue
        kept_groups = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                inner = [h for h in group["hooks"] if not _is_ours(h)]
                if not inner and len(group["hooks"]) > 0:
                    continue
                group = {**group, "hooks": inner}
            kept_groups.append(group)
        if kept_groups or not groups:
            cleaned[event] = kept_groups
    return cleaned


def settings_with_hooks(data: dict[str, Any], command_base: str | None) -> dict[str, Any]:
    hooks = _without_ours(dict(data.get("hooks", {})))
    if command_base is not None:
        for event, (arg, matcher, timeout) in EVENTS.items():
            group: dict[str, Any] = {}
            if matcher is not None:
                group["matcher"] = matcher
            group["hooks"] = [
                {"type": "command", "command": f"{command_base} {arg}", "timeout": timeout}
            ]
            hooks.setdefault(event, []).append(group)
    result = dict(data)
    if hooks:
        result["hooks"] = hooks
    else:
        result.pop("hooks", None)
    return result


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def install(layout: Layout, *, dry_run: bool = False) -> list[FileChange]:
    settings = claude_config_dir() / "settings.json"
    old_text, data = _load_settings(settings)
    script = hook_path(layout)
    new_script = rendered_hook(layout)
    changes = [apply(settings, old_text, _dump(settings_with_hooks(data, shlex.quote(str(script)))),
                     dry_run=dry_run)]
    old_script = read_text(script)
    if old_script != new_script:
        if not dry_run:
            for sub in ("hooks", "status", "mailboxes"):
                ensure_tree(layout.root, layout.root / sub)
            atomic_write_bytes(script, new_script.encode("utf-8"))
            os.chmod(script, 0o700)
        changes.append(FileChange(script, True, "(hook script written)", None))
    return changes


def uninstall(layout: Layout, *, dry_run: bool = False) -> list[FileChange]:
    settings = claude_config_dir() / "settings.json"
    old_text, data = _load_settings(settings)
    if old_text is None:
        return []
    changes = [apply(settings, old_text, _dump(settings_with_hooks(data, None)), dry_run=dry_run)]
    script = hook_path(layout)
    if script.exists():
        if not dry_run:
            script.unlink()
        changes.append(FileChange(script, True, "(hook script removed)", None))
    return changes


def hooks_problem(layout: Layout) -> str | None:
    """Why a Claude session of this server would miss mid-turn delivery, or None."""
    version = installed_version(layout)
    if version is None:
        return "oxtail hooks are not installed: run `oxtail-py install-hook` (or `oxtail-py setup`)"
    if version != __version__:
        return (
            f"oxtail hooks are version {version}, the package is {__version__}: "
            "run `oxtail-py install-hook` to update them"
        )
    try:
        _, data = _load_settings(claude_config_dir() / "settings.json")
    except SettingsError as exc:
        return str(exc)
    groups = data.get("hooks", {}).get("PreToolUse", [])
    if not any(_is_ours(h) for g in groups if isinstance(g, dict) for h in g.get("hooks", [])):
        return "~/.claude/settings.json has no oxtail hook entries: run `oxtail-py install-hook`"
    return None
