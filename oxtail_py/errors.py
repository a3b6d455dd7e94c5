"""Every error oxtail raises on purpose, each with a stable code.

The code is the contract (MCP tools return it as `error`); the message is the
human sentence that says what to do next.
"""

from __future__ import annotations


class OxtailError(Exception):
    """Base class: `code` is stable and machine-readable, str(self) is for humans."""

    code: str = "oxtail-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class StateRootError(OxtailError):
    code = "state-root-unusable"


class UnsafePathError(OxtailError):
    """A symlink (or other non-regular object) sits where one of our files belongs."""

    code = "unsafe-path"


class InvalidMessageError(OxtailError):
    code = "invalid-message"


class BodyTooLargeError(InvalidMessageError):
    code = "body-too-large"


class InvalidSessionIdError(OxtailError):
    code = "invalid-session-id"


class LockTimeoutError(OxtailError):
    code = "mailbox-locked"


class DiskFullError(OxtailError):
    """A write could not complete (ENOSPC, EDQUOT): nothing half-written was kept."""

    code = "disk-full"


class FileTooLargeError(OxtailError):
    """A file of ours is larger than its cap: corrupt or hostile, never parsed."""

    code = "file-too-large"
