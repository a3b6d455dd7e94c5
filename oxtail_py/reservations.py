"""File reservations: who may edit what in a project, with no daemon.

Each holder (an MCP server: pid + start time) writes only its own file,
`reservations/<project key>/h.<pid>-<start>.json` (atomically). A grant is decided
under the project's DirLock: read every live reservation, check for conflicts, write
our file. Readers (the hook, the git guard, list_reservations) take no lock.

A reservation lives while its holder's server runs (pid + start: a dead holder's
reservations end at once, and the next reader deletes its file) and until its TTL.
The holder's session id is read from its registry entry at each check, so a /clear
(the same server, a new session id) keeps its reservations and its own edits pass.
A corrupt or forged holder file is quarantined (renamed `q.*`) and never blocks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from oxtail_py.errors import OxtailError
from oxtail_py.framing import first_unsafe
from oxtail_py.fsio import atomic_write_bytes, ensure_tree
from oxtail_py.globmatch import Nfa, from_regex, overlap
from oxtail_py.holder_files import MAX_ENTRIES as MAX_ENTRIES
from oxtail_py.holder_files import MAX_NAME_CHARS as MAX_NAME_CHARS
from oxtail_py.holder_files import MAX_REASON_CHARS as MAX_REASON_CHARS
from oxtail_py.holder_files import scan
from oxtail_py.layout import Layout, ReservationPaths
from oxtail_py.procs import ProcessIdentity

if TYPE_CHECKING:
    from oxtail_py.locks import DirLock

MAX_TTL_S: Final = 24 * 3600
MAX_PATHS: Final = 64
LOCK_TIMEOUT_S: Final = 5.0


class ReservationError(OxtailError):
    code = "bad-reservation"


@dataclass(frozen=True, slots=True)
class Holder:
    server: ProcessIdentity
    session_id: str
    client_type: str | None = None
    name: str | None = None  # tmux session name, when the holder has one
    previous_session_ids: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.session_id

    def is_session(self, session_id: str | None) -> bool:
        """True when `session_id` is this holder's (now, or before its client moved on)."""
        return session_id is not None and (
            session_id == self.session_id or session_id in self.previous_session_ids
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    holder: Holder
    given: str
    pattern: str
    regex: str
    kind: str
    exclusive: bool
    reason: str
    granted_at: float
    expires_at: float

    def nfa(self) -> Nfa:
        return from_regex(self.regex)

    def entry(self) -> dict[str, Any]:
        data = asdict(self)
        del data["holder"]
        return data


@dataclass(frozen=True, slots=True)
class Conflict:
    requested: str  # the caller's path or glob
    theirs: Reservation
    example: str  # a path both patterns match


@dataclass(frozen=True, slots=True)
class ReserveResult:
    granted: list[Reservation]
    conflicts: list[Conflict]


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    released: list[Reservation]
    not_held: list[str]  # paths no reservation of the caller's had


def check_request(paths: Sequence[str], ttl_s: int, reason: str) -> str:
    """Refuse bad arguments before anything is read; returns the reason, trimmed."""
    if not paths:
        raise ReservationError("paths is empty; name at least one file, directory or glob",
                               code="empty-paths")
    if len(paths) > MAX_PATHS:
        raise ReservationError(f"{len(paths)} paths; at most {MAX_PATHS} per call (use a "
                               "directory or a glob)", code="too-many-paths")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 0 < ttl_s <= MAX_TTL_S:
        raise ReservationError(f"ttl_s={ttl_s!r}: give a whole number of seconds from 1 to "
                               f"{MAX_TTL_S} (24 h); reserving again renews", code="bad-ttl")
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS or first_unsafe(reason.replace("\n", "\x00")) is not None:
        raise ReservationError(f"reason must be one line of plain text, at most "
                               f"{MAX_REASON_CHARS} characters", code="bad-reason")
    return reason


# -- holder files ------------------------------------------------------------------------


def _holder_to_file(holder: Holder, project_root: Path, entries: list[Reservation]) -> Any:
    return {
        "holder": {"server_pid": holder.server.pid, "server_start": holder.server.start,
                   "session_id": holder.session_id, "client_type": holder.client_type,
                   "name": holder.name},
        "project_root": str(project_root),
        "reservations": [r.entry() for r in entries],
    }


class ReservationBook:
    """The reservations of one project (a realpath) under one state root."""

    def __init__(self, layout: Layout, project_root: Path) -> None:
        self.layout = layout
        self.project_root = project_root
        self.paths: ReservationPaths = layout.reservations(project_root)

    def all(self, now: float | None = None, *, include_expired: bool = False) -> list[Reservation]:
        """Every live reservation (holder alive, not expired), read by the one reader the
        hook shares (holder_files.scan): dead holders' files are deleted, corrupt ones
        quarantined; neither ever blocks anything. A holder's session is its registry
        entry's now (/clear keeps its reservations)."""
        found: list[Reservation] = []
        for h, entries in scan(str(self.layout.root), str(self.project_root), now,
                               include_expired=include_expired):
            holder = Holder(ProcessIdentity(h.pid, h.start), h.session_id, h.client_type,
                            h.name, h.previous_session_ids)
            found += [Reservation(holder, e.given, e.pattern, e.regex, e.kind, e.exclusive,
                                  e.reason, e.granted_at, e.expires_at) for e in entries]
        return found

    def of(self, server: ProcessIdentity, now: float | None = None) -> list[Reservation]:
        return [r for r in self.all(now) if r.holder.server == server]

    def _write(self, holder: Holder, entries: list[Reservation]) -> None:
        path = self.paths.holder(holder.server)
        if entries:
            # No fsync: a power cut ends every holder, and with it every reservation.
            data = json.dumps(_holder_to_file(holder, self.project_root, entries),
                              ensure_ascii=False, indent=1) + "\n"
            atomic_write_bytes(path, data.encode("utf-8"), durable=False)
        else:
            path.unlink(missing_ok=True)  # no file: the hook's fast path stays pure shell

    def _lock(self) -> DirLock:
        from oxtail_py.locks import DirLock  # writers only: the hook never imports it

        ensure_tree(self.layout.root, self.paths.directory)
        return DirLock(self.paths.lock, timeout=LOCK_TIMEOUT_S)

    def reserve(
        self,
        holder: Holder,
        patterns: Sequence[tuple[str, str, str, str]],  # (given, pattern, regex, kind)
        *,
        exclusive: bool,
        ttl_s: int,
        reason: str,
        now: float | None = None,
    ) -> ReserveResult:
        """Grant each pattern no other live holder's reservation conflicts with
        (exclusive on either side, and some path matches both); renew our own."""
        now = time.time() if now is None else now
        with self._lock():
            live = self.all(now)
            others = [r for r in live if r.holder.server != holder.server]
            mine = [r for r in live if r.holder.server == holder.server]
            granted: list[Reservation] = []
            conflicts: list[Conflict] = []
            for given, pattern, regex, kind in patterns:
                nfa = from_regex(regex)
                hits = [Conflict(given, r, example) for r in others
                        if (exclusive or r.exclusive)
                        and (example := overlap(nfa, r.nfa())) is not None]
                if hits:
                    conflicts += hits
                    continue
                granted.append(Reservation(holder, given, pattern, regex, kind, exclusive,
                                           reason, now, now + ttl_s))
            renewed = {g.pattern for g in granted}
            kept = [r for r in mine if r.pattern not in renewed]
            if len(kept) + len(granted) > MAX_ENTRIES:
                raise ReservationError(f"at most {MAX_ENTRIES} reservations per agent; release "
                                       "some, or reserve a directory or glob", code="too-many")
            if granted:
                self._write(holder, kept + granted)
            return ReserveResult(granted, conflicts)

    def drop_expired(self, server: ProcessIdentity, now: float | None = None) -> float | None:
        """Rewrite our file without its expired reservations (none left: the file goes,
        and the hook's edit path is pure shell again). Returns the next expiry, if any."""
        now = time.time() if now is None else now
        with self._lock():
            mine = [r for r in self.all(now, include_expired=True) if r.holder.server == server]
            live = [r for r in mine if r.expires_at > now]
            if len(live) != len(mine):
                self._write(mine[0].holder, live)
            return min((r.expires_at for r in live), default=None)

    def release(
        self, holder: Holder, patterns: Sequence[tuple[str, str]] | None
    ) -> ReleaseResult:
        """Release ours: all of them (`patterns` None) or those named by (given, pattern).
        Naming another holder's reservation is refused, and nothing is released."""
        with self._lock():
            everything = self.all(include_expired=True)
            mine = [r for r in everything if r.holder.server == holder.server]
            if patterns is None:
                self._write(holder, [])
                return ReleaseResult(mine, [])
            wanted = {p for _, p in patterns} | {g for g, _ in patterns}
            for r in everything:
                theirs = r.holder.server != holder.server and r.pattern in wanted
                if theirs and not any(m.pattern == r.pattern for m in mine):
                    raise ReservationError(
                        f"{r.given!r} is reserved by {r.holder.label} (session "
                        f"{r.holder.session_id}), not by you; only its holder releases it. "
                        f'Ask: ask_peer(target="{r.holder.session_id}", body="please '
                        f'release {r.given}")', code="not-your-reservation")
            released = [r for r in mine if r.pattern in wanted or r.given in wanted]
            self._write(holder, [r for r in mine if r not in released])
            held = {r.pattern for r in released} | {r.given for r in released}
            return ReleaseResult(released, [g for g, p in patterns
                                            if p not in held and g not in held])
