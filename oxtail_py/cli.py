"""The `oxtail-py` command. With no subcommand it serves MCP on stdio."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from oxtail_py import __version__
from oxtail_py.errors import OxtailError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oxtail-py",
        description="Coordination for parallel Claude Code and Codex agents. "
        "With no command: run the stdio MCP server (what an agent client launches).",
    )
    parser.add_argument("--version", action="version", version=f"oxtail-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the stdio MCP server (the default)")
    for name, what in (
        ("install-hook", "install the Claude Code and Codex hooks (mid-turn delivery, Stop, "
                         "busy/idle, identity)"),
        ("uninstall-hook", "remove the Claude Code and Codex hooks, keeping every other hook"),
        ("setup", "register the MCP server with Claude Code and Codex, install hooks and "
                  "the join skill/command"),
    ):
        cmd = sub.add_parser(name, help=what)
        cmd.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
        if name != "uninstall-hook":
            cmd.add_argument(
                "--no-trust", action="store_true",
                help="do not record Codex's trust of the hooks: approve them in Codex's /hooks",
            )
    claim = sub.add_parser("claim", help="tell a running oxtail server its session id")
    claim.add_argument("session_id")
    claim.add_argument("--server-pid", type=int, required=True,
                       help="pid of the oxtail server (get_my_session shows it)")
    return parser


def _report(changes: Sequence[object], dry_run: bool) -> None:
    from oxtail_py.config_edit import FileChange

    for change in changes:
        assert isinstance(change, FileChange)
        if not change.changed:
            print(f"unchanged  {change.path}")
        elif dry_run:
            print(f"would change  {change.path}")
            if change.diff.startswith("---"):
                print(change.diff, end="")
        else:
            backup = f"  (backup: {change.backup})" if change.backup else ""
            print(f"changed    {change.path}{backup}")


def _note(text: str, dry_run: bool) -> None:
    print(f"(dry run, nothing written) {text}" if dry_run else text)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in (None, "serve"):
        from oxtail_py.server import serve  # lazy: importing mcp costs ~1 s

        serve()
        return 0
    from oxtail_py.layout import Layout
    from oxtail_py.settings import Settings

    settings = Settings.from_env()  # the one read of the environment for this command
    layout = Layout(settings.root)
    try:
        if args.command == "install-hook":
            from oxtail_py.hooks_install import codex_trust_note, install, install_codex

            trust = not args.no_trust
            changes = install(settings, dry_run=args.dry_run)
            codex_changes, trusted = install_codex(settings, trust=trust, dry_run=args.dry_run)
            _report([*changes, *codex_changes], args.dry_run)
            _note(codex_trust_note(trusted, trust=trust), args.dry_run)
        elif args.command == "uninstall-hook":
            from oxtail_py.hooks_install import uninstall

            _report(uninstall(settings, dry_run=args.dry_run), args.dry_run)
        elif args.command == "setup":
            from oxtail_py.client_setup import prerequisites, setup

            changes, note = setup(settings, dry_run=args.dry_run, trust=not args.no_trust)
            _report(changes, args.dry_run)
            _note(note, args.dry_run)
            for tool in prerequisites():
                state = f"{tool.version or 'version unknown'} ({tool.path})" if tool.path else (
                    "NOT FOUND on PATH"
                )
                print(f"{tool.name:7}{state}")
        elif args.command == "claim":
            from oxtail_py.identity import write_claim

            path = write_claim(layout, args.server_pid, args.session_id)
            print(f"claimed {args.session_id} for server pid {args.server_pid} ({path})")
    except OxtailError as exc:
        print(f"oxtail-py: {exc}", file=sys.stderr)
        return 2
    return 0
