"""Launching a spawned client in tmux, waiting for its server, handing it its first prompt.

The order, which is what lets an ask follow a spawn with no race:
1. the record is written, then the runner starts in a new tmux window (or session);
2. the spawner waits, on file events (registry and spawns directories; never a timer
   loop), until a live registry entry's server runs below that runner with the spawn id
   in its client's environment, and (Claude) knows its session id;
3. the first prompt is pasted into the pane the live tree proves hosts that server, once
   its input line is drawn and empty, and proven submitted (its transcript or prompt
   history shows it), so a later wake line cannot land in the same composer;
4. (Codex) its server would learn the thread id only at its first tool call: the spawner
   reads it from the rollout file the TUI below its runner holds open (the kernel's fd
   table) and hands it to the server as a claim, which the server checks again.
"""

from __future__ import annotations

import os
import re
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from oxtail_py import tmux
from oxtail_py.discovery import Row, list_project
from oxtail_py.errors import OxtailError
from oxtail_py.framing import neutralize
from oxtail_py.fsio import atomic_write_json, ensure_tree, load_json
from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, identity_of, self_identity
from oxtail_py.registry import Registry, SessionEntry
from oxtail_py.spawn.lineage import launched_by
from oxtail_py.spawn.records import SpawnRecord, write_record
from oxtail_py.spawn.runner import loader_argv
from oxtail_py.wake.contract import Watch
from oxtail_py.wake.peer import NoTarget, inspect_peer
from oxtail_py.wake.proof import Proof
from oxtail_py.wake.screen import composer_text, holds_line

# The input line is drawn a moment after the server registers; a screen is read this often
# while waiting for it (a screen has no file event).
_SCREEN_POLL_S: Final = 0.1
_PROOF_S: Final = 8.0
_PANE_TEXT_LINES: Final = 40
_ROLLOUT_WAIT_S: Final = 5.0
_ROLLOUT: Final = re.compile(
    r"rollout-[0-9T:-]+-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl"
)


class SpawnError(OxtailError):
    code = "spawn-failed"


@dataclass
class Launch:
    record: SpawnRecord
    pane_id: str
    session: str
    runner: ProcessIdentity
    detached: bool


def start(
    layout: Layout,
    record: SpawnRecord,
    argv: list[str],
    env: dict[str, str],
    *,
    session: str,
    detached: bool,
) -> Launch:
    """Write the record and the runner's environment file, then start the runner."""
    ensure_tree(layout.root, layout.spawns_dir)
    write_record(layout, record)
    env_file = layout.spawn_env(record.spawn_id)
    atomic_write_json(env_file, {"argv": argv, "env": env})
    runner_argv = loader_argv(env_file)
    try:
        if detached:
            launched = tmux.new_session(session, record.name, record.cwd, runner_argv)
        else:
            launched = tmux.new_window(session, record.name, record.cwd, runner_argv)
    except OxtailError:
        env_file.unlink(missing_ok=True)
        layout.spawn_record(record.spawn_id).unlink(missing_ok=True)
        raise
    runner = identity_of(launched.pane_pid)
    if runner is None:
        raise SpawnError(f"the runner in pane {launched.pane_id} exited at once")
    record.tmux_session, record.pane_id = launched.session, launched.pane_id
    record.runner_pid, record.runner_start = runner.pid, runner.start
    write_record(layout, record)
    return Launch(record, launched.pane_id, launched.session, runner, detached)


class _Changes(FileSystemEventHandler):
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._event.set()


@contextmanager
def _watching(*directories: Path) -> Iterator[threading.Event]:
    """An event set on any change in `directories` (inotify, via watchdog)."""
    changed = threading.Event()
    observer = Observer()
    observer.daemon = True
    for directory in directories:
        observer.schedule(_Changes(changed), str(directory))
    observer.start()
    try:
        yield changed
    finally:
        observer.stop()


