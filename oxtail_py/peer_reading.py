"""read_session's core: a peer's transcript as clean turns, or its pane's screen.

Only a transcript that itself records a cwd inside this project is read: registry entries
are peer-written, and a forged one could name another project's transcript.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from oxtail_py import tmux, transcripts
from oxtail_py.discovery import Listing, Row, resolve
from oxtail_py.errors import OxtailError

READ_MODES: Final = ("auto", "transcript", "pane")


@dataclass
class SessionView:
    """What read_session shows of a peer: its transcript or its pane's screen."""

    name: str
    kind: str
    mode: str
    client_type: str | None
    client_session_id: str | None
    tmux_pane: str | None
    transcript: transcripts.TranscriptView | None = None
    pane_text: str | None = None
    truncated: bool = False


def check_read_limits(mode: str, limit: int, max_bytes: int, pane_lines: int) -> None:
    if mode not in READ_MODES:
        raise OxtailError(f"mode must be one of {', '.join(READ_MODES)}", code="bad-mode")
    if not (1 <= limit <= 500 and 200 <= max_bytes <= 500_000 and 1 <= pane_lines <= 5000):
        raise OxtailError(
            "limits out of range: limit 1-500, max_bytes 200-500000, pane_lines 1-5000",
            code="bad-limit",
        )


def read_peer(
    listing: Listing, name: str, mode: str, limit: int, max_bytes: int, pane_lines: int
) -> SessionView:
    row = resolve(listing, name, agents_only=False)
    path = transcript_of(row, listing.project_root) if mode != "pane" else None
    if mode == "transcript" and path is None:
        raise OxtailError(
            f"no transcript found for {row.name!r} (client {row.client_type}, session "
            f"{row.client_session_id}); try mode='pane'",
            code="no-transcript",
        )

    def view(mode: str, **shown: Any) -> SessionView:
        return SessionView(
            name=row.name,
            kind=row.kind,
            mode=mode,
            client_type=row.client_type,
            client_session_id=row.client_session_id,
            tmux_pane=row.tmux_pane,
            **shown,
        )

    if path is not None:
        turns = transcripts.read_transcript(
            path, row.client_type or "", limit=limit, max_bytes=max_bytes
        )
        return view("transcript", transcript=turns)
    if row.tmux_pane is None:
        raise OxtailError(
            f"{row.name!r} has neither a transcript nor a tmux pane to read",
            code="nothing-to-read",
        )
    text = tmux.capture(row.tmux_pane, pane_lines)
    data = text.encode()
    truncated = len(data) > max_bytes
    if truncated:
        text = data[-max_bytes:].decode(errors="ignore")
    return view("pane", pane_text=text, truncated=truncated)


def transcript_of(row: Row, project_root: Path) -> Path | None:
    """The row's transcript, only if the transcript itself says its session ran in
    this project: the registry entry is peer-written, and a forged one could name
    another project's transcript (its path, or that session's id)."""
    if row.kind != "agent" or not row.client_session_id or not row.client_type:
        return None
    recorded = row.entry.client.transcript_path if row.entry else None
    path: Path | None
    if recorded and transcripts.is_allowed_transcript(Path(recorded)):
        path = Path(recorded)
    else:
        path = transcripts.locate_transcript(row.client_type, row.client_session_id)
    if path is None:
        return None
    ran_in = transcripts.transcript_cwd(path)
    if ran_in is None or not _is_within(Path(ran_in), project_root):
        raise OxtailError(
            f"the transcript of {row.name!r} records a session in {ran_in or 'no directory'},"
            f" not in this project ({project_root}); nothing read. Its pane can still be "
            "read with mode='pane'",
            code="transcript-outside-project",
        )
    return path


def _is_within(path: Path, root: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == root or real.is_relative_to(root)
