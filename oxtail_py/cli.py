"""The `oxtail-py` command. With no subcommand it serves MCP on stdio.

Subcommands live in `oxtail_py.commands`, one module per concern; each adds its parsers
and a handler. A new concern adds its module to COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from oxtail_py import __version__
from oxtail_py.commands import asks, claim, cockpit, guard, install, spawn
from oxtail_py.errors import OxtailError

COMMAND_MODULES = (install, claim, guard, spawn, asks, cockpit)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oxtail-py",
        description="Coordination for parallel Claude Code and Codex agents. "
        "With no command: run the stdio MCP server (what an agent client launches).",
    )
    parser.add_argument("--version", action="version", version=f"oxtail-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the stdio MCP server (the default)")
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in (None, "serve"):
        from oxtail_py.server import serve  # lazy: importing mcp costs ~1 s

        serve()
        return 0
    from oxtail_py.settings import Settings

    settings = Settings.from_env()  # the one read of the environment for this command
    try:
        status: int = args.handler(args, settings)
    except OxtailError as exc:
        print(f"oxtail-py: {exc.code}: {exc}", file=sys.stderr)
        return 2
    return status
