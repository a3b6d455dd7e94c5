"""spawn / stop: the person starts a helper agent in tmux, and ends one it started."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from oxtail_py.settings import Settings

if TYPE_CHECKING:
    from oxtail_py.spawn.spawner import Caller


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    spawn = sub.add_parser(
        "spawn",
        help="start a Claude Code or Codex helper in this project, in tmux",
        description="Start CLIENT in this project in a new window of your tmux session "
        "(outside tmux: a detached session named after the project). Arguments after `--` "
        "go to the client as they are; nothing else is added.",
    )
    spawn.add_argument("client", choices=("claude", "codex"))
    spawn.add_argument("--name", help="its name (default: <client>-<4 hex>)")
    spawn.add_argument("--role", default="", help="a short role, shown in listings")
    spawn.add_argument("--prompt", default="", help="its first turn (<= 8 KB)")
    spawn.add_argument("--project", default=None,
                       help="a directory of this project to start in (default: the project)")
    spawn.add_argument("client_args", nargs="*", metavar="-- CLIENT_ARG",
                       help="arguments for the client, after --")
    spawn.set_defaults(handler=_spawn)
    stop = sub.add_parser("stop", help="end a helper you spawned with `oxtail-py spawn`")
    stop.add_argument("target", help="its name or session id")
    stop.set_defaults(handler=_stop)


def _caller(settings: Settings) -> Caller:
    """The person at this terminal; its tmux session is the one the live tree proves."""
    from oxtail_py import tmux
    from oxtail_py.procs import proven_pane
    from oxtail_py.spawn.spawner import Caller

    tmux.configure(settings)
    panes = tmux.list_panes()
    pane_id = proven_pane(os.getpid(), {p.pane_pid: p.pane_id for p in panes})
    session = next((p.session for p in panes if p.pane_id == pane_id), None)
    return Caller(
        by="person", pid=os.getpid(), cwd=os.getcwd(), name="person", session_id=None,
        tmux_session=session, env=dict(os.environ), home=settings.home,
    )  # fmt: skip


def _spawn(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.fsio import ensure_private_dir
    from oxtail_py.layout import Layout
    from oxtail_py.spawn.spawner import Spawner

    ensure_private_dir(settings.root)
    extra = list(args.client_args)
    result = Spawner(Layout(settings.root), settings).spawn(
        _caller(settings), args.client, args.prompt, name=args.name, role=args.role,
        project_root=args.project, client_args=tuple(extra),
    )  # fmt: skip
    print(f"spawned {result.client} {result.name!r} in pane {result.pane} "
          f"(tmux session {result.tmux_session}, depth {result.depth})")
    handed = {True: "submitted", False: "sent (unconfirmed)", None: "none given"}
    print(f"  session id: {result.session_id or '(not known yet)'}  server pid: "
          f"{result.server_pid}  first prompt: {handed[result.prompt_confirmed]}  ready in "
          f"{result.elapsed_ms} ms")
    if result.note:
        print(f"  note: {result.note}")
    if result.attach:
        print(f"  outside tmux: see it with `{result.attach}`")
    return 0


def _stop(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.layout import Layout
    from oxtail_py.scope import infer_project_root
    from oxtail_py.spawn.spawner import Spawner

    caller = _caller(settings)
    root, _ = infer_project_root(caller.cwd)
    result = Spawner(Layout(settings.root), settings).stop(caller, args.target,
                                                           project_root=root)
    state = "ended" if result.ended else "signalled (still running?)"
    print(f"stopped {result.name!r}: goodbye {result.goodbye_message_id} sent, client "
          f"pid {result.client_pid} {state}")
    return 0
