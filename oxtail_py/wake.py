"""Wake a peer: put one short line into its client telling it to read its inbox.

An asked peer that sits idle at its prompt never looks at its mail, and ask_peer then
only ever times out. A wake submits WAKE_LINE as a new prompt, by the surest path the
peer's client has:

  Codex        `codex queue --thread <thread id> --message LINE`: no pane needed, idle or
               busy (busy: it runs as the next turn). Fallback: tmux bracketed paste, then
               Enter (typed text followed at once by Enter is a "paste burst" in Codex's
               composer: the Enter becomes a newline and nothing is submitted).
  Claude Code  tmux bracketed paste then Enter (one tmux command); the retry is
               `send-keys -l LINE`, then Enter as a separate command (typed text and its
               Enter in one burst is a paste to Claude Code too once the line is longer
               than ~70 characters: no submit).

Trust. Nothing that is executed or typed into comes from a registry file (peers write
their own entries). The codex executable is the codex process above the peer's server in
the live process tree (psutil); the thread id must be the peer's session id, UUID-shaped,
with a rollout on disk; the pane is the one the live tree proves hosts the server
(procs.proven_pane), and never through a Codex app-server daemon: the daemon serves every
TUI of one CODEX_HOME, so the pane above it is only the first TUI's. Text reaches tmux
only as a literal, to a validated pane id.

Gates, in this order: strategy off (OXTAIL_WAKE_STRATEGY, or the call) → `disabled`; the
peer's hooks say it is mid-turn (status marker, fresh), or it waits in ask_peer for the
very reply being sent → `skipped_busy` (it gets the mail without a wake); no usable path
→ `skipped_no_target`; this peer was woken lately for a message it has still not read →
`skipped_debounced`; its composer holds unsent text (a human typing; re-checked for a
moment) → `skipped_composer_busy`. After firing, proof that the prompt was submitted (its
busy marker is stamped, or the line shows up in its transcript or prompt history) →
`confirmed`; none within a short window → one retry by the alternate path, then
`confirmed` or `fired_unconfirmed`. The retry never adds a second copy: not while the line
sits unsent in the composer (it gets an Enter instead), is on the screen (queued), or a
Codex turn is running (a queued line runs after it, a pasted one is steered into it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import psutil

from oxtail_py import tmux, transcripts
from oxtail_py.discovery import Row
from oxtail_py.errors import LockTimeoutError, OxtailError
from oxtail_py.fsio import atomic_write_json, ensure_tree, load_json
from oxtail_py.identity import CLAUDE, CODEX, detect_client
from oxtail_py.layout import SESSION_ID_RE, Layout, WakePaths
from oxtail_py.locks import DirLock
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import MESSAGE_ID_RE
from oxtail_py.procs import proven_pane, self_identity
from oxtail_py.status import read_status

log = logging.getLogger("oxtail_py")

# -- the contract --------------------------------------------------------------------------

# The one line a wake submits. ASCII only: it is typed into terminals whatever their locale.
WAKE_LINE: Final = "oxtail: you have a message from {sender} - call read_my_messages ({about})"
ABOUT_ASK: Final = "it asks: reply with send_message reply_to={request_id}"
ABOUT_NOTE: Final = "message {message_id}"

CONFIRMED: Final = "confirmed"
FIRED_UNCONFIRMED: Final = "fired_unconfirmed"
SKIPPED_BUSY: Final = "skipped_busy"
SKIPPED_DEBOUNCED: Final = "skipped_debounced"
SKIPPED_NO_TARGET: Final = "skipped_no_target"
SKIPPED_COMPOSER_BUSY: Final = "skipped_composer_busy"
DISABLED: Final = "disabled"

STRATEGY_ENV: Final = "OXTAIL_WAKE_STRATEGY"
AUTO: Final = "auto"
TMUX: Final = "tmux"
OFF: Final = "off"
STRATEGIES: Final = (AUTO, TMUX, OFF)

# Ways to deliver the line (WakeReport.attempts names them).
QUEUE: Final = "codex-queue"
KEYS: Final = "tmux-keys"
PASTE: Final = "tmux-paste"
NUDGE: Final = "tmux-enter"  # the line sits unsent in the composer: press Enter

# -- timing --------------------------------------------------------------------------------

# A second wake for a peer that has not yet read what the first one announced is noise,
# for this long; after it, the first wake evidently did not work and another may.
DEBOUNCE_S: Final = 30.0
# How long a composer holding text is given to empty (a human finishing a line).
COMPOSER_WAIT_S: Final = 2.0
# Proof windows. Keystrokes show up in the transcript within ~0.1-0.5 s. `codex queue` is
# taken up at once by the app-server daemon but only after 3-9 s by a TUI without one.
CONFIRM_S: Final = {KEYS: 4.0, PASTE: 4.0, NUDGE: 3.0, QUEUE: 4.0}
CONFIRM_QUEUE_NO_DAEMON_S: Final = 12.0
CONFIRM_ENV: Final = "OXTAIL_WAKE_CONFIRM_MS"  # one window for every path (tests)
QUEUE_TIMEOUT_S: Final = 10.0
LOCK_TIMEOUT_S: Final = 5.0
_POLL_S: Final = 0.1
_TRANSCRIPT_READ_MAX: Final = 4 << 20

# The prompt glyphs of the clients' input lines: Claude Code's U+276F and Codex's U+203A.
PROMPT_GLYPHS: Final = ("\u276f", "\u203a")


@dataclass
class Watch:
    """How a caller ends a wake's waiting (for an empty composer, for proof): `finish`.
    An ask that got its answer finishes with answered=True, which counts as proof."""

    stop: threading.Event = field(default_factory=threading.Event)
    answered: bool = False

    def finish(self, *, answered: bool) -> None:
        self.answered = answered
        self.stop.set()


@dataclass
class WakeReport:
    status: str
    attempts: list[str] = field(default_factory=list)  # paths fired, in order
    detail: str = ""


def wake_line(sender: str, message_id: str, request_id: str | None = None) -> str:
    """The line for one message; it names the message, so each wake's line is unique."""
    # No `@`, `/`, `!`, `#`: the clients' composers open pickers and modes on those.
    safe = re.sub(r"[^A-Za-z0-9._-]", "", sender)[:64] or "a peer"
    about = (
        ABOUT_ASK.format(request_id=request_id)
        if request_id
        else ABOUT_NOTE.format(message_id=message_id)
    )
    return WAKE_LINE.format(sender=safe, about=about)


