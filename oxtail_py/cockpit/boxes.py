"""What one mailbox shows an observer, read without taking its lock or changing it.

The cockpit only looks: it counts what waits, dates the oldest line, lists the live
asks (`await.` markers) and notes what is wrong (quarantined lines, a claim whose reader
died, an inbox that is not a regular file). Every read goes through fsio (no symlink,
no FIFO, capped), and a bad file is a problem in the result, never an exception.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import is_private_dir
from oxtail_py.layout import MailboxPaths
from oxtail_py.mailbox_files import read_file, split_lines
from oxtail_py.messages import Message


@dataclass(frozen=True, slots=True)
class AwaitMarker:
    request_id: str
    waiter_pid: int
    since: float  # the marker's mtime: when the ask began


@dataclass
class BoxView:
    key: str
    unread: int = 0
    oldest_unread: float | None = None  # epoch s of the oldest waiting message
    message_ids: frozenset[str] = frozenset()
    awaiting: list[AwaitMarker] = field(default_factory=list)  # live waiters only
    quarantined: int = 0
    stranded_claims: int = 0  # claims of readers that are gone: the next drain takes them
    problems: list[str] = field(default_factory=list)


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def inspect_box(paths: MailboxPaths) -> BoxView:
    view = BoxView(paths.directory.name)
    if not is_private_dir(paths.directory):
        return view
    try:
        lines = split_lines(read_file(paths.inbox))
    except FileNotFoundError:
        lines = []
    except (OSError, OxtailError) as exc:
        view.problems.append(f"inbox unreadable: {exc}")
        lines = []
    view.unread = len(lines)
    ids: set[str] = set()
    for raw in lines:
        try:
            msg = Message.from_line(raw)
        except OxtailError:
            continue  # a corrupt line still waits: the next drain quarantines it
        ids.add(msg.id)
        when = _epoch(msg.enqueued_at)
        if when is not None and (view.oldest_unread is None or when < view.oldest_unread):
            view.oldest_unread = when
    view.message_ids = frozenset(ids)
    try:
        names = os.listdir(paths.directory)
    except OSError as exc:
        view.problems.append(f"mailbox unreadable: {exc}")
        return view
    for name in names:
        _note_entry(view, paths, name)
    return view


def _note_entry(view: BoxView, paths: MailboxPaths, name: str) -> None:
    parts = MailboxPaths.awaiting_parts(name)
    if parts is not None:
        request_id, waiter = parts
        if waiter is not None and waiter.is_alive():
            try:
                since = os.lstat(paths.directory / name).st_mtime
            except OSError:
                return  # the ask just ended
            view.awaiting.append(AwaitMarker(request_id, waiter.pid, since))
        return
    if MailboxPaths.is_claim_name(name):
        owner = MailboxPaths.claim_owner(paths.directory / name)
        if owner is None or not owner.is_alive():
            view.stranded_claims += 1
        return
    if name == paths.quarantine.name:
        view.quarantined = _count_lines(paths.quarantine, view)


def _count_lines(path: Path, view: BoxView) -> int:
    try:
        return len(split_lines(read_file(path)))
    except FileNotFoundError:
        return 0
    except (OSError, OxtailError) as exc:
        view.problems.append(f"quarantine unreadable: {exc}")
        return 0
