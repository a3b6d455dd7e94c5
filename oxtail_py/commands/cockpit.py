"""status, watch, send, doctor, log: see and steer the project from one terminal.

Imports stay inside the handlers: `status` must start fast (bench/cockpit_status.py),
and only `watch` pays for textual.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from oxtail_py.errors import OxtailError
from oxtail_py.settings import Settings

FOLLOW_BYTES: Final = 256 << 10  # log -f looks at this much of the log's end per wake-up

if TYPE_CHECKING:
    from oxtail_py.cockpit.model import Snapshot
    from oxtail_py.eventlog import Event
    from oxtail_py.layout import Layout


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", help="every agent of the project, and who waits on whom")
    _scope_args(status)
    status.add_argument("--json", action="store_true", help="the documented JSON shape")
    status.add_argument("--check", action="store_true",
                        help="exit 1 with one line per problem when something is wrong")
    status.add_argument("--stale-minutes", type=float, default=None, metavar="N",
                        help="--check: unread mail older than N minutes at an idle agent "
                             "is a problem (default 10)")
    status.set_defaults(handler=_status)

    watch = sub.add_parser("watch", help="live full-screen view of the project (a terminal)")
    _scope_args(watch, allow_all=False)
    watch.set_defaults(handler=_watch)

    send = sub.add_parser("send", help="send an agent a message from you, the operator")
    send.add_argument("target", help="tmux session name or session id (as send_message)")
    send.add_argument("text", help="the message (at most 8 KB)")
    send.add_argument("--wake", action="store_true", help="also rouse the agent if it is idle")
    send.add_argument("--project", metavar="DIR", help="the project (default: the current one)")
    send.set_defaults(handler=_send)

    doctor = sub.add_parser("doctor", help="check the wiring: registration, hooks, trust, "
                                           "tmux, servers, mailboxes")
    doctor.set_defaults(handler=_doctor)

    log = sub.add_parser("log", help="the tail of the project's traffic event log")
    _scope_args(log)
    log.add_argument("-n", type=int, default=20, metavar="N", help="how many events (20)")
    log.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    log.set_defaults(handler=_log)


def _scope_args(cmd: argparse.ArgumentParser, *, allow_all: bool = True) -> None:
    cmd.add_argument("--project", metavar="DIR",
                     help="the project directory (default: the git root above the cwd)")
    if allow_all:
        cmd.add_argument("--all", action="store_true", help="every project of this state root")


def project_of(args: argparse.Namespace) -> Path | None:
    """The project the command looks at; None for --all. An unknown one is an error."""
    from oxtail_py.scope import infer_project_root, real

    if getattr(args, "all", False):
        return None
    if args.project:
        root = real(os.path.expanduser(args.project))
        if not root.is_dir():
            raise OxtailError(
                f"no such project directory: {args.project}. Pass the directory your agents "
                "run in (or omit --project inside it)", code="unknown-project",
            )
        return root
    return infer_project_root(os.getcwd())[0]


def _snapshot(args: argparse.Namespace, settings: Settings, traffic: int = 0) -> Snapshot:
    from oxtail_py import tmux
    from oxtail_py.cockpit.model import build_snapshot
    from oxtail_py.layout import Layout

    tmux.configure(settings)
    return build_snapshot(Layout(settings.root), project_of(args),
                          ask_timeout_s=settings.ask_max_timeout_ms / 1000, traffic=traffic)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py.cockpit import render_text

    snap = _snapshot(args, settings)
    problems = snap.problems
    if args.check:
        from oxtail_py.cockpit.checks import DEFAULT_STALE_MINUTES, check, failing

        stale = DEFAULT_STALE_MINUTES if args.stale_minutes is None else args.stale_minutes
        problems = check(snap, settings, stale_minutes=stale)
        snap.problems = problems
        if not args.json:
            for problem in problems:
                print(render_text.problem_line(problem))
            bad = failing(problems)
            print(f"{len(bad)} problem(s)" if bad else "ok: nothing is wrong")
            return 1 if bad else 0
    if args.json:
        json.dump(render_text.to_json(snap), sys.stdout, indent=1, ensure_ascii=False)
        print()
    else:
        sys.stdout.write(render_text.render(snap))
    if args.check:
        from oxtail_py.cockpit.checks import failing

        return 1 if failing(problems) else 0
    return 0


def _watch(args: argparse.Namespace, settings: Settings) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("oxtail-py watch needs a terminal (stdin and stdout a TTY); for text use "
              "`oxtail-py status` or `oxtail-py status --json`", file=sys.stderr)
        return 2
    from oxtail_py import tmux
    from oxtail_py.cockpit.app import run_watch

    # textual sizes itself with shutil.get_terminal_size, which prefers COLUMNS/LINES
    # over the terminal: an inherited pair (children of a pytest run had COLUMNS=80
    # LINES=24) froze the view at that size through every resize. The TTY is the truth.
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
    tmux.configure(settings)
    project = project_of(args)
    assert project is not None
    return run_watch(settings, project)


def _send(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py import tmux
    from oxtail_py.cockpit.operator import send_as_operator
    from oxtail_py.framing import neutralize
    from oxtail_py.layout import Layout

    tmux.configure(settings)
    project = project_of(args)
    assert project is not None
    sent = send_as_operator(Layout(settings.root), settings, project, args.target, args.text,
                            wake=args.wake)
    row = sent.target
    print(f"sent {sent.message_id} to {neutralize(row.name)} "
          f"({row.client_session_id or row.mailbox_key}) as the operator")
    if args.wake:
        detail = f": {sent.wake.detail}" if sent.wake.detail else ""
        print(f"wake: {sent.wake.status}{neutralize(detail)}")
    return 0


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py import tmux
    from oxtail_py.cockpit.doctor import run_doctor
    from oxtail_py.framing import neutralize

    tmux.configure(settings)
    checks = run_doctor(settings)
    for c in checks:
        print(f"{c.status.upper():4}  {neutralize(c.name)}: {neutralize(c.detail)}")
        if c.fix and c.status != "ok":
            print(f"      fix: {neutralize(c.fix)}")
    failed = [c for c in checks if c.status == "fail"]
    print(f"{len(failed)} check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0


def _log(args: argparse.Namespace, settings: Settings) -> int:
    from oxtail_py import eventlog
    from oxtail_py.cockpit.model import project_events
    from oxtail_py.fsio import is_private_dir
    from oxtail_py.layout import Layout

    layout = Layout(settings.root)
    if not is_private_dir(layout.root) and not args.follow:  # -f waits for the first agent
        raise OxtailError(f"no oxtail state at {layout.root}: no agent has started with this "
                          "state root (set AGENTMAIL_HOME?)", code="empty-state-root")
    project = project_of(args)
    events = project_events(eventlog.read_tail(layout).events, project, [])
    for event in events[-args.n:] if args.n > 0 else []:
        print(format_event(event), flush=True)
    if not args.follow:
        return 0
    return _follow(layout, project, {_key(e) for e in eventlog.read_tail(
        layout, max_bytes=FOLLOW_BYTES).events})


def _follow(
    layout: Layout, project: Path | None, shown: set[tuple[str, str, str, float]]
) -> int:
    """Print new events as the log grows: woken by file events, never a timer."""
    from oxtail_py import eventlog
    from oxtail_py.cockpit.feed import StateFeed
    from oxtail_py.cockpit.model import project_events
    from oxtail_py.fsio import ensure_tree

    changed = threading.Event()
    ensure_tree(layout.root, layout.events_dir)
    feed = StateFeed(layout.events_dir, changed.set)
    feed.start()
    try:
        while True:
            changed.wait()
            changed.clear()
            # The recent end only (a burst of thousands of lines between two wake-ups
            # is the one thing that could slip past), and only its keys are remembered:
            # memory stays bounded however long this runs.
            tail = eventlog.read_tail(layout, max_bytes=FOLLOW_BYTES)
            current = {_key(e) for e in tail.events}
            for event in project_events(tail.events, project, []):
                if _key(event) not in shown:
                    print(format_event(event), flush=True)
            shown = current
    except KeyboardInterrupt:
        return 0
    finally:
        feed.stop()


def _key(event: Event) -> tuple[str, str, str, float]:
    return (event.message_id, event.event, event.via, event.ts)


def format_event(event: Event) -> str:
    from oxtail_py.cockpit.render_text import clean

    sender = event.sender_name or event.sender
    reply = f" re {event.request_id}" if event.request_id else ""
    preview = f"  {clean(event.preview, 60)!r}" if event.preview else ""
    return (f"{event.at}  {event.event:9} {event.kind:8} {clean(sender, 40)} -> "
            f"{clean(event.recipient, 40)}  via {clean(event.via, 40)}  "
            f"{event.message_id}{reply}{preview}")
