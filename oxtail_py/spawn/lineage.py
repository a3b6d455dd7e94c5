"""Lineage, proven from the live process tree and the kernel's copy of each environment.

A spawned client is started with OXTAIL_SPAWN_ID and OXTAIL_SPAWN_DEPTH in its
environment. /proc/<pid>/environ is the environment the process was exec'd with: no later
change of its own, and nothing a descendant does, alters it. So:

- depth of a process = the largest OXTAIL_SPAWN_DEPTH among its ancestors (a descendant
  that sets a smaller one, e.g. a model's shell running `env OXTAIL_SPAWN_DEPTH=0`, cannot
  lower it: the ancestors still show theirs);
- a server's spawn = the nearest ancestor carrying OXTAIL_SPAWN_ID; the record of that id
  names its parent (description), and the spawner's memory of which runner process it
  launched for that id (authority for stop_peer) is checked against the live tree.

The walk stops at a shared Codex app-server daemon: it carries the environment of
whichever TUI started it, not of the thread whose server hangs below it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from oxtail_py.layout import SPAWN_ID_RE, Layout
from oxtail_py.procs import ProcessIdentity, identity_of, is_shared_daemon, parent_pid
from oxtail_py.registry import ParentInfo
from oxtail_py.scope import contains
from oxtail_py.spawn.records import SpawnRecord, read_record
from oxtail_py.wake.client import check_client

SPAWN_ID_VAR: Final = "OXTAIL_SPAWN_ID"
SPAWN_DEPTH_VAR: Final = "OXTAIL_SPAWN_DEPTH"
_ENVIRON_MAX: Final = 1 << 20
_MAX_DEPTH_VALUE: Final = 64


@dataclass(frozen=True, slots=True)
class Mark:
    """A process that was exec'd with a spawn id in its environment."""

    process: ProcessIdentity
    spawn_id: str
    depth: int


def environ_of(pid: int) -> dict[str, str]:
    """The environment `pid` was exec'd with ({} when it cannot be read)."""
    try:
        fd = os.open(f"/proc/{pid}/environ", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        raw = os.read(fd, _ENVIRON_MAX)
    except OSError:
        return {}
    finally:
        os.close(fd)
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _mark_of(pid: int) -> Mark | None:
    env = environ_of(pid)
    spawn_id = env.get(SPAWN_ID_VAR, "")
    depth = env.get(SPAWN_DEPTH_VAR, "")
    if not SPAWN_ID_RE.fullmatch(spawn_id) or not (depth.isascii() and depth.isdigit()):
        return None
    process = identity_of(pid)
    if process is None:
        return None
    return Mark(process, spawn_id, min(int(depth), _MAX_DEPTH_VALUE))


def chain(pid: int) -> list[int]:
    """`pid` and its ancestors, nearest first, up to (not into) a shared Codex daemon."""
    found: list[int] = []
    current: int | None = pid
    while current is not None and current > 1 and current not in found:
        if is_shared_daemon(current):
            break
        found.append(current)
        current = parent_pid(current)
    return found


def marks_above(pid: int) -> list[Mark]:
    """Every process in `pid`'s chain (itself included) started with a spawn id."""
    return [m for m in (_mark_of(p) for p in chain(pid)) if m is not None]


def depth_of(pid: int) -> int:
    """How deep in spawns `pid` runs: 0 when no ancestor was spawned."""
    return max((m.depth for m in marks_above(pid)), default=0)


@dataclass(frozen=True, slots=True)
class ProvenSpawn:
    mark: Mark
    record: SpawnRecord


def own_spawn(layout: Layout, server_pid: int, cwd: str) -> ProvenSpawn | None:
    """The spawn the server `server_pid` is the helper of: the nearest marked ancestor
    whose record exists, is for this project, agrees on the depth, and names a runner
    that launched this server's client directly (see `launched_by`)."""
    for mark in marks_above(server_pid):
        record = read_record(layout, mark.spawn_id)
        if record is None or record.depth != mark.depth or record.runner is None:
            continue
        if not contains(Path(record.project_root), cwd):
            continue
        if launched_by(server_pid, record.spawn_id, record.runner):
            return ProvenSpawn(mark, record)
    return None


def runs_under(pid: int, ancestor: ProcessIdentity) -> bool:
    """`ancestor` (pid + start time) is `pid` or one of its live ancestors."""
    return any(identity_of(p) == ancestor for p in chain(pid) if p == ancestor.pid)


def launched_by(server_pid: int, spawn_id: str, runner: ProcessIdentity) -> bool:
    """The server `server_pid` is the one of the client we launched for `spawn_id`: the
    runner (pid + start time) is above it with only real client processes between them
    (Claude Code; Codex and its npm launcher), and it runs with that spawn id in its
    environment. The kernel's word on all of it. A server further down (a `claude -p`
    the helper's model runs in its shell inherits the spawn id too) has a shell between."""
    if not any(m.spawn_id == spawn_id for m in marks_above(server_pid)):
        return False
    for pid in chain(server_pid):
        if parent_pid(pid) == runner.pid:
            return identity_of(runner.pid) == runner
        if pid != server_pid and check_client(pid).kind is None:
            return False
    return False


def parent_info(layout: Layout, server_pid: int, cwd: str) -> ParentInfo | None:
    """What the server `server_pid` records as its parent in its registry entry."""
    proven = own_spawn(layout, server_pid, cwd)
    if proven is None:
        return None
    record = proven.record
    return ParentInfo(
        spawn_id=record.spawn_id,
        by=record.parent.by,
        session_id=record.parent.session_id,
        name=record.parent.name,
        depth=record.depth,
        child_name=record.name,
        role=record.role,
    )
