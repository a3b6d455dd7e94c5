"""The ways a line reaches a client: `codex queue`, a tmux bracketed paste, typed keys.

Codex        `codex queue --thread <thread id> --message LINE`: no pane needed, idle or
             busy (busy: it runs as the next turn). Fallback: tmux bracketed paste, then
             Enter (typed text followed at once by Enter is a "paste burst" in Codex's
             composer: the Enter becomes a newline and nothing is submitted).
Claude Code  tmux bracketed paste then Enter (one tmux command); the retry is
             `send-keys -l LINE`, then Enter as a separate command (typed text and its
             Enter in one burst is a paste to Claude Code too once the line is longer
             than ~70 characters: no submit).

The codex executable run is the verified one above the peer's server (peer.py), never a
name from a file; the thread id must be UUID-shaped with a rollout on disk. Text reaches
tmux only as a literal, to a validated pane id (tmux.py).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from typing import Final

from oxtail_py import tmux
from oxtail_py.identity import CODEX
from oxtail_py.wake.contract import Method, WakeSettings
from oxtail_py.wake.peer import Peer
from oxtail_py.wake.proof import transcript_of
from oxtail_py.wake.screen import composer_text

# How long a composer holding text is given to empty (a human finishing a line).
COMPOSER_WAIT_S: Final = 2.0
# Proof windows. Keystrokes show up in the transcript within ~0.1-0.5 s. `codex queue` is
# taken up at once by the app-server daemon but only after 3-9 s by a TUI without one.
CONFIRM_S: Final = {Method.KEYS: 4.0, Method.PASTE: 4.0, Method.NUDGE: 3.0, Method.QUEUE: 4.0}
CONFIRM_QUEUE_NO_DAEMON_S: Final = 12.0
QUEUE_TIMEOUT_S: Final = 10.0


def confirm_window(method: Method, peer: Peer, settings: WakeSettings) -> float:
    if settings.confirm_ms is not None:
        return settings.confirm_ms / 1000
    if method == Method.QUEUE and not peer.daemon:
        return CONFIRM_QUEUE_NO_DAEMON_S
    return CONFIRM_S[method]


def queue_unusable(peer: Peer) -> str:
    """'' when `codex queue` can reach the peer's thread, else why not."""
    if peer.client_type != CODEX:
        return "not a Codex peer"
    exe = peer.codex_exe
    if not exe or not os.path.basename(exe).startswith("codex"):
        return f"its codex client runs as a script ({exe}), not the codex binary"
    if not peer.session_id or not _is_uuid(peer.session_id):
        return f"session id {peer.session_id!r} is not a Codex thread id"
    if peer.home is None:
        return "the codex process's HOME is unknown"
    if transcript_of(peer) is None:
        return f"no rollout for thread {peer.session_id}"
    return ""


def composer_empty_soon(pane: str, stop: threading.Event) -> bool:
    """The pane's input line is empty now or within COMPOSER_WAIT_S (re-checked)."""
    deadline = time.monotonic() + COMPOSER_WAIT_S
    while True:
        if composer_text(tmux.capture_screen(pane, styles=True)) == "":
            return True
        if time.monotonic() >= deadline or stop.wait(0.25):
            return False


def fire(method: Method, peer: Peer, line: str) -> str:
    """Deliver `line` one way; '' on success, else why it failed."""
    if method == Method.QUEUE:
        return _codex_queue(peer, line)
    if peer.pane is None:
        return "no pane"
    try:
        if method == Method.KEYS:
            tmux.type_then_enter(peer.pane, line)
        elif method == Method.PASTE:
            tmux.paste_and_enter(peer.pane, line)
        else:
            tmux.send_enter(peer.pane)
    except tmux.TmuxError as exc:
        return str(exc)
    return ""


def _codex_queue(peer: Peer, line: str) -> str:
    if not (peer.codex_exe and peer.session_id and peer.home):
        return "no codex binary, thread or HOME"
    # Only what `codex queue` needs (observed: HOME + PATH suffice), passed through from
    # this process's runtime, not configuration.
    env = {"HOME": str(peer.home), "PATH": os.environ.get("PATH", os.defpath)}
    if peer.codex_home:
        env["CODEX_HOME"] = peer.codex_home
    for key in ("LANG", "LC_ALL"):
        if key in os.environ:
            env[key] = os.environ[key]
    argv = [peer.codex_exe, "queue", "--thread", peer.session_id, "--message", line]
    try:
        done = subprocess.run(
            argv,
            env=env,
            cwd=peer.cwd if os.path.isdir(peer.cwd) else "/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=QUEUE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"codex queue: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        return f"codex queue exited {done.returncode}: {err[-1] if err else ''}"
    return ""


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
