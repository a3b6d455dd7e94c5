"""The asks ledger: one file per ask_peer, `asks/<asker mailbox key>/<request id>.json`.

An ask is `waiting` while its ask_peer call blocks, `pending` once the call has ended
without an answer (timeout, peer gone, cancelled), `answered` when the call returned the
reply, `late-answered` when a reply to a pending ask was handed over later. `waiting` is
believed only while the asker's server (pid + start time, recorded) is alive: a killed
asker leaves an ask that is effectively `pending`, never a phantom edge in the graph.

The ledger is the wait-for graph. An edge asker -> target exists for every live waiting
ask. A new ask asker -> target that closes a cycle (the target, or someone it waits on,
waits on the asker) is refused at once with `would-deadlock`: the check and the record
are made under one lock (`asks/lock`), so of two crossing asks exactly the second is
refused, never both, never neither.

Only the asker's side writes its records (its server, or its own hooks marking a late
reply handed over). Reads are capped and type-checked (fsio); a record that does not
parse is skipped with a warning, never trusted.

For a cockpit: `list_asks(layout, project_root)` lists records (typed `AskRecord`),
`effective_state` says what a record means now, `find_cycles` flags the cycles.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_bytes, ensure_tree, is_private_dir, load_json
from oxtail_py.layout import MESSAGE_ID_RE, SESSION_ID_RE, Layout, validate_mailbox_key
from oxtail_py.locks import DirLock
from oxtail_py.messages import Message, now_iso
from oxtail_py.procs import ProcessIdentity
from oxtail_py.scope import contains

log = logging.getLogger("oxtail_py")

# An answered ask is kept this long (the cockpit shows recent ones); a pending one this
# long, after which its late reply, if any ever comes, is plain mail.
KEEP_DONE_S: Final = 24 * 3600.0
KEEP_PENDING_S: Final = 7 * 24 * 3600.0
# One asker's directory holds at most this many records; past it the oldest done ones go.
MAX_ASKS_PER_ASKER: Final = 256
LOCK_TIMEOUT_S: Final = 5.0
# An asker's old records are pruned at most this often per process (each prune reads them).
PRUNE_EVERY_S: Final = 600.0
_LAST_PRUNE: dict[str, float] = {}


class AskState(StrEnum):
    WAITING = "waiting"  # its ask_peer call blocks now (while the asker's server lives)
    PENDING = "pending"  # the call ended unanswered; a late reply is still expected
    ANSWERED = "answered"  # the call returned the reply
    LATE_ANSWERED = "late-answered"  # the reply came after the call ended, and was handed over


class WouldDeadlockError(OxtailError):
    code = "would-deadlock"


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


# -- reading --------------------------------------------------------------------------


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
_PARSED: Final = _Parsed()


def _records_in(directory: Path) -> list[AskRecord]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found: list[AskRecord] = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            record = _PARSED.load(directory / name)
        except FileNotFoundError:
            continue
        except (OSError, OxtailError, ValueError) as exc:
            log.warning("ask record %s skipped: %s", directory / name, exc)
            continue
        if f"{record.request_id}.json" == name and record.asker == directory.name:
            found.append(record)
    return found


def list_asks(
    layout: Layout, project_root: Path | None = None, *, asker: str | None = None
) -> list[AskRecord]:
    """Every readable record, oldest first: of one asker, or of askers in `project_root`
    (the asker's recorded project lies inside it), or all."""
    base = layout.asks_dir
    if not is_private_dir(base):
        return []
    if asker is not None:
        directories = [layout.asker_dir(asker)]
    else:
        try:
            directories = [base / n for n in os.listdir(base) if n != "lock" and n[:1] != "."]
        except OSError:
            return []
    records = [r for d in directories if is_private_dir(d) for r in _records_in(d)]
    if project_root is not None:
        records = [r for r in records if contains(project_root, r.project_root)]
    return sorted(records, key=lambda r: r.created_ts)


def wait_for_edges(records: Iterable[AskRecord]) -> dict[str, set[str]]:
    """asker node -> the session ids it waits on now (live waiting asks only)."""
    edges: dict[str, set[str]] = {}
    for record in records:
        if record.effective_state() == AskState.WAITING:
            edges.setdefault(record.node, set()).add(record.target_session_id)
    return edges


def path_between(edges: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A chain of waits start -> ... -> goal, or None."""
    parents: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            chain: list[str] = []
            at: str | None = node
            while at is not None:
                chain.append(at)
                at = parents[at]
            return chain[::-1]
        for nxt in edges.get(node, ()):
            if nxt not in parents:
                parents[nxt] = node
                frontier.append(nxt)
    return None


def find_cycles(records: Iterable[AskRecord]) -> list[list[str]]:
    """Every cycle among live waiting asks, each as [a, b, ..., a] (the cockpit flags them;
    opening asks refuses them, so one here means a record was forged or raced a crash)."""
    edges = wait_for_edges(records)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for node, targets in edges.items():
        for target in targets:
            chain = path_between(edges, target, node)
            if chain is not None and frozenset(chain) not in seen:
                seen.add(frozenset(chain))
                cycles.append([node, *chain])
    return cycles


# -- writing (the asker's side only) ---------------------------------------------------


def open_ask(layout: Layout, record: AskRecord) -> None:
    """Record `record` (state waiting), unless it would close a cycle of waits: then
    raise WouldDeadlockError naming the chain, with nothing recorded."""
    ensure_tree(layout.root, layout.asker_dir(record.asker))
    with DirLock(layout.asks_lock, LOCK_TIMEOUT_S):
        records = list_asks(layout)
        chain = path_between(wait_for_edges(records), record.target_session_id, record.node)
        if chain is not None:
            raise WouldDeadlockError(_deadlock_message(record, chain, records))
        _write(layout, record)
    if time.monotonic() - _LAST_PRUNE.get(record.asker, -PRUNE_EVERY_S) >= PRUNE_EVERY_S:
        _LAST_PRUNE[record.asker] = time.monotonic()
        prune(layout, record.asker)


def _deadlock_message(record: AskRecord, chain: list[str], records: list[AskRecord]) -> str:
    """Who waits on whom, and the request waiting on the caller (the one to answer)."""
    shown = " -> ".join([record.node, *chain])
    waiting_on_me = next(
        (
            r.request_id
            for r in records
            if r.node == chain[-2]
            and r.target_session_id == record.node
            and r.effective_state() == AskState.WAITING
        ),
        None,
    )
    answer = (
        f"Answer its request {waiting_on_me} first (reply_to_message with message_id "
        f"{waiting_on_me}, or send_message with reply_to={waiting_on_me})"
        if waiting_on_me
        else "Answer the request waiting on you first (read_my_messages shows it)"
    )
    return (
        f"{record.target_name!r} is itself waiting (through ask_peer) for an answer from "
        f"you: {shown}. Asking it now would leave both waiting until the timeout. "
        f"{answer}, or use send_message, which does not wait"
    )


def _write(layout: Layout, record: AskRecord) -> None:
    """Atomic (rename), not fsynced: like the mailbox, safe against a killed process, not a
    power cut; the fsync was most of an ask's ledger cost."""
    data = (json.dumps(record.to_dict(), ensure_ascii=False, indent=1) + "\n").encode()
    atomic_write_bytes(layout.ask_file(record.asker, record.request_id), data, durable=False)


def set_state(
    layout: Layout,
    asker: str,
    request_id: str,
    state: AskState,
    *,
    reply_id: str | None = None,
) -> AskRecord | None:
    """Move one ask on. Only forward: waiting -> pending | answered, pending ->
    late-answered (or answered); a done ask stays done. Returns the record as now stored."""
    record = load(layout, asker, request_id)
    if record is None:
        return None
    allowed = {
        AskState.WAITING: {AskState.PENDING, AskState.ANSWERED},
        AskState.PENDING: {AskState.LATE_ANSWERED, AskState.ANSWERED},
    }
    # A waiting ask whose asker's server died is pending in effect (its late reply may
    # be handed over by the asker's next server or its hooks).
    if state not in allowed.get(record.effective_state(), set()):
        return record
    moved = replace(record, state=state, updated_at=now_iso(), reply_id=reply_id)
    _write(layout, moved)
    return moved


@dataclass(frozen=True, slots=True)
class LateReplies:
    """Which of a batch of messages answer asks of the reader's that ended unanswered."""

    by_request: dict[str, str]  # request id -> asker key (where its record lives)

    @property
    def request_ids(self) -> frozenset[str]:
        return frozenset(self.by_request)

    def of(self, message: Message) -> str | None:
        """The request id `message` is a late reply to, or None."""
        return message.reply_to if message.reply_to in self.by_request else None


def late_replies(layout: Layout, askers: Iterable[str], messages: Iterable[Message]) -> LateReplies:
    """The messages among `messages` that reply to a pending (or already late-answered)
    ask of one of `askers`: the reader should see them marked as late replies."""
    wanted = {m.reply_to for m in messages if m.reply_to and MESSAGE_ID_RE.fullmatch(m.reply_to)}
    found: dict[str, str] = {}
    for asker in askers:
        for request_id in wanted - found.keys():
            record = load(layout, asker, request_id)
            if record is not None and record.effective_state() in (
                AskState.PENDING,
                AskState.LATE_ANSWERED,
            ):
                found[request_id] = asker
    return LateReplies(found)


def record_handed_over(layout: Layout, late: LateReplies, messages: Iterable[Message]) -> None:
    """The late replies among `messages` were handed over: their asks are late-answered.
    Best effort: the reader has the reply whatever the ledger says."""
    for message in messages:
        request_id = late.of(message)
        if request_id is None:
            continue
        try:
            set_state(
                layout, late.by_request[request_id], request_id, AskState.LATE_ANSWERED,
                reply_id=message.id,
            )  # fmt: skip
        except (OSError, OxtailError) as exc:
            log.warning("ask %s: not marked late-answered: %s", request_id, exc)


def prune(layout: Layout, asker: str, now: float | None = None) -> int:
    """Drop an asker's done records after KEEP_DONE_S, pending ones after KEEP_PENDING_S,
    and the oldest done ones past MAX_ASKS_PER_ASKER. Returns how many went."""
    now = time.time() if now is None else now
    records = list_asks(layout, asker=asker)
    gone: list[AskRecord] = []
    done = [r for r in records if r.state in (AskState.ANSWERED, AskState.LATE_ANSWERED)]
    for record in records:
        keep = KEEP_DONE_S if record in done else KEEP_PENDING_S
        if now - record.created_ts > keep and record.effective_state() != AskState.WAITING:
            gone.append(record)
    excess = len(records) - len(gone) - MAX_ASKS_PER_ASKER
    if excess > 0:
        gone += [r for r in done if r not in gone][:excess]
    for record in gone:
        layout.ask_file(asker, record.request_id).unlink(missing_ok=True)
    return len(gone)


def discard(layout: Layout, asker: str, request_id: str) -> None:
    """Forget an ask that never went out (its send failed after it was recorded)."""
    layout.ask_file(asker, request_id).unlink(missing_ok=True)
