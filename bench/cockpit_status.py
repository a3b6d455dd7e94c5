"""`oxtail-py status` end to end, Python start included, with 100 agents and 100 panes.

    python bench/cockpit_status.py [--runs 30]

World (bench/_world.py): 100 live registry entries (`sleep` processes with session ids,
cwd in the project) with 3 messages waiting in every tenth box, and a private tmux
server of 10 sessions x 10 windows in the project. Each run is a fresh
`python -m oxtail_py status` (and `status --json`) process, timed from spawn to exit.
Prints p50/p99 next to the floor of `python -c pass` and of `python -c "import
oxtail_py.cockpit.model"`, and the snapshot + render alone, in this process. No
asserts on timing (the machine is shared: compare ratios).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _world import fake_agents, world

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message


def timed(argv: list[str], env: dict[str, str], cwd: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
        out.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode())
    return out


def show(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{label:44} p50 {statistics.median(ms):7.1f} ms   p99 {p99:7.1f} ms   (n={len(ms)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with world(sessions=10, windows=10) as w, fake_agents(w, 100) as sids:
        layout = Layout(w.agentmail)
        for sid in sids[::10]:
            box = Mailbox.open(layout, sid)
            for n in range(3):
                box.enqueue(Message.create(f"note {n}", from_session_id=sids[0]))
        env = {**os.environ, **w.env(sids[0])}
        env.pop("CLAUDE_CODE_SESSION_ID")
        py = sys.executable
        cwd = str(w.project)
        lines = subprocess.run([py, "-m", "oxtail_py", "status"], env=env, cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.splitlines()
        print(f"world: {sum(1 for ln in lines if ln.startswith('cccccccc'))} agents listed, "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        show("python -c pass", timed([py, "-c", "pass"], env, cwd, args.runs))
        show("python -c 'import oxtail_py.cockpit.model'",
             timed([py, "-c", "import oxtail_py.cockpit.model"], env, cwd, args.runs))
        show("oxtail-py status (100 agents, 100 panes)",
             timed([py, "-m", "oxtail_py", "status"], env, cwd, args.runs))
        show("oxtail-py status --json",
             timed([py, "-m", "oxtail_py", "status", "--json"], env, cwd, args.runs))
        show("in process: snapshot + render (warm)", in_process(w.project, env, args.runs))


def in_process(project: Path, env: dict[str, str], runs: int) -> list[float]:
    """The work alone, without Python's start and imports (the registry parse cache warm)."""
    from oxtail_py import tmux
    from oxtail_py.cockpit.model import build_snapshot
    from oxtail_py.cockpit.render_text import render
    from oxtail_py.settings import Settings

    settings = Settings.from_env(env)
    tmux.configure(settings)
    layout = Layout(settings.root)
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        render(build_snapshot(layout, project, ask_timeout_s=600.0))
        out.append((time.perf_counter() - started) * 1000)
    return out


if __name__ == "__main__":
    main()
