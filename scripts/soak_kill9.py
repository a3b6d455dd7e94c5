"""Soak the mailbox under kill -9: real writer and reader processes killed at random
moments (timing-based, unlike the suite's step-walking kills), for a while.

    .venv/bin/python scripts/soak_kill9.py [--seconds 120] [--writers 4]

Each round: writers enqueue, readers drain, and a killer SIGKILLs random workers;
then a final drain recovers whatever dead readers claimed. Checked every round:
every confirmed send was delivered; an id delivered twice was in a batch its
reader handed over and never committed (the one allowed duplicate). Prints totals.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox

WORKER = str(Path(__file__).resolve().parents[1] / "tests" / "mailbox_worker.py")
KEY = "soak"


def one_round(rng: random.Random, writers: int) -> tuple[int, int, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        root, stop = Path(tmp) / "am", Path(tmp) / "stop"
        procs = [
            subprocess.Popen([sys.executable, WORKER, "enqueue", str(root), KEY, f"w{n}", "300"],
                             stdout=subprocess.PIPE, text=True)
            for n in range(writers)
        ] + [
            subprocess.Popen([sys.executable, WORKER, "drain", str(root), KEY, str(stop)],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        killed = 0
        deadline = time.monotonic() + rng.uniform(0.3, 1.5)
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.02, 0.2))
            victim = rng.choice(procs)
            if victim.poll() is None:
                victim.send_signal(signal.SIGKILL)
                killed += 1
        stop.touch()
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        final = Mailbox.open(Layout(root), KEY).drain()
        final.commit()

        confirmed: set[str] = set()
        handed: list[str] = []
        allowed: set[str] = set()
        for out in outputs:
            batch: list[str] = []
            for line in out.splitlines():
                if line.startswith("SENT "):
                    confirmed.add(line.split()[1])
                elif line.startswith("HANDED "):
                    batch = [i.split("=")[0] for i in line[7:].split()]
                    handed += batch
                elif line == "COMMITTED":
                    batch = []
            allowed |= set(batch)  # handed over, never committed: its reader died
        counts = Counter(handed + [m.id for m in final.messages])
        lost = confirmed - set(counts)
        bad_dups = {i for i, n in counts.items() if n > 1} - allowed
        if lost or bad_dups:
            raise SystemExit(f"INVARIANT BROKEN: lost={sorted(lost)} duplicates={sorted(bad_dups)}")
        dups = sum(1 for n in counts.values() if n > 1)
        return len(confirmed), len(counts), killed, dups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    end = time.monotonic() + args.seconds
    rounds = sent = delivered = kills = dups = 0
    while time.monotonic() < end:
        s, d, k, u = one_round(rng, args.writers)
        rounds, sent, delivered = rounds + 1, sent + s, delivered + d
        kills, dups = kills + k, dups + u
    print(f"{rounds} rounds, {kills} kill -9s, {sent} confirmed sends, {delivered} distinct "
          f"delivered, 0 lost, {dups} allowed duplicates (handed over, reader killed before "
          "its record)")


if __name__ == "__main__":
    main()
