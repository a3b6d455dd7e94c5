"""`oxtail-py install-hook` / `uninstall-hook`: the Claude Code and Codex hooks.

Renders hooks/oxtail-hook under the state root and adds one entry per event to
~/.claude/settings.json and (oxtail_py.codex_hooks) to $CODEX_HOME/hooks.json.
The template's @NAME@ placeholders are filled from
oxtail_py.layout (every name under the root, the session id's shape) and from the
installing interpreter and package, so the shell never spells a path by hand.
Our entries are recognised by their command (`.../oxtail-hook ...`), so every
other hook and key in the file stays exactly as it was.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import oxtail_py
from oxtail_py import __version__, codex_hooks, reservation_check
from oxtail_py import layout as on_disk
from oxtail_py.client_paths import claude_settings_file
from oxtail_py.codex_hooks_check import CodexHooksCheck, CodexHooksProblem, check_codex_hooks
from oxtail_py.config_edit import FileChange, apply, read_text
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_bytes, ensure_tree, read_private
from oxtail_py.hook_entries import (
    HOOK_NAME,
    OurHook,
    groups_for,
    is_ours,
    load_hooks_file,
    with_groups,
    without_ours,
)
from oxtail_py.hook_output import HookEvent
from oxtail_py.layout import Layout
from oxtail_py.names import ERRORS_LOG
from oxtail_py.settings import Settings

CLIENT: Final = "claude"  # the hook's first argument: which client's payloads it reads
VERSION_MARK: Final = "# oxtail-hooks-version: "
MAX_SCRIPT_BYTES: Final = 1 << 16
_PLACEHOLDER: Final = re.compile(r"@[A-Z_]+@")
# Names that go into the script unquoted must be plain words.
_PLAIN_NAME: Final = re.compile(r"[A-Za-z0-9._-]+")
# What Claude Code runs: PreToolUse before every tool ("*"), so mail arrives mid-turn.
CLAUDE_HOOKS: Final[tuple[OurHook, ...]] = (
    OurHook(HookEvent.PRE_TOOL_USE, 5, "*"),
    OurHook(HookEvent.USER_PROMPT_SUBMIT, 5),
    OurHook(HookEvent.STOP, 5),
    OurHook(HookEvent.SESSION_START, 10),
)


class SettingsError(OxtailError):
    code = "bad-settings"


def packaged(relative: str) -> Path:
    """A file shipped with the package: wheel data, or the source checkout's copy."""
    inside = resources.files("oxtail_py") / "_data" / relative
    if inside.is_file() or inside.is_dir():
        return Path(str(inside))
    return Path(__file__).resolve().parent.parent / relative


def hook_placeholders(root: Path) -> dict[str, str]:
    """Every @NAME@ of the template and its shell text. Names come from layout.py."""
    names = {
        "STATUS": on_disk.STATUS,
        "MAILBOXES": on_disk.MAILBOXES,
        "INBOX": on_disk.INBOX,
        "CLAIM_PREFIX": on_disk.CLAIM_PREFIX,
        "HOOKS": on_disk.HOOKS,
        "ERRORS_LOG": ERRORS_LOG,
        "PID_BOX_PREFIX": on_disk.PID_BOX_PREFIX,
        "RESERVATIONS": on_disk.RESERVATIONS,
        "HOLDER_PREFIX": on_disk.HOLDER_PREFIX,
        "HOLDER_SUFFIX": on_disk.HOLDER_SUFFIX,
        "OBLIGATIONS": on_disk.OBLIGATIONS,
        "OWED": on_disk.OWED,
    }
    for value in names.values():
        if not _PLAIN_NAME.fullmatch(value):
            raise ValueError(f"layout name {value!r} cannot go into the hook unquoted")
    # Bracket expressions list every byte (no ranges: they depend on the locale); a '-'
    # is literal only last.
    for chars in (on_disk.SESSION_ID_FIRST_CHARS, on_disk.SESSION_ID_CHARS):
        if not re.fullmatch(r"[A-Za-z0-9_]*-?", chars):
            raise ValueError(f"session id alphabet {chars!r} cannot go into a bracket expression")
    return {
        **names,
        "VERSION": __version__,
        "ROOT": shlex.quote(str(root)),
        "PYTHON": shlex.quote(sys.executable),
        # The package directory this interpreter imports right now: the helper loads
        # it from there, so it needs neither the cwd nor PYTHONPATH (it runs with -I).
        "PACKAGE": shlex.quote(str(Path(oxtail_py.__file__).resolve().parent)),
        "SID_FIRST_CHARS": on_disk.SESSION_ID_FIRST_CHARS,
        "SID_CHARS": on_disk.SESSION_ID_CHARS,
        "SID_MAX": str(on_disk.SESSION_ID_MAX),
        "EDIT_TOOL_PATTERNS": edit_tool_patterns(),
        # The drain and the reservation check need nothing from site-packages on Linux
        # (liveness is read from /proc), so they skip the site module; elsewhere procs asks
        # psutil, which lives there.
        "NO_SITE": "-S" if sys.platform == "linux" else "''",
    }


