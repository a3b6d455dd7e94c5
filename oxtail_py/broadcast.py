"""send_message to a group (targets.py): one copy per member, each its own message.

Each member gets its own message (its own id), written to its own mailbox exactly as a
one-to-one send writes it, so each copy is delivered, receipted and tracked alone. The
body is checked once, before any copy is written: an oversize body sends nothing. A
copy that cannot be written (a full disk, a hostile file in that mailbox) is reported
as skipped with the error; the others still go. Wakes (when asked) run side by side,
after every copy is written.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from oxtail_py import receipts
from oxtail_py.agent import Agent
from oxtail_py.discovery import Row
from oxtail_py.errors import OxtailError
from oxtail_py.messages import validate_body
from oxtail_py.targets import Group, Skip, SkipReason, parse_group, select
from oxtail_py.wake import WakeReport, WakeStatus

# Wakes are mostly waiting (for an empty composer, for proof); a few at a time.
MAX_PARALLEL_WAKES: Final = 4


class BroadcastReplyError(OxtailError):
    code = "broadcast-reply-to"


class BroadcastWorkError(OxtailError):
    code = "broadcast-action-required"


@dataclass(frozen=True, slots=True)
class Copy:
    row: Row
    message_id: str
    wake: WakeReport


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    group: Group
    copies: list[Copy]
    skipped: list[Skip]


def broadcast(
    agent: Agent,
    target: str,
    body: str,
    *,
    cap: int,
    wake: bool,
    reply_to: str | None = None,
    action_required: bool = False,
) -> BroadcastResult:
    group = parse_group(target)
    if reply_to is not None:
        raise BroadcastReplyError(
            f"reply_to answers one request from one sender; a broadcast to {group.label} "
            "cannot carry it. Send the reply to the asker (its from_session_id)"
        )
    if action_required:
        raise BroadcastWorkError(
            f"delegated work has one owner; a broadcast to {group.label} cannot carry "
            "action_required. Send it to the one agent who should do it"
        )
    validate_body(body)
    selection = select(agent.list_sessions(count_unread=False), group, cap)
    written: list[tuple[Row, str]] = []
    skipped = list(selection.skipped)
    for row in selection.members:
        try:
            written.append((row, agent.send_to(row, body).message_id))
        except OxtailError as exc:
            skipped.append(
                Skip(row.name, row.client_session_id, SkipReason.SEND_FAILED,
                     f"{exc.code}: {exc}")
            )  # fmt: skip
    if wake:
        reports = _wake_all(agent, written)
    else:
        reports = [WakeReport(WakeStatus.DISABLED) for _ in written]
    copies = [Copy(row, mid, report) for (row, mid), report in zip(written, reports, strict=True)]
    return BroadcastResult(group, copies, skipped)


def _wake_all(agent: Agent, written: list[tuple[Row, str]]) -> list[WakeReport]:
    if not written:
        return []
    workers = min(MAX_PARALLEL_WAKES, len(written))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oxtail-wake") as pool:
        reports = list(pool.map(lambda w: agent.wake(w[0], w[1]), written))
    for (_row, message_id), report in zip(written, reports, strict=True):
        receipts.record_wake_outcome(
            agent.layout, message_id, status=report.status, detail=report.detail,
            by="send_message",
        )  # fmt: skip
    return reports
