"""An idle server's CPU with its self-heal timers armed, over 60 s (selfheal.py).

Three real servers in one temp world:

- `armed`: has every timer of selfheal.py armed and none due within the window: unread
  mail (self-heal, OXTAIL_HEAL_IDLE_S=3600), an open obligation it delegated (re-poke,
  OXTAIL_DELEGATE_SILENT_S=3600) and an ask of its that timed out (pending, so a late
  reply would be watched for).
- `off`: the same state with self-healing turned off (OXTAIL_HEAL_MAX_WAKES=0): the
  baseline of an idle server (watchdog's observer thread, the MCP stdio loop).
- `peer`: the one they talk to.

It then leaves them idle and prints, for `armed` and `off`, the CPU time used (user +
system, all threads) and the voluntary context switches (each is a wake-up) over the
window. No figure is asserted: the machine is shared.

    .venv/bin/python bench/idle_cpu.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import anyio
import psutil

from bench._world import World, connect, ok, world
from oxtail_py import asks_ledger, obligations
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import now_iso
from oxtail_py.registry import Registry

SID_ARMED = "aaaaaaaa-0000-4000-8000-0000000000a1"
SID_OFF = "bbbbbbbb-0000-4000-8000-0000000000b2"
SID_PEER = "cccccccc-0000-4000-8000-0000000000c3"


def _pid_of(w: World, sid: str) -> int:
    for entry in Registry(Layout(w.agentmail)).read_all():
        if entry.client.session_id == sid:
            return entry.server_pid
    raise RuntimeError(f"no server registered for {sid}")


def _wakeups(pid: int) -> int:
    """Voluntary context switches of every thread (/proc/<pid>/status counts only the
    main one): each is a thread going to sleep after it woke."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as status:
            for line in status:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def _sample(proc: psutil.Process) -> tuple[float, int]:
    cpu = proc.cpu_times()
    return cpu.user + cpu.system, _wakeups(proc.pid)


async def _arm(w: World, client: Any, sid: str, peer: Any) -> None:
    """Unread mail, a pending ask, and an open delegated obligation, for `sid`."""
    ok(await peer.call_tool("send_message", {"target": sid, "body": "unread on purpose"}))
    asked = ok(
        await client.call_tool(
            "ask_peer", {"target": SID_PEER, "body": "q", "timeout_ms": 100, "wake": "off"}
        )
    )
    assert asked["status"] == "timeout"
    sent = ok(await client.call_tool("send_message", {"target": SID_PEER, "body": "do X"}))
    obligations.create(
        Layout(w.agentmail),
        obligations.Obligation(sent["message_id"], sid, SID_PEER, now_iso(), "do X", None),
    )


def _armed_state(w: World, sid: str) -> str:
    """What keeps `sid`'s timers armed, read from the files (the timers are in-process)."""
    layout = Layout(w.agentmail)
    unread = Mailbox.open(layout, sid).pending_count()
    pending = [
        r for r in asks_ledger.list_asks(layout, asker=sid)
        if r.effective_state() == asks_ledger.AskState.PENDING
    ]  # fmt: skip
    delegated = obligations.open_delegated_by(layout, [sid])
    return f"{unread} unread, {len(pending)} pending ask(s), {len(delegated)} open delegated"


async def main(seconds: float) -> None:
    with world() as w:
        armed_env = {"OXTAIL_HEAL_IDLE_S": "3600", "OXTAIL_DELEGATE_SILENT_S": "3600"}
        params = {
            SID_ARMED: w.server(SID_ARMED),
            SID_OFF: w.server(SID_OFF),
            SID_PEER: w.server(SID_PEER),
        }
        params[SID_ARMED].env = {**(params[SID_ARMED].env or {}), **armed_env}
        for quiet in (SID_OFF, SID_PEER):  # the peer's own unread mail must not wake it
            params[quiet].env = {**(params[quiet].env or {}), "OXTAIL_HEAL_MAX_WAKES": "0"}
        async with (
            connect(params[SID_ARMED]) as armed,
            connect(params[SID_OFF]) as off,
            connect(params[SID_PEER]) as peer,
        ):
            for client in (armed, off, peer):
                ok(await client.call_tool("get_my_session", {}))
            await _arm(w, armed, SID_ARMED, peer)
            await _arm(w, off, SID_OFF, peer)
            procs = {n: psutil.Process(_pid_of(w, s)) for n, s in (("armed", SID_ARMED),
                                                                   ("off", SID_OFF))}  # fmt: skip
            await anyio.sleep(2)  # let the arming settle (the first self-heal pass)
            before = {n: _sample(p) for n, p in procs.items()}
            started = time.monotonic()
            await anyio.sleep(seconds)
            elapsed = time.monotonic() - started
            after = {n: _sample(p) for n, p in procs.items()}
            armed_state = _armed_state(w, SID_ARMED)
    print(f"armed server's state during the window: {armed_state}")
    load = psutil.getloadavg()
    print(f"idle window {elapsed:.1f} s; load average {load[0]:.2f} on {psutil.cpu_count()} CPUs")
    for name in procs:
        cpu = after[name][0] - before[name][0]
        switches = after[name][1] - before[name][1]
        print(
            f"{name:5s}: cpu {cpu * 1000:.1f} ms ({100 * cpu / elapsed:.3f} % of one core), "
            f"{switches} thread wake-ups ({switches / elapsed:.2f}/s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    anyio.run(main, parser.parse_args().seconds)