def edit_tool_patterns() -> str:
    """The shell `case` patterns that spot a file-edit tool's payload (both clients, the
    compact form they send and a spaced one), from reservation_check's tool names."""
    names = sorted({*reservation_check.CLAUDE_EDIT_TOOLS, *reservation_check.CODEX_EDIT_TOOLS})
    for name in names:
        if not re.fullmatch(r"[A-Za-z_]+", name):
            raise ValueError(f"tool name {name!r} cannot go into a case pattern")
    return " | ".join(f"*'\"tool_name\":{sep}\"{name}\"'*"
                      for name in names for sep in ("", " "))


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill every @NAME@; a placeholder with no value, or a value with no placeholder,
    is a drift between the template and this module and fails the install."""
    used = set(_PLACEHOLDER.findall(template))
    wanted = {f"@{name}@" for name in values}
    if used != wanted:
        raise ValueError(
            f"hook template and renderer disagree: unfilled {sorted(used - wanted)}, "
            f"unused {sorted(wanted - used)}"
        )
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)[1:-1]], template)


def hook_template() -> str:
    return packaged(f"hooks/{HOOK_NAME}").read_text(encoding="utf-8")


def rendered_hook(layout: Layout) -> str:
    return render(hook_template(), hook_placeholders(layout.root))


def hook_path(layout: Layout) -> Path:
    return layout.hooks_dir / HOOK_NAME


def installed_version(layout: Layout) -> str | None:
    try:  # no-follow, no FIFO: the server asks this at start and must not hang
        text = read_private(hook_path(layout), max_bytes=MAX_SCRIPT_BYTES).decode("utf-8")
    except (OSError, OxtailError, UnicodeDecodeError):
        return None
    for line in text.splitlines()[:5]:
        if line.startswith(VERSION_MARK):
            return line[len(VERSION_MARK) :].strip()
    return None


def _load_settings(path: Path) -> tuple[str | None, dict[str, Any]]:
    return load_hooks_file(path, SettingsError)


def settings_with_hooks(data: dict[str, Any], command_base: str | None) -> dict[str, Any]:
    """`data` with our entries replaced (`command_base` None: removed); the rest kept."""
    existing = data.get("hooks", {})
    if command_base is None:
        hooks = without_ours(existing)
    else:
        hooks = with_groups(existing, groups_for(CLAUDE_HOOKS, command_base))
    result = dict(data)
    if hooks:
        result["hooks"] = hooks
    else:
        result.pop("hooks", None)
    return result


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def install(settings: Settings, *, dry_run: bool = False) -> list[FileChange]:
    layout = Layout(settings.root)
    settings_file = claude_settings_file(settings)
    old_text, data = _load_settings(settings_file)
    script = hook_path(layout)
    new_script = rendered_hook(layout)
    command_base = f"{shlex.quote(str(script))} {CLIENT}"
    changes = [apply(settings_file, old_text, _dump(settings_with_hooks(data, command_base)),
                     dry_run=dry_run)]
    old_script = read_text(script)
    if old_script != new_script:
        if not dry_run:
            for directory in (layout.hooks_dir, layout.status_dir, layout.mailboxes_dir):
                ensure_tree(layout.root, directory)
            atomic_write_bytes(script, new_script.encode("utf-8"))
            os.chmod(script, 0o700)
        changes.append(FileChange(script, True, "(hook script written)", None))
    return changes


def codex_home_named(settings: Settings) -> Path:
    """$CODEX_HOME as Codex names it in its trust keys."""
    return codex_hooks.codex_home_as_named(
        settings.codex_home, from_env=settings.codex_home_from_env
    )


def codex_hook_command(settings: Settings) -> str:
    return shlex.quote(str(hook_path(Layout(settings.root))))


def install_codex(
    settings: Settings, *, trust: bool = True, dry_run: bool = False
) -> tuple[list[FileChange], tuple[codex_hooks.HookEntry, ...]]:
    """Our hooks in $CODEX_HOME/hooks.json, or config.toml's [hooks] table when the user
    keeps theirs there (the script itself comes from `install`); with `trust`, the trust
    entries Codex writes when a user approves them in /hooks."""
    return codex_hooks.install(
        codex_home_named(settings), codex_hook_command(settings), trust=trust, dry_run=dry_run
    )


def codex_trust_note(trusted: tuple[codex_hooks.HookEntry, ...], *, trust: bool) -> str:
    """What the user is told about Codex's trust gate after an install."""
    if trust and trusted:
        events = ", ".join(e.event_name for e in trusted)
        return (f"Codex hooks in {trusted[0].source} trusted ({events}): recorded in "
                "config.toml as Codex's /hooks would on approval")
    return ("Codex hooks NOT trusted (--no-trust): Codex will not run them until you approve "
            "them: in the Codex TUI type /hooks and trust the oxtail hooks")


