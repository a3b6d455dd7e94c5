"""Process identity: a pid is only a name, pid + start time is a process.

PIDs are reused; every liveness decision (registry entries, lock owners, mailbox
claims) compares the recorded start time with the live process's, so a
recycled pid never resurrects a dead peer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from oxtail_py.names import parse_process_token
from oxtail_py.proc_start import START_FORMAT as _START_FORMAT
from oxtail_py.proc_start import read_stat as _linux_read_stat

if TYPE_CHECKING:
    import psutil


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    pid: int
    start: str  # create time, seconds since the epoch, formatted with _START_FORMAT

    def is_alive(self) -> bool:
        # proc_start.is_alive's rule, through this context's snapshot memo when one is open
        return start_time(self.pid) == self.start

    def token(self) -> str:
        """A filename-safe rendering, `<pid>-<start>`."""
        return f"{self.pid}-{self.start}"

    @classmethod
    def parse_token(cls, token: str) -> ProcessIdentity | None:
        parsed = parse_process_token(token)
        return None if parsed is None else cls(*parsed)


@dataclass(frozen=True, slots=True)
class ProcStat:
    """What one read of /proc/<pid>/stat tells: the parent, and the start time
    (None for a zombie: it has exited, only its parent has not reaped it yet)."""

    ppid: int
    start: str | None


class ProcessSnapshot:
    """One listing's view of the live process tree: each pid's stat and cmdline are
    read at most once. A listing asks about the same processes many times (a registry
    entry's liveness, then its parent chain, and a hundred chains share their top), so
    reading them again only costs time. Hold one only for a single pass over the tree
    (never across a wait: a memo would hide a process that exits meanwhile)."""

    __slots__ = ("_shared", "_stats")

    def __init__(self) -> None:
        self._stats: dict[int, ProcStat | None] = {}
        self._shared: dict[int, bool] = {}

    def stat(self, pid: int) -> ProcStat | None:
        if pid not in self._stats:
            self._stats[pid] = _read_stat(pid)
        return self._stats[pid]

    def is_shared_daemon(self, pid: int) -> bool:
        if pid not in self._shared:
            self._shared[pid] = _read_is_shared_daemon(pid)
        return self._shared[pid]


_SNAPSHOT: ContextVar[ProcessSnapshot | None] = ContextVar("oxtail_procs_snapshot", default=None)


@contextmanager
def process_snapshot() -> Iterator[ProcessSnapshot]:
    """Within the block, start_time / parent_pid / proven_pane (and so every
    ProcessIdentity.is_alive) answer from one memo of /proc. Nested blocks share the
    outer one. Per context (thread), so two listings never share a memo."""
    current = _SNAPSHOT.get()
    if current is not None:
        yield current
        return
    snapshot = ProcessSnapshot()
    token = _SNAPSHOT.set(snapshot)
    try:
        yield snapshot
    finally:
        _SNAPSHOT.reset(token)


def _stat(pid: int) -> ProcStat | None:
    snapshot = _SNAPSHOT.get()
    return snapshot.stat(pid) if snapshot is not None else _read_stat(pid)


def start_time(pid: int) -> str | None:
    """The start time of the live, non-zombie process `pid`, or None if there is none.

    A zombie has exited; only its parent has not reaped it yet, so it holds
    nothing (locks, claims) that we must respect.
    """
    stat = _stat(pid)
    return stat.start if stat is not None else None


def _read_stat(pid: int) -> ProcStat | None:
    if pid <= 0:
        return None  # not a process (and psutil takes 0 for the idle task)
    if sys.platform == "linux":
        return _linux_stat(pid)
    import psutil  # elsewhere psutil knows how

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            zombie = proc.status() == psutil.STATUS_ZOMBIE
            return ProcStat(
                proc.ppid(), None if zombie else _START_FORMAT.format(proc.create_time())
            )
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _linux_stat(pid: int) -> ProcStat | None:
    """One read of /proc/<pid>/stat (proc_start.read_stat: the lean definition the hook's
    reservation check shares), as a ProcStat."""
    found = _linux_read_stat(pid)
    return None if found is None else ProcStat(*found)


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
    import psutil

    try:
        return list(psutil.Process(pid).parents())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def parent_pid(pid: int) -> int | None:
    """The parent of `pid` (None if gone). On Linux one /proc read (none within a
    process_snapshot that has read it already), no psutil objects."""
    stat = _stat(pid)
    return stat.ppid if stat is not None else None


def proven_pane(pid: int, pane_pids: dict[int, str]) -> str | None:
    """The pane whose shell is `pid` or one of its ancestors, from the LIVE process tree.

    This is the only way we attribute a pane to a process: an env var (TMUX_PANE)
    or a registry field can name another agent's pane (Codex's shared daemon
    forwards the first TUI's TMUX_PANE to every server).
    """
    seen: set[int] = set()
    current: int | None = pid
    while current is not None and current > 1 and current not in seen:
        if current in pane_pids:
            return pane_pids[current]
        if _is_shared_daemon(current):
            # Codex's app-server serves every TUI of one CODEX_HOME; the pane above
            # it is only the first TUI's, not necessarily this server's.
            return None
        seen.add(current)
        current = parent_pid(current)
    return None


def is_shared_daemon(pid: int) -> bool:
    """`pid` is a shared Codex app-server daemon (serves the threads of many TUIs)."""
    return _is_shared_daemon(pid)


def _is_shared_daemon(pid: int) -> bool:
    snapshot = _SNAPSHOT.get()
    return snapshot.is_shared_daemon(pid) if snapshot is not None else _read_is_shared_daemon(pid)


def _read_is_shared_daemon(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return len(argv) > 1 and b"codex" in os.path.basename(argv[0]) and b"app-server" in argv[1:]
