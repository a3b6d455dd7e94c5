"""The recipient's side of obligations: reply by id, and delegated work.

- `reply_to_message(agent, message_id, body)`: the target and `reply_to` come from this
  agent's received-ledger (ledger.py), never from the caller: an agent can answer only
  what it was handed. Works for requests and plain notes alike; a reply to an ask in
  progress satisfies it (asking.py matches `reply_to` + sender).
- `my_open_work(agent)`: what it owes (obligations.open_for), oldest first.
- `complete_work(agent, message_id, body)`: the completion is recorded once (a second is
  refused), with its result message id fixed first; then the result goes to the
  requester as a reply. A completion whose result was never recorded as sent (a kill in
  between) is re-sent with the same id by the next `my_open_work` / `complete_work` of
  that agent (`resume_unsent`); the requester's mailbox de-duplicates by id.
- `block_work(agent, message_id, reason)`: tells the requester, then marks it blocked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from oxtail_py import ledger, obligations
from oxtail_py.agent import Agent
from oxtail_py.agent_messaging import SendReceipt
from oxtail_py.errors import InvalidMessageError, OxtailError
from oxtail_py.ledger import UnknownMessageError
from oxtail_py.messages import new_message_id, now_iso, validate_body, validate_message_id
from oxtail_py.obligations import Done, WorkStatus

log = logging.getLogger(__name__)

MAX_REASON_BYTES: Final = obligations.MAX_REASON_BYTES


@dataclass(frozen=True, slots=True)
class Closed:
    """complete_work / block_work's result."""

    message_id: str
    state: obligations.WorkState
    requester_session_id: str
    sent: SendReceipt | None  # None: recorded, not sent yet (retried by my_open_work)
    send_error: str | None = None


def _received(agent: Agent, message_id: str) -> ledger.ReceivedRecord:
    validate_message_id(message_id)
    found = ledger.find_received(agent.layout, agent.my_keys(), message_id)
    if found is None:
        raise UnknownMessageError(
            f"no message {message_id} was handed to you (or it is older than the "
            f"{int(ledger.RETENTION_S // 86400)}-day retention); read_my_messages shows "
            "message ids, or use send_message with a target"
        )
    return found


def reply_to_message(agent: Agent, message_id: str, body: str) -> SendReceipt:
    validate_body(body)
    received = _received(agent, message_id)
    if received.from_session_id is None:
        raise UnknownMessageError(
            f"message {message_id} came from an agent with no session id, so it cannot be "
            "answered by id; answer with send_message to its tmux session name",
            code="sender-has-no-session-id",
        )
    return agent.send(
        received.from_session_id, body, reply_to=received.message_id, trusted_session=True
    )


def my_open_work(agent: Agent) -> list[WorkStatus]:
    resume_unsent(agent)
    return obligations.open_for(agent.layout, agent.my_keys())


def complete_work(agent: Agent, message_id: str, body: str) -> Closed:
    validate_body(body)
    validate_message_id(message_id)
    resume_unsent(agent)
    status = obligations.owned(agent.layout, message_id, agent.my_keys())
    done = Done(new_message_id(), body, now_iso(), agent.primary_key())
    owner = status.obligation.owner_session_id
    if not obligations.mark_done(agent.layout, message_id, done, owner):
        obligations.owned(agent.layout, message_id, agent.my_keys())  # raises: completed
        raise obligations.WorkError(f"work {message_id} was completed meanwhile",
                                    code="already-completed")
    return _send_result(agent, status, done)


def _send_result(agent: Agent, status: WorkStatus, done: Done) -> Closed:
    requester = status.obligation.requester_session_id
    try:
        sent = agent.send(
            requester,
            done.body,
            reply_to=status.obligation.message_id,
            trusted_session=True,
            message_id=done.result_message_id,
        )
    except OxtailError as exc:
        # Recorded as done; the result is re-sent by the next my_open_work/complete_work.
        log.warning("result of %s not sent yet: %s", status.obligation.message_id, exc)
        return Closed(status.obligation.message_id, obligations.WorkState.DONE, requester,
                      None, f"{exc.code}: {exc}")
    return Closed(status.obligation.message_id, obligations.WorkState.DONE, requester, sent)


def resume_unsent(agent: Agent) -> int:
    """Re-send completions of ours whose result never reached our sent-ledger."""
    resent = 0
    keys = agent.my_keys()
    for status in obligations.completions_by(agent.layout, keys):
        done = status.done
        if done is None or ledger.find_sent(agent.layout, keys, done.result_message_id):
            continue
        if _send_result(agent, status, done).sent is not None:
            resent += 1
    return resent


def block_work(agent: Agent, message_id: str, reason: str) -> Closed:
    validate_message_id(message_id)
    if not reason.strip():
        raise InvalidMessageError("say why the work is blocked", code="empty-reason")
    if len(reason.encode("utf-8", "replace")) > MAX_REASON_BYTES:
        raise InvalidMessageError(
            f"reason is over {MAX_REASON_BYTES} bytes; say it shortly, or put the detail "
            "in a file in the project and name it",
            code="reason-too-large",
        )
    status = obligations.owned(agent.layout, message_id, agent.my_keys())
    body = f"Blocked on the work you delegated ({message_id}): {reason}"
    # The requester hears first, then the state changes: a kill in between leaves it
    # open (block_work can be called again), never blocked with nobody told.
    sent = agent.send(
        status.obligation.requester_session_id,
        body,
        reply_to=message_id,
        trusted_session=True,
    )
    obligations.mark_blocked(agent.layout, message_id, reason, sent.message_id)
    return Closed(message_id, obligations.WorkState.BLOCKED,
                  status.obligation.requester_session_id, sent)


__all__ = [
    "Closed",
    "UnknownMessageError",
    "block_work",
    "complete_work",
    "my_open_work",
    "reply_to_message",
    "resume_unsent",
]
