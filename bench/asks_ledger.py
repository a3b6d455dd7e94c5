"""The asks ledger's cost per ask (asks_ledger.py): recording an ask (the wait-for graph
check under the lock, then the write) and settling it, with N asks already on record.

    .venv/bin/python bench/asks_ledger.py [--asks 200] [--askers 4]

Core only (no MCP): each ask_peer pays one open_ask and one set_state on top of its
mail. Prints p50/p99 in ms; asserts nothing (the machine is shared).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from oxtail_py import asks_ledger
from oxtail_py.asks_ledger import AskRecord, AskState
from oxtail_py.layout import Layout
from oxtail_py.messages import new_message_id, now_iso
from oxtail_py.procs import self_identity


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main(asks: int, askers: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="oxa-"))
    layout = Layout(root / "am")
    me = self_identity().token()
    sids = [f"aaaaaaaa-0000-4000-8000-{n:012d}" for n in range(askers)]
    target = "bbbbbbbb-0000-4000-8000-00000000000b"
    opened: list[float] = []
    settled: list[float] = []
    try:
        for n in range(asks):
            asker = sids[n % askers]
            record = AskRecord(new_message_id(), asker, asker, me, target, "peer", "/proj",
                               AskState.WAITING, now_iso(), now_iso(), time.time())  # fmt: skip
            started = time.perf_counter()
            asks_ledger.open_ask(layout, record)
            middle = time.perf_counter()
            asks_ledger.set_state(layout, asker, record.request_id, AskState.ANSWERED)
            settled.append((time.perf_counter() - middle) * 1000)
            opened.append((middle - started) * 1000)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"asks ledger: {asks} asks by {askers} askers (the ledger grows to {asks} records)")
    for label, values in (("open_ask (graph check + record)", opened),
                          ("set_state (settle)", settled)):  # fmt: skip
        print(
            f"  {label:34s} p50 {statistics.median(values):6.2f}  "
            f"p99 {_pct(values, 0.99):6.2f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=200)
    parser.add_argument("--askers", type=int, default=4)
    args = parser.parse_args()
    main(args.asks, args.askers)
