"""Every setting oxtail reads from the environment, read once and passed in.

Entry points (serve, the CLI, the hook helper) call `Settings.from_env()` and
hand the result down; no other module reads os.environ for configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from oxtail_py.hook_args import RESERVATION_MODES, reservations_mode

DEFAULT_ASK_TIMEOUT_MS: Final = 60_000
DEFAULT_ASK_MAX_TIMEOUT_MS: Final = 600_000
WAKE_STRATEGIES: Final = ("auto", "tmux", "off")
DEFAULT_SPAWN_MAX_DEPTH: Final = 2
DEFAULT_SPAWN_MAX_LIVE: Final = 8
DEFAULT_SPAWN_TIMEOUT_MS: Final = 90_000
DEFAULT_BROADCAST_CAP: Final = 16
DEFAULT_HEAL_IDLE_S: Final = 30
DEFAULT_HEAL_MAX_WAKES: Final = 3
DEFAULT_DELEGATE_SILENT_S: Final = 600


def expand_home(raw: str, home: str) -> Path:
    """`~` and `~/x` become paths under `home`, as the POSIX shell expands them; the
    rendered hook applies the same rule, so Python and the shell agree on the root."""
    if raw == "~":
        return Path(home)
    if raw.startswith("~/"):
        return Path(home) / raw[2:]
    return Path(raw)


def _positive_ms(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else default


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    """A count that may be 0 (off); anything but digits keeps the default."""
    raw = environ.get(name, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else default


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path  # the user's home ($HOME)
    root: Path  # AGENTMAIL_HOME, default ~/.agentmail: the state root
    claude_config_dir: Path  # CLAUDE_CONFIG_DIR, default ~/.claude
    claude_json: Path  # <CLAUDE_CONFIG_DIR>/.claude.json, default ~/.claude.json
    codex_home: Path  # CODEX_HOME, default ~/.codex
    tmux_socket: str | None  # OXTAIL_TMUX_SOCKET: talk to this tmux server (tests)
    claude_session_id: str | None  # CLAUDE_CODE_SESSION_ID as given to this process
    ask_timeout_ms: int  # OXTAIL_ASK_PEER_TIMEOUT_MS
    ask_max_timeout_ms: int  # OXTAIL_ASK_PEER_MAX_TIMEOUT_MS
    wake_strategy: str  # OXTAIL_WAKE_STRATEGY: auto | tmux | off
    wake_confirm_ms: int | None  # OXTAIL_WAKE_CONFIRM_MS: one proof window (tests)
    # OXTAIL_RESERVATIONS: enforce (deny edits under another agent's exclusive
    # reservation) | advisory (warn only) | off (the hooks do not look)
    reservations_mode: str = "enforce"
    # OXTAIL_BROADCAST_CAP: the most agents one send_message to a group reaches
    broadcast_cap: int = DEFAULT_BROADCAST_CAP
    # OXTAIL_HEAL_IDLE_S: our idle agent with mail unread this long is woken (selfheal)
    heal_idle_s: int = DEFAULT_HEAL_IDLE_S
    # OXTAIL_HEAL_MAX_WAKES: self-healing wakes per message, 0 turns them off
    heal_max_wakes: int = DEFAULT_HEAL_MAX_WAKES
    # OXTAIL_DELEGATE_SILENT_S: a delegate silent on open work this long is re-poked
    delegate_silent_s: int = DEFAULT_DELEGATE_SILENT_S
    problems: tuple[str, ...] = ()  # values that were ignored, and why
    spawn_max_depth: int = DEFAULT_SPAWN_MAX_DEPTH  # OXTAIL_SPAWN_MAX_DEPTH
    spawn_max_live: int = DEFAULT_SPAWN_MAX_LIVE  # OXTAIL_SPAWN_MAX_LIVE (per project)
    spawn_timeout_ms: int = DEFAULT_SPAWN_TIMEOUT_MS  # OXTAIL_SPAWN_TIMEOUT_MS
    # CODEX_HOME was set: Codex then names its files by the resolved path (trust keys)
    codex_home_from_env: bool = False
    # OXTAIL_EVENT_LOG_BODIES=1: the event log keeps a short preview of each body sent
    # (eventlog.py); by default it holds metadata only.
    event_log_bodies: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = env.get("HOME") or str(Path.home())
        problems: list[str] = []

        def path_of(name: str, default: Path) -> Path:
            raw = env.get(name, "")
            return expand_home(raw, home).absolute() if raw else default

        claude_dir_raw = env.get("CLAUDE_CONFIG_DIR", "")
        claude_dir = path_of("CLAUDE_CONFIG_DIR", Path(home) / ".claude")
        claude_json = claude_dir / ".claude.json" if claude_dir_raw else Path(home) / ".claude.json"
        strategy = env.get("OXTAIL_WAKE_STRATEGY", "").strip().lower() or "auto"
        if strategy not in WAKE_STRATEGIES:
            problems.append(
                f"OXTAIL_WAKE_STRATEGY={strategy!r} is not one of {WAKE_STRATEGIES}; using auto"
            )
            strategy = "auto"
        reservations, known = reservations_mode(env.get("OXTAIL_RESERVATIONS"))
        if not known:
            raw_mode = env.get("OXTAIL_RESERVATIONS", "").strip().lower()
            problems.append(f"OXTAIL_RESERVATIONS={raw_mode!r} is not one of "
                            f"{RESERVATION_MODES}; using enforce")
        return cls(
            home=Path(home),
            root=path_of("AGENTMAIL_HOME", Path(home) / ".agentmail"),
            claude_config_dir=claude_dir,
            claude_json=claude_json,
            codex_home=path_of("CODEX_HOME", Path(home) / ".codex"),
            tmux_socket=env.get("OXTAIL_TMUX_SOCKET") or None,
            claude_session_id=env.get("CLAUDE_CODE_SESSION_ID", "").strip() or None,
            ask_timeout_ms=_positive_ms(env, "OXTAIL_ASK_PEER_TIMEOUT_MS", DEFAULT_ASK_TIMEOUT_MS),
            ask_max_timeout_ms=_positive_ms(
                env, "OXTAIL_ASK_PEER_MAX_TIMEOUT_MS", DEFAULT_ASK_MAX_TIMEOUT_MS
            ),
            wake_strategy=strategy,
            wake_confirm_ms=_positive_ms(env, "OXTAIL_WAKE_CONFIRM_MS", 0) or None,
            reservations_mode=reservations,
            broadcast_cap=_positive_ms(env, "OXTAIL_BROADCAST_CAP", DEFAULT_BROADCAST_CAP),
            heal_idle_s=_positive_ms(env, "OXTAIL_HEAL_IDLE_S", DEFAULT_HEAL_IDLE_S),
            heal_max_wakes=_count(env, "OXTAIL_HEAL_MAX_WAKES", DEFAULT_HEAL_MAX_WAKES),
            delegate_silent_s=_positive_ms(
                env, "OXTAIL_DELEGATE_SILENT_S", DEFAULT_DELEGATE_SILENT_S
            ),
            problems=tuple(problems),
            spawn_max_depth=_positive_ms(env, "OXTAIL_SPAWN_MAX_DEPTH", DEFAULT_SPAWN_MAX_DEPTH),
            spawn_max_live=_positive_ms(env, "OXTAIL_SPAWN_MAX_LIVE", DEFAULT_SPAWN_MAX_LIVE),
            spawn_timeout_ms=_positive_ms(env, "OXTAIL_SPAWN_TIMEOUT_MS", DEFAULT_SPAWN_TIMEOUT_MS),
            codex_home_from_env=bool(env.get("CODEX_HOME", "")),
            event_log_bodies=env.get("OXTAIL_EVENT_LOG_BODIES", "").strip() == "1",
        )