def strategy_from_env(environ: Mapping[str, str] | None = None) -> str:
    raw = (environ if environ is not None else os.environ).get(STRATEGY_ENV, "").strip().lower()
    if raw in STRATEGIES:
        return raw
    if raw:
        log.warning("%s=%r is not one of %s; using auto", STRATEGY_ENV, raw, STRATEGIES)
    return AUTO


# -- what the peer's hooks and mailbox say ---------------------------------------------------


def _reply_awaited(layout: Layout, key: str, request_id: str) -> bool:
    """A live ask_peer of the peer waits for exactly this reply (it gets it without a wake)."""
    box = Mailbox.existing(layout, key)
    return box is not None and box.awaits(request_id)


def _still_unread(layout: Layout, key: str, message_id: str) -> bool:
    box = Mailbox.existing(layout, key)
    return box is not None and box.holds(message_id)


def _debounced(layout: Layout, paths: WakePaths, key: str, now: float) -> bool:
    try:
        last = load_json(paths.last)
    except (OSError, OxtailError, ValueError):
        return False
    at, message_id = (last.get("at"), last.get("message_id")) if isinstance(last, dict) else (0, 0)
    if not isinstance(at, int | float) or not isinstance(message_id, str):
        return False
    if not MESSAGE_ID_RE.fullmatch(message_id) or not (at - 5 <= now < at + DEBOUNCE_S):
        return False
    return _still_unread(layout, key, message_id)


# -- the peer, as the live process tree shows it ---------------------------------------------


@dataclass(frozen=True)
class Peer:
    session_id: str | None
    client_type: str | None  # from the live tree, not the registry
    home: Path | None  # the client's HOME (its live environment)
    codex_home: str | None
    config_dir: str | None  # where the client keeps its state (history.jsonl)
    cwd: str | None
    pane: str | None  # proven by the live tree, shape-checked
    codex_exe: str | None  # the codex binary running above the server
    daemon: bool  # the server hangs off a shared Codex app-server daemon


