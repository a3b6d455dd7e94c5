"""Mailbox figures: enqueue msgs/s with 1 and 16 writer processes, drain time for 1,000.

    python bench/mailbox_throughput.py [--rounds 5]

Prints medians over rounds (machines are noisy; compare ratios, not absolutes).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message

_WRITER = """
import sys, time
from pathlib import Path
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
box = Mailbox.open(Layout(Path(sys.argv[1])), "bench")
count = int(sys.argv[3])
msgs = [Message.create(f"{sys.argv[2]}:{i} {200 * chr(120)}", from_session_id="w")
        for i in range(count)]
print("READY", flush=True)
sys.stdin.readline()
for m in msgs:
    box.enqueue(m)
"""


def enqueue_rate(writers: int, per_writer: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, tmp, str(n), str(per_writer)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(writers)
        ]
        for p in procs:  # start the clock only once every writer is imported and ready
            assert p.stdout is not None and p.stdout.readline().strip() == "READY"
        start = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.close()
        for p in procs:
            p.wait()
        elapsed = time.perf_counter() - start
        assert Mailbox.open(Layout(Path(tmp)), "bench").pending_count() == writers * per_writer
        return writers * per_writer / elapsed


def drain_ms(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        box = Mailbox.open(Layout(Path(tmp)), "bench")
        for i in range(count):
            box.enqueue(Message.create(f"{i} " + "x" * 200, from_session_id="w"))
        start = time.perf_counter()
        delivery = box.drain()
        delivery.commit()
        elapsed = time.perf_counter() - start
        assert len(delivery.messages) == count
        return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    one = [enqueue_rate(1, 2000) for _ in range(rounds)]
    sixteen = [enqueue_rate(16, 250) for _ in range(rounds)]
    drains = [drain_ms(1000) for _ in range(rounds)]
    print(f"enqueue, 1 writer process:    median {statistics.median(one):8.0f} msgs/s")
    print(f"enqueue, 16 writer processes: median {statistics.median(sixteen):8.0f} msgs/s")
    print(f"drain + commit of 1,000 msgs: median {statistics.median(drains):8.1f} ms")


if __name__ == "__main__":
    main()
