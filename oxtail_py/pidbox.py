"""Pid boxes (`pid-<pid>-<start>`): mail for a server that does not know its session
yet, and how that mail always reaches a session, whenever the server is killed.

    mailboxes/pid-<pid>-<start>/origin.json   {"client": "<pid>-<start>"}  at creation
    mailboxes/pid-<pid>-<start>/forward.json  {"session_id": "<id>"}       before a merge

* `open_pid_box`: the server creates its pid box and records its client process.
* `forward`: when the server learns (or changes) its session id it first writes
  the forwarding record (atomic rename), then merges the box into the session's.
  Killed before the record: the box is unforwarded (next rule). Killed after it,
  during or after the merge: any later sweep finishes the merge (move_all_to
  recovers the dead merger's claim first; ids are deduplicated by the reader).
* `sweep_orphans` (every server, at start): for each pid box whose server is
  dead and which still holds mail: forwarded -> merged into that session's box;
  unforwarded but recorded for this server's own client (same pid + start, i.e.
  an MCP server restarted by the same client) -> adopted into this server's pid
  box, which `forward` carries on to the session. A dead, unforwarded box of a
  client that is gone too is left in place and reported (`unroutable`): its
  server never had a session, so no session can be its destination.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_json, load_json
from oxtail_py.layout import (
    PID_BOX_PREFIX,
    Layout,
    is_pid_box_key,
    pid_box_key,
    validate_session_id,
)
from oxtail_py.mailbox import Mailbox
from oxtail_py.procs import ProcessIdentity

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    forwarded: dict[str, int] = field(default_factory=dict)  # pid box -> lines moved
    adopted: dict[str, int] = field(default_factory=dict)
    unroutable: list[str] = field(default_factory=list)  # dead, unforwarded, not ours


def open_pid_box(
    layout: Layout, server: ProcessIdentity, client: ProcessIdentity | None
) -> Mailbox:
    """The server's own pid box, created, with its client recorded (for adoption)."""
    box = Mailbox.open(layout, pid_box_key(server))
    if client is not None and not box.paths.origin.exists():
        atomic_write_json(box.paths.origin, {"client": client.token()})
    return box


def forward(layout: Layout, server: ProcessIdentity, session_id: str) -> int:
    """Record that `server`'s pid box goes to `session_id`, then merge it there."""
    validate_session_id(session_id)
    pid_box = Mailbox.open(layout, pid_box_key(server))
    # The record first, atomically: from here on a kill leaves a box any sweep can route.
    atomic_write_json(pid_box.paths.forward, {"session_id": session_id})
    return pid_box.move_all_to(Mailbox.open(layout, session_id))


def forwarded_to(box: Mailbox) -> str | None:
    value = _field(box, "forward", "session_id")
    try:
        return validate_session_id(value) if value is not None else None
    except OxtailError:
        log.warning("%s: forwarding record names an invalid session id; ignored", box)
        return None


def sweep_orphans(
    layout: Layout, me: ProcessIdentity, client: ProcessIdentity | None
) -> SweepResult:
    """Route the mail of every dead server's pid box (module doc). Cheap when idle:
    a box without mail costs one listing and a /proc read."""
    result = SweepResult()
    try:
        names = os.listdir(layout.mailboxes_dir)
    except FileNotFoundError:
        return result
    mine = pid_box_key(me)
    for name in sorted(names):
        if name == mine or not is_pid_box_key(name):
            continue
        server = ProcessIdentity.parse_token(name[len(PID_BOX_PREFIX) :])
        if server is None or server.is_alive():
            continue
        box = Mailbox.existing(layout, name)
        if box is None or not (box.pending_count() or box.claims()):
            continue
        try:
            _route(layout, box, me, client, result)
        except OxtailError as exc:  # a full disk, a held lock: the next sweep retries
            log.warning("%s: not routed this time: %s", box, exc)
    return result


def _route(
    layout: Layout,
    box: Mailbox,
    me: ProcessIdentity,
    client: ProcessIdentity | None,
    result: SweepResult,
) -> None:
    name = box.paths.directory.name
    session_id = forwarded_to(box)
    if session_id is not None:
        result.forwarded[name] = box.move_all_to(Mailbox.open(layout, session_id))
        return
    origin = _field(box, "origin", "client")
    if client is not None and origin == client.token():
        result.adopted[name] = box.move_all_to(Mailbox.open(layout, pid_box_key(me)))
        return
    result.unroutable.append(name)


def _field(box: Mailbox, record: str, key: str) -> str | None:
    path = box.paths.forward if record == "forward" else box.paths.origin
    try:
        data = load_json(path)
    except FileNotFoundError:
        return None
    except (OSError, OxtailError, ValueError) as exc:
        log.warning("%s: %s rejected: %s", box, path.name, exc)
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
