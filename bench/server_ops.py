"""Server operation figures: send_message, list_project_sessions at 100 x 100, start-up.

    python bench/server_ops.py [--sends 200] [--lists 30] [--spawns 10] [--profile] [--only abc]

(a) send_message round trip over MCP (call -> result) between two real servers, and
    list_project_sessions in that small world (2 agents, 1 tmux pane) for reference.
(b) list_project_sessions with 100 live registry entries (100 `sleep` processes, each with
    a session id, cwd in the project) and 100 tmux panes in the project (a private tmux
    server: 10 sessions x 10 windows running `sleep 600`); also send_message to one of
    those entries, since every send resolves its target through the same listing.
    Timed twice: with the Python SDK client (which re-validates every result against the
    tool's output schema with jsonschema: ~25-60 ms for 201 rows, client-side work that
    Claude Code and Codex do in their own runtimes) and with a bare JSON-RPC client over
    the same stdio (write the request line, read the response line: the server's cost).
    --profile adds a cProfile of discovery.list_project run in this process on that world.
(c) server spawn -> initialize result over the stdio client (mode="legacy"), median, and
    where start-up goes: `python -c` of nothing, of `import oxtail_py.agent`, of
    `from mcp.server.mcpserver import MCPServer`, and of `import oxtail_py.server`.

Prints p50/p99 (or medians); no asserts on timing: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import anyio
from _world import World, connect, fake_agents, ok, world
from mcp.types import CallToolResult

from oxtail_py.discovery import list_project
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.procs import self_identity

SID_A = "aaaaaaaa-0000-4000-8000-00000000b0a1"
SID_B = "bbbbbbbb-0000-4000-8000-00000000b0b2"


def _nothing() -> None:
    pass


async def timed_calls(
    count: int, call: Callable[[], Awaitable[CallToolResult]], after: Callable[[], None] = _nothing
) -> list[float]:
    """ms per call; `after` runs between calls, outside the clock."""
    samples: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        ok(await call())
        samples.append((time.perf_counter() - start) * 1000)
        after()
    return samples


def p50_p99(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:7.2f}  p99 {cuts[98]:7.2f}  max {max(values):7.2f} ms"


# -- (a) ----------------------------------------------------------------------------


async def bench_send(sends: int, lists: int) -> None:
    with world() as w:
        async with connect(w.server(SID_A)) as a, connect(w.server(SID_B)) as b:
            b_inbox = Mailbox.open(Layout(w.agentmail), SID_B)

            def empty_b() -> None:  # keep B's inbox from growing across samples
                b_inbox.drain().commit()

            async def send() -> CallToolResult:
                return await a.call_tool("send_message", {"target": SID_B, "body": "ping"})

            async def listing() -> CallToolResult:
                return await a.call_tool("list_project_sessions", {})

            await timed_calls(10, send, empty_b)  # warm-up
            sent = await timed_calls(sends, send, empty_b)
            listed = await timed_calls(lists, listing)
            rows = len(ok(await listing())["sessions"])
            # The cheapest tool: what a call costs with no discovery behind it.
            noop = await timed_calls(sends, lambda: b.call_tool("set_my_state", {"purpose": "x"}))
    print(f"(a) send_message A -> B over MCP, {sends} calls:        {p50_p99(sent)}")
    print(
        f"    list_project_sessions, {rows} rows (2 agents, 1 pane), {lists} calls: "
        f"{p50_p99(listed)}"
    )
    print(f"    set_my_state (no discovery), {sends} calls:          {p50_p99(noop)}")


# -- (b) ----------------------------------------------------------------------------


def profile_listing(w: World, top: int = 18) -> None:
    """cProfile of discovery.list_project in this process (same world, same tmux socket)."""
    saved = os.environ.get("OXTAIL_TMUX_SOCKET")
    os.environ["OXTAIL_TMUX_SOCKET"] = str(w.tmux_socket)
    try:
        layout = Layout(w.agentmail)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            list_project(layout, w.project, True, self_identity())
        prof.disable()
    finally:
        if saved is None:
            os.environ.pop("OXTAIL_TMUX_SOCKET", None)
        else:
            os.environ["OXTAIL_TMUX_SOCKET"] = saved
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print("    cProfile, 5 x discovery.list_project in-process (cumulative):")
    for line in out.getvalue().splitlines():
        if line.strip() and not line.lstrip().startswith(("List reduced", "Ordered by")):
            print(f"      {line.rstrip()}")


def raw_calls(w: World, count: int, tool: str, arguments: dict[str, str]) -> list[float]:
    """ms per tools/call over a bare newline-delimited JSON-RPC stdio pipe."""
    params = w.server(SID_A)
    proc = subprocess.Popen(
        [params.command, *params.args],
        cwd=params.cwd,
        env={**os.environ, **(params.env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def request(rid: int, method: str, args: dict[str, object]) -> dict[str, object]:
        message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": args}
        stdin.write(json.dumps(message).encode() + b"\n")
        stdin.flush()
        while True:  # skip notifications (logging) until our response
            reply = json.loads(stdout.readline())
            if reply.get("id") == rid:
                if "error" in reply or reply["result"].get("isError"):
                    raise RuntimeError(f"{method} failed: {reply}")
                return dict(reply["result"])

    try:
        request(
            0,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        )
        stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        samples: list[float] = []
        for n in range(count + 3):
            start = time.perf_counter()
            request(n + 1, "tools/call", {"name": tool, "arguments": arguments})
            if n >= 3:  # the first calls warm caches
                samples.append((time.perf_counter() - start) * 1000)
        return samples
    finally:
        stdin.close()
        proc.wait(timeout=10)


async def bench_list_100(lists: int, profile: bool) -> None:
    with world(sessions=10, windows=10) as w, fake_agents(w, 100) as sids:
        async with connect(w.server(SID_A)) as a:

            async def listing() -> CallToolResult:
                return await a.call_tool("list_project_sessions", {})

            first = ok(await listing())["sessions"]
            agents = sum(1 for r in first if r["kind"] == "agent")
            panes = sum(1 for r in first if r["kind"] == "pane")
            listed = await timed_calls(lists, listing)
            box = Mailbox.open(Layout(w.agentmail), sids[0])
            sent = await timed_calls(
                lists,
                lambda: a.call_tool("send_message", {"target": sids[0], "body": "ping"}),
                lambda: box.drain().commit(),
            )
        raw_listed = raw_calls(w, lists, "list_project_sessions", {})
        raw_sent = raw_calls(w, lists, "send_message", {"target": sids[0], "body": "ping"})
        print(
            f"(b) list_project_sessions, {agents} agents + {panes} panes, {lists} calls: "
            f"{p50_p99(listed)}"
        )
        print(f"    send_message in that world, {lists} calls:        {p50_p99(sent)}")
        print(
            f"    bare JSON-RPC over stdio, list_project_sessions, {lists} calls: "
            f"{p50_p99(raw_listed)}"
        )
        print(f"    bare JSON-RPC over stdio, send_message, {lists} calls: {p50_p99(raw_sent)}")
        if profile:
            profile_listing(w)


# -- (c) ----------------------------------------------------------------------------


async def bench_spawn(spawns: int) -> None:
    with world() as w:
        params = w.server(SID_A)
        samples: list[float] = []
        for _ in range(spawns):
            start = time.perf_counter()
            async with connect(params):  # __aenter__ returns once initialize has completed
                samples.append((time.perf_counter() - start) * 1000)
    print(
        f"(c) spawn `python -m oxtail_py serve` -> initialize done, {spawns} spawns: "
        f"median {statistics.median(samples):7.1f} ms  (min {min(samples):.1f})"
    )
    for code in (
        "pass",
        "import oxtail_py.agent",
        "from mcp.server.mcpserver import MCPServer",
        "import oxtail_py.server",
    ):
        runs: list[float] = []
        for _ in range(spawns):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            runs.append((time.perf_counter() - start) * 1000)
        print(f"    python -c {code!r:<46} median {statistics.median(runs):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--lists", type=int, default=30)
    parser.add_argument("--spawns", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="cProfile the 100 x 100 listing")
    parser.add_argument("--only", default="abc", help="which parts to run, e.g. --only b")
    args = parser.parse_args()
    if min(args.sends, args.lists, args.spawns) < 2:
        parser.error("every count must be at least 2")
    if "a" in args.only:
        anyio.run(bench_send, args.sends, args.lists)
    if "b" in args.only:
        anyio.run(bench_list_100, args.lists, args.profile)
    if "c" in args.only:
        anyio.run(bench_spawn, args.spawns)


if __name__ == "__main__":
    main()