def wait_for_server(
    layout: Layout, launch: Launch, deadline: float, *, need_session_id: bool
) -> SessionEntry:
    """The registry entry of the server below `launch`'s runner, once it is there (and,
    with need_session_id, knows its session). A client that exits first is reported
    with its own words from the pane."""
    ensure_tree(layout.root, layout.sessions_dir)
    what = "its server registered" + (" and knew its session id" if need_session_id else "")
    with _watching(layout.sessions_dir, layout.spawns_dir) as changed, _on_exit(
        launch.runner, changed
    ):
        while True:
            changed.clear()  # before looking: a change after the look wakes the wait
            ended = _exit_of(layout, launch)
            if ended is None and not launch.runner.is_alive():
                ended = {"status": "unknown (its window was closed)"}
            if ended is not None:
                raise SpawnError(
                    f"{launch.record.client} exited with status {ended.get('status')} before "
                    f"{what}. Its screen said:\n{_pane_text(launch)}",
                    code="spawn-client-exited",
                )
            entry = find_server(layout, launch)
            if entry is not None and (entry.client.session_id or not need_session_id):
                return entry
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SpawnError(_timeout_text(launch, what, entry), code="spawn-timeout")
            changed.wait(remaining)


@contextmanager
def _on_exit(process: ProcessIdentity, changed: threading.Event) -> Iterator[None]:
    """Set `changed` when `process` exits (a pidfd turns readable: the kernel tells us, no
    polling); e.g. the person closed the window while the client was starting."""
    try:
        fd = os.pidfd_open(process.pid)
    except OSError:
        changed.set()  # already gone: the caller's look finds out
        yield
        return
    stop_r, stop_w = os.pipe()

    def wait() -> None:
        ready, _, _ = select.select([fd, stop_r], [], [])
        if fd in ready:
            changed.set()

    waiter = threading.Thread(target=wait, name="oxtail-spawn-exit", daemon=True)
    waiter.start()
    try:
        yield
    finally:
        os.write(stop_w, b"x")
        waiter.join()
        for end in (fd, stop_r, stop_w):
            os.close(end)


def codex_thread(launch: Launch, deadline: float) -> str | None:
    """The thread id of the Codex TUI below `launch`'s runner, from the rollout file it
    holds open (the kernel's fd table: what the process writes, not what anyone says).
    Codex opens its rollout at the thread's first prompt, which has just been proven
    submitted; the fd table has no file event, so it is read a few times, bounded."""
    until = min(deadline, time.monotonic() + _ROLLOUT_WAIT_S)
    while True:
        found = _open_rollouts(launch.runner)
        if len(found) == 1:
            return found.pop()
        if len(found) > 1 or time.monotonic() >= until:
            return None
        time.sleep(_SCREEN_POLL_S)


def _open_rollouts(runner: ProcessIdentity) -> set[str]:
    try:
        below = psutil.Process(runner.pid).children(recursive=True)
    except psutil.Error:
        return set()
    found: set[str] = set()
    for proc in below:
        try:
            files = proc.open_files()
        except psutil.Error:
            continue
        for file in files:
            match = _ROLLOUT.fullmatch(os.path.basename(file.path))
            if match and os.sep + "sessions" + os.sep in file.path:
                found.add(match.group(1))
    return found


def find_server(layout: Layout, launch: Launch) -> SessionEntry | None:
    for entry in Registry(layout).read_all():
        if launched_by(entry.server_pid, launch.record.spawn_id, launch.runner):
            return entry
    return None


