"""Read a peer's conversation: a client transcript file → clean, budgeted turns.

    Claude Code   $CLAUDE_CONFIG_DIR or ~/.claude → projects/<encoded cwd>/<session id>.jsonl
    Codex         $CODEX_HOME or ~/.codex → sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl

`claude.py` and `codex.py` each turn their client's JSON lines into `Turn`s; this module
owns what both share: the types, reading a file line by line (a corrupt line is skipped and
counted, never fatal), the turn/byte budget, and the rule that a read only ever opens a
`.jsonl` file lying (after realpath) under one of the two transcript roots — a peer's
registry entry may name any path, so a path is never trusted because a peer wrote it.

Roles: "user" (a prompt), "assistant" (text and tool calls of one model response), "tool"
(one tool result, clipped), and "system" for context a Claude Code hook injected into the
conversation (oxtail delivers mail that way, so a reader needs to see it).
"""

from __future__ import annotations

import json
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

CLAUDE: Final = "claude"
CODEX: Final = "codex"
CLIENT_TYPES: Final = (CLAUDE, CODEX)

SUMMARY_MAX_CHARS: Final = 200
TOOL_OUTPUT_MAX_CHARS: Final = 500
ELLIPSIS: Final = "…"
# Appended to a turn cut to fit max_bytes, so a reader knows the text is not whole.
CUT_MARKER: Final = " …[cut]"


@dataclass(frozen=True)
class ToolCall:
    name: str
    summary: str  # one line, at most SUMMARY_MAX_CHARS characters


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant" | "tool" | "system"
    text: str
    tool_calls: list[ToolCall]
    timestamp: str | None


@dataclass
class TranscriptView:
    path: str
    client_type: str
    turns: list[Turn]  # oldest first
    total_turns: int  # turns in the whole file, before any budget
    truncated: bool  # older turns dropped, or a turn cut, to fit limit / max_bytes
    truncated_reason: str | None
    skipped_lines: int  # lines that were not a JSON object (corrupt, or cut mid-write)


# A reader's parse: the file's JSON objects in order → its turns in order.
_Parser = Callable[[Iterable[dict[str, Any]]], Iterator[Turn]]


def clip(text: str, max_chars: int) -> str:
    """`text` on one line, at most `max_chars` characters (an ellipsis marks a cut)."""
    line = " ".join(text.split())
    if len(line) <= max_chars:
        return line
    return line[: max_chars - len(ELLIPSIS)] + ELLIPSIS


def clip_block(text: str, max_chars: int) -> str:
    """Like `clip` but keeps line breaks: tool output reads better with its shape."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    return text[: max_chars - len(ELLIPSIS)] + ELLIPSIS


def summarize_input(value: Any) -> str:
    """A short one-line rendering of a tool call's input (compact JSON for structures)."""
    if isinstance(value, str):
        return clip(value, SUMMARY_MAX_CHARS)
    try:
        rendered = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        rendered = repr(value)
    return clip(rendered, SUMMARY_MAX_CHARS)


def turn_bytes(turn: Turn) -> int:
    """What a turn costs against max_bytes: UTF-8 bytes of its text and tool calls."""
    return len(turn.text.encode()) + sum(
        len(call.name.encode()) + len(call.summary.encode()) for call in turn.tool_calls
    )


class ResponseBuffer:
    """Collects one model response (its texts and tool calls, written as several lines) into
    one assistant turn. `key` tells responses apart where the client writes an id."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._key: object = None
        self._texts: list[str] = []
        self._calls: list[ToolCall] = []
        self._started: str | None = None

    def begin(self, key: object) -> Iterator[Turn]:
        """Start the response `key` (None: always a new one), ending any other pending."""
        if key is None or key != self._key:
            yield from self.flush()
            self._key = key

    def add(self, stamp: str | None, *, text: str = "", call: ToolCall | None = None) -> None:
        if text.strip():
            self._texts.append(text)
        if call is not None:
            self._calls.append(call)
        if self._started is None and (text.strip() or call is not None):
            self._started = stamp

    def flush(self) -> Iterator[Turn]:
        if self._texts or self._calls:
            yield Turn("assistant", "\n\n".join(self._texts), self._calls, self._started)
        self._reset()


def _cut_to_fit(turn: Turn, max_bytes: int) -> Turn:
    """Cut one turn (longer than max_bytes on its own) to max_bytes, marking the cut."""
    budget = max(0, max_bytes - len(CUT_MARKER.encode()))
    calls: list[ToolCall] = []
    for call in turn.tool_calls:
        cost = len(call.name.encode()) + len(call.summary.encode())
        if cost > budget:
            break
        calls.append(call)
        budget -= cost
    # errors="ignore" drops a multi-byte character split by the cut.
    text = turn.text.encode()[:budget].decode(errors="ignore").rstrip()
    return Turn(turn.role, text + CUT_MARKER, calls, turn.timestamp)


def _records(path: Path, counter: list[int]) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file; counter[0] counts lines that were not one."""
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:  # also UnicodeDecodeError: a line cut mid-character
                counter[0] += 1
                continue
            if isinstance(record, dict):
                yield record
            else:
                counter[0] += 1


