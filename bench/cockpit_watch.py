"""`oxtail-py watch`: how fast a new message shows on its screen, and its idle CPU.

    python bench/cockpit_watch.py [--rounds 30] [--idle 30]

World: --agents live registry entries (`sleep` processes with session ids) in a project, and
`oxtail-py watch` running in a pane of a private tmux server (80x24, exec'd so the
pane's pid is the watch's). Each round enqueues one message for the agent the way
`oxtail-py send` does (mailbox append + event-log line) and then reads the pane with
capture-pane until the agent's unread count shows it: the time from before the append
to the first capture showing it, p50/p99. The bench polls tmux to measure; the watch
itself only wakes on file events. Then the watch sits idle for --idle seconds and its
CPU time over that span (utime + stime from /proc) is printed as a percentage.
No asserts on timing (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _world import fake_agents, world

from oxtail_py import eventlog
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message


def capture(socket: Path) -> str:
    return subprocess.run(["tmux", "-S", str(socket), "capture-pane", "-p", "-t", "watch"],
                          capture_output=True, text=True, check=True).stdout


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--agents", type=int, default=1, help="live registry entries (1)")
    args = parser.parse_args()
    with world(sessions=1) as w, fake_agents(w, args.agents) as sids:
        sid = sids[0]  # the lowest pid: the first row on screen
        layout = Layout(w.agentmail)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in w.env(sid).items()
                       if k != "CLAUDE_CODE_SESSION_ID")
        w.tmux("new-session", "-d", "-s", "watch", "-x", "80", "-y", "24", "-c",
               str(w.project), f"exec env {env} {shlex.quote(sys.executable)} -m oxtail_py watch")
        pid = int(subprocess.run(["tmux", "-S", str(w.tmux_socket), "display", "-p", "-t",
                                  "watch", "#{pane_pid}"], capture_output=True, text=True,
                                 check=True).stdout)
        deadline = time.monotonic() + 30
        while f"{args.agents} agent(s)" not in capture(w.tmux_socket):
            if time.monotonic() > deadline:
                raise RuntimeError(f"watch did not start:\n{capture(w.tmux_socket)}")
            time.sleep(0.05)
        box = Mailbox.open(layout, sid)
        latencies = []
        for n in range(1, args.rounds + 1):
            time.sleep(0.2)  # let the previous redraw settle
            msg = Message.create(f"round {n}", from_session_id=None,
                                 origin={"operator": True, "cwd": str(w.project)})
            started = time.perf_counter()
            box.enqueue(msg)
            eventlog.sent(layout, msg, sid)
            while f" {n} since " not in capture(w.tmux_socket):
                if time.perf_counter() - started > 10:
                    raise RuntimeError(f"round {n} never showed:\n{capture(w.tmux_socket)}")
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"{args.agents} agent(s); load average {os.getloadavg()[0]:.2f} on "
              f"{os.cpu_count()} cores")
        print(f"new message -> on screen   p50 {statistics.median(latencies):6.1f} ms   "
              f"p99 {p99:6.1f} ms   (n={len(latencies)}; includes one capture-pane, ~2-5 ms)")
        time.sleep(1)
        before, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(args.idle)
        used = (cpu_ticks(pid) - before) / os.sysconf("SC_CLK_TCK")
        print(f"idle watch CPU over {time.monotonic() - t0:.0f} s: {used:.2f} s "
              f"({100 * used / (time.monotonic() - t0):.2f} %)")


if __name__ == "__main__":
    main()
