"""The registry: one `sessions/<server pid>.json` per running MCP server.

Each server writes only its own entry (atomically). Readers trust nothing in
another entry for liveness: an entry is live only while its pid runs with the
recorded start time, so a recycled pid never resurrects a peer.
"""

from __future__ import annotations

import atexit
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from oxtail_py.errors import InvalidMessageError, OxtailError
from oxtail_py.framing import first_unsafe
from oxtail_py.fsio import atomic_write_json, ensure_tree, is_private_dir, load_json
from oxtail_py.layout import Layout
from oxtail_py.messages import now_iso
from oxtail_py.procs import ProcessIdentity

# Re-exported (`as`): the entry's shape is checked in registry_entry.py, which the hook's
# lean reservation check shares.
from oxtail_py.registry_entry import MAX_PREVIOUS_SESSION_IDS as MAX_PREVIOUS_SESSION_IDS
from oxtail_py.registry_entry import MAX_PURPOSE_CHARS as MAX_PURPOSE_CHARS
from oxtail_py.registry_entry import ROLE_RE as ROLE_RE
from oxtail_py.registry_entry import entry_problem


def validate_purpose(purpose: str) -> str:
    """One line of plain text: peers' listings show it as is (and neutralise it again,
    since a registry file can be written by hand)."""
    purpose = purpose.strip()
    bad = first_unsafe(purpose.replace("\n", "\x00"))  # a line break counts: one line
    if bad is not None:
        raise InvalidMessageError(
            f"purpose has a control character (U+{ord(purpose[bad]):04X} at index {bad}). "
            "Write it as one line of plain text: peers see it in their session list",
            code="invalid-purpose",
        )
    if len(purpose) > MAX_PURPOSE_CHARS:
        raise InvalidMessageError(
            f"purpose is {len(purpose)} characters; the limit is {MAX_PURPOSE_CHARS}. "
            "Say it shorter: peers see it in their session list",
            code="purpose-too-long",
        )
    return purpose


def validate_role(role: str) -> str:
    """A role as `set_my_state` takes it: trimmed, lowercased, one short word ("" clears)."""
    role = role.strip().lower()
    if role and not ROLE_RE.fullmatch(role):
        raise InvalidMessageError(
            f"role {role[:40]!r} is not a short word: use 1-32 of a-z, 0-9, '-' or '_', "
            "starting with a letter or digit (peers target it as @role:<name>)",
            code="invalid-role",
        )
    return role


@dataclass
class ClientInfo:
    type: str | None = None  # "claude" | "codex" | None (unknown)
    session_id: str | None = None
    transcript_path: str | None = None
    cwd: str | None = None
    identity_source: str | None = None  # which strategy gave session_id
    claimed: bool = False  # an explicit claim: sticky, never overridden
    # Ids this server had before its client moved on (/clear, /resume, compaction): mail
    # sent to one of them still finds this agent.
    previous_session_ids: list[str] = field(default_factory=list)


@dataclass
class TmuxInfo:
    pane: str | None = None
    session: str | None = None


@dataclass
class StateCard:
    purpose: str = ""
    role: str = ""  # "" = none; else ROLE_RE (send_message targets @role:<name>)
    updated_at: str | None = None


@dataclass
class ParentInfo:
    """Who spawned this agent, as its server proved it at start (spawn/lineage.py): its
    client was launched with OXTAIL_SPAWN_ID=<spawn_id>, and that spawn's record names the
    parent. Shown to peers; never authority (stop_peer proves lineage again, live)."""

    spawn_id: str
    by: str  # "agent" (an agent's spawn_peer) | "person" (`oxtail-py spawn`)
    session_id: str | None = None  # the parent agent's session id, when it had one
    name: str = ""  # the parent as a listing names it
    depth: int = 1  # 1: spawned by an agent or person that was not itself spawned
    child_name: str = ""  # the name this agent was spawned under
    role: str = ""


