"""claim: tell a running oxtail server its session id."""

from __future__ import annotations

import argparse

from oxtail_py.settings import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    claim = sub.add_parser("claim", help="tell a running oxtail server its session id")
    claim.add_argument("session_id")
    claim.add_argument("--server-pid", type=int, required=True,
                       help="pid of the oxtail server (get_my_session shows it)")
    claim.set_defaults(handler=_claim)


def _claim(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.identity import write_claim
    from oxtail_py.layout import Layout

    path = write_claim(Layout(settings.root), args.server_pid, args.session_id)
    print(f"claimed {args.session_id} for server pid {args.server_pid} ({path})")
    return 0