def read_transcript(
    path: Path, client_type: str, *, limit: int = 20, max_bytes: int = 20000
) -> TranscriptView:
    """The newest `limit` turns of a transcript that together fit in `max_bytes`.

    Turns are kept newest first until the count or the byte budget is spent, then returned
    oldest first. A newest turn that alone exceeds max_bytes is cut (with CUT_MARKER).
    Never raises on a corrupt line (skipped and counted); FileNotFoundError if missing.
    The caller checks `is_allowed_transcript` first when the path came from a peer.
    """
    if limit < 1 or max_bytes < 1:
        raise ValueError("limit and max_bytes must be at least 1")
    parse = _parser(client_type)
    skipped = [0]
    total = 0
    # Only the newest `limit` turns can be returned: a bounded deque keeps memory flat
    # however long the conversation is.
    newest: deque[Turn] = deque(maxlen=limit)
    for turn in parse(_records(path, skipped)):
        total += 1
        newest.append(turn)

    kept: list[Turn] = []
    spent = 0
    reason: str | None = None
    for turn in reversed(newest):
        cost = turn_bytes(turn)
        if spent + cost > max_bytes:
            if not kept:
                kept.append(_cut_to_fit(turn, max_bytes))
                reason = f"the newest turn alone exceeds max_bytes={max_bytes}; it was cut"
            else:
                reason = f"older turns dropped to fit max_bytes={max_bytes}"
            break
        kept.append(turn)
        spent += cost
    if reason is None and total > len(kept):
        reason = f"older turns dropped to fit limit={limit}"
    if reason is not None:
        reason = f"{reason} (showing {len(kept)} of {total} turns)"
    kept.reverse()
    return TranscriptView(
        path=str(path),
        client_type=client_type,
        turns=kept,
        total_turns=total,
        truncated=reason is not None,
        truncated_reason=reason,
        skipped_lines=skipped[0],
    )


def locate_transcript(
    client_type: str, session_id: str, *, home: Path | None = None
) -> Path | None:
    """The transcript file of a Claude Code session / Codex thread, or None.

    Only a file `is_allowed_transcript` accepts is returned: a symlink planted in a root
    under a session's name must not lead a read elsewhere.
    """
    if client_type == CLAUDE:
        found = claude.locate(session_id, home=home)
    elif client_type == CODEX:
        found = codex.locate(session_id, home=home)
    else:
        raise ValueError(_unknown_client(client_type))
    return found if found is not None and is_allowed_transcript(found, home=home) else None


def transcript_roots(*, home: Path | None = None) -> list[Path]:
    """The only directories a transcript read may open files under."""
    return [claude.projects_dir(home=home), codex.sessions_dir(home=home)]


def is_allowed_transcript(path: Path, *, home: Path | None = None) -> bool:
    """True for a regular `.jsonl` file whose realpath lies under a transcript root.

    realpath on both sides: a symlink inside a root that points out of it is refused, and a
    root that is itself a symlink (dotfiles managers do that) still works. Regular files
    only: opening a FIFO a peer planted would block the reader.
    """
    try:
        real = Path(os.path.realpath(path, strict=True))
        mode = os.stat(real).st_mode
    except (OSError, ValueError):
        return False
    if real.suffix != ".jsonl" or not stat.S_ISREG(mode):
        return False
    for root in transcript_roots(home=home):
        real_root = Path(os.path.realpath(root))
        if real != real_root and real.is_relative_to(real_root):
            return True
    return False


def claude_transcripts_born_after(
    project_cwd: Path, after: float, *, home: Path | None = None
) -> list[Path]:
    """Claude Code transcripts of `project_cwd` created after `after` (epoch seconds)."""
    return claude.transcripts_born_after(project_cwd, after, home=home)


# Where a transcript says its session ran: Claude Code stamps `cwd` on its conversation
# lines, Codex on its first (session_meta) record. The head of the file is enough.
_CWD_SCAN_BYTES: Final = 256 * 1024


def transcript_cwd(path: Path) -> str | None:
    """The working directory a transcript records for its session, or None if it names none.

    Used to refuse a claim of another project's session: the client wrote this file, so it
    is the client's own statement of where that session runs.
    """
    if not is_allowed_transcript(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        head = os.read(fd, _CWD_SCAN_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    for raw in head.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:  # the cut last line, or a corrupt one
            continue
        if not isinstance(record, dict):
            continue
        payload = record.get("payload")
        for holder in (record, payload if isinstance(payload, dict) else {}):
            cwd = holder.get("cwd")
            if isinstance(cwd, str) and cwd.startswith("/"):
                return cwd
    return None


def _unknown_client(client_type: str) -> str:
    return f"unknown client type {client_type!r}: expected one of {', '.join(CLIENT_TYPES)}"


def _parser(client_type: str) -> _Parser:
    if client_type == CLAUDE:
        return claude.parse
    if client_type == CODEX:
        return codex.parse
    raise ValueError(_unknown_client(client_type))


# The readers import the types above from this module, so they load after them.
from oxtail_py.transcripts import claude, codex  # noqa: E402
