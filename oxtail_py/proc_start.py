"""The one definition of "this process is alive": pid + start time, read from /proc. Lean.

A pid is only a name; pid + start time is a process. A process is alive while its pid
runs, is not a zombie, and has the recorded start time (so a recycled pid never
resurrects a dead peer). procs.py (ProcessIdentity, snapshots, ancestry) builds on
this module, and the hook's lean reservation check calls it directly: it imports only
`os` and `sys` (no psutil, no dataclasses), because that check starts a fresh interpreter
on every edit tool call while reservations exist.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final

# psutil's create_time is boot time + start ticks / CLK_TCK (100 on Linux), so
# two decimals are exact and the string form is stable across readers.
START_FORMAT: Final = "{:.2f}"

_BOOT_TIME: float | None = None


def read_stat(pid: int) -> tuple[int, str | None] | None:
    """(parent pid, start time) of `pid` from one read of /proc/<pid>/stat; the start is
    None for a zombie (it has exited, only its parent has not reaped it yet). None when
    there is no such process. Linux only (procs.py asks psutil elsewhere).

    psutil's create_time, computed the same way (btime + starttime ticks / CLK_TCK)."""
    global _BOOT_TIME
    if pid <= 0:
        return None  # not a process (and psutil takes 0 for the idle task)
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        return None
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    if fields[0] == b"Z":
        return int(fields[1]), None
    if _BOOT_TIME is None:
        with open("/proc/stat", "rb") as fh:
            _BOOT_TIME = next(float(ln.split()[1]) for ln in fh if ln.startswith(b"btime"))
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), START_FORMAT.format(int(fields[19]) / ticks + _BOOT_TIME)


def start_time(pid: int) -> str | None:
    """The start time of the live, non-zombie process `pid`, or None if there is none.
    (procs.start_time is this, answered from a snapshot's memo when one is open.)"""
    if sys.platform != "linux":
        from oxtail_py.procs import start_time as by_psutil

        return by_psutil(pid)
    found = read_stat(pid)
    return None if found is None else found[1]


def is_alive(pid: int, start: str) -> bool:
    """The liveness rule: `pid` runs, is no zombie, and started at `start`."""
    return start_time(pid) == start
