"""The only module that runs tmux.

Which tmux server: `OXTAIL_TMUX_SOCKET` (a socket path, mainly for tests and
unusual setups), else whatever tmux itself picks ($TMUX inside a pane, else the
default socket). Untrusted text only ever reaches tmux as a literal
(`send-keys -l`, or a paste buffer loaded from stdin), never as key names.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from typing import Final

from oxtail_py.errors import OxtailError
from oxtail_py.settings import Settings

PANE_ID_RE: Final = re.compile(r"%[0-9]{1,9}")
_TIMEOUT_S: Final = 5.0
_FIELDS: Final = (
    "#{pane_id}\t#{pane_pid}\t#{session_name}\t#{window_index}\t#{pane_index}\t"
    "#{pane_current_path}\t#{pane_current_command}"
)


class TmuxError(OxtailError):
    code = "tmux-error"


class TmuxUnavailableError(TmuxError):
    code = "tmux-unavailable"


@dataclass(frozen=True, slots=True)
class Pane:
    pane_id: str
    pane_pid: int
    session: str
    window: int
    index: int
    cwd: str
    command: str

    @property
    def target(self) -> str:
        return f"{self.session}:{self.window}.{self.index}"


def validate_pane_id(pane_id: str) -> str:
    if not PANE_ID_RE.fullmatch(pane_id):
        raise TmuxError(
            f"malformed tmux pane id {pane_id!r}: expected %<number>", code="bad-pane-id"
        )
    return pane_id


class _Target:
    """Which tmux server to talk to: set once by the entry point (configure)."""

    configured = False
    socket: str | None = None


def configure(settings: Settings) -> None:
    """Talk to the tmux server settings.tmux_socket names (None: the user's default).
    Called once by an entry point (serve); later calls replace the choice."""
    _Target.socket = settings.tmux_socket
    _Target.configured = True


def _socket() -> str | None:
    if _Target.configured:
        return _Target.socket
    # A library caller (a test, a benchmark) that never configured: the environment's
    # choice, read through Settings like every other setting, at each call.
    return Settings.from_env().tmux_socket


def _base_command() -> list[str]:
    exe = shutil.which("tmux")
    if exe is None:
        raise TmuxUnavailableError("tmux is not installed (not on PATH); pane features are off")
    socket = _socket()
    return [exe, "-S", socket] if socket else [exe]


def run(args: list[str], *, stdin: bytes | None = None) -> str:
    try:
        done = subprocess.run(
            [*_base_command(), *args],
            input=stdin,
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TmuxError(f"tmux {args[0]} did not answer within {_TIMEOUT_S:.0f}s") from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        if "no server running" in err or "error connecting" in err:
            raise TmuxUnavailableError(f"no tmux server is running ({err})")
        raise TmuxError(f"tmux {args[0]} failed: {err}")
    return done.stdout.decode(errors="replace")


def list_panes() -> list[Pane]:
    """Every pane of every session on this tmux server; [] when no server runs."""
    try:
        out = run(["list-panes", "-a", "-F", _FIELDS])
    except TmuxUnavailableError:
        return []
    panes = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 7 or not PANE_ID_RE.fullmatch(parts[0]) or not parts[1].isdigit():
            continue
        panes.append(
            Pane(
                parts[0],
                int(parts[1]),
                parts[2],
                int(parts[3] or 0),
                int(parts[4] or 0),
                parts[5],
                parts[6],
            )
        )
    return panes


def capture(pane_id: str, lines: int) -> str:
    """The last `lines` lines of the pane (scrollback included), trailing blanks trimmed."""
    out = run(["capture-pane", "-p", "-J", "-t", validate_pane_id(pane_id), "-S", f"-{lines}"])
    return out.rstrip("\n")


def send_enter(pane_id: str) -> None:
    run(["send-keys", "-t", validate_pane_id(pane_id), "Enter"])


def capture_screen(pane_id: str, *, styles: bool = False) -> str:
    """The pane's visible screen (no scrollback); with `styles`, its SGR escapes too
    (a composer's placeholder is only told from typed text by being drawn dim)."""
    args = ["capture-pane", "-p", *(["-e"] if styles else []), "-t", validate_pane_id(pane_id)]
    return run(args)


def _argv_literal(text: str) -> str:
    """`text` as a command-line argument tmux takes literally: an argument ending in `;`
    ends a command (the `;` is dropped) unless written `\\;`."""
    return text[:-1] + "\\;" if text.endswith(";") else text


def type_then_enter(pane_id: str, text: str) -> None:
    """`send-keys -l TEXT`, then Enter as a second tmux command. Not as one command: the
    Enter then arrives with the text, and Claude Code 2.1.330 takes a line longer than
    ~70 characters followed at once by Enter as a paste (the Enter does not submit)."""
    pane = validate_pane_id(pane_id)
    run(["send-keys", "-t", pane, "-l", "--", _argv_literal(text)])
    run(["send-keys", "-t", pane, "Enter"])


def paste_and_enter(pane_id: str, text: str) -> None:
    """Bracketed paste of `text`, then Enter, in one tmux command: the paste's end marker
    tells the client the Enter is a key, so it submits (Codex and Claude Code both take
    typed text followed at once by Enter as a paste: the Enter does not submit)."""
    pane = validate_pane_id(pane_id)
    buffer = f"oxtail-{os.getpid()}-{secrets.token_hex(4)}"
    run(["load-buffer", "-b", buffer, "-"], stdin=text.encode())
    run(["paste-buffer", "-d", "-p", "-b", buffer, "-t", pane, ";", "send-keys", "-t", pane,
         "Enter"])  # fmt: skip


# -- windows for spawned clients (spawn/launching.py) ---------------------------------

WINDOW_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class Launched:
    pane_id: str
    pane_pid: int
    session: str


def _launched(out: str, session: str) -> Launched:
    parts = out.split()
    if len(parts) != 2 or not PANE_ID_RE.fullmatch(parts[0]) or not parts[1].isdigit():
        raise TmuxError(f"tmux did not report the new pane ({out.strip()!r})")
    return Launched(parts[0], int(parts[1]), session)


def session_names() -> list[str]:
    try:
        return run(["list-sessions", "-F", "#{session_name}"]).splitlines()
    except TmuxUnavailableError:
        return []


def window_names(session: str) -> list[str]:
    return run(["list-windows", "-t", f"={session}", "-F", "#{window_name}"]).splitlines()


def new_window(session: str, name: str, cwd: str, argv: list[str]) -> Launched:
    """A new window in `session` running `argv` (executed directly, no shell), not
    selected: the person's current window stays in front."""
    _check_window_name(name)
    out = run([
        "new-window", "-d", "-P", "-F", "#{pane_id} #{pane_pid}", "-t", f"={session}:",
        "-n", name, "-c", cwd, "--", *argv,
    ])  # fmt: skip
    return _launched(out, session)


def new_session(session: str, name: str, cwd: str, argv: list[str]) -> Launched:
    """A new detached session `session` whose first window `name` runs `argv`."""
    _check_window_name(session)
    _check_window_name(name)
    out = run([
        "new-session", "-d", "-P", "-F", "#{pane_id} #{pane_pid}", "-s", session, "-n", name,
        "-x", "200", "-y", "50", "-c", cwd, "--", *argv,
    ])  # fmt: skip
    return _launched(out, session)


def kill_pane(pane_id: str) -> None:
    run(["kill-pane", "-t", validate_pane_id(pane_id)])


def attach_command(session: str) -> str:
    """What the person types to see a detached session."""
    socket = _socket()
    return f"tmux {'-S ' + socket + ' ' if socket else ''}attach -t {session}"


def _check_window_name(name: str) -> None:
    if not WINDOW_NAME_RE.fullmatch(name):
        raise TmuxError(f"bad tmux window/session name {name!r}", code="bad-name")