def inspect_peer(row: Row) -> Peer | None:
    """What the live process tree says about the agent of `row`; None if its server is gone."""
    entry = row.entry
    if entry is None or not entry.identity.is_alive():
        return None
    client = detect_client(entry.server_pid)
    environ: dict[str, str] = {}
    cwd = exe = None
    daemon = False
    if client is not None:
        try:
            proc = psutil.Process(client.pid)
            if client.start is not None and f"{proc.create_time():.2f}" != client.start:
                raise psutil.NoSuchProcess(client.pid)
            daemon = client.type == CODEX and "app-server" in proc.cmdline()
            environ = proc.environ()
            cwd = proc.cwd()
            exe = proc.exe() if client.type == CODEX else None
        except (psutil.Error, OSError):
            client = None
    pane = None
    if not daemon:
        try:
            panes = tmux.list_panes()
        except tmux.TmuxError:
            panes = []
        found = proven_pane(entry.server_pid, {p.pane_pid: p.pane_id for p in panes})
        pane = found if found and tmux.PANE_ID_RE.fullmatch(found) else None
    home = environ.get("HOME")
    home_path = Path(home) if home and os.path.isabs(home) else None
    codex_home = environ.get("CODEX_HOME") or None
    config_dir = None
    if client is not None and client.type == CODEX:
        config_dir = codex_home or (str(home_path / ".codex") if home_path else None)
    elif client is not None and client.type == CLAUDE:
        claude_dir = environ.get("CLAUDE_CONFIG_DIR")
        config_dir = claude_dir or (str(home_path / ".claude") if home_path else None)
    return Peer(
        session_id=row.client_session_id,
        client_type=client.type if client else None,
        home=home_path,
        codex_home=codex_home,
        config_dir=config_dir,
        cwd=cwd,
        pane=pane,
        codex_exe=exe,
        daemon=daemon,
    )


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _queue_usable(peer: Peer) -> str:
    """'' when `codex queue` can reach the peer's thread, else why not."""
    if peer.client_type != CODEX:
        return "not a Codex peer"
    exe = peer.codex_exe
    if not exe or not os.path.isabs(exe) or not os.path.basename(exe).startswith("codex"):
        return f"no codex executable above its server ({exe})"
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        return f"codex executable {exe} is not runnable"
    if not peer.session_id or not _is_uuid(peer.session_id):
        return f"session id {peer.session_id!r} is not a Codex thread id"
    if peer.home is None:
        return "the codex process's HOME is unknown"
    if _transcript(peer) is None:
        return f"no rollout for thread {peer.session_id}"
    return ""


def _history(peer: Peer) -> Path | None:
    """The client's prompt history (Claude: ~/.claude, Codex: $CODEX_HOME or ~/.codex)."""
    if peer.config_dir is None:
        return None
    path = Path(peer.config_dir) / "history.jsonl"
    return path if path.is_absolute() else None


def _transcript(peer: Peer) -> Path | None:
    if peer.client_type not in (CLAUDE, CODEX) or not peer.session_id:
        return None
    try:
        return transcripts.locate_transcript(peer.client_type, peer.session_id, home=peer.home)
    except (OSError, ValueError):
        return None


# -- the composer ------------------------------------------------------------------------------

_ESCAPE: Final = re.compile(r"\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.?")


