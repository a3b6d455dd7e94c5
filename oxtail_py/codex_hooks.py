"""The Codex side of hook installation: our handlers in the user's Codex hooks layer
($CODEX_HOME/hooks.json, or the `[hooks]` table of config.toml when the user keeps
theirs there) and the trust Codex keeps for them (codex_trust.py).

`oxtail-py setup` installs exactly these hooks at the user's request, so it records the
trust entries Codex writes when a user approves them in /hooks (`trust=False` leaves the
approval to that review). Every other hook, key and comment stays as it was.
Every function takes explicit paths; nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from oxtail_py.codex_hook_sources import (
    CONFIG_FILE,
    HOOKS_FILE,
    CodexConfig,
    Source,
    choose,
    dump_json,
    dump_toml,
    read,
    toml_add_groups,
    toml_remove_ours,
)
from oxtail_py.codex_trust import (
    CodexHooksError,
    HookEntry,
    codex_home_as_named,
    command_entries,
    retrust,
    trust_hash,
    trust_key,
    trusted_hashes,
)
from oxtail_py.config_edit import FileChange, apply
from oxtail_py.hook_entries import Groups, OurHook, groups_for, with_groups, without_ours
from oxtail_py.hook_output import HookEvent

__all__ = [
    "CONFIG_FILE",
    "HOOKS_FILE",
    "OUR_HOOKS",
    "CodexHooksError",
    "CodexHooksPlan",
    "HookEntry",
    "Source",
    "codex_home_as_named",
    "command_entries",
    "install",
    "our_entries",
    "our_groups",
    "plan",
    "trust_hash",
    "trust_key",
    "trusted_hashes",
    "uninstall",
]

CLIENT_ARG: Final = "codex"  # `oxtail-hook codex <event>`: the script's client argument

# PostToolUse, not PreToolUse: both land in the same next model request (right after
# the tool's output), but PostToolUse runs after the tool, so mail that arrived while a
# long command ran goes out now instead of one tool call later. No matcher: every tool,
# shell (`Bash`) and MCP (`mcp__<server>__<tool>`) alike. Evidence: the e2e probes.
OUR_HOOKS: Final[tuple[OurHook, ...]] = (
    OurHook(HookEvent.SESSION_START, 10),
    OurHook(HookEvent.USER_PROMPT_SUBMIT, 5),
    OurHook(HookEvent.POST_TOOL_USE, 5),
    OurHook(HookEvent.STOP, 5),
)


def our_groups(hook_command: str) -> Groups:
    """Our groups per event; `hook_command` is the hook script, shell-quoted."""
    return groups_for(OUR_HOOKS, f"{hook_command} {CLIENT_ARG}")


def our_entries(config: CodexConfig) -> dict[Source, list[HookEntry]]:
    """Our handlers in each file, keyed and hashed as Codex keys and hashes them."""
    found = {
        Source.HOOKS_JSON: command_entries(config.hooks_path, config.json_hooks),
        Source.CONFIG_TOML: command_entries(config.config_path, config.toml_hooks()),
    }
    return {source: [e for e in entries if e.ours] for source, entries in found.items()}


@dataclass(frozen=True, slots=True)
class CodexHooksPlan:
    """What an install (or uninstall) will write, before anything is written."""

    hooks_path: Path
    config_path: Path
    source: Source | None  # where ours go (None: removed)
    old_hooks_text: str | None
    new_hooks_text: str | None  # None: leave the file as it is
    old_config_text: str | None
    new_config_text: str
    trusted: tuple[HookEntry, ...]  # our entries whose trust is recorded afterwards


def plan(codex_home: Path, hook_command: str | None, *, trust: bool) -> CodexHooksPlan:
    """The edit that installs our hooks (`hook_command` None: removes them), in the
    file `choose` names; ours are taken out of the other one, with their trust."""
    config = read(codex_home)
    before = our_entries(config)
    source = choose(config) if hook_command else None
    groups = our_groups(hook_command) if hook_command else {}
    data = config.hooks_data
    json_hooks = (with_groups(config.json_hooks, groups) if source == Source.HOOKS_JSON
                  else without_ours(config.json_hooks))
    if json_hooks == config.json_hooks:
        new_data = data  # untouched, even an empty "hooks" of the user's
    elif json_hooks:
        new_data = {**data, "hooks": json_hooks}
    else:
        new_data = {k: v for k, v in data.items() if k != "hooks"}
    toml_hooks = config.toml_hooks()
    wanted = (with_groups(toml_hooks, groups) if source == Source.CONFIG_TOML
              else without_ours(toml_hooks))
    if wanted != toml_hooks:  # else untouched: a re-add would move ours after hooks.state
        toml_remove_ours(config.doc)
        if source == Source.CONFIG_TOML:
            toml_add_groups(config.doc, groups)
    config.hooks_data = new_data
    after = our_entries(config)
    for where in Source:
        retrust(config.doc, config.path(where), before[where], after[where], trust)
    recorded = trusted_hashes(config.doc)
    return CodexHooksPlan(
        hooks_path=config.hooks_path,
        config_path=config.config_path,
        source=source,
        old_hooks_text=config.hooks_text,
        # Rewritten only when its content changes (an absent one stays absent).
        new_hooks_text=dump_json(new_data) if new_data != data else config.hooks_text,
        old_config_text=config.config_text,
        new_config_text=dump_toml(config.doc, config.config_text),
        trusted=tuple(e for entries in after.values() for e in entries
                      if recorded.get(e.key) == e.current_hash),
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
    """Remove our Codex hooks (from both files) and the trust entries we recorded."""
    return _write(plan(codex_home, None, trust=False), dry_run=dry_run)
