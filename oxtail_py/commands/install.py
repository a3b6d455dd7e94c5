"""setup, install-hook, uninstall-hook: wire oxtail into Claude Code and Codex."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from oxtail_py.settings import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, what, handler in (
        ("install-hook", "install the Claude Code and Codex hooks (mid-turn delivery, Stop, "
                         "busy/idle, identity)", _install_hook),
        ("uninstall-hook", "remove the Claude Code and Codex hooks, keeping every other hook",
         _uninstall_hook),
        ("setup", "register the MCP server with Claude Code and Codex, install hooks and "
                  "the join skill/command", _setup),
    ):
        cmd = sub.add_parser(name, help=what)
        cmd.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
        if name != "uninstall-hook":
            cmd.add_argument(
                "--no-trust", action="store_true",
                help="do not record Codex's trust of the hooks: approve them in Codex's /hooks",
            )
        cmd.set_defaults(handler=handler)


def _install_hook(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.hooks_install import codex_trust_note, install, install_codex

    trust = not args.no_trust
    changes = install(settings, dry_run=args.dry_run)
    codex_changes, trusted = install_codex(settings, trust=trust, dry_run=args.dry_run)
    _report([*changes, *codex_changes], args.dry_run)
    _note(codex_trust_note(trusted, trust=trust), args.dry_run)
    return 0


def _uninstall_hook(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.hooks_install import uninstall

    _report(uninstall(settings, dry_run=args.dry_run), args.dry_run)
    return 0


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.client_setup import prerequisites, setup

    changes, note = setup(settings, dry_run=args.dry_run, trust=not args.no_trust)
    _report(changes, args.dry_run)
    _note(note, args.dry_run)
    for tool in prerequisites():
        state = f"{tool.version or 'version unknown'} ({tool.path})" if tool.path else (
            "NOT FOUND on PATH"
        )
        print(f"{tool.name:7}{state}")
    return 0


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
