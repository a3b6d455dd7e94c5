"""The shape of a registry entry (`sessions/<server pid>.json`), checked in one place. Lean.

Peers (or a hostile process of the same user) write these files, so every field is
checked for type and shape once, and any failure rejects the whole entry: a reader never
sees a half-valid entry (session ids become mailbox paths; `1e400` parses as float inf).
registry.SessionEntry.from_dict builds its dataclasses only from an entry that passed
`entry_problem`; the hook's lean reservation check reads a holder's current session with
`current_session`, so both accept exactly the same entries. Imports only `re` (loaded
anyway by json) and lean modules of ours: the check runs on every edit tool call.
"""

from __future__ import annotations

import re

from oxtail_py.names import SESSION_ID_RE, SPAWN_ID_RE, parse_process_token

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, Final

MAX_PURPOSE_CHARS: Final = 200
MAX_PREVIOUS_SESSION_IDS: Final = 16
# Linux's pid_max ceiling (2**22); a larger "pid" in an entry is forged.
PID_MAX: Final = 1 << 22
MAX_CAPABILITIES: Final = 32
# A registry field longer than this is not ours (paths are the longest we write).
MAX_FIELD_CHARS: Final = 4096
# A role names a group of agents (`@role:<name>` targets them all): a short lowercase word.
ROLE_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

# The fields of each section (registry.ClientInfo, TmuxInfo, StateCard, ParentInfo: a
# test holds these equal to the dataclasses' fields); any other key rejects the entry.
CLIENT_FIELDS: Final = ("type", "session_id", "transcript_path", "cwd", "identity_source",
                        "claimed", "previous_session_ids")
TMUX_FIELDS: Final = ("pane", "session")
STATE_FIELDS: Final = ("purpose", "role", "updated_at")
PARENT_FIELDS: Final = ("spawn_id", "by", "session_id", "name", "depth", "child_name", "role")
PARENT_REQUIRED: Final = ("spawn_id", "by")


def _is_session_id(value: Any) -> bool:
    return isinstance(value, str) and bool(SESSION_ID_RE.fullmatch(value))


def _bad_string(value: Any) -> bool:
    return not (value is None or isinstance(value, str)) or len(value or "") > MAX_FIELD_CHARS


def _unknown(section: str, data: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    extra = sorted(str(k) for k in data if k not in fields)
    return f"unknown {section} field {extra[0]!r}" if extra else None


def entry_problem(data: Any) -> str | None:
    """Why `data` (a parsed registry file) is not a usable entry, or None when it is."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if "server_pid" not in data or "server_start" not in data:
        return "server_pid and server_start are required"
    pid, start = data["server_pid"], data["server_start"]
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid <= PID_MAX:
        return f"server_pid {pid!r} is not a process id"
    if not isinstance(start, str) or parse_process_token(f"{pid}-{start}") is None:
        return f"server_start {start!r} is not a start time"
    client, tmux, state = (data.get(k) or {} for k in ("client", "tmux", "state"))
    if not (isinstance(client, dict) and isinstance(tmux, dict) and isinstance(state, dict)):
        return "client, tmux and state must be objects"
    parent = data.get("parent")
    if parent is not None and not isinstance(parent, dict):
        return "parent must be an object"
    capabilities = data.get("capabilities") or []
    if not isinstance(capabilities, list) or len(capabilities) > MAX_CAPABILITIES:
        return "capabilities must be a short list"
    unknown = (_unknown("client", client, CLIENT_FIELDS) or _unknown("tmux", tmux, TMUX_FIELDS)
               or _unknown("state", state, STATE_FIELDS)
               or (_unknown("parent", parent, PARENT_FIELDS) if parent is not None else None))
    if unknown:
        return unknown
    bad = [f"{section}.{name}" for section, values, names in (
        ("client", client, ("type", "transcript_path", "cwd", "identity_source")),
        ("tmux", tmux, TMUX_FIELDS),
        ("state", state, ("updated_at",)),
    ) for name in names if _bad_string(values.get(name))]
    sid = client.get("session_id")
    if sid is not None and not _is_session_id(sid):
        bad.append("client.session_id")
    purpose = state.get("purpose", "")
    if not isinstance(purpose, str) or len(purpose) > 4 * MAX_PURPOSE_CHARS:
        bad.append("state.purpose")
    role = state.get("role", "")
    if not isinstance(role, str) or (role and not ROLE_RE.fullmatch(role)):
        bad.append("state.role")
    if not isinstance(client.get("claimed", False), bool):
        bad.append("client.claimed")
    previous = client.get("previous_session_ids", [])
    if not isinstance(previous, list) or len(previous) > MAX_PREVIOUS_SESSION_IDS or not all(
        _is_session_id(p) for p in previous
    ):
        bad.append("client.previous_session_ids")
    if parent is not None:
        bad += _bad_parent(parent)
    return f"bad {', '.join(bad)}" if bad else None


def _bad_parent(parent: dict[str, Any]) -> list[str]:
    missing = [f"parent.{name}" for name in PARENT_REQUIRED if name not in parent]
    if missing:
        return missing
    bad = []
    spawn_id = parent["spawn_id"]
    if not isinstance(spawn_id, str) or not SPAWN_ID_RE.fullmatch(spawn_id):
        bad.append("parent.spawn_id")
    if parent["by"] not in ("agent", "person"):
        bad.append("parent.by")
    sid = parent.get("session_id")
    if sid is not None and not _is_session_id(sid):
        bad.append("parent.session_id")
    depth = parent.get("depth", 1)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 < depth <= 64:
        bad.append("parent.depth")
    for name in ("name", "child_name", "role"):
        value = parent.get(name, "")
        if not isinstance(value, str) or len(value) > MAX_PURPOSE_CHARS:
            bad.append(f"parent.{name}")
    return bad


class CurrentSession:
    """What a holder's registry entry says about it now (registry.Registry.get's view)."""

    __slots__ = ("previous_session_ids", "session_id", "tmux_session")

    def __init__(self, session_id: str | None, previous_session_ids: tuple[str, ...],
                 tmux_session: str | None) -> None:
        self.session_id = session_id
        self.previous_session_ids = previous_session_ids
        self.tmux_session = tmux_session


def current_session(entry_path: str, start: str) -> CurrentSession | None:
    """The entry at `entry_path` when it is usable and names a server started at `start`
    (what Registry.get(server) returns), else None. Never raises for a bad file."""
    from oxtail_py.errors import OxtailError
    from oxtail_py.fsio import load_json

    try:
        data = load_json(entry_path)
    except (OSError, OxtailError, ValueError):
        return None
    if entry_problem(data) is not None or data["server_start"] != start:
        return None
    client, tmux = data.get("client") or {}, data.get("tmux") or {}
    return CurrentSession(client.get("session_id"),
                          tuple(client.get("previous_session_ids", [])), tmux.get("session"))
