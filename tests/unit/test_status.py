"""The busy/idle marker: read without ever blocking, following a link, or trusting junk."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.status import BUSY_FRESH_S, Status, read_status

SID = "bbbbbbbb-0000-4000-8000-00000000000b"


def _read_within(layout: Layout, seconds: float) -> Status:
    """read_status in a thread: a read that blocks fails the test instead of hanging it."""
    got: list[Status] = []
    reader = threading.Thread(target=lambda: got.append(read_status(layout, SID)), daemon=True)
    reader.start()
    reader.join(seconds)
    assert got, f"read_status blocked for more than {seconds}s"
    return got[0]


def _marker(layout: Layout) -> Path:
    ensure_tree(layout.root, layout.status_dir)
    return layout.status_file(SID)


def test_a_fifo_where_the_marker_belongs_is_unknown_at_once(layout: Layout) -> None:
    os.mkfifo(_marker(layout))
    started = time.monotonic()
    assert _read_within(layout, 2.0) == Status("unknown", None, None)
    assert time.monotonic() - started < 1.0


def test_a_symlinked_marker_is_not_followed(layout: Layout, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("busy")
    _marker(layout).symlink_to(target)
    assert _read_within(layout, 2.0).state == "unknown"


def test_busy_only_while_fresh_and_junk_is_unknown(layout: Layout) -> None:
    path = _marker(layout)
    path.write_text("busy\n")
    assert _read_within(layout, 2.0).busy
    stale = time.time() - BUSY_FRESH_S - 5
    os.utime(path, (stale, stale))
    marker = _read_within(layout, 2.0)
    assert marker.state == "busy" and not marker.busy  # a killed client never writes idle
    path.write_text("idle")
    assert _read_within(layout, 2.0).state == "idle"
    path.write_bytes(b"\x1b[2J" * 10000)
    assert _read_within(layout, 2.0).state == "unknown"
    path.unlink()
    assert _read_within(layout, 2.0) == Status("unknown", None, None)