def _sgr_dim(params: str, dim: bool) -> bool:
    """The dim attribute after an SGR sequence with `params` (colour arguments skipped)."""
    codes = [int(c) if c.isdigit() else 0 for c in re.split("[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in (38, 48, 58):  # 38;5;N or 38;2;R;G;B
            i += 3 if i + 1 < len(codes) and codes[i + 1] == 5 else 5
            continue
        if code in (0, 22):
            dim = False
        elif code == 2:
            dim = True
        i += 1
    return dim


def _undimmed_lines(screen: str) -> list[str]:
    """Each line of a styled screen without the characters drawn dim (placeholders are).
    The style runs on across lines: tmux -e writes only changes from the previous cell."""
    lines: list[str] = []
    dim = False
    for line in screen.split("\n"):
        out: list[str] = []
        pos = 0
        for match in _ESCAPE.finditer(line):
            if not dim:
                out.append(line[pos : match.start()])
            pos = match.end()
            if match.group(2) == "m":
                dim = _sgr_dim(match.group(1), dim)
        if not dim:
            out.append(line[pos:])
        lines.append("".join(out))
    return lines


def composer_text(screen: str) -> str | None:
    """What is typed into the client's input line ("" when empty, its dim placeholder
    ignored), or None when no input line is on the screen (a dialog, another program).

    `screen` is `capture-pane -e` output. The input line is the lowest line starting with
    a prompt glyph: history above it repeats the glyph, and a selection dialog's cursor
    uses it too (then the "text" is an option, and nobody may type into it).
    """
    raws = screen.split("\n")
    visible_lines = _undimmed_lines(screen)
    for index in range(len(raws) - 1, -1, -1):
        plain = _ESCAPE.sub("", raws[index]).lstrip(" \u2502")
        if not plain.startswith(PROMPT_GLYPHS):
            continue
        visible = visible_lines[index]
        cut = max(visible.find(g) for g in PROMPT_GLYPHS)
        text = visible[cut + 1 :] if cut >= 0 else visible
        return text.replace("\xa0", " ").strip()
    return None


def _wait_composer_empty(pane: str, stop: threading.Event) -> bool:
    deadline = time.monotonic() + COMPOSER_WAIT_S
    while True:
        if composer_text(tmux.capture_screen(pane, styles=True)) == "":
            return True
        if time.monotonic() >= deadline or stop.wait(0.25):
            return False


# -- proof of submission --------------------------------------------------------------------


class _Proof:
    """Watches for proof that the line was submitted: a busy marker written after firing,
    or the line in what the peer's transcript or prompt history got after firing (the
    history has a prompt the moment it is submitted, also one steered into a running
    Codex turn, which the rollout shows only at the next model call)."""

    def __init__(self, layout: Layout, peer: Peer, line: str) -> None:
        self.layout = layout
        self.peer = peer
        self.needle = json.dumps(line)[1:-1].encode()
        self.fired_at = 0.0
        self.files: dict[str, Path | None] = {}
        self.offsets: dict[str, int] = {}

    def arm(self) -> None:
        """Take the baseline; call right before firing."""
        self.fired_at = time.time()
        self.files = {"transcript": _transcript(self.peer), "history": _history(self.peer)}
        self.offsets = {name: _size(path) for name, path in self.files.items()}

    def seen(self) -> bool:
        sid = self.peer.session_id
        marker = read_status(self.layout, sid) if sid else None
        if marker and marker.state == "busy" and (marker.mtime or 0) >= self.fired_at - 0.5:
            return True
        if self.files.get("transcript") is None:  # born with the first prompt
            self.files["transcript"] = _transcript(self.peer)
        return any(self._grew_with_needle(name) for name in self.files)

    def _grew_with_needle(self, name: str) -> bool:
        path = self.files.get(name)
        if path is None:
            return False
        offset = self.offsets.get(name, 0)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return False
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return False
            fh.seek(offset if st.st_size >= offset else 0)
            return self.needle in fh.read(_TRANSCRIPT_READ_MAX)

    def wait(self, seconds: float, watch: Watch) -> bool:
        """True on proof within `seconds`; the caller's answer counts as proof, and the
        caller giving up ends the wait."""
        deadline = time.monotonic() + seconds
        while True:
            if watch.answered or self.seen():
                return True
            if watch.stop.is_set() or time.monotonic() >= deadline:
                return False
            watch.stop.wait(_POLL_S)


def _size(path: Path | None) -> int:
    try:
        return os.stat(path).st_size if path is not None else 0
    except OSError:
        return 0


def codex_turn_open(path: Path | None) -> bool:
    """The rollout's last turn has started and not ended (a queued line runs after it)."""
    if path is None:
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - (256 << 10)))
            tail = fh.read()
    except OSError:
        return False
    last = None
    for raw in tail.splitlines():
        if b"event_msg" not in raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        payload = record.get("payload") if isinstance(record, dict) else None
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind in ("task_started", "task_complete", "turn_aborted"):
            last = kind
    return last == "task_started"


# -- firing -----------------------------------------------------------------------------------


