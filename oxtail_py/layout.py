"""The one module that knows the on-disk layout under the state root.

    $AGENTMAIL_HOME (default ~/.agentmail)          0700
      sessions/<server pid>.json                     registry entries (one per MCP server)
      mailboxes/<key>/                               one mailbox per agent identity
        inbox.jsonl                                  append-only queue, one JSON message a line
        lock/owner.<pid>-<start>                     the mailbox lock (see locks.py)
        claim.<pid>-<start>.<nonce>.jsonl            messages a reader took and has not committed
        await.<request id>.<pid>-<start>             an ask_peer waiting: drains leave its reply
        delivered.txt                                ids already handed over (bounded)
        quarantine.jsonl                             corrupt lines, kept with the reason
      status/<session id>                            busy/idle marker written by the hooks
      wake/<mailbox key>/                            waking a peer: last.json (debounce), lock/
      drops/<client pid>.json                        SessionStart drop: identity for the server
      drops/server-<pid>-<start>.json                `oxtail-py claim` for one running server
      hooks/                                         installed hook scripts

A mailbox key is a client session id, or `pid-<pid>-<start>` for a server that
does not know its session yet. Every directory is 0700 and every file 0600; a
symlink where one of our entries belongs is refused, never followed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from oxtail_py.errors import InvalidSessionIdError, StateRootError, UnsafePathError
from oxtail_py.procs import ProcessIdentity

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600

# Shapes we accept before using a value in a path. Session ids from the clients
# are UUIDs; we allow any short token of this alphabet (no dots: no `..`).
SESSION_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_PID_BOX_RE: Final = re.compile(r"pid-[0-9]+-[0-9]+\.[0-9]{2}")
PID_BOX_PREFIX: Final = "pid-"


def validate_session_id(session_id: str) -> str:
    if not SESSION_ID_RE.fullmatch(session_id) or session_id.startswith(PID_BOX_PREFIX):
        raise InvalidSessionIdError(
            f"invalid session id {session_id!r}: expected 1-128 characters of letters, "
            "digits, '-' or '_' (a Claude Code session id or Codex thread id is a UUID)"
        )
    return session_id


def pid_box_key(server: ProcessIdentity) -> str:
    return f"{PID_BOX_PREFIX}{server.token()}"


def default_root() -> Path:
    env = os.environ.get("AGENTMAIL_HOME")
    return Path(env).expanduser() if env else Path.home() / ".agentmail"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (0700) if needed; refuse a symlink or non-directory there."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    except FileNotFoundError as exc:
        if path.parent == path or path.parent.exists():
            raise StateRootError(
                f"cannot create {path}: {exc.strerror}. Set AGENTMAIL_HOME to a writable directory."
            ) from exc
        ensure_private_dir(path.parent)
        return ensure_private_dir(path)
    except OSError as exc:
        raise StateRootError(
            f"cannot create {path}: {exc.strerror}. Set AGENTMAIL_HOME to a writable directory."
        ) from exc
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is a symlink or not a directory; refusing to use it")
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, DIR_MODE)
    return path


def refuse_symlink(path: Path) -> None:
    """Raise if a symlink (or anything but a regular file) sits at `path`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(
            f"{path} is a symlink or not a regular file; refusing to follow it "
            "(remove it if you did not put it there)"
        )


