"""Inbox change notification on file-system events (inotify via watchdog): no polling.

ask_peer waits on this; a reply written by a peer wakes it within a millisecond
or two (bench/ask_peer_latency.py).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

_INBOX = "inbox.jsonl"


class _InboxEvents(FileSystemEventHandler):
    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Appends (modified/closed) and put-backs (moved onto the inbox) both count;
        # lock and claim traffic in the same directory does not.
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(os.path.basename(os.fsdecode(p)) == _INBOX for p in paths):
            self._notify()


class MailboxWatcher:
    def __init__(self) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._guard = threading.Lock()
        self._subscribers: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._watched: set[Path] = set()
        self._handler = _InboxEvents(self._notify_all)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()

    def watch(self, directory: Path) -> None:
        with self._guard:
            if directory in self._watched:
                return
            self._watched.add(directory)
        self._observer.schedule(self._handler, str(directory), recursive=False)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from the observer thread) on every inbox change; returns unsubscribe."""
        key = next(self._ids)
        with self._guard:
            self._subscribers[key] = callback

        def unsubscribe() -> None:
            with self._guard:
                self._subscribers.pop(key, None)

        return unsubscribe

    def _notify_all(self) -> None:
        with self._guard:
            callbacks = list(self._subscribers.values())
        for callback in callbacks:
            callback()