def check_codex(settings: Settings) -> CodexHooksCheck:
    """Will Codex run our hooks for this user? The hook script first (missing, or from
    another version), then codex_hooks_check.check_codex_hooks: installed in hooks.json
    or config.toml, enabled, trusted. `problem` None: yes."""
    version = installed_version(Layout(settings.root))
    if version != __version__:
        problem = (CodexHooksProblem.SCRIPT_MISSING if version is None
                   else CodexHooksProblem.SCRIPT_OUTDATED)
        found = "missing" if version is None else f"version {version}"
        return CodexHooksCheck(
            problem,
            f"the oxtail hook script {hook_path(Layout(settings.root))} is {found} (the "
            f"package is {__version__})", "run `oxtail-py install-hook`")
    return check_codex_hooks(codex_home_named(settings), codex_hook_command(settings))


def codex_problem(settings: Settings) -> str | None:
    """Why a Codex session of this server would get no mail from its hooks, or None."""
    check = check_codex(settings)
    return None if check.ok else check.sentence


def uninstall(settings: Settings, *, dry_run: bool = False) -> list[FileChange]:
    layout = Layout(settings.root)
    changes = codex_hooks.uninstall(codex_home_named(settings), dry_run=dry_run)
    settings_file = claude_settings_file(settings)
    old_text, data = _load_settings(settings_file)
    if old_text is not None:
        changes.append(
            apply(settings_file, old_text, _dump(settings_with_hooks(data, None)), dry_run=dry_run)
        )
    script = hook_path(layout)
    if script.exists():
        if not dry_run:
            script.unlink()
        changes.append(FileChange(script, True, "(hook script removed)", None))
    return changes


def hooks_problem(settings: Settings) -> str | None:
    """Why a Claude session of this server would miss mid-turn delivery, or None."""
    version = installed_version(Layout(settings.root))
    if version is None:
        return "oxtail hooks are not installed: run `oxtail-py install-hook` (or `oxtail-py setup`)"
    if version != __version__:
        return (
            f"oxtail hooks are version {version}, the package is {__version__}: "
            "run `oxtail-py install-hook` to update them"
        )
    try:
        _, data = _load_settings(claude_settings_file(settings))
    except SettingsError as exc:
        return str(exc)
    groups = data.get("hooks", {}).get("PreToolUse", [])
    if not any(is_ours(h) for g in groups if isinstance(g, dict) for h in g.get("hooks", [])):
        return (
            f"{claude_settings_file(settings)} has no oxtail hook entries: "
            "run `oxtail-py install-hook`"
        )
    return None
