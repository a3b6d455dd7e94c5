"""Proof that a wake line was submitted, from the peer's own files.

Either its busy marker was stamped after the line went out, or the line shows up in what
its transcript or prompt history got since. The history has a prompt the moment it is
submitted, also one steered into a running Codex turn, which the rollout shows only at
the next model call.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Final

from oxtail_py import transcripts
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import open_private
from oxtail_py.layout import Layout
from oxtail_py.status import read_status
from oxtail_py.wake.contract import Watch
from oxtail_py.wake.peer import Peer

_READ_MAX: Final = 4 << 20
_TURN_TAIL: Final = 256 << 10
_POLL_S: Final = 0.1


def transcript_of(peer: Peer) -> Path | None:
    if not peer.session_id:
        return None
    try:
        return transcripts.locate_transcript(peer.client_type, peer.session_id, home=peer.home)
    except (OSError, ValueError):
        return None


def history_of(peer: Peer) -> Path | None:
    """The client's prompt history (Claude: ~/.claude, Codex: $CODEX_HOME or ~/.codex)."""
    if peer.config_dir is None:
        return None
    path = Path(peer.config_dir) / "history.jsonl"
    return path if path.is_absolute() else None


class Proof:
    """Watches the peer's marker and files for the line; arm() right before firing."""

    def __init__(self, layout: Layout, peer: Peer, line: str) -> None:
        self.layout = layout
        self.peer = peer
        self.needle = json.dumps(line)[1:-1].encode()
        self.fired_at = 0.0
        self.files: dict[str, Path | None] = {}
        self.offsets: dict[str, int] = {}

    def arm(self) -> None:
        self.fired_at = time.time()
        self.files = {"transcript": transcript_of(self.peer), "history": history_of(self.peer)}
        self.offsets = {name: _size(path) for name, path in self.files.items()}

    def seen(self) -> bool:
        sid = self.peer.session_id
        marker = read_status(self.layout, sid) if sid else None
        if marker and marker.state == "busy" and (marker.mtime or 0) >= self.fired_at - 0.5:
            return True
        if self.files.get("transcript") is None:  # born with the first prompt
            self.files["transcript"] = transcript_of(self.peer)
        return any(self._grew_with_needle(name) for name in self.files)

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

    def _grew_with_needle(self, name: str) -> bool:
        path = self.files.get(name)
        if path is None:
            return False
        offset = self.offsets.get(name, 0)
        try:
            fd = open_private(path, os.O_RDONLY)
        except (OSError, OxtailError):
            return False
        with os.fdopen(fd, "rb") as fh:
            fh.seek(offset if os.fstat(fd).st_size >= offset else 0)
            return self.needle in fh.read(_READ_MAX)


def codex_turn_open(path: Path | None) -> bool:
    """The rollout's last turn has started and not ended (a queued line runs after it)."""
    if path is None:
        return False
    try:
        fd = open_private(path, os.O_RDONLY)
    except (OSError, OxtailError):  # gone, or not a regular file: no evidence
        return False
    with os.fdopen(fd, "rb") as fh:
        fh.seek(max(0, os.fstat(fd).st_size - _TURN_TAIL))
        tail = fh.read()
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


def _size(path: Path | None) -> int:
    try:
        return os.stat(path).st_size if path is not None else 0
    except OSError:
        return 0
