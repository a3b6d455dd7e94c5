"""asks: the asks ledger of a project, as the wait-for graph (cycles flagged)."""

from __future__ import annotations

import argparse
import os
import time

from oxtail_py.settings import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    asks = sub.add_parser(
        "asks", help="list the asks (ask_peer) of this project: waiting, pending, answered"
    )
    asks.add_argument("--project-root", default=None,
                      help="the project (default: the nearest .git above the cwd)")  # fmt: skip
    asks.add_argument("--all", action="store_true", help="include answered asks")
    asks.set_defaults(handler=_asks)


def _asks(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py import asks_ledger
    from oxtail_py.framing import neutralize
    from oxtail_py.layout import Layout
    from oxtail_py.scope import resolve_project_root

    root, _ = resolve_project_root(args.project_root, os.getcwd(), home=settings.home)
    records = asks_ledger.list_asks(Layout(settings.root), root)
    done = (asks_ledger.AskState.ANSWERED, asks_ledger.AskState.LATE_ANSWERED)
    shown = [r for r in records if args.all or r.effective_state() not in done]
    now = time.time()
    print(f"asks in {root}: {len(shown)} shown of {len(records)}")
    for r in shown:
        age = int(now - r.created_ts)
        print(
            f"  {r.request_id}  {r.effective_state():13s}  {r.node} -> "
            f"{r.target_session_id} ({neutralize(r.target_name)!r})  {age}s ago"
        )
    for cycle in asks_ledger.find_cycles(records):
        print("  CYCLE: " + " -> ".join(cycle))
    return 0
