"""Group targets of send_message: `@all`, `@claude`, `@codex`, `@role:<name>`.

A group is resolved against this agent's own project listing only (discovery.py), so a
group never reaches past the caller's scope. Each member is one agent (one mailbox):
two rows that share a mailbox get one copy, never two. Whoever the group names but
cannot get a copy is listed as skipped, with a stable reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from oxtail_py.discovery import Listing, Row
from oxtail_py.errors import OxtailError
from oxtail_py.identity import CLAUDE, CODEX
from oxtail_py.registry import ROLE_RE

GROUP_PREFIX: Final = "@"
ROLE_PREFIX: Final = "@role:"


class GroupKind(StrEnum):
    ALL = "all"
    CLAUDE = "claude"
    CODEX = "codex"
    ROLE = "role"


class SkipReason(StrEnum):
    NO_AGENT = "no-agent"  # a tmux pane of the project with no oxtail server in it
    DUPLICATE = "duplicate"  # another row of the group has the same mailbox
    SEND_FAILED = "send-failed"  # its copy could not be written (detail: the error)


class BadGroupError(OxtailError):
    code = "bad-broadcast-target"


class EmptyGroupError(OxtailError):
    code = "empty-broadcast-group"


class OverCapError(OxtailError):
    code = "broadcast-over-cap"


@dataclass(frozen=True, slots=True)
class Group:
    kind: GroupKind
    role: str | None = None

    @property
    def label(self) -> str:
        return f"{ROLE_PREFIX}{self.role}" if self.kind == GroupKind.ROLE else f"@{self.kind}"

    def includes(self, row: Row) -> bool:
        if self.kind == GroupKind.ALL:
            return True
        if self.kind == GroupKind.ROLE:
            return row.role == self.role
        return row.client_type == (CLAUDE if self.kind == GroupKind.CLAUDE else CODEX)


@dataclass(frozen=True, slots=True)
class Skip:
    name: str
    session_id: str | None
    reason: SkipReason
    detail: str


@dataclass(frozen=True, slots=True)
class Selection:
    group: Group
    members: list[Row]  # one row per mailbox, in listing order
    skipped: list[Skip]


def is_group(target: str) -> bool:
    return target.strip().startswith(GROUP_PREFIX)


def parse_group(target: str) -> Group:
    """The group `target` names; BadGroupError (with the forms accepted) otherwise."""
    text = target.strip()
    if text.startswith(ROLE_PREFIX):
        role = text[len(ROLE_PREFIX) :].strip().lower()
        if ROLE_RE.fullmatch(role):
            return Group(GroupKind.ROLE, role)
        raise BadGroupError(
            f"{text[:60]!r}: a role is 1-32 of a-z, 0-9, '-' or '_'. "
            "Use @role:<name> with a role peers set (list_project_sessions shows them)"
        )
    for kind in (GroupKind.ALL, GroupKind.CLAUDE, GroupKind.CODEX):
        if text.lower() == f"@{kind}":
            return Group(kind)
    raise BadGroupError(
        f"{text[:60]!r} is not a group: send to @all, @claude, @codex or @role:<name>, "
        "or to one agent by its tmux session name or session id"
    )


def select(listing: Listing, group: Group, cap: int) -> Selection:
    """The members of `group` in `listing` (never the caller), and who is skipped.
    Raises EmptyGroupError when nobody would get a copy, OverCapError past `cap`."""
    members: list[Row] = []
    skipped: list[Skip] = []
    boxes: set[str] = set()
    for row in listing.rows:
        if row.is_me:
            continue
        if row.kind != "agent":
            if group.kind == GroupKind.ALL:
                skipped.append(
                    Skip(row.name, None, SkipReason.NO_AGENT,
                         f"tmux pane {row.tmux_pane} runs {row.pane_command}, no oxtail agent")
                )  # fmt: skip
            continue
        if not group.includes(row):
            continue
        if row.mailbox_key in boxes:
            skipped.append(
                Skip(row.name, row.client_session_id, SkipReason.DUPLICATE,
                     "already gets a copy through another entry of the same session")
            )  # fmt: skip
            continue
        boxes.add(row.mailbox_key)
        members.append(row)
    if not members:
        why = "; ".join(f"{s.name}: {s.reason}" for s in skipped) or "no such agent here"
        raise EmptyGroupError(
            f"nobody in {listing.project_root} is in {group.label} but you ({why}). "
            "list_project_sessions shows who is here and their roles"
        )
    if len(members) > cap:
        raise OverCapError(
            f"{group.label} has {len(members)} agents; a broadcast reaches at most {cap} "
            "(OXTAIL_BROADCAST_CAP). Narrow it: @claude, @codex or @role:<name>"
        )
    return Selection(group, members, skipped)
