"""`oxtail-py setup`: register the MCP server with Claude Code and Codex, install the
hooks and the join skill/command, and report what is on this machine.

The registered command is this interpreter running the installed package
(`<python> -m oxtail_py serve`), so it works whatever PATH the client has.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import tomlkit
import tomlkit.exceptions

from oxtail_py.client_paths import (
    claude_commands_dir,
    claude_user_config,
    codex_config_file,
    codex_skills_dir,
)
from oxtail_py.config_edit import FileChange, apply, read_text
from oxtail_py.errors import OxtailError
from oxtail_py.hooks_install import codex_trust_note, install_codex, packaged
from oxtail_py.hooks_install import install as install_hooks
from oxtail_py.settings import Settings

SERVER_NAME: Final = "oxtail"


class ConfigError(OxtailError):
    code = "bad-config"


def server_command() -> tuple[str, list[str]]:
    return sys.executable, ["-m", "oxtail_py", "serve"]


def _server_env(settings: Settings) -> dict[str, str]:
    """AGENTMAIL_HOME only when it is not the default: the clients must agree with us."""
    default = settings.home / ".agentmail"
    return {"AGENTMAIL_HOME": str(settings.root)} if settings.root != default else {}


def register_claude(settings: Settings, *, dry_run: bool) -> FileChange:
    """User-scope MCP server: `mcpServers.oxtail` in ~/.claude.json (all keys kept)."""
    path = claude_user_config(settings)
    old = read_text(path)
    try:
        data: Any = json.loads(old) if old and old.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                          "unchanged") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object; unchanged")
    command, args = server_command()
    entry: dict[str, Any] = {"type": "stdio", "command": command, "args": args}
    if env := _server_env(settings):
        entry["env"] = env
    servers = data.get("mcpServers")
    data["mcpServers"] = {**(servers if isinstance(servers, dict) else {}), SERVER_NAME: entry}
    return apply(path, old, json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                 dry_run=dry_run)


def register_codex(settings: Settings, *, dry_run: bool) -> FileChange:
    """`[mcp_servers.oxtail]` in config.toml, edited with tomlkit (comments survive)."""
    path = codex_config_file(settings)
    old = read_text(path)
    try:
        doc = tomlkit.parse(old or "")
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); unchanged") from exc
    command, args = server_command()
    table = tomlkit.table()
    table["command"] = command
    table["args"] = args
    # Codex starts the model before a slow server is up unless told to wait for it.
    table["required"] = True
    if env := _server_env(settings):
        table["env"] = env
    servers = doc.get("mcp_servers")
    if servers is None:
        servers = tomlkit.table(is_super_table=True)
        doc["mcp_servers"] = servers
    servers[SERVER_NAME] = table
    return apply(path, old, tomlkit.dumps(doc), dry_run=dry_run)


def _copy_tree(source: Path, target: Path, *, dry_run: bool) -> list[FileChange]:
    changes = []
    for src in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = target / src.relative_to(source)
        changes.append(apply(dest, read_text(dest), src.read_text(encoding="utf-8"),
                             dry_run=dry_run))
    return changes


def install_integrations(settings: Settings, *, dry_run: bool) -> list[FileChange]:
    skill = packaged("integrations/codex/oxtail-join")
    command = packaged("integrations/claude/commands")
    return [
        *_copy_tree(skill, codex_skills_dir(settings) / "oxtail-join", dry_run=dry_run),
        *_copy_tree(command, claude_commands_dir(settings), dry_run=dry_run),
    ]


@dataclass(frozen=True, slots=True)
class Prerequisite:
    name: str
    path: str | None
    version: str | None


def prerequisites() -> list[Prerequisite]:
    found = []
    for name, flag in (("tmux", "-V"), ("claude", "--version"), ("codex", "--version")):
        path = shutil.which(name)
        version = None
        if path:
            try:
                out = subprocess.run([path, flag], capture_output=True, text=True, timeout=10)
                version = (out.stdout or out.stderr).strip().splitlines()[0] if out else None
            except (OSError, subprocess.TimeoutExpired, IndexError):
                version = None
        found.append(Prerequisite(name, path, version))
    return found


def setup(settings: Settings, *, dry_run: bool, trust: bool = True) -> tuple[list[FileChange], str]:
    """Every change made, and what to tell the user about Codex's trust of our hooks."""
    # Both edit config.toml, each reading the file as it is now. The trust entries go
    # first: register_codex rewrites its table, and as the last writer its result is
    # already what a second run would write (setup twice changes nothing).
    codex_changes, trusted = install_codex(settings, trust=trust, dry_run=dry_run)
    changes = [
        register_claude(settings, dry_run=dry_run),
        register_codex(settings, dry_run=dry_run),
        *install_hooks(settings, dry_run=dry_run),
        *codex_changes,
        *install_integrations(settings, dry_run=dry_run),
    ]
    return changes, codex_trust_note(trusted, trust=trust)
