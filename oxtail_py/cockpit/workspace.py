"""The project's shared workspace as the cockpit shows it: live file reservations and
project notes (issue 13's stores, read through their own modules).

Imported lazily by the snapshot: a `status` of a project pays for these modules only
when it renders them, and a broken store is a Problem, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oxtail_py.errors import OxtailError
from oxtail_py.layout import Layout


@dataclass(frozen=True, slots=True)
class ReservationView:
    pattern: str
    holder: str  # the holder's name (tmux session) or session id
    exclusive: bool
    expires_at: float
    reason: str


@dataclass(frozen=True, slots=True)
class NoteView:
    key: str
    value: str
    category: str | None
    author: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Workspace:
    reservations: list[ReservationView]
    notes: list[NoteView]
    problems: list[str]  # what could not be read, each a sentence with its fix


def read_workspace(layout: Layout, project_root: Path) -> Workspace:
    from oxtail_py.notes import list_notes
    from oxtail_py.reservations import ReservationBook

    problems: list[str] = []
    reservations: list[ReservationView] = []
    try:
        # Live ones only: a dead holder's or an expired reservation blocks nobody.
        for r in ReservationBook(layout, project_root).all():
            reservations.append(ReservationView(
                r.given, r.holder.label, r.exclusive, r.expires_at, r.reason))
    except (OxtailError, OSError, ValueError) as exc:
        problems.append(f"the reservations of this project are unreadable ({exc}); "
                        "edits are not blocked by them (the hook fails open)")
    notes: list[NoteView] = []
    try:
        notes = [NoteView(n.key, n.value, n.category, n.author, n.updated_at)
                 for n in list_notes(layout, project_root)]
    except (OxtailError, OSError, ValueError) as exc:
        problems.append(str(exc))
    return Workspace(reservations, notes, problems)
