"""The hook helper's inputs: its command line, parsed strictly, and the reservations mode.
Lean: the reservation check (a fresh interpreter on every edit tool call) shares it.

    [--root ROOT] [--client claude|codex] EVENT [SESSION_ID]

No argparse (it costs milliseconds to import, on a tool call) and nothing looser than
what the rendered hook passes: ROOT absolute, the session id of the protocol's shape.
"""

from __future__ import annotations

import os
import stat

from oxtail_py.hook_shapes import CLIENTS
from oxtail_py.names import errors_log, is_session_id

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final

# OXTAIL_RESERVATIONS: enforce (deny edits under another agent's exclusive reservation) |
# advisory (warn only) | off (the hooks do not look). Settings.from_env reads it by this rule.
RESERVATION_MODES: Final = ("enforce", "advisory", "off")
DEFAULT_RESERVATIONS_MODE: Final = "enforce"


def reservations_mode(raw: str | None) -> tuple[str, bool]:
    """(mode, known) for the variable's value: case and blanks do not matter, unset or
    empty is enforce, and an unknown value enforces too (known=False: say so)."""
    mode = (raw or "").strip().lower() or DEFAULT_RESERVATIONS_MODE
    if mode not in RESERVATION_MODES:
        return DEFAULT_RESERVATIONS_MODE, False
    return mode, True


DRAIN_EVENTS: Final = ("pretooluse", "posttooluse", "userpromptsubmit", "stop")
SESSION_START: Final = "sessionstart"
RESERVE_CHECK: Final = "reservecheck"


class UsageError(ValueError):
    pass


class HookCall:
    """One parsed call. `root` None: an older hook that did not pass it (Settings decides);
    `session_id` None: SessionStart (it reads its payload)."""

    __slots__ = ("client", "event", "root", "session_id")

    def __init__(self, root: str | None, client: str, event: str,
                 session_id: str | None) -> None:
        self.root = root
        self.client = client
        self.event = event
        self.session_id = session_id

    def _key(self) -> tuple[str | None, str, str, str | None]:
        return (self.root, self.client, self.event, self.session_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HookCall) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"HookCall{self._key()!r}"


def parse_args(argv: list[str]) -> HookCall:
    """`[--root ROOT] [--client NAME] EVENT [SESSION_ID]`, strictly."""
    root: str | None = None
    client = "claude"
    rest = list(argv)
    while rest and rest[0] in ("--root", "--client"):
        if len(rest) < 2:
            raise UsageError(f"{rest[0]} needs a value")
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "--root":
            if not os.path.isabs(value):
                raise UsageError(f"--root must be an absolute path, not {value!r}")
            root = value
        else:
            client = value
    if client not in CLIENTS:
        raise UsageError(f"unknown client {client!r}; expected one of {CLIENTS}")
    if not rest:
        raise UsageError("missing EVENT")
    event, rest = rest[0], rest[1:]
    if event == SESSION_START and not rest:
        return HookCall(root, client, event, None)
    if (event in DRAIN_EVENTS or event == RESERVE_CHECK) and len(rest) == 1:
        if not is_session_id(rest[0]):
            raise UsageError(f"invalid session id {rest[0]!r}")
        return HookCall(root, client, event, rest[0])
    raise UsageError(f"unexpected arguments {argv!r}")


# hooks/errors.log past this size is moved to errors.log.1 (replacing the one before).
ERRORS_LOG_MAX_BYTES: Final = 1 << 20


def bound_errors_log(root: str) -> None:
    """Keep the helper's stderr log bounded: the shell appends to `hooks/errors.log` on
    every helper start, and a hook failing the same way on every tool call would grow it
    for ever. Past ERRORS_LOG_MAX_BYTES it becomes errors.log.1 and the next start begins a
    new one, so at most two are kept. Only when our stderr is that very file (same inode):
    a helper run by hand, or a log the shell refused, is never touched. Never raises."""
    try:
        ours = os.fstat(2)
        if not stat.S_ISREG(ours.st_mode) or ours.st_size <= ERRORS_LOG_MAX_BYTES:
            return
        path = errors_log(root)
        there = os.lstat(path)
        if (there.st_dev, there.st_ino) == (ours.st_dev, ours.st_ino):
            os.replace(path, path + ".1")
    except OSError:
        pass
