"""Inbox change notification on file-system events (inotify via watchdog): no polling.

ask_peer waits on this; a reply written by a peer wakes it within a millisecond
or two (bench/ask_peer_latency.py). Callers see a callback, never inotify.

Why our own emitter: watchdog pairs IN_MOVED_FROM with IN_MOVED_TO by holding every
IN_MOVED_FROM in a delay queue for 0.5 s, and its reader thread *sleeps* on a held
head event (uninterruptibly), so every event behind it waits too. Our inbox
directories see renames all the time (a drain renames inbox.jsonl to a claim, an
abort renames it back), so about one wake-up in a hundred waited ~500 ms. We do not
need paired moves: any event naming inbox.jsonl (as source or destination) is a
reason to look, so here the grouper releases every event at once.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

_INBOX = "inbox.jsonl"


def observer() -> BaseObserver:
    """A watchdog observer that releases every event at once (see the module doc); the
    cockpit (cockpit/feed.py) watches the state root with it."""
    return _observer()


def _observer() -> BaseObserver:
    if not sys.platform.startswith("linux"):
        return Observer()  # no move grouper delay to remove on other platforms' backends
    from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT
    from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
    from watchdog.observers.inotify_c import InotifyFD
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper

    class ImmediateMoves(InotifyMoveEventGrouper):
        delay = 0.0  # release an unpaired IN_MOVED_FROM at once (see the module doc)

    @dataclass
    class ImmediateWatchGroup(InotifyWatchGroup):
        _move_event_grouper: InotifyMoveEventGrouper = field(
            default_factory=ImmediateMoves, init=False
        )

    class ImmediateEmitter(InotifyEmitter):
        def on_thread_start(self) -> None:
            self._inotify = ImmediateWatchGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
            )

    class ImmediateObserver(BaseObserver):
        def __init__(self) -> None:
            self._inotify_fd = InotifyFD()
            self._inotify_fd.start()
            super().__init__(
                ImmediateEmitter, timeout=DEFAULT_OBSERVER_TIMEOUT, inotify_fd=self._inotify_fd
            )

        def on_thread_stop(self) -> None:
            super().on_thread_stop()
            self._inotify_fd.stop()
            self._inotify_fd.join()

    return ImmediateObserver()


# A read opens and closes a file without changing it: no reason to look again. Counting
# them made a watcher that reads what it watches (the self-heal timers) wake itself for
# ever, and woke every ask_peer waiter whenever anyone counted an inbox for a listing.
_READ_ONLY: Final = frozenset({EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE})


class _InboxEvents(FileSystemEventHandler):
    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _READ_ONLY:
            return
        # Appends (modified/closed) and put-backs (moved, or with unpaired moves,
        # "created", onto the inbox) both count; lock and claim traffic in the same
        # directory does not. A spurious look (the inbox renamed away) costs one drain.
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(os.path.basename(os.fsdecode(p)) == _INBOX for p in paths):
            self._notify()


class _AnyEvent(FileSystemEventHandler):
    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _READ_ONLY:
            self._notify()


class MailboxWatcher:
    def __init__(self) -> None:
        self._observer = _observer()
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

    def watch_any(self, directory: Path, callback: Callable[[], None]) -> None:
        """Call `callback` (from the observer thread) on any event in `directory` itself
        (not its subdirectories): the self-heal timers re-arm on ledger changes."""
        self._observer.schedule(_AnyEvent(callback), str(directory), recursive=False)

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
