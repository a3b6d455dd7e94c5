"""Offline recipients: a session of this project whose client exited keeps its mail.

Mail is keyed by session id, so a message for a session with no live server simply
waits in that session's inbox; when the session comes back (`claude --resume`, a Codex
thread resumed), its new server reads the same box and the hooks deliver it.

Which session ids may be written to while offline (scope is never widened by an
argument):
- one whose transcript, as its own client wrote it, records a cwd inside the sender's
  project (the same proof a claim must pass: identity/claims.py);
- one the caller already proved (`trusted=True`): the sender of a message in our own
  received-ledger, answered by reply_to_message / complete_work / block_work. That id
  came with a message in our own inbox, stamped by its sender's server with its own
  identity (never a tool argument), and a sender's server refuses cross-project sends;
  only a process able to write the state root could plant it, and such a process can
  write any inbox itself.
A session id held by a live agent of another project never gets here: discovery refuses
it first (cross-project).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oxtail_py import transcripts
from oxtail_py.discovery import Row, TargetError
from oxtail_py.identity import CLAUDE, CODEX
from oxtail_py.layout import Layout
from oxtail_py.names import is_session_id
from oxtail_py.scope import contains
from oxtail_py.status import read_status


@dataclass(frozen=True, slots=True)
class OfflineSession:
    session_id: str
    client_type: str | None
    last_seen_epoch: float | None  # the latest of its hook marker and transcript mtimes


def find_offline_session(
    layout: Layout,
    project_root: Path,
    session_id: str,
    *,
    home: Path | None,
    trusted: bool = False,
) -> OfflineSession | None:
    """`session_id` as an offline recipient of `project_root`, or None if not provable."""
    if not is_session_id(session_id):
        return None
    client_type: str | None = None
    seen: list[float] = []
    for kind in (CLAUDE, CODEX):
        path = transcripts.locate_transcript(kind, session_id, home=home)
        if path is None:
            continue
        cwd = transcripts.transcript_cwd(path)
        if cwd is None or not contains(project_root, cwd):
            continue
        client_type = kind
        with contextlib.suppress(OSError):
            seen.append(os.stat(path).st_mtime)
        break
    if client_type is None and not trusted:
        return None
    status = read_status(layout, session_id)
    if status.mtime is not None:
        seen.append(status.mtime)
    return OfflineSession(session_id, client_type, max(seen) if seen else None)


def offline_row(session: OfflineSession) -> Row:
    """A row for sending: no entry, no pane; its mailbox key is the session id."""
    return Row(
        kind="agent",
        name=session.session_id,
        client_type=session.client_type,
        client_session_id=session.session_id,
    )


def resolve_recipient(
    resolve_live: Callable[[], Row],
    layout: Layout,
    project_root: Path,
    target: str,
    *,
    home: Path | None,
    trusted: bool,
    mine: list[str],
) -> tuple[Row, bool]:
    """(row, offline): a live agent of the project if `resolve_live` finds one, else the
    offline session `target` names, if provable; else resolve_live's own error."""
    try:
        return resolve_live(), False
    except TargetError as exc:
        if exc.code != "unknown-target":
            raise
        found = find_offline_session(layout, project_root, target.strip(), home=home,
                                     trusted=trusted)
        if found is None or found.session_id in mine:
            raise
        return offline_row(found), True
