"""Where the agent clients keep their own files (not ours: see layout.py for those).

Claude Code: $CLAUDE_CONFIG_DIR, else ~/.claude (settings.json, projects/, commands/),
and ~/.claude.json (user-scope MCP servers). Codex: $CODEX_HOME, else ~/.codex
(config.toml, sessions/, skills/). The directories come from Settings, read once by
the entry point; this module only names the files in them.
"""

from __future__ import annotations

import os
from pathlib import Path

from oxtail_py.settings import Settings


def claude_settings_file(settings: Settings) -> Path:
    """Where Claude Code reads hooks from."""
    return settings.claude_config_dir / "settings.json"


def claude_commands_dir(settings: Settings) -> Path:
    return settings.claude_config_dir / "commands"


def claude_user_config(settings: Settings) -> Path:
    """~/.claude.json: user-scope MCP servers."""
    return settings.claude_json


def codex_config_file(settings: Settings) -> Path:
    return settings.codex_home / "config.toml"


def codex_skills_dir(settings: Settings) -> Path:
    return settings.codex_home / "skills"


# Still read the environment: the transcript readers (transcripts/claude.py, codex.py)
# take `home` for tests and tools and have not yet been converted to take Settings.
def _home(home: Path | None) -> Path:
    return home if home is not None else Path.home()


def claude_config_dir(*, home: Path | None = None) -> Path:
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(env).expanduser() if env else _home(home) / ".claude"


def codex_home(*, home: Path | None = None) -> Path:
    env = os.environ.get("CODEX_HOME")
    return Path(env).expanduser() if env else _home(home) / ".codex"
