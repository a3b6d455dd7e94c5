"""One ask of the asks ledger (asks_ledger.py): its record, its states, and reading it.

Records are parsed defensively (a planted or torn file is `bad-ask-record`, never
trusted) and cached by the file's identity, because every new ask reads the records of
the asks waiting now (the wait-for graph).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import load_json
from oxtail_py.layout import MESSAGE_ID_RE, SESSION_ID_RE, Layout, validate_mailbox_key
from oxtail_py.procs import ProcessIdentity
from oxtail_py.registry_entry import MAX_PREVIOUS_SESSION_IDS

log = logging.getLogger("oxtail_py")


class AskState(StrEnum):
    WAITING = "waiting"  # its ask_peer call blocks now (while the asker's server lives)
    PENDING = "pending"  # the call ended unanswered; a late reply is still expected
    ANSWERED = "answered"  # the call returned the reply
    LATE_ANSWERED = "late-answered"  # the reply came after the call ended, and was handed over


@dataclass(frozen=True, slots=True)
class AskRecord:
    request_id: str
    asker: str  # the asker's mailbox key (its session id, or a pid box key)
    asker_session_id: str | None
    asker_server: str  # pid-start token of the asker's server
    target_session_id: str
    target_name: str
    project_root: str  # the asker's project (realpath)
    state: AskState
    created_at: str
    updated_at: str
    created_ts: float  # for pruning (wall clock)
    reply_id: str | None = None  # the message that answered it
    # The asker's session ids before /clear (its server follows its client): a peer that
    # resolved it earlier waits on one of these, and the graph must see the same agent.
    asker_previous_session_ids: tuple[str, ...] = ()

    @property
    def node(self) -> str:
        """The asker as a node of the wait-for graph (targets are session ids)."""
        return self.asker_session_id or self.asker

    def server(self) -> ProcessIdentity | None:
        return ProcessIdentity.parse_token(self.asker_server)

    def effective_state(self) -> AskState:
        """`waiting` only while the asker's server lives; a killed asker's ask is pending."""
        if self.state != AskState.WAITING:
            return self.state
        server = self.server()
        return AskState.WAITING if server is not None and server.is_alive() else AskState.PENDING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> AskRecord:
        """Parse a record; OxtailError(`bad-ask-record`) says why it is unusable."""
        if not isinstance(data, dict):
            raise OxtailError("not a JSON object", code="bad-ask-record")
        try:
            record = cls(
                request_id=_str(data, "request_id"),
                asker=_str(data, "asker"),
                asker_session_id=_opt_str(data, "asker_session_id"),
                asker_server=_str(data, "asker_server"),
                target_session_id=_str(data, "target_session_id"),
                target_name=_str(data, "target_name")[:128],
                project_root=_str(data, "project_root"),
                state=AskState(_str(data, "state")),
                created_at=_str(data, "created_at")[:64],
                updated_at=_str(data, "updated_at")[:64],
                created_ts=float(data["created_ts"]),
                reply_id=_opt_str(data, "reply_id"),
                asker_previous_session_ids=_session_ids(data.get("asker_previous_session_ids")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise OxtailError(f"malformed ask record: {exc}", code="bad-ask-record") from exc
        ids_ok = MESSAGE_ID_RE.fullmatch(record.request_id) and (
            record.reply_id is None or MESSAGE_ID_RE.fullmatch(record.reply_id)
        )
        sids_ok = SESSION_ID_RE.fullmatch(record.target_session_id) and (
            record.asker_session_id is None or SESSION_ID_RE.fullmatch(record.asker_session_id)
        )
        if not (ids_ok and sids_ok and record.server() is not None):
            raise OxtailError("malformed ask record: bad id shapes", code="bad-ask-record")
        validate_mailbox_key(record.asker)
        return record


def _str(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or len(value) > 4096:
        raise ValueError(f"{key} is not a short string")
    return value


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _str(data, key)


def _session_ids(value: object) -> tuple[str, ...]:
    """A list of session ids (absent: none); anything else is a malformed record."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_PREVIOUS_SESSION_IDS:
        raise ValueError("asker_previous_session_ids is not a short list")
    if not all(isinstance(v, str) and SESSION_ID_RE.fullmatch(v) for v in value):
        raise ValueError("asker_previous_session_ids holds a malformed session id")
    return tuple(value)


def load(layout: Layout, asker: str, request_id: str) -> AskRecord | None:
    """One record, or None if there is none (or it is unusable: logged)."""
    try:
        return AskRecord.from_dict(load_json(layout.ask_file(asker, request_id)))
    except FileNotFoundError:
        return None
    except (OSError, OxtailError, ValueError) as exc:
        log.warning("ask %s/%s unusable: %s", asker, request_id, exc)
        return None


class _Parsed:
    """Records already parsed, keyed by path and the file's (inode, size, mtime, ctime).

    Every new ask reads the whole ledger (the wait-for graph); parsing each record every
    time cost ~10 ms at 200 records. Records are replaced only by rename (a new inode), so
    an unchanged key means unchanged bytes. A file that is not regular is never cached
    (load_json gives the precise refusal each time)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int, int, int], AskRecord]] = {}

    def load(self, path: Path) -> AskRecord:
        st = os.lstat(path)
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._guard:
            hit = self._cache.get(path)
        if hit is not None and hit[0] == key and stat.S_ISREG(st.st_mode):
            return hit[1]
        record = AskRecord.from_dict(load_json(path))
        if stat.S_ISREG(st.st_mode):
            with self._guard:
                if len(self._cache) > _MAX_CACHED:
                    self._cache.clear()
                self._cache[path] = (key, record)
        return record


_MAX_CACHED: Final = 20_000
PARSED: Final = _Parsed()


def records_in(directory: Path) -> list[AskRecord]:
    """The usable records in one asker's directory (a record must be named by its own
    request id and lie in its own asker's directory)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found: list[AskRecord] = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            record = PARSED.load(directory / name)
        except FileNotFoundError:
            continue
        except (OSError, OxtailError, ValueError) as exc:
            log.warning("ask record %s skipped: %s", directory / name, exc)
            continue
        if f"{record.request_id}.json" == name and record.asker == directory.name:
            found.append(record)
    return found
