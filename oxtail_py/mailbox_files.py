"""The files inside one mailbox, below the protocol: lines, appends, the two ledgers.

* Every read goes through fsio (regular files only, never blocking on a FIFO,
  capped at MAX_MAILBOX_FILE_BYTES).
* Every append is all or nothing: `append_all` writes with fsio.write_all and,
  if the write fails part-way (a full disk), truncates the file back to its old
  size, so a failed send leaves no torn line behind to be quarantined later.
  The caller holds the mailbox lock: the truncate must not cut a racing append.
* `delivered.txt` is bounded, but its trim never drops an id that is still in a
  claim file: those ids are exactly the ones a recovery must filter out (a batch
  recorded and not yet unlinked), so dropping one would re-deliver it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from oxtail_py.errors import DiskFullError, InvalidMessageError, OxtailError
from oxtail_py.fsio import (
    MAX_MAILBOX_FILE_BYTES,
    atomic_write_bytes,
    open_private,
    read_private,
    write_all,
)
from oxtail_py.messages import Message, now_iso

log = logging.getLogger(__name__)

# delivered.txt is trimmed once it passes _DELIVERED_MAX ids (at most 17 bytes each)
# to the newest _DELIVERED_KEEP, plus every id still in a claim (see module doc).
DELIVERED_MAX: Final = 4096
DELIVERED_KEEP: Final = 2048
_ID_LINE_BYTES: Final = 17


@dataclass(frozen=True, slots=True)
class Line:
    raw: bytes  # exactly as on disk, newline included
    message: Message | None
    error: str | None


def split_lines(data: bytes) -> list[bytes]:
    lines = data.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    return [ln for ln in lines if ln.strip()]


def parse(raw: bytes) -> Line:
    try:
        return Line(raw, Message.from_line(raw), None)
    except InvalidMessageError as exc:
        return Line(raw, None, str(exc))


def read_file(path: Path) -> bytes:
    return read_private(path, max_bytes=MAX_MAILBOX_FILE_BYTES)


def read_lines(path: Path) -> list[bytes]:
    try:
        return split_lines(read_file(path))
    except FileNotFoundError:
        return []


def append_all(path: Path, data: bytes, *, seal_torn_line: bool = True) -> None:
    """(mailbox lock held) Append all of `data` to `path`, or nothing (DiskFullError).

    A last line torn by a killed writer is first closed with a newline, so that it
    is quarantined alone instead of swallowing the line appended after it.
    """
    fd = open_private(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size
        if seal_torn_line and size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            write_all(fd, data, path)
        except BaseException:
            # Roll back a partial append. Shrinking a file needs no free space; if it
            # fails anyway, the torn tail is sealed and quarantined by the next append,
            # and the caller was told the write failed, so nothing it counts on is lost.
            with suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def quarantine(path: Path, bad: Iterable[Line]) -> None:
    """(mailbox lock held) Keep corrupt lines with the reason; never drop them."""
    records = [
        json.dumps(
            {
                "quarantined_at": now_iso(),
                "reason": line.error,
                "raw": line.raw.decode("utf-8", "backslashreplace").rstrip("\n"),
            },
            ensure_ascii=False,
        )
        + "\n"
        for line in bad
    ]
    append_all(path, "".join(records).encode())


def delivered_ids(path: Path) -> set[str]:
    try:
        return set(read_file(path).decode("ascii", "replace").split())
    except FileNotFoundError:
        return set()


def record_delivered(path: Path, ids: Iterable[str], claim_files: Iterable[Path]) -> None:
    """(mailbox lock held) Append `ids`; trim the file once it is large (module doc).

    `claim_files`: every claim of this mailbox, read only when a trim is due.
    """
    append_all(path, "".join(f"{i}\n" for i in ids).encode())
    try:
        size = os.lstat(path).st_size
    except FileNotFoundError:
        return
    if size <= DELIVERED_MAX * _ID_LINE_BYTES:
        return
    recorded = read_file(path).decode("ascii", "replace").split()
    if len(recorded) <= DELIVERED_KEEP:
        return
    still_claimed = _ids_in(claim_files)
    older, newest = recorded[:-DELIVERED_KEEP], recorded[-DELIVERED_KEEP:]
    kept = [i for i in older if i in still_claimed] + newest
    try:
        atomic_write_bytes(path, "".join(f"{i}\n" for i in kept).encode(), durable=False)
    except DiskFullError:
        # The trim needs room for a copy; the untrimmed ledger is still correct,
        # and the next record tries again.
        log.warning("%s: disk full, delivered ids not trimmed this time", path)


def _ids_in(claim_files: Iterable[Path]) -> set[str]:
    ids: set[str] = set()
    for claim in claim_files:
        try:
            raws = read_lines(claim)
        except (OSError, OxtailError) as exc:  # an unreadable claim holds no id we can filter
            log.warning("%s: not read for the delivered trim: %s", claim, exc)
            continue
        for raw in raws:
            message = parse(raw).message
            if message is not None:
                ids.add(message.id)
    return ids
