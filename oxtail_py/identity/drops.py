"""The files through which a session id reaches a server from outside its MCP stream.

    drops/<client pid>.json           the SessionStart hook's drop (hookdrain.session_start),
                                      rewritten at every SessionStart of that client:
                                      startup, /clear, /resume, compaction
    drops/server-<pid>-<start>.json   `oxtail-py claim` for one running server

A client drop proves its origin only together with the live process tree: it is named by
the client's pid, it records the client's start time, and it counts only for the client
process found above the reading server (a recycled pid has another start time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from oxtail_py.fsio import load_json
from oxtail_py.identity.client import ClientProcess
from oxtail_py.layout import SESSION_ID_RE, Layout
from oxtail_py.procs import ProcessIdentity, ancestors


@dataclass(frozen=True, slots=True)
class Drop:
    session_id: str
    cwd: str | None
    transcript_path: str | None
    client_pid: int
    source: str | None  # the SessionStart source: startup, clear, resume, compact
    written_at: float  # the file's mtime: which of a claim and a drop came last

    def describe(self) -> str:
        return (
            f"SessionStart drop of client pid {self.client_pid} (source {self.source}, "
            f"written at {self.written_at:.2f})"
        )


@dataclass(frozen=True, slots=True)
class DropReading:
    drop: Drop | None
    reason: str  # why there is no drop, or what the drop is


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def read_client_drop(layout: Layout, client: ClientProcess) -> DropReading:
    """The drop of `client` (a live process above us), if its start time matches."""
    path = layout.drop_file(client.pid)
    try:
        written_at = os.stat(path, follow_symlinks=False).st_mtime
        data = load_json(path)
    except FileNotFoundError:
        return DropReading(None, f"no drop for client pid {client.pid}")
    except (OSError, ValueError) as exc:
        return DropReading(None, f"drop of client pid {client.pid} rejected: {exc}")
    if not isinstance(data, dict):
        return DropReading(None, f"drop of client pid {client.pid} rejected: not an object")
    sid, start = data.get("session_id"), data.get("client_start")
    if not isinstance(sid, str) or not SESSION_ID_RE.fullmatch(sid):
        return DropReading(None, f"drop of client pid {client.pid} rejected: bad session id")
    owner = ProcessIdentity(client.pid, str(start))
    if client.start is None or str(start) != client.start or not owner.is_alive():
        # Left by an earlier process that had this pid: not our client's.
        return DropReading(None, f"drop of client pid {client.pid} is from another process")
    drop = Drop(
        sid,
        _text(data.get("cwd")),
        _text(data.get("transcript_path")),
        client.pid,
        _text(data.get("source")),
        written_at,
    )
    return DropReading(drop, drop.describe())


def find_drop(layout: Layout, server_pid: int) -> Drop | None:
    """The SessionStart drop written for a live client process above `server_pid`."""
    for parent in ancestors(server_pid):
        try:
            start = f"{parent.create_time():.2f}"
        except Exception:  # psutil.Error: the process went away
            continue
        reading = read_client_drop(layout, ClientProcess("", parent.pid, start))
        if reading.drop is not None:
            return reading.drop
    return None


@dataclass(frozen=True, slots=True)
class ClaimDrop:
    session_id: str
    path: Path


def read_claim_drop(layout: Layout, server: ProcessIdentity) -> ClaimDrop | None:
    path = layout.claim_drop_file(server)
    try:
        data = load_json(path)
    except (OSError, ValueError):
        return None
    sid = data.get("session_id") if isinstance(data, dict) else None
    if isinstance(sid, str) and SESSION_ID_RE.fullmatch(sid):
        return ClaimDrop(sid, path)
    return None