def _confirm_window(method: str, peer: Peer) -> float:
    raw = os.environ.get(CONFIRM_ENV, "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw) / 1000
    if method == QUEUE and not peer.daemon:
        return CONFIRM_QUEUE_NO_DAEMON_S
    return CONFIRM_S[method]


def _codex_queue(peer: Peer, line: str) -> str:
    """Run `codex queue`; '' on success, else why it failed."""
    assert peer.codex_exe and peer.session_id and peer.home
    env = {"HOME": str(peer.home), "PATH": os.environ.get("PATH", os.defpath)}
    if peer.codex_home:
        env["CODEX_HOME"] = peer.codex_home
    for key in ("LANG", "LC_ALL"):
        if key in os.environ:
            env[key] = os.environ[key]
    cwd = peer.cwd if peer.cwd and os.path.isdir(peer.cwd) else "/"
    argv = [peer.codex_exe, "queue", "--thread", peer.session_id, "--message", line]
    try:
        done = subprocess.run(
            argv,
            env=env,
            cwd=cwd,
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


def _fire(method: str, peer: Peer, line: str) -> str:
    """Deliver `line` one way; '' on success, else why it failed."""
    if method == QUEUE:
        return _codex_queue(peer, line)
    assert peer.pane is not None
    try:
        if method == KEYS:
            tmux.type_then_enter(peer.pane, line)
        elif method == PASTE:
            tmux.paste_and_enter(peer.pane, line)
        else:
            tmux.send_enter(peer.pane)
    except tmux.TmuxError as exc:
        return str(exc)
    return ""


def _plan(peer: Peer, strategy: str) -> tuple[list[str], str]:
    """The paths to try in order (the second is the alternate), and notes on the others."""
    methods: list[str] = []
    notes: list[str] = []
    if strategy == AUTO and peer.client_type == CODEX:
        why = _queue_usable(peer)
        if why:
            notes.append(f"codex queue unusable: {why}")
        else:
            methods.append(QUEUE)
    if peer.client_type is None:
        notes.append("no Claude Code or Codex process above its server: nothing to type into")
    elif peer.pane is None:
        notes.append(
            "no pane: its server runs under a shared Codex app-server daemon"
            if peer.daemon
            else "no tmux pane is proven (by the live process tree) to host its server"
        )
    elif peer.client_type == CODEX:
        methods += [PASTE, PASTE]  # plain keys + Enter does not submit in Codex
    else:
        methods += [PASTE, KEYS]
    return methods[:2], "; ".join(notes)


def wake_peer(
    layout: Layout,
    row: Row,
    *,
    sender: str,
    message_id: str,
    request_id: str | None = None,
    reply_to: str | None = None,
    strategy: str | None = None,
    watch: Watch | None = None,
) -> WakeReport:
    """Wake the agent of `row` for the message `message_id` (blocking: run it off the
    event loop; `watch` lets the caller end its waiting). Never raises for a peer's
    state: what went wrong is in the report."""
    watch = watch or Watch()
    strategy = strategy or strategy_from_env()
    attempts: list[str] = []
    try:
        return _wake(
            layout, row, sender, message_id, request_id, reply_to, strategy, watch, attempts
        )
    except (OxtailError, OSError, psutil.Error, subprocess.SubprocessError) as exc:
        log.warning("wake of %s failed: %s", row.name, exc)
        status = FIRED_UNCONFIRMED if attempts else SKIPPED_NO_TARGET
        return WakeReport(status, attempts, f"error: {exc}")


def _wake(
    layout: Layout,
    row: Row,
    sender: str,
    message_id: str,
    request_id: str | None,
    reply_to: str | None,
    strategy: str,
    watch: Watch,
    attempts: list[str],
) -> WakeReport:
    if strategy == OFF:
        return WakeReport(DISABLED, detail=f"wake is off ({STRATEGY_ENV} or the call)")
    if row.kind != "agent" or row.entry is None:
        return WakeReport(SKIPPED_NO_TARGET, detail="not an agent")
    sid = row.client_session_id
    if sid is not None and not SESSION_ID_RE.fullmatch(sid):
        return WakeReport(SKIPPED_NO_TARGET, detail=f"malformed session id {sid!r}")
    if sid and read_status(layout, sid).busy:
        return WakeReport(SKIPPED_BUSY, detail="its hooks say it is mid-turn; they deliver")
    if reply_to and _reply_awaited(layout, row.mailbox_key, reply_to):
        return WakeReport(SKIPPED_BUSY, detail="it is waiting in ask_peer for this reply")
    peer = inspect_peer(row)
    if peer is None:
        return WakeReport(SKIPPED_NO_TARGET, detail="its server is gone")
    plan, notes = _plan(peer, strategy)
    if not plan:
        return WakeReport(SKIPPED_NO_TARGET, detail=notes)
    line = wake_line(sender, message_id, request_id)
    proof = _Proof(layout, peer, line)
    report = WakeReport(FIRED_UNCONFIRMED, attempts, notes)
    paths = layout.wake_state(row.mailbox_key)
    ensure_tree(layout.root, paths.directory)
    try:
        with DirLock(paths.lock, LOCK_TIMEOUT_S):
            if _debounced(layout, paths, row.mailbox_key, time.time()):
                return WakeReport(SKIPPED_DEBOUNCED, detail="woken lately; not read yet")
            fired = _first_shot(plan, peer, line, proof, report, watch)
            if fired is None:
                return report
            atomic_write_json(
                paths.last,
                {"at": time.time(), "message_id": message_id, "by": self_identity().pid,
                 "method": fired},
            )  # fmt: skip
    except LockTimeoutError:
        return WakeReport(SKIPPED_DEBOUNCED, detail="another wake of this peer is under way")
    report.status = _confirm(plan, fired, peer, line, proof, report, watch)
    log.info("wake %s: %s via %s %s", sid, report.status, report.attempts, report.detail)
    return report


def _first_shot(
    plan: list[str],
    peer: Peer,
    line: str,
    proof: _Proof,
    report: WakeReport,
    watch: Watch,
) -> str | None:
    """Fire the first path that works; the method fired, or None with report.status set."""
    report.status = SKIPPED_NO_TARGET
    for method in dict.fromkeys(plan):  # a failed path is not tried twice in a row
        if watch.answered:
            report.status = SKIPPED_BUSY
            report.detail = "answered before the wake fired"
            return None
        if method != QUEUE and not _wait_composer_empty(_pane(peer), watch.stop):
            report.status = SKIPPED_COMPOSER_BUSY
            report.detail = _join(report.detail, "its input line is not empty (someone typing?)")
            return None
        proof.arm()
        failure = _fire(method, peer, line)
        report.attempts.append(method)
        if not failure:
            return method
        report.detail = _join(report.detail, f"{method} failed: {failure}")
    return None


def _confirm(
    plan: list[str],
    fired: str,
    peer: Peer,
    line: str,
    proof: _Proof,
    report: WakeReport,
    watch: Watch,
) -> str:
    if proof.wait(_confirm_window(fired, peer), watch):
        return CONFIRMED
    if watch.stop.is_set():  # the asker stopped waiting: no retry
        return FIRED_UNCONFIRMED
    # One retry. Never a second copy of a line the client already holds: Codex runs a
    # queued line after its running turn, and steers a pasted one into it (the rollout
    # shows either only when the model is next called).
    if peer.client_type == CODEX and codex_turn_open(_transcript(peer)):
        report.detail = _join(report.detail, "its turn is running: the line goes in or after it")
        return FIRED_UNCONFIRMED
    if fired != QUEUE and peer.pane is not None:
        try:
            typed = composer_text(tmux.capture_screen(peer.pane, styles=True))
            shown = tmux.capture_screen(peer.pane)
        except tmux.TmuxError:
            return FIRED_UNCONFIRMED
        if typed and _holds(typed, line):
            return _retry(NUDGE, peer, line, proof, report, watch)  # the Enter did not take
        if _flat(line) in _flat(shown):
            report.detail = _join(report.detail, "the line is on its screen (queued?)")
            return FIRED_UNCONFIRMED
    later = plan[plan.index(fired) + 1 :]
    if not later:
        return FIRED_UNCONFIRMED
    if later[0] != QUEUE and not _wait_composer_empty(_pane(peer), watch.stop):
        report.detail = _join(report.detail, "retry skipped: its input line is not empty")
        return FIRED_UNCONFIRMED
    return _retry(later[0], peer, line, proof, report, watch)


def _retry(
    method: str,
    peer: Peer,
    line: str,
    proof: _Proof,
    report: WakeReport,
    watch: Watch,
) -> str:
    failure = _fire(method, peer, line)
    report.attempts.append(method)
    if failure:
        report.detail = _join(report.detail, f"retry {method} failed: {failure}")
        return FIRED_UNCONFIRMED
    return CONFIRMED if proof.wait(_confirm_window(method, peer), watch) else FIRED_UNCONFIRMED


def _pane(peer: Peer) -> str:
    assert peer.pane is not None
    return peer.pane


def _holds(typed: str, line: str) -> bool:
    """The composer's first line is (the start of) our line: it was typed, not sent."""
    return len(typed) >= 8 and line.startswith(typed[:60])


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
