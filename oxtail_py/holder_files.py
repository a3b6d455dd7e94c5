"""Reading a project's reservation holder files: the one reader, shared by all. Lean.

`reservations/<project key>/h.<pid>-<start>.json` is written only by its holder (an MCP
server); everyone reads them: ReservationBook (the tools, the git guard, the cockpit) wraps
what `scan` returns in its dataclasses, and the hook's reservation check
(reservation_check.py) uses it as is. One reader means one answer to "which reservations
are live": the holder alive (proc_start.is_alive), the file well-formed (every field and
pattern checked: peers write these files), the entry not expired.

`scan` also cleans up, whoever calls it: a dead holder's file is deleted, a corrupt one
renamed `q.*`. The hook does it too (one unlink or rename, once): a dead holder's file
left in place would start the helper on every edit tool call until a server read it.

Imports only the standard library's `os`, `time` and `json` and lean modules of ours (no
dataclasses, pathlib or typing at run time): the hook starts it on every edit tool call
while reservations exist.
"""

from __future__ import annotations

import os
import time

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import is_private_dir, load_json
from oxtail_py.globmatch import PatternError, from_regex
from oxtail_py.names import (
    SESSION_ID_RE,
    holder_token,
    quarantine_name,
    reservations_dir,
    session_file,
)
from oxtail_py.proc_start import is_alive
from oxtail_py.registry_entry import current_session

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, Final

MAX_ENTRIES: Final = 256  # per holder
MAX_REASON_CHARS: Final = 300
MAX_NAME_CHARS: Final = 128
KINDS: Final = ("file", "dir", "glob")


class HolderRecord:
    """A holder as its file names it, with its session as its registry entry says now."""

    __slots__ = ("client_type", "name", "pid", "previous_session_ids", "session_id", "start")

    def __init__(self, pid: int, start: str, session_id: str, client_type: str | None,
                 name: str | None, previous_session_ids: tuple[str, ...] = ()) -> None:
        self.pid = pid
        self.start = start
        self.session_id = session_id
        self.client_type = client_type
        self.name = name
        self.previous_session_ids = previous_session_ids

    def is_session(self, session_id: str | None) -> bool:
        """True when `session_id` is this holder's (now, or before its client moved on)."""
        return session_id is not None and (
            session_id == self.session_id or session_id in self.previous_session_ids
        )


class EntryRecord:
    """One reservation of a holder file, every field checked."""

    __slots__ = ("exclusive", "expires_at", "given", "granted_at", "kind", "pattern", "reason",
                 "regex")

    def __init__(self, given: str, pattern: str, regex: str, kind: str, exclusive: bool,
                 reason: str, granted_at: float, expires_at: float) -> None:
        self.given = given
        self.pattern = pattern
        self.regex = regex
        self.kind = kind
        self.exclusive = exclusive
        self.reason = reason
        self.granted_at = granted_at
        self.expires_at = expires_at


def _text(value: Any, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"expected a string of at most {limit} characters")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError("expected a number")
    return float(value)


def parse_holder_file(
    data: Any, pid: int, start: str, project_root: str
) -> tuple[HolderRecord, list[EntryRecord]]:
    """Every field checked (peers write these files); any failure is a ValueError."""
    if not isinstance(data, dict) or not isinstance(data.get("holder"), dict):
        raise ValueError("not a holder file")
    h = data["holder"]
    if (h.get("server_pid"), h.get("server_start")) != (pid, start):
        raise ValueError("holder does not match the file name")
    if data.get("project_root") != project_root:
        raise ValueError("project_root does not match the directory")
    sid = _text(h.get("session_id"), 128)
    if not SESSION_ID_RE.fullmatch(sid or ""):
        raise ValueError("bad session id")
    holder = HolderRecord(pid, start, str(sid), _text(h.get("client_type"), 16, optional=True),
                          _text(h.get("name"), MAX_NAME_CHARS, optional=True))
    items = data.get("reservations")
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise ValueError("reservations must be a short list")
    found = []
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in KINDS:
            raise ValueError("bad reservation entry")
        if not isinstance(item.get("exclusive"), bool):
            raise ValueError("exclusive must be true or false")
        found.append(EntryRecord(
            given=str(_text(item.get("given"), 1024)),
            pattern=str(_text(item.get("pattern"), 2048)),
            regex=str(_text(item.get("regex"), 4096)),
            kind=item["kind"],
            exclusive=item["exclusive"],
            reason=str(_text(item.get("reason"), MAX_REASON_CHARS)),
            granted_at=_number(item.get("granted_at")),
            expires_at=_number(item.get("expires_at")),
        ))
    return holder, found


def with_current_session(holder: HolderRecord, root: str) -> HolderRecord:
    """`holder` with its session id as its registry entry under state root `root` says now
    (a /clear moves it: the same server, the same reservations); the file's ids count as
    previous ones."""
    entry = current_session(session_file(root, holder.pid), holder.start)
    if entry is None or not entry.session_id:
        return holder
    previous = entry.previous_session_ids
    if entry.session_id != holder.session_id:
        previous += (holder.session_id,)
    return HolderRecord(holder.pid, holder.start, entry.session_id, holder.client_type,
                        entry.tmux_session or holder.name, previous)


def scan(
    root: str, project_root: str, now: float | None = None, *, include_expired: bool = False,
) -> list[tuple[HolderRecord, list[EntryRecord]]]:
    """Every live holder of the project `project_root` (a realpath) under state root `root`,
    with its live entries (not expired, unless `include_expired`), in file-name order.
    Dead holders' files are deleted, corrupt ones quarantined; neither blocks anything."""
    now = time.time() if now is None else now
    directory = reservations_dir(root, project_root)
    if not is_private_dir(directory):
        return []
    found: list[tuple[HolderRecord, list[EntryRecord]]] = []
    for name in sorted(os.listdir(directory)):
        server = holder_token(name)
        if server is None:
            continue
        path = os.path.join(directory, name)
        if not is_alive(*server):
            try:  # noqa: SIM105 (contextlib: an import the hook would pay for)
                os.unlink(path)  # its holder died: its reservations end now
            except OSError:  # gone already, or not a file (a directory): blocks nothing
                pass
            continue
        try:
            holder, entries = parse_holder_file(load_json(path), *server, project_root)
            for entry in entries:
                from_regex(entry.regex)  # a regex we would not run is a corrupt file
        except FileNotFoundError:
            continue
        except (OSError, OxtailError, ValueError, PatternError):
            try:  # noqa: SIM105 (another reader may have moved it first)
                os.rename(path, os.path.join(directory, quarantine_name(name, time.time_ns())))
            except OSError:
                pass
            continue
        if not entries:
            continue
        holder = with_current_session(holder, root)
        found.append((holder, [e for e in entries if include_expired or e.expires_at > now]))
    return found
