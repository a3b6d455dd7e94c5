"""ask_peer's core: send a request, wait for the correlated reply, hand it over once.

The whole transaction lives here, not in the MCP adapter: the wait (inbox events,
not a timer), the race against the peer's server exiting (a pidfd on the event
loop, not a poll), the wake beside the wait, and the hand-over (a reply taken
into a claim is committed only after the last await; any cancel or failure
before that puts it back in the inbox). The adapter maps `AskResult` to a tool
result and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import anyio
import anyio.lowlevel
import anyio.to_thread

from oxtail_py import asks_ledger
from oxtail_py.agent import Agent
from oxtail_py.agent_messaging import PendingAsk
from oxtail_py.asks_ledger import AskRecord, AskState
from oxtail_py.discovery import Row
from oxtail_py.errors import LockTimeoutError, OxtailError
from oxtail_py.mailbox import Delivery
from oxtail_py.messages import Message, now_iso
from oxtail_py.procs import ProcessIdentity, start_time
from oxtail_py.wake import WakeReport, WakeStatus, Watch
from oxtail_py.watch import MailboxWatcher

log = logging.getLogger("oxtail_py")


class AskStatus(StrEnum):
    ANSWERED = "answered"
    TIMEOUT = "timeout"  # a late reply lands in the asker's inbox
    PEER_GONE = "peer-gone"  # the peer's server exited: no reply can come


@dataclass(frozen=True)
class AskResult:
    status: AskStatus
    request_id: str
    target: Row
    reply: Message | None
    waited_ms: int
    wake: WakeReport


@dataclass(frozen=True)
class _Waited:
    delivery: Delivery | None
    peer_gone: bool


@contextlib.contextmanager
def on_process_exit(server: ProcessIdentity, callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on the running loop when the process `server` exits (at once if
    it is already gone). A pidfd becomes readable when its process exits, so the loop
    learns of the exit from the kernel, with no polling. The pidfd is opened first,
    then the start time checked: a pidfd names one process, so if the start time
    still matches after the open, the fd is that server's and not a reused pid's."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(server.pid)
    except ProcessLookupError:
        loop.call_soon(callback)
        yield
        return
    except (AttributeError, OSError) as exc:  # no pidfds here: the ask ends by its timeout
        log.warning("cannot watch peer server %s for exit: %s", server.pid, exc)
        yield
        return
    try:
        if start_time(server.pid) != server.start:
            loop.call_soon(callback)  # exited (or its pid reused) before we looked
        else:
            loop.add_reader(fd, callback)
        yield
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def wait_for_reply(
    agent: Agent, watcher: MailboxWatcher, pending: PendingAsk, timeout_s: float
) -> _Waited:
    """Wait on inbox events until the correlated reply can be taken, the peer's server
    exits, or the time is up."""
    loop = asyncio.get_running_loop()
    current = [anyio.Event()]
    gone = anyio.Event()

    def poke() -> None:
        if watcher.on_loop():
            current[0].set()
            return
        # On the watcher's own thread: never block here (waiting for the loop while the
        # loop waits on the watcher would deadlock).
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(current[0].set)

    def peer_exited() -> None:  # on the loop
        gone.set()
        current[0].set()

    unsubscribe = watcher.subscribe(poke)
    peer = pending.target.entry
    try:
        with contextlib.ExitStack() as stack, anyio.move_on_after(timeout_s):
            if peer is not None:
                stack.enter_context(on_process_exit(peer.identity, peer_exited))
            while True:
                # A fresh event BEFORE looking: a write after the look sets it, a
                # write before is seen by the look. No wakeup is lost.
                current[0] = anyio.Event()
                was_gone = gone.is_set()
                found = await _take(agent, pending)
                if found is not None:
                    return _Waited(found, peer_gone=False)
                if was_gone:  # looked once more after the exit: a last reply is taken
                    return _Waited(None, peer_gone=True)
                await current[0].wait()
        return _Waited(None, peer_gone=False)
    finally:
        unsubscribe()


async def _take(agent: Agent, pending: PendingAsk) -> Delivery | None:
    """Take the reply if it is there. On the loop when no other process holds a box's
    lock: a look is a few file operations, and a hop to a worker thread and back was a
    third of the wake-up (bench/ask_peer_latency.py). A held lock may be held for long
    (a stuck process, until its take-over), so that wait goes to a thread, which is
    not abandoned on cancel: a reply it takes still comes back, and the caller aborts it."""
    try:
        return agent.take_reply(pending, wait_for_lock=False)
    except LockTimeoutError:
        return await anyio.to_thread.run_sync(agent.take_reply, pending)


async def ask_peer(
    agent: Agent,
    watcher: MailboxWatcher,
    target: str,
    body: str,
    *,
    timeout_ms: int,
    wake: bool,
) -> AskResult:
    """Ask `target` and wait up to `timeout_ms` for its answer. Raises OxtailError for
    a request that cannot be sent (`would-deadlock` when the target waits on us); a
    reply is committed only once nothing can cancel the caller's answer any more. The
    asks ledger holds the ask from before it is sent: `waiting` during the call, then
    `answered`, or `pending` for a late reply (selfheal.py wakes us when it comes)."""
    started = time.monotonic()
    asker = agent.primary_key()
    opened: list[str] = []  # the request id, once the ledger holds the ask
    sent = False

    def open_ask(pending: PendingAsk) -> None:
        _open_in_ledger(agent, asker, pending)
        opened.append(pending.request_id)

    try:
        with agent.ask(target, body, before_send=open_ask) as pending:
            sent = True
            return await _wait_and_hand_over(
                agent, watcher, asker, pending, timeout_ms, wake, started
            )
    except BaseException:
        if opened and not sent:  # recorded, then the send failed: no ask went out
            asks_ledger.discard(agent.layout, asker, opened[0])
        raise


async def _wait_and_hand_over(
    agent: Agent,
    watcher: MailboxWatcher,
    asker: str,
    pending: PendingAsk,
    timeout_ms: int,
    wake: bool,
    started: float,
) -> AskResult:
    woke = WakeReport(WakeStatus.DISABLED)
    watch = Watch()  # the end of the wait ends the wake's watching too
    waited = _Waited(None, peer_gone=False)
    failure: OxtailError | None = None

    def wake_target() -> WakeReport:
        rid = pending.request_id
        return agent.wake(pending.target, rid, request_id=rid, watch=watch)

    async def wake_peer() -> None:
        nonlocal woke
        woke = await _wake_in_thread(wake_target)

    try:
        # The wake runs beside the wait (in a worker thread); its report is only
        # needed at the end.
        async with anyio.create_task_group() as tg:
            if wake:
                tg.start_soon(wake_peer)
            try:
                waited = await wait_for_reply(agent, watcher, pending, timeout_ms / 1000)
            except OxtailError as exc:  # caught inside: a task group wraps errors
                failure = exc
            finally:
                watch.finish(answered=waited.delivery is not None)
        # The last await: after it a cancel cannot stop the answer (the SDK writes
        # it with no checkpoint between), so the commit comes after.
        await anyio.lowlevel.checkpoint()
    except BaseException:
        if waited.delivery is not None:
            waited.delivery.abort()  # cancelled or failed: the reply goes back
        _settle(agent, asker, pending.request_id, None)
        raise
    if failure is not None:
        _settle(agent, asker, pending.request_id, None)
        raise failure
    if waited.delivery is not None:
        agent.handed_over(waited.delivery.messages, "ask_peer")
        waited.delivery.commit()
    reply = waited.delivery.messages[0] if waited.delivery else None
    _settle(agent, asker, pending.request_id, reply)
    if reply is not None:
        status = AskStatus.ANSWERED
    else:
        status = AskStatus.PEER_GONE if waited.peer_gone else AskStatus.TIMEOUT
    return AskResult(
        status=status,
        request_id=pending.request_id,
        target=pending.target,
        reply=reply,
        waited_ms=int((time.monotonic() - started) * 1000),
        wake=woke,
    )


def _open_in_ledger(agent: Agent, asker: str, pending: PendingAsk) -> None:
    """Record the ask as waiting before the request goes out; refused (would-deadlock)
    if the target already waits, directly or through others, on this agent."""
    target_sid = pending.target.client_session_id
    assert target_sid is not None  # Agent.ask refuses a peer without one
    now = time.time()
    asks_ledger.open_ask(
        agent.layout,
        AskRecord(
            request_id=pending.request_id,
            asker=asker,
            asker_session_id=agent.identity.session_id,
            asker_server=agent.me.token(),
            target_session_id=target_sid,
            target_name=pending.target.name,
            project_root=str(agent.project_root),
            state=AskState.WAITING,
            created_at=now_iso(),
            updated_at=now_iso(),
            created_ts=now,
            asker_previous_session_ids=tuple(agent.identity.previous_session_ids),
        ),
    )


def _settle(agent: Agent, asker: str, request_id: str, reply: Message | None) -> None:
    """The call is over: answered, or pending (a late reply is still expected). A ledger
    that cannot be written must not turn a returned answer into an error."""
    state = AskState.ANSWERED if reply is not None else AskState.PENDING
    try:
        asks_ledger.set_state(
            agent.layout, asker, request_id, state, reply_id=reply.id if reply else None
        )
    except (OSError, OxtailError) as exc:
        log.warning("ask %s: ledger not updated to %s: %s", request_id, state, exc)


async def _wake_in_thread(run: Callable[[], WakeReport]) -> WakeReport:
    """A wake off the event loop; a bug in it must not fail the ask that waits beside it."""
    try:
        return await anyio.to_thread.run_sync(run)
    except Exception as exc:
        log.exception("wake failed")
        return WakeReport(WakeStatus.FIRED_UNCONFIRMED, detail=f"wake failed: {exc}")