def open_private(path: Path, flags: int) -> int:
    """os.open with O_NOFOLLOW and 0600, turning ELOOP into a clear error."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"{path} is a symlink; refusing to follow it") from exc
        raise


@dataclass(frozen=True, slots=True)
class MailboxPaths:
    directory: Path

    @property
    def inbox(self) -> Path:
        return self.directory / "inbox.jsonl"

    @property
    def lock(self) -> Path:
        return self.directory / "lock"

    @property
    def delivered(self) -> Path:
        return self.directory / "delivered.txt"

    @property
    def quarantine(self) -> Path:
        return self.directory / "quarantine.jsonl"

    def claim(self, owner: ProcessIdentity, nonce: str) -> Path:
        return self.directory / f"claim.{owner.token()}.{nonce}.jsonl"

    def claims(self) -> list[Path]:
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        return [
            self.directory / n for n in names if n.startswith("claim.") and n.endswith(".jsonl")
        ]

    def awaiting(self, request_id: str, owner: ProcessIdentity) -> Path:
        return self.directory / f"await.{request_id}.{owner.token()}"

    @staticmethod
    def awaiting_parts(name: str) -> tuple[str, ProcessIdentity | None] | None:
        """(request id, waiter) for an `await.` entry name, else None."""
        if not name.startswith("await."):
            return None
        _, request_id, token = name.split(".", 2)
        return request_id, ProcessIdentity.parse_token(token)

    @staticmethod
    def claim_owner(claim: Path) -> ProcessIdentity | None:
        parts = claim.name.split(".")
        # claim.<pid>-<whole>.<frac>.<nonce>.jsonl
        if len(parts) != 5:
            return None
        return ProcessIdentity.parse_token(f"{parts[1]}.{parts[2]}")


@dataclass(frozen=True, slots=True)
class WakePaths:
    """Wake state of one peer: who woke it last, for which message (debounce)."""

    directory: Path

    @property
    def last(self) -> Path:
        return self.directory / "last.json"

    @property
    def lock(self) -> Path:
        return self.directory / "lock"


class Layout:
    """Paths under one state root. Directories are created on first use."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root if root is not None else default_root()).absolute()

    def ensure_root(self) -> Path:
        return ensure_private_dir(self.root)

    def _subdir(self, name: str) -> Path:
        self.ensure_root()
        return ensure_private_dir(self.root / name)

    @property
    def sessions_dir(self) -> Path:
        return self._subdir("sessions")

    @property
    def mailboxes_dir(self) -> Path:
        return self._subdir("mailboxes")

    @property
    def status_dir(self) -> Path:
        return self._subdir("status")

    @property
    def drops_dir(self) -> Path:
        return self._subdir("drops")

    @property
    def hooks_dir(self) -> Path:
        return self._subdir("hooks")

    @property
    def wake_dir(self) -> Path:
        return self._subdir("wake")

    def session_file(self, pid: int) -> Path:
        return self.sessions_dir / f"{pid}.json"

    def mailbox(self, key: str) -> MailboxPaths:
        if not (_PID_BOX_RE.fullmatch(key) or SESSION_ID_RE.fullmatch(key)):
            raise InvalidSessionIdError(f"invalid mailbox key {key!r}")
        return MailboxPaths(ensure_private_dir(self.mailboxes_dir / key))

    def existing_mailbox(self, key: str) -> MailboxPaths | None:
        """The mailbox for `key` if it was ever created, without creating it."""
        if not (_PID_BOX_RE.fullmatch(key) or SESSION_ID_RE.fullmatch(key)):
            raise InvalidSessionIdError(f"invalid mailbox key {key!r}")
        path = self.root / "mailboxes" / key
        return MailboxPaths(path) if path.is_dir() and not path.is_symlink() else None

    def wake_state(self, key: str) -> WakePaths:
        """The wake state of the peer whose mailbox key is `key` (created 0700)."""
        if not (_PID_BOX_RE.fullmatch(key) or SESSION_ID_RE.fullmatch(key)):
            raise InvalidSessionIdError(f"invalid mailbox key {key!r}")
        return WakePaths(ensure_private_dir(self.wake_dir / key))

    def status_file(self, session_id: str) -> Path:
        return self.status_dir / validate_session_id(session_id)

    def drop_file(self, client_pid: int) -> Path:
        return self.drops_dir / f"{client_pid}.json"

    def claim_drop_file(self, server: ProcessIdentity) -> Path:
        return self.drops_dir / f"server-{server.token()}.json"
