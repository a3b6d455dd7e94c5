"""What must hold on the user's side before a client is launched: its binary on PATH, and
for Codex, servers that run under the client's own window.

Codex 0.169.0 starts a shared app-server daemon by default ([features] daemon_auto_start);
then every thread's MCP server is the daemon's child, not the TUI's, and nothing in the
live process tree ties the new server to the window we launched, so its registration, its
pane and its lineage cannot be proven. Asking the spawned TUI to run without the daemon
(`-c features.daemon_auto_start=false`) opens Codex's blocking "incompatible feature
settings" dialog whenever a daemon already runs (observed), so the spawn is refused up
front with the fix, instead of timing out.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import read_private
from oxtail_py.settings import expand_home

_CONFIG_MAX = 1 << 20


def find_client(client: str, env: dict[str, str]) -> str:
    """The client's executable on the user's PATH, or a refusal naming it."""
    exe = shutil.which(client, path=env.get("PATH") or os.defpath)
    if exe is None:
        raise OxtailError(
            f"the {client} binary is not on PATH ({env.get('PATH', '')}): install "
            f"{'Claude Code' if client == 'claude' else 'the Codex CLI'}; `oxtail-py "
            "doctor` (or `oxtail-py setup`) shows which clients it finds",
            code="client-not-found",
        )
    return exe


def codex_config(env: dict[str, str]) -> Path:
    home = env.get("HOME", "")
    raw = env.get("CODEX_HOME", "")
    codex_home = expand_home(raw, home) if raw else Path(home) / ".codex"
    return codex_home / "config.toml"


def codex_daemon_problem(env: dict[str, str]) -> str:
    """'' when Codex, run with `env`, starts its MCP servers under its own TUI; else why
    not and how to change it."""
    path = codex_config(env)
    try:
        # A dotfile manager's symlink is followed to its target; a FIFO or a huge file is
        # refused (read_private), and then the default applies.
        text = read_private(Path(os.path.realpath(path)), max_bytes=_CONFIG_MAX).decode()
        features = tomllib.loads(text).get("features", {})
    except (OSError, OxtailError, ValueError):
        features = {}
    if isinstance(features, dict) and features.get("daemon_auto_start") is False:
        return ""
    return (
        f"Codex runs its shared app-server daemon ({path} has no [features] "
        "daemon_auto_start = false), so a spawned Codex's oxtail server would hang off that "
        "daemon, not off the window it was started in, and could not be proven to be the "
        "helper. Add `daemon_auto_start = false` under [features] in that file, then spawn "
        "again"
    )
