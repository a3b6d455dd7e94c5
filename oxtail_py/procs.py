"""Process identity: a pid is only a name, pid + start time is a process.

PIDs are reused; every liveness decision (registry entries, lock owners, mailbox
claims) compares the recorded start time with the live process's, so a
recycled pid never resurrects a dead peer.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
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
    if sys.platform == "linux":
        return _linux_start_time(pid)
    import psutil  # elsewhere psutil knows how

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return _START_FORMAT.format(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


_BOOT_TIME: float | None = None


def _linux_start_time(pid: int) -> str | None:
    """psutil's create_time, computed the same way (btime + starttime ticks / CLK_TCK)
    straight from /proc: the hook helper then starts without importing psutil."""
    global _BOOT_TIME
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        return None
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if not fields or fields[0] == b"Z":
        return None
    if _BOOT_TIME is None:
        with open("/proc/stat", "rb") as fh:
            _BOOT_TIME = next(float(ln.split()[1]) for ln in fh if ln.startswith(b"btime"))
    ticks = os.sysconf("SC_CLK_TCK")
    return _START_FORMAT.format(int(fields[19]) / ticks + _BOOT_TIME)


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
    """The parent of `pid` (None if gone). On Linux one /proc read, no psutil objects:
    listings walk a hundred process chains per call."""
    if sys.platform == "linux":
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        return int(stat[stat.rfind(b")") + 2 :].split()[1])
    import psutil

    try:
        return psutil.Process(pid).ppid()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


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


def _is_shared_daemon(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return len(argv) > 1 and b"codex" in os.path.basename(argv[0]) and b"app-server" in argv[1:]
