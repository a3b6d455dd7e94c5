"""The names under the state root, and the shapes of the values in them. Pure, lean.

layout.py builds its paths from these (and re-exports them); the shell hook is rendered
from them; the hook's lean reservation check (reservation_check.py) names its files with
them directly. This module imports only `os` and `re` (which json, loaded by every
Python path of ours, imports anyway): the check starts a fresh interpreter on an edit
tool call, and every module it loads is paid for on every such call (no pathlib,
dataclasses or typing here).
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Final

# Names under the state root. The shell hook is rendered from these (hooks_install).
SESSIONS: Final = "sessions"
MAILBOXES: Final = "mailboxes"
STATUS: Final = "status"
DROPS: Final = "drops"
HOOKS: Final = "hooks"
ERRORS_LOG: Final = "errors.log"  # under hooks/: the hook helper's stderr (two at most)
WAKE: Final = "wake"
SPAWNS: Final = "spawns"
ASKS: Final = "asks"
LEDGER: Final = "ledger"
RECEIPTS: Final = "receipts"
OBLIGATIONS: Final = "obligations"
OWED: Final = "owed"
EVENTS: Final = "events"
INBOX: Final = "inbox.jsonl"
RESERVATIONS: Final = "reservations"
NOTES: Final = "notes"
HOLDER_PREFIX: Final = "h."  # the hook's fast path globs reservations/*/h.*.json
HOLDER_SUFFIX: Final = ".json"
CLAIM_PREFIX: Final = "claim."
PID_BOX_PREFIX: Final = "pid-"

# Shapes we accept before using a value in a path. Session ids from the clients
# are UUIDs; we allow any short token of this alphabet (no dots: no `..`).
# The alphabets are spelled out (not ranges) so the shell hook, rendered from them,
# matches exactly these bytes in any locale.
SESSION_ID_MAX: Final = 128
SESSION_ID_FIRST_CHARS: Final = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)
SESSION_ID_CHARS: Final = SESSION_ID_FIRST_CHARS + "_-"
SESSION_ID_RE: Final = re.compile(
    f"[{re.escape(SESSION_ID_FIRST_CHARS)}]"
    f"[{re.escape(SESSION_ID_CHARS)}]{{0,{SESSION_ID_MAX - 1}}}"
)
# A spawn id is 128 random bits in hex (spawn/records.py): a name in the state root, and
# the value of OXTAIL_SPAWN_ID in the spawned client's environment.
SPAWN_ID_RE: Final = re.compile(r"[0-9a-f]{32}")


def is_session_id(value: str) -> bool:
    """A client session id we accept in a path (a pid box key is not one)."""
    return bool(SESSION_ID_RE.fullmatch(value)) and not value.startswith(PID_BOX_PREFIX)


# -- a process as a name: `<pid>-<start>` (procs.ProcessIdentity.token) ----------------


def looks_like_start(text: str) -> bool:
    """A start time as procs formats it: digits, a dot, exactly two digits."""
    whole, dot, frac = text.partition(".")
    # ASCII: str.isdigit() also takes digits like "²", which int() and float() refuse.
    return bool(dot) and _is_ascii_digits(whole) and _is_ascii_digits(frac) and len(frac) == 2


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_process_token(token: str) -> tuple[int, str] | None:
    """(pid, start) of a `<pid>-<start>` token, or None for any other text."""
    pid_text, sep, start = token.partition("-")
    if not sep or not _is_ascii_digits(pid_text) or not looks_like_start(start):
        return None
    return int(pid_text), start


def holder_file_name(token: str) -> str:
    return f"{HOLDER_PREFIX}{token}{HOLDER_SUFFIX}"


def holder_token(name: str) -> tuple[int, str] | None:
    """The server (pid, start) a holder file is named for, or None for any other name."""
    if not (name.startswith(HOLDER_PREFIX) and name.endswith(HOLDER_SUFFIX)):
        return None
    return parse_process_token(name[len(HOLDER_PREFIX) : -len(HOLDER_SUFFIX)])


def quarantine_name(name: str, stamp_ns: int) -> str:
    """A corrupt holder file's name once set aside (never globbed as a holder)."""
    return f"q.{name}.{stamp_ns}"


def session_file_name(pid: int) -> str:
    """A registry entry's name in sessions/."""
    return f"{pid}.json"


# -- the paths the lean reservation check opens (Layout builds the same ones from these) --


def session_file(root: str, pid: int) -> str:
    """`<root>/sessions/<pid>.json`: a server's registry entry."""
    return os.path.join(root, SESSIONS, session_file_name(pid))


def errors_log(root: str) -> str:
    """`<root>/hooks/errors.log`: the hook helper's stderr (the shell appends to it)."""
    return os.path.join(root, HOOKS, ERRORS_LOG)


def reservations_dir(root: str, project_root: str | os.PathLike[str]) -> str:
    """`<root>/reservations/<project key>`: one project's holder files."""
    return os.path.join(root, RESERVATIONS, project_key(project_root))


# -- project keys ------------------------------------------------------------------------


def _sha256_hex(data: bytes) -> str:
    # The interpreter's built-in sha256 when it has one: hashlib loads OpenSSL (~3 ms, on
    # every edit tool call while reservations exist) for the very same digest.
    sha256: Callable[[bytes], Any]
    for module in ("_sha256", "_sha2"):  # CPython 3.11; 3.12 and later
        try:
            sha256 = __import__(module).sha256
            break
        except (ImportError, AttributeError):
            continue
    else:
        from hashlib import sha256
    return str(sha256(data).hexdigest())


def project_key(project_root: str | os.PathLike[str]) -> str:
    """A fixed-length directory name for a project (its realpath can be any length): the
    first 32 hex digits of the sha256 of the realpath."""
    return _sha256_hex(os.fspath(project_root).encode("utf-8", "surrogateescape"))[:32]
