"""The busy/idle marker the Claude hooks keep per session: `status/<session id>`.

Content is the word `busy` or `idle`; the time is the file's mtime. The hooks
write it from pure shell on every tool call, where asking for the time would
cost a fork, and truncating a file sets its mtime for free.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Final

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import open_private
from oxtail_py.layout import Layout

# A turn that has said nothing for this long is not trusted to be running:
# a killed client never writes `idle`.
BUSY_FRESH_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class Status:
    state: str  # "busy" | "idle" | "unknown"
    age_s: float | None
    mtime: float | None

    @property
    def busy(self) -> bool:
        return self.state == "busy" and self.age_s is not None and self.age_s < BUSY_FRESH_S


def read_status(layout: Layout, session_id: str) -> Status:
    path = layout.status_file(session_id)
    try:
        fd = open_private(path, os.O_RDONLY)  # a FIFO planted here must not hang us
    except (OSError, OxtailError):
        return Status("unknown", None, None)
    try:
        mtime = os.fstat(fd).st_mtime
        word = os.read(fd, 16).split(maxsplit=1)
    finally:
        os.close(fd)
    state = word[0].decode(errors="replace") if word else "unknown"
    if state not in ("busy", "idle"):
        state = "unknown"
    return Status(state, max(0.0, time.time() - mtime), mtime)
