"""What a wake promises its callers: the line it types, its statuses, its settings, its report.

The one line a wake submits is built here and nowhere else, and checked before it leaves:
ASCII printable only (it is typed into terminals whatever their locale, and tmux gets it
as a literal), one line, short, naming a message id of the protocol's shape.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from oxtail_py.errors import OxtailError
from oxtail_py.messages import MESSAGE_ID_RE
from oxtail_py.settings import Settings

WAKE_LINE: Final = "oxtail: you have a message from {sender} - call read_my_messages ({about})"
ABOUT_ASK: Final = "it asks: reply with send_message reply_to={request_id}"
ABOUT_NOTE: Final = "message {message_id}"
MAX_LINE_CHARS: Final = 200
# Printable ASCII, no `@`, `/`, `!`, `#`: the clients' composers open pickers and modes on those.
_LINE_OK: Final = re.compile(r"[ \"$-.0-?A-~]+")
_SENDER_DROP: Final = re.compile(r"[^A-Za-z0-9._-]")


class WakeStatus(StrEnum):
    CONFIRMED = "confirmed"  # proof that the line was submitted
    FIRED_UNCONFIRMED = "fired_unconfirmed"  # sent, no proof within the window
    SKIPPED_BUSY = "skipped_busy"  # mid-turn, or waiting for this very reply: no wake needed
    SKIPPED_DEBOUNCED = "skipped_debounced"  # woken lately for mail it has not read yet
    SKIPPED_NO_TARGET = "skipped_no_target"  # no verified client / pane / path (detail: why)
    SKIPPED_COMPOSER_BUSY = "skipped_composer_busy"  # someone is typing into its input line
    DISABLED = "disabled"  # strategy off


class WakeStrategy(StrEnum):
    AUTO = "auto"  # codex queue for Codex when usable, else tmux
    TMUX = "tmux"  # tmux only
    OFF = "off"


class Method(StrEnum):
    """A way to deliver the line (WakeReport.attempts names them)."""

    QUEUE = "codex-queue"
    KEYS = "tmux-keys"
    PASTE = "tmux-paste"
    NUDGE = "tmux-enter"  # the line sits unsent in the composer: press Enter


@dataclass(frozen=True, slots=True)
class WakeSettings:
    """The wake's part of Settings (OXTAIL_WAKE_STRATEGY, OXTAIL_WAKE_CONFIRM_MS)."""

    strategy: WakeStrategy = WakeStrategy.AUTO
    confirm_ms: int | None = None  # one proof window for every path (tests), else per path

    @classmethod
    def of(cls, settings: Settings) -> WakeSettings:
        return cls(WakeStrategy(settings.wake_strategy), settings.wake_confirm_ms)


class WakeLineError(OxtailError):
    code = "bad-wake-line"


@dataclass
class Watch:
    """How a caller ends a wake's waiting (for an empty composer, for proof): `finish`.
    An ask that got its answer finishes with answered=True, which counts as proof."""

    stop: threading.Event = field(default_factory=threading.Event)
    answered: bool = False

    def finish(self, *, answered: bool) -> None:
        self.answered = answered
        self.stop.set()


@dataclass
class WakeReport:
    status: WakeStatus
    attempts: list[Method] = field(default_factory=list)  # paths fired, in order
    detail: str = ""  # why it was skipped, or what went wrong; for logs and callers


def wake_line(sender: str, message_id: str, request_id: str | None = None) -> str:
    """The line for one message; it names the message, so each wake's line is unique.
    Raises WakeLineError for an id not of the protocol's shape (the line is typed)."""
    for value in (message_id, request_id):
        if value is not None and not MESSAGE_ID_RE.fullmatch(value):
            raise WakeLineError(f"{value!r} is not a message id (16 hex digits); nothing typed")
    safe = _SENDER_DROP.sub("", sender)[:64] or "a peer"
    about = (
        ABOUT_ASK.format(request_id=request_id)
        if request_id
        else ABOUT_NOTE.format(message_id=message_id)
    )
    line = WAKE_LINE.format(sender=safe, about=about)
    # Defence in depth: whatever the template becomes, what reaches tmux is one short
    # printable-ASCII line.
    if len(line) > MAX_LINE_CHARS or not _LINE_OK.fullmatch(line):
        raise WakeLineError(f"wake line {line!r} is not one short printable-ASCII line")
    return line
