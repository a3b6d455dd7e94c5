"""ask_peer latency between two real oxtail servers: A asks, the benchmark answers as B.

    python bench/ask_peer_latency.py [--rounds 200] [--warmup 10]

Two `python -m oxtail_py serve` processes share a temporary AGENTMAIL_HOME (and a private
tmux server with one pane in the project, so `tmux list-panes` answers as it would in real
use). Each round: A calls ask_peer(target=B) over MCP; the benchmark waits for the request
to land in B's inbox, takes it with B's read_my_messages and answers with B's
send_message(reply_to=<request_id>), both over MCP.

Figures (milliseconds, p50/p90/p99/max):
  wake-up     B's send_message result received -> A's ask_peer result received. A's server
              can see the reply (inotify) before B's server has even sent its tool result,
              so this can be negative; the count of such rounds is printed.
  reply path  B's send_message called -> A's ask_peer result received.
  round trip  A calls ask_peer -> A's result received (includes the benchmark, as B,
              noticing the request by polling B's inbox every 0.5 ms and reading it).
No asserts on timing: machines are noisy; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import dataclass
from typing import Any

import anyio
from _world import connect, ok, world
from mcp.client import Client

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox

SID_A = "aaaaaaaa-0000-4000-8000-00000000bea1"
SID_B = "bbbbbbbb-0000-4000-8000-00000000bea2"
POLL_S = 0.0005


@dataclass
class Sample:
    wake_ms: float  # B's send_message returned -> A's ask_peer returned (may be < 0)
    reply_path_ms: float  # B's send_message called -> A's ask_peer returned
    round_trip_ms: float  # A called ask_peer -> A's ask_peer returned
    waited_ms: int  # A's server: its own waited_ms


async def one_round(a: Client, b: Client, b_inbox: Mailbox, n: int) -> Sample:
    marks: dict[str, float] = {}
    outcome: dict[str, Any] = {}

    async def ask() -> None:
        marks["ask_called"] = time.perf_counter()
        result = await a.call_tool(
            "ask_peer", {"target": SID_B, "body": f"question {n}", "timeout_ms": 10_000}
        )
        marks["ask_returned"] = time.perf_counter()
        outcome.update(ok(result))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        while b_inbox.pending_count() == 0:
            await anyio.sleep(POLL_S)
        inbox = ok(await b.call_tool("read_my_messages", {}))
        requests = [m for m in inbox["messages"] if m["request_id"]]
        if len(requests) != 1:
            raise RuntimeError(f"expected one request in B's inbox, got {inbox}")
        marks["send_called"] = time.perf_counter()
        ok(
            await b.call_tool(
                "send_message",
                {"target": SID_A, "body": f"answer {n}", "reply_to": requests[0]["request_id"]},
            )
        )
        marks["send_returned"] = time.perf_counter()
    if outcome.get("status") != "answered" or outcome["reply"]["body"] != f"answer {n}":
        raise RuntimeError(f"round {n}: ask_peer did not get its answer: {outcome}")
    end = marks["ask_returned"]
    return Sample(
        wake_ms=(end - marks["send_returned"]) * 1000,
        reply_path_ms=(end - marks["send_called"]) * 1000,
        round_trip_ms=(end - marks["ask_called"]) * 1000,
        waited_ms=int(outcome["waited_ms"]),
    )


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return (
        f"p50 {cuts[49]:7.2f}  p90 {cuts[89]:7.2f}  p99 {cuts[98]:7.2f}  max {max(values):7.2f} ms"
    )


async def run(rounds: int, warmup: int) -> None:
    with world() as w:
        async with connect(w.server(SID_A)) as a, connect(w.server(SID_B)) as b:
            b_inbox = Mailbox.open(Layout(w.agentmail), SID_B)
            for n in range(warmup):
                await one_round(a, b, b_inbox, -1 - n)
            # This process is the measuring client: its own full collections (the SDK
            # and pydantic, ~50 ms each) would show up as the servers' latency.
            gc.collect()
            gc.freeze()
            samples = [await one_round(a, b, b_inbox, n) for n in range(rounds)]
    wake = [s.wake_ms for s in samples]
    early = sum(1 for v in wake if v < 0)
    print(f"ask_peer latency: {rounds} round trips (after {warmup} warm-up), 2 real servers")
    print("  A's ask_peer waits on inotify events read on its event loop, not a timer loop")
    print(f"  wake-up     (B send_message returned -> A ask_peer returned): {percentiles(wake)}")
    print(f"              A's result came first (negative value) in {early}/{rounds} rounds")
    reply = [s.reply_path_ms for s in samples]
    print(f"  reply path  (B send_message called   -> A ask_peer returned): {percentiles(reply)}")
    trip = [s.round_trip_ms for s in samples]
    print(f"  round trip  (A ask_peer called       -> A ask_peer returned): {percentiles(trip)}")
    waited = [float(s.waited_ms) for s in samples]
    print(f"  A's server-side waited_ms (whole ask, 1 ms resolution):      {percentiles(waited)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2")
    anyio.run(run, args.rounds, args.warmup)


if __name__ == "__main__":
    main()
