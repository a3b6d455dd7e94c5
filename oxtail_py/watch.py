"""File-system events (inotify) instead of polling: inbox changes for the server, and
a watchdog observer for the cockpit.

ask_peer waits on `MailboxWatcher`; a reply written by a peer wakes it within a
fraction of a millisecond (bench/ask_peer_latency.py). Callers see a callback, never
inotify.

Why the cockpit's observer has its own emitter: watchdog pairs IN_MOVED_FROM with
IN_MOVED_TO by holding every IN_MOVED_FROM in a delay queue for 0.5 s, and its reader
thread *sleeps* on a held head event (uninterruptibly), so every event behind it waits
too. Our directories see renames all the time (a drain renames inbox.jsonl to a claim,
an abort renames it back), so about one wake-up in a hundred waited ~500 ms. We do not
need paired moves, so there the grouper releases every event at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import itertools
import logging
import os
import select
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify_c import InotifyConstants, inotify_add_watch, inotify_init

from oxtail_py.layout import INBOX

log = logging.getLogger("oxtail_py")


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


class MailboxWatcher:
    """Inbox changes from one inotify descriptor, read on the server's event loop
    (`attach`) or, without a loop, by one thread of ours (`start`).

    Why not watchdog's observer (still used by the cockpit, above): between the kernel
    and a callback it passes every event through four threads (a reader that also
    holds a burst back for up to 1 ms, a dispatcher, the emitter's queue, the
    observer), and it asks the kernel for every open and close-without-write too. On
    ask_peer's reply path that cost ~1.5 ms at the median, and each of those threads
    woke for every lock, claim and ledger write of our own hand-over and took the GIL
    from it (bench/ask_peer_latency.py). Here the kernel sends only what can change an
    inbox (a write closed, a file renamed in: a put-back). In the server the loop reads
    the descriptor itself: no thread wakes for the events of our own hand-over, and an
    ask's wait ends on the loop with no hop at all (the events of a hand-over in
    progress are read once it is done, by the same thread).

    Callbacks run on the loop (attached) or on the watcher's thread (started): either
    way they must never block. `on_loop()` tells which.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._subscribers: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._inbox_dirs: dict[int, Path] = {}  # watch descriptor -> inbox directory
        self._any_callbacks: dict[int, list[Callable[[], None]]] = {}  # wd -> watch_any's
        self._watched: dict[Path, int] = {}
        self._fd = _new_inotify_fd()
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._run, name="oxtail-inbox-watch", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Read the events on a thread of ours (no event loop to attach to)."""
        self._thread.start()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the events on `loop` (call from the loop). Events since the watches were
        added wait in the kernel's queue, so none made before this is lost."""
        if self._thread.is_alive():
            raise RuntimeError("the watcher already reads on its own thread")
        self._loop = loop
        loop.add_reader(self._fd, self._read_ready)

    def on_loop(self) -> bool:
        """The caller runs on the loop the watcher is attached to (so its callbacks too)."""
        loop = self._loop
        if loop is None:
            return False
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def stop(self) -> None:
        """Stop reading and close the descriptor (idempotent)."""
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError, ValueError):
                loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._close()

    def watch(self, directory: Path) -> None:
        """Notify the subscribers when `directory`'s inbox changes."""
        with self._guard:
            if directory in self._watched:
                return
            wd = self._add(directory, _INBOX_MASK)
            if wd is not None:
                self._watched[directory] = wd
                self._inbox_dirs[wd] = directory

    def watch_any(self, directory: Path, callback: Callable[[], None]) -> None:
        """Call `callback` on any change in `directory` itself (not its subdirectories,
        not a read): the self-heal timers re-arm on ledger changes."""
        with self._guard:
            wd = self._add(directory, _ANY_CHANGE_MASK)
            if wd is not None:
                self._any_callbacks.setdefault(wd, []).append(callback)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (on the loop, or on the watcher's thread) on every inbox change;
        returns unsubscribe."""
        key = next(self._ids)
        with self._guard:
            self._subscribers[key] = callback

        def unsubscribe() -> None:
            with self._guard:
                self._subscribers.pop(key, None)

        return unsubscribe

    # -- reading the events ---------------------------------------------------------------

    def _add(self, directory: Path, mask: int) -> int | None:
        """(guard held) One watch; two calls for one directory share it (the kernel
        returns the same descriptor), so both masks are kept (IN_MASK_ADD)."""
        wd = inotify_add_watch(
            self._fd, os.fsencode(directory), mask | _ONLY_REAL_DIR | InotifyConstants.IN_MASK_ADD
        )
        if wd < 0:
            err = ctypes.get_errno()
            # A box that vanished, or a link planted where a box belongs: nothing to watch
            # (ask_peer still ends by its timeout or the peer's exit).
            log.warning("inbox watch on %s refused: %s", directory, os.strerror(err))
            return None
        return int(wd)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._stop_r in ready:
                return
            if not self._read_ready():
                return

    def _read_ready(self) -> bool:
        """Read and dispatch what is queued; False once the descriptor is unusable."""
        try:
            data = os.read(self._fd, _READ_BYTES)
        except BlockingIOError:
            return True
        except OSError as exc:
            log.warning("inbox watch stopped: %s", exc)
            if self._loop is not None:
                with contextlib.suppress(RuntimeError, ValueError):
                    self._loop.remove_reader(self._fd)
            return False
        self._dispatch(data)
        return True

    def _dispatch(self, data: bytes) -> None:
        inbox_changed = False
        any_callbacks: list[Callable[[], None]] = []
        with self._guard:
            for wd, mask, name in _events(data):
                if mask & InotifyConstants.IN_Q_OVERFLOW:
                    # Events were lost: anything may have changed, so everyone looks.
                    inbox_changed = True
                    any_callbacks = [c for cs in self._any_callbacks.values() for c in cs]
                    continue
                if mask & InotifyConstants.IN_IGNORED:  # the directory went away
                    directory = self._inbox_dirs.pop(wd, None)
                    if directory is not None:
                        self._watched.pop(directory, None)
                    self._any_callbacks.pop(wd, None)
                    continue
                if wd in self._inbox_dirs and name == _INBOX_NAME and mask & _INBOX_MASK:
                    inbox_changed = True
                for callback in self._any_callbacks.get(wd, ()):
                    if mask & _ANY_CHANGE_MASK and callback not in any_callbacks:
                        any_callbacks.append(callback)
            subscribers = list(self._subscribers.values()) if inbox_changed else []
        for callback in [*subscribers, *any_callbacks]:
            try:
                callback()
            except Exception:  # one subscriber's bug must not stop every other's wake-up
                log.exception("inbox watch callback failed")

    def _close(self) -> None:
        for fd in (self._fd, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fd = self._stop_r = self._stop_w = -1


def _new_inotify_fd() -> int:
    fd = inotify_init()
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"inotify unavailable: {os.strerror(err)}")
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    return int(fd)


_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (name follows)


def _events(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(wd, mask, name) of each `struct inotify_event` in one read."""
    at = 0
    while at + _HEADER.size <= len(data):
        wd, mask, _cookie, length = _HEADER.unpack_from(data, at)
        name = data[at + _HEADER.size : at + _HEADER.size + length].rstrip(b"\0")
        at += _HEADER.size + length
        yield wd, mask, name


_INBOX_NAME: Final = os.fsencode(INBOX)
# An append ends with a close-after-write (the hook's shell `>>` too, and a writer
# killed mid-append is closed by the kernel); a put-back renames a claim onto the
# inbox; the first append creates it (then closes it). Opens and reads never count: a
# watcher that reads what it watches (the self-heal pass) must not wake itself for ever.
_INBOX_MASK: Final = InotifyConstants.IN_CLOSE_WRITE | InotifyConstants.IN_MOVED_TO
_ANY_CHANGE_MASK: Final = (
    InotifyConstants.IN_MODIFY
    | InotifyConstants.IN_ATTRIB
    | InotifyConstants.IN_CLOSE_WRITE
    | InotifyConstants.IN_CREATE
    | InotifyConstants.IN_DELETE
    | InotifyConstants.IN_MOVED_FROM
    | InotifyConstants.IN_MOVED_TO
)
_ONLY_REAL_DIR: Final = InotifyConstants.IN_ONLYDIR | InotifyConstants.IN_DONT_FOLLOW
_READ_BYTES: Final = 64 * 1024
