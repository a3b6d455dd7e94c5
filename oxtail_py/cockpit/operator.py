"""`oxtail-py send`: the operator's message to an agent of the project.

The person running the agents is not a peer: the message carries no sender session
and the origin `{"operator": true}` (messages.OPERATOR_KEY), which framing shows as
`from=operator`. A peer cannot forge that: its server builds every origin itself
(Agent._origin), and a message naming a sender session is never the operator's.
The target is resolved exactly as send_message resolves it (discovery.resolve), so
an unknown or ambiguous target, a plain pane, an agent of another project and a bad
body get the tool's own error codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oxtail_py import eventlog
from oxtail_py.discovery import Row, list_project, resolve
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import OPERATOR_KEY, Message
from oxtail_py.procs import self_identity
from oxtail_py.settings import Settings
from oxtail_py.wake import WakeReport, WakeSettings, WakeStatus, wake_peer


@dataclass(frozen=True, slots=True)
class OperatorSent:
    message_id: str
    target: Row
    wake: WakeReport


def operator_origin(project_root: Path) -> dict[str, Any]:
    return {OPERATOR_KEY: True, "cwd": str(project_root)}


def send_as_operator(
    layout: Layout,
    settings: Settings,
    project_root: Path,
    target: str,
    body: str,
    *,
    wake: bool = False,
) -> OperatorSent:
    """Enqueue `body` for `target` as the operator; with `wake`, rouse it if idle."""
    msg = Message.create(body, from_session_id=None, origin=operator_origin(project_root))
    listing = list_project(layout, project_root, False, self_identity(), count_unread=False)
    row = resolve(listing, target, agents_only=True)
    Mailbox.open(layout, row.mailbox_key).enqueue(msg)
    eventlog.sent(layout, msg, row.mailbox_key, bodies=settings.event_log_bodies)
    report = WakeReport(WakeStatus.DISABLED)
    if wake:
        report = wake_peer(
            layout, row, sender="operator", message_id=msg.id, project_root=project_root,
            settings=WakeSettings.of(settings),
        )
    return OperatorSent(msg.id, row, report)