def hand_over(layout: Layout, launch: Launch, entry: SessionEntry, prompt: str,
              deadline: float) -> bool:
    """Paste `prompt` as the client's first turn; True when its files prove it was
    submitted, False when it left the composer without such proof. Raises when it could
    not be handed over at all."""
    row = _row_of(layout, launch, entry)
    peer = inspect_peer(row, Path(launch.record.project_root))
    if isinstance(peer, NoTarget):
        raise SpawnError(f"cannot hand over the first prompt: {peer.reason}")
    if peer.pane != launch.pane_id:
        raise SpawnError(
            f"its server runs in pane {peer.pane}, not in the launched pane {launch.pane_id}"
        )
    pane = launch.pane_id
    while composer_text(tmux.capture_screen(pane, styles=True)) != "":
        if time.monotonic() >= deadline:
            raise SpawnError(
                "the client never showed an empty input line (a dialog?). Its screen:\n"
                + _pane_text(launch),
                code="spawn-timeout",
            )
        time.sleep(_SCREEN_POLL_S)
    text = neutralize(prompt)  # a pasted ESC could end the bracketed paste early
    needle = _needle(text)
    proof = Proof(layout, peer, needle) if needle else None
    if proof is not None:
        proof.arm()
    tmux.paste_and_enter(pane, text)
    if proof is None:  # nothing to look for in its files: the composer must empty
        return _left_composer(pane, text)
    if proof.wait(_PROOF_S, Watch()):
        return True
    typed = composer_text(tmux.capture_screen(pane, styles=True)) or ""
    if holds_line(typed, text.splitlines()[0] if text else ""):
        tmux.send_enter(pane)  # the paste arrived, its Enter did not submit
        if proof.wait(_PROOF_S, Watch()):
            return True
        typed = composer_text(tmux.capture_screen(pane, styles=True)) or ""
    if typed:
        raise SpawnError(f"the first prompt sits unsent in the composer of pane {pane}",
                         code="spawn-prompt-unsent")
    return False


def _needle(text: str) -> str | None:
    """A piece of the prompt its transcript/history holds byte for byte: its first line when
    it is plain ASCII, else its first run of 8+ plain ASCII characters (the proof compares
    JSON-escaped text; the clients write other characters unescaped). None: no such run."""
    first = (text.splitlines() or [""])[0].strip()
    if first and re.fullmatch(r"[ -~]+", first):
        return first[:60]
    runs = [r for r in re.findall(r"[ -~]{8,}", first) if r.strip()]
    return runs[0][:60] if runs else None


def _left_composer(pane: str, text: str) -> bool:
    """False once the composer no longer holds the text (submitted, unproven); raises
    when it still does after the proof window."""
    until = time.monotonic() + _PROOF_S
    while time.monotonic() < until:
        if composer_text(tmux.capture_screen(pane, styles=True)) == "":
            return False
        time.sleep(_SCREEN_POLL_S)
    raise SpawnError(f"the first prompt sits unsent in the composer of pane {pane}",
                     code="spawn-prompt-unsent")


def _row_of(layout: Layout, launch: Launch, entry: SessionEntry) -> Row:
    listing = list_project(
        layout, Path(launch.record.project_root), False, self_identity(), count_unread=False
    )
    for row in listing.rows:
        if row.entry is not None and row.entry.identity == entry.identity:
            return row
    raise SpawnError(f"its server (pid {entry.server_pid}) is not in the project's listing")


def _exit_of(layout: Layout, launch: Launch) -> dict[str, Any] | None:
    try:
        data = load_json(layout.spawn_exit(launch.record.spawn_id))
    except (OSError, OxtailError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pane_text(launch: Launch) -> str:
    try:
        text = tmux.capture(launch.pane_id, _PANE_TEXT_LINES)
    except OxtailError as exc:
        return f"(pane unreadable: {exc})"
    return neutralize(text.strip() or "(blank)")


def _timeout_text(launch: Launch, what: str, entry: SessionEntry | None) -> str:
    hint = ""
    if entry is None and launch.record.client == "codex":
        hint = (" If Codex runs its shared app-server daemon, its servers hang off the "
                "daemon, not this window: set [features] daemon_auto_start = false.")
    if entry is None:
        hint += " Is oxtail configured for this client (oxtail-py setup)?"
    return (f"{launch.record.client} in pane {launch.pane_id} was not ready ({what}) in time."
            f"{hint} Its screen:\n{_pane_text(launch)}")
