"""File events under the state root, for the cockpit's live views (watch, log -f).

One recursive inotify watch (watchdog, through watch.observer(): no move-grouper
delay) on the state root: a registry entry written or removed, an inbox appended or
drained, a busy/idle marker touched, an event-log line appended. The callback only
says "something changed"; the view rebuilds from disk. Nothing polls: an idle project
costs no CPU. A server killed with -9 writes nothing, so the views also hold a pidfd
per live server (watch app) to learn of its exit from the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from oxtail_py.watch import observer

# Churn that says nothing to an observer: lock dirs and their staging, temp files of
# atomic writes (the rename that follows is the event that matters).
_QUIET_PREFIXES = (".lock.tmp.", "owner.")


class _Changed(FileSystemEventHandler):
    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # our own reads (a snapshot opens every inbox) must not loop
        name = os.path.basename(os.fsdecode(event.src_path))
        if name.startswith(_QUIET_PREFIXES) or (name.startswith(".") and name.endswith(".tmp")):
            return
        self._notify()


class StateFeed:
    """Call `notify` (on watchdog's thread) whenever something under `root` changes."""

    def __init__(self, root: Path, notify: Callable[[], None]) -> None:
        self._observer = observer()
        self._observer.daemon = True
        self._observer.schedule(_Changed(notify), str(root), recursive=True)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=2)
