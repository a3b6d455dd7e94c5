"""Process identity: a pid is only a name, pid + start time is a process.

PIDs are reused; every liveness decision (registry entries, lock owners, mailbox
claims) compares the recorded start time with the live process's, so a
recycled pid never resurrects a dead peer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import psutil

# psutil's create_time is boot time + start ticks / CLK_TCK (100 on Linux), so
# two decimals are exact and the string form is stable across readers.
_START_FORMAT: Final = "{:.2f}"


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    pid: int
    start: str  # create time, seconds since the epoch, formatted with _START_FORMAT

    def is_alive(self) -> bool:
        return start_time(self.pid) == self.start

    def token(self) -> str:
        """A filename-safe rendering, `<pid>-<start>`."""
        return f"{self.pid}-{self.start}"

    @classmethod
    def parse_token(cls, token: str) -> ProcessIdentity | None:
        pid_text, sep, start = token.partition("-")
        if not sep or not pid_text.isdigit() or not _looks_like_start(start):
            return None
        return cls(int(pid_text), start)


def _looks_like_start(text: str) -> bool:
    whole, dot, frac = text.partition(".")
    return bool(dot) and whole.isdigit() and frac.isdigit() and len(frac) == 2


def start_time(pid: int) -> str | None:
    """The start time of the live, non-zombie process `pid`, or None if there is none.

    A zombie has exited; only its parent has not reaped it yet, so it holds
    nothing (locks, claims) that we must respect.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return _START_FORMAT.format(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def identity_of(pid: int) -> ProcessIdentity | None:
    start = start_time(pid)
    return None if start is None else ProcessIdentity(pid, start)


_SELF: ProcessIdentity | None = None


def self_identity() -> ProcessIdentity:
    """This process, cached; recomputed after fork (the pid changes)."""
    global _SELF
    if _SELF is None or _SELF.pid != os.getpid():
        me = identity_of(os.getpid())
        assert me is not None, "the running process must have a start time"
        _SELF = me
    return _SELF


def ancestors(pid: int) -> list[psutil.Process]:
    """The parent chain of `pid`, nearest first (pid itself excluded)."""
    try:
        return list(psutil.Process(pid).parents())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def proven_pane(pid: int, pane_pids: dict[int, str]) -> str | None:
    """The pane whose shell is `pid` or one of its ancestors, from the LIVE process tree.

    This is the only way we attribute a pane to a process: an env var (TMUX_PANE)
    or a registry field can name another agent's pane (Codex's shared daemon
    forwards the first TUI's TMUX_PANE to every server).
    """
    if pid in pane_pids:
        return pane_pids[pid]
    for parent in ancestors(pid):
        if parent.pid in pane_pids:
            return pane_pids[parent.pid]
    return None
