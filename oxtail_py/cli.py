"""The `oxtail-py` command. With no subcommand it serves MCP on stdio."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from oxtail_py import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oxtail-py",
        description="Coordination for parallel Claude Code and Codex agents. "
        "With no command: run the stdio MCP server (what an agent client launches).",
    )
    parser.add_argument("--version", action="version", version=f"oxtail-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the stdio MCP server (the default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in (None, "serve"):
        from oxtail_py.server import serve  # lazy: importing mcp costs ~0.7 s

        serve()
        return 0
    print(f"oxtail-py: unknown command {args.command!r}", file=sys.stderr)
    return 2
