"""Notice, without a tool call, that this server's identity moved or that old mail came.

After /clear the agent may make no tool call for a long time, yet peers read our
registry entry at once (a send by tmux name, the wake gate's busy/idle). So a server
watches, on file-system events (inotify via watchdog, never a timer), the files that can
move its identity (its client's SessionStart drop, its `oxtail-py claim` file) and the
inboxes of the ids it had before; a worker thread then runs `on_change`. The observer
thread only sets an event: work there would hold watchdog's lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("oxtail_py")


class _NamedFiles(FileSystemEventHandler):
    def __init__(self, names: set[str], poke: Callable[[], None]) -> None:
        self._names = names
        self._poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(os.path.basename(os.fsdecode(p)) in self._names for p in paths):
            self._poke()


class IdentityFollower:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._observer = Observer()
        self._observer.daemon = True
        self._pending = threading.Event()
        self._stopped = threading.Event()
        self._watched: set[Path] = set()
        self._guard = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="oxtail-follow", daemon=True)

    def watch(self, directory: Path, names: set[str]) -> None:
        """Run on_change when a file named in `names` changes in `directory`."""
        with self._guard:
            if directory in self._watched:
                return
            self._watched.add(directory)
        self._observer.schedule(_NamedFiles(names, self._pending.set), str(directory))

    def start(self) -> None:
        self._observer.start()
        self._worker.start()

    def stop(self) -> None:
        self._stopped.set()
        self._pending.set()
        self._observer.stop()

    def _run(self) -> None:
        while True:
            self._pending.wait()
            if self._stopped.is_set():
                return
            self._pending.clear()  # before the work: an event during it runs it again
            try:
                self._on_change()
            except Exception:  # a failed refresh must not end the following
                log.exception("identity refresh failed")
