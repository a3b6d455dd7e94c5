"""install-guard: a git pre-commit hook that enforces file reservations at commit time."""

from __future__ import annotations

import argparse
from pathlib import Path

from oxtail_py.settings import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "install-guard",
        help="add a git pre-commit hook that refuses commits touching files under another "
             "live agent's exclusive reservation (chains any existing pre-commit hook)",
    )
    cmd.add_argument("--repo", default=".", help="the repository (default: the current dir)")
    cmd.set_defaults(handler=_install_guard)


def _install_guard(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.git_guard import install
    from oxtail_py.layout import Layout

    done = install(Path(args.repo).absolute(), Layout(settings.root))
    print(f"installed {done.hook}")
    if done.chained is not None:
        print(f"the existing pre-commit hook runs first: {done.chained}")
    print("bypass once: OXTAIL_GUARD=off git commit ...")
    return 0
