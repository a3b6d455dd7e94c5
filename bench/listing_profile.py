"""Where a 100 x 100 listing spends its time, measured in this process (no stdio hop).

    python bench/listing_profile.py [--calls 40] [--profile] [--top 25]

World: 100 live registry entries (`sleep` processes with session ids, cwd in the
project) and 100 tmux panes in the project (a private tmux server, 10 sessions x 10
windows), plus this process's own Agent: 101 agents + 100 panes, as in
bench/server_ops.py (b).

Prints p50/p99 of
  - discovery.list_project alone (count_unread on, as list_project_sessions does),
  - the whole list_project_sessions tool over an in-memory MCP client (pydantic rows,
    JSON encoding, the tool wrapper), and
  - send_message to one of the 100 entries over the same client;
with --profile, a cProfile (cumulative, then by own time) of the tool calls.
No asserts on timing: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
from _world import fake_agents, ok, world
from mcp.client import Client
from mcp.types import CallToolResult

from oxtail_py.agent import Agent
from oxtail_py.discovery import list_project
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.server import SessionList, SessionRow, build_server
from oxtail_py.settings import Settings
from oxtail_py.watch import MailboxWatcher

SID_ME = "aaaaaaaa-0000-4000-8000-00000000b0a1"


def p50_p99(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:7.2f}  p99 {cuts[98]:7.2f}  max {max(values):7.2f} ms"


async def timed(
    count: int, call: Callable[[], Awaitable[CallToolResult]], after: Callable[[], None]
) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        ok(await call())
        samples.append((time.perf_counter() - start) * 1000)
        after()
    return samples


def print_profile(prof: cProfile.Profile, top: int) -> None:
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(top)
        print(f"  cProfile by {key}:")
        for line in out.getvalue().splitlines():
            if line.strip() and not line.lstrip().startswith(("List reduced", "Ordered by")):
                print(f"    {line.rstrip()}")


async def run(calls: int, profile: bool, top: int) -> None:
    with world(sessions=10, windows=10) as w, fake_agents(w, 100) as sids:
        # This process plays the server: configuration comes from the environment.
        os.environ.update(w.env(SID_ME))
        os.chdir(w.project)
        settings = Settings.from_env()
        agent = Agent(Layout(settings.root), settings=settings)
        agent.start()
        watcher = MailboxWatcher()
        server = build_server(agent, watcher, settings)
        layout = Layout(w.agentmail)
        root = w.project.resolve()

        direct: list[float] = []
        for _ in range(calls):
            start = time.perf_counter()
            listing = list_project(layout, root, True, agent.me)
            direct.append((time.perf_counter() - start) * 1000)
        agents = sum(1 for r in listing.rows if r.kind == "agent")
        panes = sum(1 for r in listing.rows if r.kind == "pane")

        server_side: list[float] = []
        prof = cProfile.Profile()
        for n in range(calls + (10 if profile else 0)):
            if n == calls:
                prof.enable()
            start = time.perf_counter()
            rows = [SessionRow.of(r) for r in agent.list_sessions().rows]
            SessionList(
                project_root=str(root), inferred=True, tmux_available=True, sessions=rows
            ).model_dump_json()
            server_side.append((time.perf_counter() - start) * 1000)
        prof.disable()

        box = Mailbox.open(layout, sids[0])
        async with Client(server) as client:

            def nothing() -> None:
                pass

            async def listing_call() -> CallToolResult:
                return await client.call_tool("list_project_sessions", {})

            async def send_call() -> CallToolResult:
                return await client.call_tool("send_message", {"target": sids[0], "body": "p"})

            await timed(3, listing_call, nothing)  # warm-up
            tool = await timed(calls, listing_call, nothing)
            sent = await timed(calls, send_call, lambda: box.drain().commit())
            result = await listing_call()
            validation: list[float] = []
            for _ in range(calls):
                start = time.perf_counter()
                await client.session.validate_tool_result("list_project_sessions", result)
                validation.append((time.perf_counter() - start) * 1000)
        agent.stop()
    print(f"list_project ({agents} agents + {panes} panes), {calls} calls: {p50_p99(direct)}")
    print(f"  + Agent.list_sessions and the pydantic rows to JSON:  {p50_p99(server_side[:calls])}")
    print(f"list_project_sessions tool, in-memory MCP, {calls} calls:   {p50_p99(tool)}")
    print(f"  of which the Python client's output-schema check:    {p50_p99(validation)}")
    print(f"send_message tool, in-memory MCP, {calls} calls:            {p50_p99(sent)}")
    if profile:
        print("10 x (Agent.list_sessions + rows to JSON), the server side of the tool:")
        print_profile(prof, top)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.calls < 2:
        parser.error("--calls must be at least 2")
    anyio.run(run, args.calls, args.profile, args.top)


if __name__ == "__main__":
    main()