@dataclass
class SessionEntry:
    server_pid: int
    server_start: str
    started_at: str = field(default_factory=now_iso)
    client: ClientInfo = field(default_factory=ClientInfo)
    tmux: TmuxInfo = field(default_factory=TmuxInfo)
    state: StateCard = field(default_factory=StateCard)
    capabilities: list[str] = field(default_factory=list)
    parent: ParentInfo | None = None

    @property
    def identity(self) -> ProcessIdentity:
        return ProcessIdentity(self.server_pid, self.server_start)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionEntry:
        """Parse a peer-written entry. Peers (or a hostile process of the same user) write
        these files, so the whole entry is checked first (registry_entry.entry_problem)
        and any failure is one `bad-registry-entry` error: a reader never sees a
        half-valid entry."""
        problem = entry_problem(data)
        if problem is not None:
            raise OxtailError(f"malformed registry entry: {problem}", code="bad-registry-entry")
        parent = data.get("parent")
        return cls(
            server_pid=data["server_pid"],
            server_start=data["server_start"],
            started_at=str(data.get("started_at") or "")[:64],
            client=ClientInfo(**(data.get("client") or {})),
            tmux=TmuxInfo(**(data.get("tmux") or {})),
            state=StateCard(**(data.get("state") or {})),
            capabilities=[str(c)[:64] for c in data.get("capabilities") or []],
            parent=ParentInfo(**parent) if parent is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Rejected:
    path: Path
    reason: str


@dataclass
class RegistryScan:
    entries: list[SessionEntry]
    rejected: list[Rejected]


class Registry:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def write(self, entry: SessionEntry) -> None:
        ensure_tree(self.layout.root, self.layout.sessions_dir)
        atomic_write_json(self.layout.session_file(entry.server_pid), entry.to_dict())

    def remove(self, server: ProcessIdentity) -> None:
        """Delete `server`'s entry, unless the file now belongs to a newer process."""
        path = self.layout.session_file(server.pid)
        entry = self._load(path)
        if isinstance(entry, SessionEntry) and entry.server_start != server.start:
            return
        path.unlink(missing_ok=True)

    def scan(self) -> RegistryScan:
        """Live entries (dead ones pruned, one per session id: the freshest) + rejects."""
        directory = self.layout.sessions_dir
        live: list[SessionEntry] = []
        rejected: list[Rejected] = []
        if not is_private_dir(directory):
            return RegistryScan(live, rejected)
        names = sorted(os.listdir(directory))
        _PARSED.prune(directory, names)
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = directory / name
            loaded = _PARSED.load(path, self._load)
            if isinstance(loaded, str):
                rejected.append(Rejected(path, loaded))
                continue
            if name != f"{loaded.server_pid}.json":
                rejected.append(Rejected(path, f"server_pid {loaded.server_pid} != file name"))
                continue
            if not loaded.identity.is_alive():
                path.unlink(missing_ok=True)
                continue
            live.append(loaded)
        return RegistryScan(_freshest_per_session(live), rejected)

    def read_all(self) -> list[SessionEntry]:
        return self.scan().entries

    def get(self, server: ProcessIdentity) -> SessionEntry | None:
        entry = self._load(self.layout.session_file(server.pid))
        if isinstance(entry, SessionEntry) and entry.server_start == server.start:
            return entry
        return None

    @staticmethod
    def _load(path: Path) -> SessionEntry | str:
        """The entry at `path`, or the reason it cannot be used."""
        try:
            data = load_json(path)
        except FileNotFoundError:
            return "vanished"
        except (OSError, OxtailError, ValueError) as exc:
            return f"unreadable: {exc}"
        if not isinstance(data, dict):
            return "not a JSON object"
        try:
            return SessionEntry.from_dict(data)
        except OxtailError as exc:
            return str(exc)


class _ParsedEntries:
    """Entries already parsed, keyed by path and the file's (inode, size, mtime, ctime).

    A listing reads every entry, and parsing 101 of them was half its cost. Entries are
    replaced only by rename (atomic_write_json), which gives a new inode, so an unchanged
    key means unchanged bytes. Liveness is still checked on every scan. The entries handed
    out are shared: callers treat scanned entries as read-only.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int, int, int], SessionEntry | str]] = {}

    def load(self, path: Path, parse: Callable[[Path], SessionEntry | str]) -> SessionEntry | str:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return "vanished"
        if not stat.S_ISREG(st.st_mode):
            return parse(path)  # parse() gives the precise refusal; never cached
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._guard:
            hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        loaded = parse(path)
        with self._guard:
            self._cache[path] = (key, loaded)
        return loaded

    def prune(self, directory: Path, names: list[str]) -> None:
        """Forget entries whose files are gone (keeps the cache bounded by the directory)."""
        present = {directory / n for n in names}
        with self._guard:
            for path in [p for p in self._cache if p.parent == directory and p not in present]:
                del self._cache[path]


_PARSED: Final = _ParsedEntries()


def _freshest_per_session(entries: list[SessionEntry]) -> list[SessionEntry]:
    """One client can host two servers (a restart, /new): keep the newest per session."""
    by_session: dict[str, SessionEntry] = {}
    anonymous: list[SessionEntry] = []
    for entry in entries:
        sid = entry.client.session_id
        if sid is None:
            anonymous.append(entry)
        elif sid not in by_session or _age_key(entry) > _age_key(by_session[sid]):
            by_session[sid] = entry
    return sorted([*by_session.values(), *anonymous], key=lambda e: e.server_pid)


def _age_key(entry: SessionEntry) -> tuple[float, int]:
    return (float(entry.server_start), entry.server_pid)


def unregister_on_exit(registry: Registry, server: ProcessIdentity) -> None:
    """Remove our entry on normal exit and on SIGTERM/SIGHUP (a kill -9 is pruned by readers)."""
    atexit.register(registry.remove, server)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        registry.remove(server)
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
