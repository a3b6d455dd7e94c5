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

from oxtail_py.agent import Agent, PendingAsk
from oxtail_py.discovery import Row
from oxtail_py.errors import OxtailError
from oxtail_py.mailbox import Delivery
from oxtail_py.messages import Message
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
        # Runs on watchdog's thread, which holds the observer's lock: never block here
        # (waiting for the loop while the loop waits in watcher.watch() would deadlock).
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
                # Off the loop (it may wait for the mailbox lock). Not abandoned on
                # cancel: a reply it takes still comes back to us, and the caller
                # aborts it.
                found = await anyio.to_thread.run_sync(agent.take_reply, pending)
                if found is not None:
                    return _Waited(found, peer_gone=False)
                if was_gone:  # looked once more after the exit: a last reply is taken
                    return _Waited(None, peer_gone=True)
                await current[0].wait()
        return _Waited(None, peer_gone=False)
    finally:
        unsubscribe()


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
    a request that cannot be sent; a reply is committed only once nothing can cancel
    the caller's answer any more."""
    started = time.monotonic()
    woke = WakeReport(WakeStatus.DISABLED)
    with agent.ask(target, body) as pending:
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
            raise
        if failure is not None:
            raise failure
        if waited.delivery is not None:
            agent.handed_over(waited.delivery.messages, "ask_peer")
            waited.delivery.commit()
    reply = waited.delivery.messages[0] if waited.delivery else None
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


async def _wake_in_thread(run: Callable[[], WakeReport]) -> WakeReport:
    """A wake off the event loop; a bug in it must not fail the ask that waits beside it."""
    try:
        return await anyio.to_thread.run_sync(run)
    except Exception as exc:
        log.exception("wake failed")
        return WakeReport(WakeStatus.FIRED_UNCONFIRMED, detail=f"wake failed: {exc}")
