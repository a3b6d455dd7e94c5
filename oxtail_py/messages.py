"""The message record: what one line of an inbox holds."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from oxtail_py.errors import BodyTooLargeError, InvalidMessageError
from oxtail_py.layout import MESSAGE_ID_RE as MESSAGE_ID_RE
from oxtail_py.layout import SESSION_ID_RE

SCHEMA_VERSION: Final = 1
MAX_BODY_BYTES: Final = 8192
# origin[OPERATOR_KEY] is True: the message is the operator's (see Message.from_operator).
OPERATOR_KEY: Final = "operator"


def new_message_id() -> str:
    return os.urandom(8).hex()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def validate_body(body: str) -> str:
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidMessageError(
            f"body is not valid UTF-8 text (bad character at index {exc.start}); send plain text"
        ) from exc
    if not body.strip():
        raise InvalidMessageError("body is empty; say something", code="empty-body")
    if size > MAX_BODY_BYTES:
        raise BodyTooLargeError(
            f"body is {size} UTF-8 bytes; the limit is {MAX_BODY_BYTES}. Shorten it, or "
            "put the detail in a file in the project and send its path"
        )
    return body


def validate_message_id(value: str, what: str = "message id") -> str:
    if not MESSAGE_ID_RE.fullmatch(value):
        raise InvalidMessageError(
            f"malformed {what} {value!r}: expected 16 lowercase hex characters",
            code="invalid-message-id",
        )
    return value


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    body: str
    enqueued_at: str
    from_session_id: str | None = None
    request_id: str | None = None
    reply_to: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    # Delegated work: the recipient owes a complete_work or block_work (obligations.py).
    action_required: bool = False

    @classmethod
    def create(
        cls,
        body: str,
        *,
        from_session_id: str | None,
        expects_reply: bool = False,
        reply_to: str | None = None,
        origin: dict[str, Any] | None = None,
        action_required: bool = False,
        message_id: str | None = None,
    ) -> Message:
        """A new message. A request (expects_reply) carries request_id == its own id;
        the answer names it in reply_to. `message_id` is given only to re-send a message
        whose id is already recorded (a completion resumed after a crash)."""
        if reply_to is not None:
            validate_message_id(reply_to, "reply_to")
        message_id = validate_message_id(message_id) if message_id else new_message_id()
        return cls(
            id=message_id,
            body=validate_body(body),
            enqueued_at=now_iso(),
            from_session_id=from_session_id,
            request_id=message_id if expects_reply else None,
            reply_to=reply_to,
            origin=dict(origin or {}),
            action_required=action_required,
        )

    @property
    def from_operator(self) -> bool:
        """Sent by the person running the agents (`oxtail-py send`, cockpit/operator.py).
        A server's send always writes its own origin (Agent._origin), which never holds
        this key, and a message that names a sender session is never the operator's: no
        tool argument can make a peer's message look like this one."""
        return self.origin.get(OPERATOR_KEY) is True and self.from_session_id is None

    def to_line(self) -> bytes:
        record = {
            "schema_version": self.schema_version,
            "id": self.id,
            "body": self.body,
            "enqueued_at": self.enqueued_at,
            "from_session_id": self.from_session_id,
            "request_id": self.request_id,
            "reply_to": self.reply_to,
            "origin": self.origin,
        }
        if self.action_required:  # absent otherwise: plain lines stay as they were
            record["action_required"] = True
        return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> Message:
        """Parse one inbox line; InvalidMessageError says why it is corrupt."""
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidMessageError(f"not a JSON line: {exc}") from exc
        if not isinstance(record, dict):
            raise InvalidMessageError("not a JSON object")
        msg_id, body = record.get("id"), record.get("body")
        if not isinstance(msg_id, str) or not MESSAGE_ID_RE.fullmatch(msg_id):
            raise InvalidMessageError("missing or malformed id")
        if not isinstance(body, str):
            raise InvalidMessageError("missing body")
        optional = {k: record.get(k) for k in ("from_session_id", "request_id", "reply_to")}
        for key, value in optional.items():
            if value is not None and not isinstance(value, str):
                raise InvalidMessageError(f"{key} is not a string")
        # Header fields are shown to the model next to our own framing: only their
        # real shapes pass (a line a peer wrote by hand is quarantined, never shown).
        sender = optional["from_session_id"]
        if sender is not None and not SESSION_ID_RE.fullmatch(sender):
            raise InvalidMessageError("malformed from_session_id")
        for key in ("request_id", "reply_to"):
            value = optional[key]
            if value is not None and not MESSAGE_ID_RE.fullmatch(value):
                raise InvalidMessageError(f"malformed {key}")
        origin = record.get("origin") or {}
        version = record.get("schema_version", SCHEMA_VERSION)
        if not isinstance(origin, dict) or not isinstance(version, int):
            raise InvalidMessageError("malformed origin or schema_version")
        action_required = record.get("action_required", False)
        if not isinstance(action_required, bool):
            raise InvalidMessageError("action_required is not a boolean")
        return cls(
            id=msg_id,
            body=body,
            enqueued_at=str(record.get("enqueued_at", "")),
            from_session_id=optional["from_session_id"],
            request_id=optional["request_id"],
            reply_to=optional["reply_to"],
            origin=origin,
            schema_version=version,
            action_required=action_required,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.id,
            "from_session_id": self.from_session_id,
            "request_id": self.request_id,
            "reply_to": self.reply_to,
            "enqueued_at": self.enqueued_at,
            "origin": self.origin,
            "action_required": self.action_required,
            "body": self.body,
        }
