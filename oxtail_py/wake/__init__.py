"""Wake a peer: put one short line into its client telling it to read its inbox.

An asked peer that sits idle at its prompt never looks at its mail, and ask_peer then
only ever times out. A wake submits the wake line as a new prompt, by the surest path the
peer's client has (launch.py), after gates (attempt.py), and only into a client the live
system proves is real and in the waker's project (peer.py, client.py). Nothing executed
or typed into comes from a registry file.

  contract.py  the line, WakeStatus, WakeSettings, Watch, WakeReport
  screen.py    what the client's input line holds (pure parsing of capture-pane -e)
  client.py    which process is a real Claude Code / Codex client (by its executable)
  peer.py      inspect_peer: the verified client, its cwd and pane, inside the project
  launch.py    codex queue, tmux paste / keys / Enter; proof windows
  proof.py     proof of submission from the peer's marker, transcript and history
  attempt.py   WakeAttempt (gate, fire, confirm, retry) and wake_peer
"""

from __future__ import annotations

from typing import Final

from oxtail_py.wake.attempt import DEBOUNCE_S, WakeAttempt, wake_peer
from oxtail_py.wake.contract import (
    MAX_LINE_CHARS,
    WAKE_LINE,
    Method,
    WakeLineError,
    WakeReport,
    WakeSettings,
    WakeStatus,
    WakeStrategy,
    Watch,
    wake_line,
)
from oxtail_py.wake.launch import COMPOSER_WAIT_S
from oxtail_py.wake.peer import NoTarget, Peer, inspect_peer
from oxtail_py.wake.screen import composer_text

# The names callers used before the package (server.py, the tests), typed as plain str
# as they were (server.py keeps a list[str] of them).
CONFIRMED: Final[str] = WakeStatus.CONFIRMED
FIRED_UNCONFIRMED: Final[str] = WakeStatus.FIRED_UNCONFIRMED
SKIPPED_BUSY: Final[str] = WakeStatus.SKIPPED_BUSY
SKIPPED_DEBOUNCED: Final[str] = WakeStatus.SKIPPED_DEBOUNCED
SKIPPED_NO_TARGET: Final[str] = WakeStatus.SKIPPED_NO_TARGET
SKIPPED_COMPOSER_BUSY: Final[str] = WakeStatus.SKIPPED_COMPOSER_BUSY
DISABLED: Final[str] = WakeStatus.DISABLED
QUEUE: Final[str] = Method.QUEUE
KEYS: Final[str] = Method.KEYS
PASTE: Final[str] = Method.PASTE
NUDGE: Final[str] = Method.NUDGE

__all__ = [
    "COMPOSER_WAIT_S",
    "CONFIRMED",
    "DEBOUNCE_S",
    "DISABLED",
    "FIRED_UNCONFIRMED",
    "KEYS",
    "MAX_LINE_CHARS",
    "NUDGE",
    "PASTE",
    "QUEUE",
    "SKIPPED_BUSY",
    "SKIPPED_COMPOSER_BUSY",
    "SKIPPED_DEBOUNCED",
    "SKIPPED_NO_TARGET",
    "WAKE_LINE",
    "Method",
    "NoTarget",
    "Peer",
    "WakeAttempt",
    "WakeLineError",
    "WakeReport",
    "WakeSettings",
    "WakeStatus",
    "WakeStrategy",
    "Watch",
    "composer_text",
    "inspect_peer",
    "wake_line",
    "wake_peer",
]
