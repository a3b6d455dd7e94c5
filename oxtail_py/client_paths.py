"""Where the agent clients keep their own files (not ours: see layout.py for those).

Claude Code: $CLAUDE_CONFIG_DIR, else ~/.claude (settings.json, projects/, commands/),
and ~/.claude.json (user-scope MCP servers). Codex: $CODEX_HOME, else ~/.codex
(config.toml, sessions/, skills/). `home` overrides ~ for tests and tools.
"""

from __future__ import annotations

import os
from pathlib import Path


def _home(home: Path | None) -> Path:
    return home if home is not None else Path.home()


def claude_config_dir(*, home: Path | None = None) -> Path:
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(env).expanduser() if env else _home(home) / ".claude"


def claude_json(*, home: Path | None = None) -> Path:
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(env).expanduser() / ".claude.json" if env else _home(home) / ".claude.json"


def codex_home(*, home: Path | None = None) -> Path:
    env = os.environ.get("CODEX_HOME")
    return Path(env).expanduser() if env else _home(home) / ".codex"
