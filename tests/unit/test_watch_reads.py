"""The inbox watcher reacts to changes, not to reads: a reader of a watched file (the
self-heal pass reads the inbox it watches) must not wake itself for ever."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from oxtail_py.fsio import ensure_private_dir, read_private
from oxtail_py.watch import MailboxWatcher


def test_reading_the_inbox_notifies_nobody_and_appending_does(tmp_path: Path) -> None:
    box = ensure_private_dir(tmp_path / "box")
    inbox = box / "inbox.jsonl"
    inbox.write_bytes(b"{}\n")
    seen = threading.Event()
    watcher = MailboxWatcher()
    watcher.watch(box)
    watcher.subscribe(seen.set)
    other = threading.Event()
    watcher.watch_any(box, other.set)
    watcher.start()
    try:
        for _ in range(5):
            read_private(inbox)
        assert not seen.wait(0.5) and not other.is_set()
        with inbox.open("ab") as f:
            f.write(b"{}\n")
        assert seen.wait(5) and other.wait(5)
    finally:
        watcher.stop()


def test_a_link_or_a_fifo_where_a_box_belongs_is_never_watched(tmp_path: Path) -> None:
    """A symlink planted where an inbox directory belongs is not followed (its target's
    changes wake nobody), a FIFO there is refused without blocking, and a real box
    watched beside them still notifies."""
    elsewhere = ensure_private_dir(tmp_path / "elsewhere")
    linked = tmp_path / "linked-box"
    linked.symlink_to(elsewhere, target_is_directory=True)
    fifo = tmp_path / "fifo-box"
    os.mkfifo(fifo)
    real = ensure_private_dir(tmp_path / "real")
    seen = threading.Event()
    watcher = MailboxWatcher()
    for directory in (linked, fifo, real):
        watcher.watch(directory)
    watcher.subscribe(seen.set)
    watcher.start()
    try:
        (elsewhere / "inbox.jsonl").write_bytes(b"{}\n")
        assert not seen.wait(0.5)
        (real / "inbox.jsonl").write_bytes(b"{}\n")
        assert seen.wait(5)
    finally:
        watcher.stop()
