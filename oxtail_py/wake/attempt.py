"""One wake of one peer for one message: gate, fire, confirm, retry.

Gates, in this order: strategy off → `disabled`; the peer's hooks say it is mid-turn
(status marker, fresh), or it waits in ask_peer for the very reply being sent →
`skipped_busy` (it gets the mail without a wake); no verified client in this project, or
no usable path → `skipped_no_target` (the detail says which check failed); this peer was
woken lately for a message it has still not read → `skipped_debounced`; its composer holds
unsent text (a human typing; re-checked for a moment) → `skipped_composer_busy`. After
firing, proof that the prompt was submitted → `confirmed`; none within a short window →
one retry by the alternate path, then `confirmed` or `fired_unconfirmed`. The retry never
adds a second copy: not while the line sits unsent in the composer (it gets an Enter
instead), is on the screen (queued), or a Codex turn is running (a queued line runs after
it, a pasted one is steered into it).
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Final

import psutil

from oxtail_py import tmux
from oxtail_py.discovery import Row
from oxtail_py.errors import LockTimeoutError, OxtailError
from oxtail_py.fsio import atomic_write_json, ensure_tree, load_json
from oxtail_py.identity import CODEX
from oxtail_py.layout import SESSION_ID_RE, Layout, WakePaths
from oxtail_py.locks import DirLock
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import MESSAGE_ID_RE
from oxtail_py.procs import self_identity
from oxtail_py.status import read_status
from oxtail_py.wake.contract import (
    Method,
    WakeReport,
    WakeSettings,
    WakeStatus,
    WakeStrategy,
    Watch,
    wake_line,
)
from oxtail_py.wake.launch import composer_empty_soon, confirm_window, fire, queue_unusable
from oxtail_py.wake.peer import NoTarget, Peer, inspect_peer
from oxtail_py.wake.proof import Proof, codex_turn_open, transcript_of
from oxtail_py.wake.screen import composer_text, holds_line, shows_line

log = logging.getLogger("oxtail_py")

# A second wake for a peer that has not yet read what the first one announced is noise,
# for this long; after it, the first wake evidently did not work and another may.
DEBOUNCE_S: Final = 30.0
LOCK_TIMEOUT_S: Final = 5.0


def wake_peer(
    layout: Layout,
    row: Row,
    *,
    sender: str,
    message_id: str,
    project_root: Path,
    settings: WakeSettings,
    request_id: str | None = None,
    reply_to: str | None = None,
    strategy: WakeStrategy | None = None,
    watch: Watch | None = None,
) -> WakeReport:
    """Wake the agent of `row` for the message `message_id` (blocking: run it off the
    event loop; `watch` lets the caller end its waiting). `project_root` is the waker's
    project: a peer whose client or pane lies outside it is not typed into. `strategy`
    overrides settings.strategy for this call. Never raises for a peer's state: what
    went wrong is in the report."""
    attempt = WakeAttempt(layout, row, project_root, settings, watch or Watch())
    try:
        return attempt.run(sender, message_id, request_id, reply_to, strategy or settings.strategy)
    except (OxtailError, OSError, psutil.Error, subprocess.SubprocessError) as exc:
        log.warning("wake of %s failed: %s", row.name, exc)
        report = attempt.report
        report.status = (
            WakeStatus.FIRED_UNCONFIRMED if report.attempts else WakeStatus.SKIPPED_NO_TARGET
        )
        report.detail = _join(report.detail, f"error: {exc}")
        return report


class WakeAttempt:
    def __init__(
        self, layout: Layout, row: Row, project_root: Path, settings: WakeSettings, watch: Watch
    ) -> None:
        self.layout = layout
        self.row = row
        self.project_root = project_root
        self.settings = settings
        self.watch = watch
        self.report = WakeReport(WakeStatus.SKIPPED_NO_TARGET)

    def run(
        self,
        sender: str,
        message_id: str,
        request_id: str | None,
        reply_to: str | None,
        strategy: WakeStrategy,
    ) -> WakeReport:
        gated = self.gate(strategy, reply_to)
        if isinstance(gated, WakeReport):
            return gated
        peer, plan = gated
        line = wake_line(sender, message_id, request_id)
        proof = Proof(self.layout, peer, line)
        paths = self.layout.wake_state(self.row.mailbox_key)
        ensure_tree(self.layout.root, paths.directory)
        try:
            with DirLock(paths.lock, LOCK_TIMEOUT_S):
                if self._debounced(paths, time.time()):
                    return self._done(WakeStatus.SKIPPED_DEBOUNCED, "woken lately; not read yet")
                fired = self.fire_first(plan, peer, line, proof)
                if fired is None:
                    return self.report
                atomic_write_json(
                    paths.last,
                    {"at": time.time(), "message_id": message_id, "by": self_identity().pid,
                     "method": str(fired)},
                )  # fmt: skip
        except LockTimeoutError:
            return self._done(WakeStatus.SKIPPED_DEBOUNCED, "another wake of it is under way")
        self.report.status = self.confirm(plan, fired, peer, line, proof)
        log.info(
            "wake %s: %s via %s %s",
            self.row.client_session_id,
            self.report.status,
            self.report.attempts,
            self.report.detail,
        )
        return self.report

    # -- gate ------------------------------------------------------------------------------

    def gate(
        self, strategy: WakeStrategy, reply_to: str | None
    ) -> WakeReport | tuple[Peer, list[Method]]:
        """The verified peer and the paths to try, or the report of why not to wake."""
        row = self.row
        if strategy == WakeStrategy.OFF:
            return self._done(WakeStatus.DISABLED, "wake is off (OXTAIL_WAKE_STRATEGY or the call)")
        if row.kind != "agent" or row.entry is None:
            return self._done(WakeStatus.SKIPPED_NO_TARGET, "not an agent")
        sid = row.client_session_id
        if sid is not None and not SESSION_ID_RE.fullmatch(sid):
            return self._done(WakeStatus.SKIPPED_NO_TARGET, f"malformed session id {sid!r}")
        if sid and read_status(self.layout, sid).busy:
            return self._done(WakeStatus.SKIPPED_BUSY, "its hooks say it is mid-turn; they deliver")
        if reply_to and self._reply_awaited(reply_to):
            return self._done(WakeStatus.SKIPPED_BUSY, "it is waiting in ask_peer for this reply")
        peer = inspect_peer(row, self.project_root)
        if isinstance(peer, NoTarget):
            log.warning("wake of %s refused: %s", row.name, peer.reason)
            return self._done(WakeStatus.SKIPPED_NO_TARGET, f"refused: {peer.reason}")
        plan, notes = _plan(peer, strategy)
        self.report.detail = notes
        if not plan:
            return self._done(WakeStatus.SKIPPED_NO_TARGET, "")
        return peer, plan

    def _reply_awaited(self, request_id: str) -> bool:
        """A live ask_peer of the peer waits for exactly this reply (it gets it unwoken)."""
        box = Mailbox.existing(self.layout, self.row.mailbox_key)
        return box is not None and box.awaits(request_id)

    def _debounced(self, paths: WakePaths, now: float) -> bool:
        try:
            last = load_json(paths.last)
        except (OSError, OxtailError, ValueError):
            return False
        at, mid = (last.get("at"), last.get("message_id")) if isinstance(last, dict) else (0, 0)
        if not isinstance(at, int | float) or not isinstance(mid, str):
            return False
        if not MESSAGE_ID_RE.fullmatch(mid) or not (at - 5 <= now < at + DEBOUNCE_S):
            return False
        box = Mailbox.existing(self.layout, self.row.mailbox_key)
        return box is not None and box.holds(mid)

    # -- fire ------------------------------------------------------------------------------

    def fire_first(self, plan: list[Method], peer: Peer, line: str, proof: Proof) -> Method | None:
        """Fire the first path that works; the method fired, or None with the report set."""
        self.report.status = WakeStatus.SKIPPED_NO_TARGET
        for method in dict.fromkeys(plan):  # a failed path is not tried twice in a row
            if self.watch.answered:
                self._done(WakeStatus.SKIPPED_BUSY, "answered before the wake fired")
                return None
            if method != Method.QUEUE and not self._composer_free(peer):
                self._done(
                    WakeStatus.SKIPPED_COMPOSER_BUSY,
                    "its input line is not empty (someone typing?)",
                )
                return None
            proof.arm()
            failure = fire(method, peer, line)
            self.report.attempts.append(method)
            if not failure:
                return method
            self.report.detail = _join(self.report.detail, f"{method} failed: {failure}")
        return None

    def _composer_free(self, peer: Peer) -> bool:
        return peer.pane is not None and composer_empty_soon(peer.pane, self.watch.stop)

    # -- confirm, retry ----------------------------------------------------------------------

    def confirm(
        self, plan: list[Method], fired: Method, peer: Peer, line: str, proof: Proof
    ) -> WakeStatus:
        if proof.wait(confirm_window(fired, peer, self.settings), self.watch):
            return WakeStatus.CONFIRMED
        if self.watch.stop.is_set():  # the asker stopped waiting: no retry
            return WakeStatus.FIRED_UNCONFIRMED
        # One retry. Never a second copy of a line the client already holds: Codex runs a
        # queued line after its running turn, and steers a pasted one into it (the rollout
        # shows either only when the model is next called).
        if peer.client_type == CODEX and codex_turn_open(transcript_of(peer)):
            self._note("its turn is running: the line goes in or after it")
            return WakeStatus.FIRED_UNCONFIRMED
        if fired != Method.QUEUE and peer.pane is not None:
            try:
                typed = composer_text(tmux.capture_screen(peer.pane, styles=True))
                shown = tmux.capture_screen(peer.pane)
            except tmux.TmuxError:
                return WakeStatus.FIRED_UNCONFIRMED
            if typed and holds_line(typed, line):
                return self.retry(Method.NUDGE, peer, line, proof)  # the Enter did not take
            if shows_line(shown, line):
                self._note("the line is on its screen (queued?)")
                return WakeStatus.FIRED_UNCONFIRMED
        later = plan[plan.index(fired) + 1 :]
        if not later:
            return WakeStatus.FIRED_UNCONFIRMED
        if later[0] != Method.QUEUE and not self._composer_free(peer):
            self._note("retry skipped: its input line is not empty")
            return WakeStatus.FIRED_UNCONFIRMED
        return self.retry(later[0], peer, line, proof)

    def retry(self, method: Method, peer: Peer, line: str, proof: Proof) -> WakeStatus:
        failure = fire(method, peer, line)
        self.report.attempts.append(method)
        if failure:
            self._note(f"retry {method} failed: {failure}")
            return WakeStatus.FIRED_UNCONFIRMED
        if proof.wait(confirm_window(method, peer, self.settings), self.watch):
            return WakeStatus.CONFIRMED
        return WakeStatus.FIRED_UNCONFIRMED

    def _done(self, status: WakeStatus, why: str) -> WakeReport:
        self.report.status = status
        self.report.detail = _join(self.report.detail, why)
        return self.report

    def _note(self, why: str) -> None:
        self.report.detail = _join(self.report.detail, why)


def _plan(peer: Peer, strategy: WakeStrategy) -> tuple[list[Method], str]:
    """The paths to try in order (the second is the alternate), and notes on the others."""
    methods: list[Method] = []
    notes: list[str] = []
    if strategy == WakeStrategy.AUTO and peer.client_type == CODEX:
        why = queue_unusable(peer)
        if why:
            notes.append(f"codex queue unusable: {why}")
        else:
            methods.append(Method.QUEUE)
    if peer.pane is None:
        notes.append(peer.pane_note)
    elif peer.client_type == CODEX:
        methods += [Method.PASTE, Method.PASTE]  # plain keys + Enter does not submit in Codex
    else:
        methods += [Method.PASTE, Method.KEYS]
    return methods[:2], "; ".join(notes)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
