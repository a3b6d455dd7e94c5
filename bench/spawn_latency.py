"""Spawn latency with the real clients: spawn -> server registered -> first turn at the model.

    scripts/netns-run .venv/bin/python bench/spawn_latency.py [--runs 3]

Runs inside a loopback-only network namespace (the clients reach for outside hosts on
their own), with the e2e harness: the pinned Claude Code and Codex CLI, each talking to a
scripted model on 127.0.0.1, oxtail wired in the user's own config. Each run spawns one
helper the way `oxtail-py spawn` does (the Spawner core, as the person), then stops it.

Figures per client (milliseconds, median and max over the runs):
  registered   spawn called -> the helper's oxtail server registered (and, for Claude,
               knows its session id)
  first turn   spawn called -> the scripted model receives the turn carrying the prompt
  returned     spawn called -> spawn returned (the prompt proven submitted; for Codex also
               its thread id, learned at its first tool call)
The client's own start-up dominates. No asserts on timing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oxtail_py import tmux
from oxtail_py.layout import Layout
from oxtail_py.settings import Settings
from oxtail_py.spawn.spawner import Caller, Spawner
from tests.e2e.harness import (
    ModelRequest,
    Reply,
    Scenario,
    Text,
    ToolCall,
    ensure_clients,
    isolation_problem,
    wait_until,
)
from tests.e2e.harness.agents import CODEX_KEY_VAR
from tests.e2e.test_spawn_real import codex_in_same_home, user_claude

PROMPT = "BENCH-FIRST-TURN"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    problem = isolation_problem()
    if problem:
        sys.exit(f"run me inside scripts/netns-run: {problem}")
    clients = ensure_clients()
    os.environ["PATH"] = f"{clients.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    arrived: dict[str, float] = {}

    def script(request: ModelRequest) -> Reply:
        found = [m for t in request.user_texts() for m in re.findall(f"{PROMPT} (\\S+)", t)]
        if found and not request.ends_with_tool_result():
            arrived.setdefault(found[-1], time.monotonic())
            return ToolCall.mcp("oxtail", "set_my_state", {"purpose": "bench"})
        return Text("ok")

    root = Path(tempfile.mkdtemp(prefix="oxbench-spawn-"))
    scenario = Scenario(clients=clients, root=root)
    try:
        claude = user_claude(scenario, script, env={CODEX_KEY_VAR: "scripted-model-key"})
        codex_in_same_home(scenario, claude, script)
        settings = Settings.from_env({**claude.env, "OXTAIL_TMUX_SOCKET":
                                      str(scenario.tmux.socket)})
        tmux.configure(settings)
        scenario.tmux.run("new-session", "-d", "-s", "keepalive", "sleep 100000")
        spawner = Spawner(Layout(settings.root), settings)
        caller = Caller(by="person", pid=os.getpid(), cwd=str(claude.project), name="person",
                        session_id=None, tmux_session=None, env=dict(claude.env))
        for client in ("claude", "codex"):
            figures: dict[str, list[int]] = {"registered": [], "first turn": [], "returned": []}
            for n in range(runs):
                key = f"{client}-{n}"
                started = time.monotonic()
                result = spawner.spawn(caller, client, f"{PROMPT} {key}", name=key)
                returned = time.monotonic()
                figures["registered"].append(result.registered_ms)
                # Submitted (its transcript shows it) may precede the request by a moment.
                wait_until(lambda k=key: arrived.get(k), timeout=60, what=f"{key}'s first turn")
                figures["first turn"].append(int((arrived[key] - started) * 1000))
                figures["returned"].append(int((returned - started) * 1000))
                spawner.stop(caller, key, project_root=claude.project)
            _print(client, figures)
    finally:
        scenario.close()


def _print(client: str, figures: dict[str, Any]) -> None:
    cells = "  ".join(
        f"{name}: median {statistics.median(v):.0f} max {max(v)}" for name, v in figures.items()
    )
    print(f"{client:<7} ms over {len(figures['returned'])} runs  {cells}")


if __name__ == "__main__":
    main()
