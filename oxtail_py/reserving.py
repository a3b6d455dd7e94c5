"""reserve_files / release_files / list_reservations for one agent: its identity as the
holder, its project as the scope, its arguments resolved by reservation_patterns."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from oxtail_py.errors import OxtailError
from oxtail_py.reservation_patterns import normalize
from oxtail_py.reservations import (
    Holder,
    ReleaseResult,
    Reservation,
    ReservationBook,
    ReserveResult,
    check_request,
)

if TYPE_CHECKING:
    from oxtail_py.agent import Agent

log = logging.getLogger("oxtail_py")


class ExpiryTimer:
    """One timer per server, due at its earliest reservation's expiry: the server then
    rewrites its own holder file without what expired (ReservationBook.drop_expired), so
    an expired reservation leaves no file that makes every peer's edit start the helper.
    (Readers ignore expired entries anyway: this is housekeeping, not correctness.)"""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._guard = threading.Lock()
        self._timer: threading.Timer | None = None

    def due(self, at: float | None) -> None:
        with self._guard:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if at is None:
                return
            self._timer = threading.Timer(max(0.0, at - time.time()) + 0.05, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        try:
            self.due(book_of(self.agent).drop_expired(self.agent.me))
        except Exception as exc:  # a timer thread must not die loudly; the next grant retries
            log.warning("reservations: could not drop expired ones: %s", exc)


def book_of(agent: Agent) -> ReservationBook:
    """The agent's own project: no argument can widen it."""
    return ReservationBook(agent.layout, agent.project_root)


def holder_of(agent: Agent) -> Holder:
    """The reserving agent as its server proves it: pid + start, and its session id."""
    agent.refresh_identity()
    session_id = agent.identity.session_id
    if session_id is None:
        raise OxtailError(
            "this agent's session id is not known yet, so peers could not ask it for a "
            "release; call get_my_session and follow its next_step, then reserve again",
            code="no-session-id",
        )
    return Holder(agent.me, session_id, agent.entry.client.type, agent.entry.tmux.session)


def reserve_files(
    agent: Agent,
    paths: Sequence[str],
    *,
    exclusive: bool,
    ttl_s: int,
    reason: str,
    expiry: ExpiryTimer | None = None,
) -> ReserveResult:
    reason = check_request(paths, ttl_s, reason)
    patterns = [normalize(raw, agent.project_root) for raw in paths]
    book = book_of(agent)
    result = book.reserve(
        holder_of(agent),
        [(p.given, p.pattern, p.regex, p.kind) for p in patterns],
        exclusive=exclusive, ttl_s=ttl_s, reason=reason,
    )
    if expiry is not None:
        expiry.due(min((r.expires_at for r in book.of(agent.me)), default=None))
    return result


def release_files(agent: Agent, paths: Sequence[str] | None) -> ReleaseResult:
    if paths is not None and not paths:
        raise OxtailError("paths is empty; omit it to release all of yours, or name some",
                          code="empty-paths")
    named = None if paths is None else [(raw, normalize(raw, agent.project_root).pattern)
                                        for raw in paths]
    return book_of(agent).release(holder_of(agent), named)


def list_reservations(agent: Agent) -> list[Reservation]:
    return book_of(agent).all()
