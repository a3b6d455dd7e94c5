"""Codex rollouts: ~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl → turns.

Lines are `{timestamp, type, payload}`. The conversation is the `response_item` lines
(the Responses API items the model saw and produced): `message` (user/assistant; developer
and system messages are Codex's own instructions), `function_call` / `custom_tool_call`
and their `*_output`. `event_msg` lines repeat the same conversation for UIs and are
ignored, as are session_meta, turn_context, reasoning and the rest.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from oxtail_py.client_paths import codex_home
from oxtail_py.layout import SESSION_ID_RE
from oxtail_py.transcripts import (
    TOOL_OUTPUT_MAX_CHARS,
    ResponseBuffer,
    ToolCall,
    Turn,
    clip_block,
    summarize_input,
)

# User messages Codex writes itself (context, not something a person typed): each is one
# tagged block, e.g. the `<environment_context>` that opens every thread.
_CONTEXT_PREFIXES: Final = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<skill>",
)
_DATE_PART: Final = re.compile(r"[0-9]{2,4}")


def sessions_dir(*, home: Path | None = None) -> Path:
    return codex_home(home=home) / "sessions"


def _rollout_in(day: Path, suffix: str) -> Path | None:
    try:
        names = os.listdir(day)
    except OSError:
        return None
    for name in names:
        if name.startswith("rollout-") and name.endswith(suffix):
            return day / name
    return None


def _subdirs_newest_first(directory: Path) -> list[Path]:
    try:
        names = [n for n in os.listdir(directory) if _DATE_PART.fullmatch(n)]
    except OSError:
        return []
    return [directory / n for n in sorted(names, reverse=True)]


def _uuid7_days(thread_id: str) -> list[tuple[str, str, str]]:
    """Date directories a UUIDv7 thread id points at (it embeds its creation time)."""
    try:
        parsed = uuid.UUID(thread_id)
    except ValueError:
        return []
    if parsed.version != 7:
        return []
    created = datetime.fromtimestamp((parsed.int >> 80) / 1000)
    # The directory is named at the thread's first prompt, a little after the id was
    # minted, and its day may be local or UTC: that day, then the ones either side.
    day = timedelta(days=1)
    days = (created, created + day, created - day)
    return [(f"{d.year:04d}", f"{d.month:02d}", f"{d.day:02d}") for d in days]


def locate(thread_id: str, *, home: Path | None = None) -> Path | None:
    """The rollout of a thread: its id's own date first, then newest date dirs first.

    Only the YYYY/MM/DD levels are listed (never a recursive walk of everything), and the
    search stops at the first day directory holding the thread.
    """
    if not SESSION_ID_RE.fullmatch(thread_id):
        return None
    root = sessions_dir(home=home)
    suffix = f"-{thread_id}.jsonl"
    for parts in _uuid7_days(thread_id):
        hit = _rollout_in(root.joinpath(*parts), suffix)
        if hit is not None:
            return hit
    for year in _subdirs_newest_first(root):
        for month in _subdirs_newest_first(year):
            for day in _subdirs_newest_first(month):
                hit = _rollout_in(day, suffix)
                if hit is not None:
                    return hit
    return None


def _message_text(content: Any, *, drop_context: bool = False) -> str:
    """The text items of a message; `drop_context` leaves out the blocks Codex wrote."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for item in content if isinstance(content, list) else []:
        if not isinstance(item, dict):
            continue
        text = item.get("text")
        if isinstance(text, str):
            if not (drop_context and text.lstrip().startswith(_CONTEXT_PREFIXES)):
                parts.append(text)
        elif item.get("type") == "input_image":
            parts.append("[image]")
    return "\n".join(parts)


def _output_text(output: Any) -> str:
    """A tool output: a string, a list of content items, or {content, success}."""
    if isinstance(output, dict):
        text = _output_text(output.get("content"))
        return f"[error] {text}" if output.get("success") is False else text
    return clip_block(_message_text(output), TOOL_OUTPUT_MAX_CHARS)


def _arguments(raw: Any) -> Any:
    # function_call arguments are a JSON string; decode it so the summary is not a
    # JSON string of JSON. A string that does not decode is shown as it is.
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _call(payload: dict[str, Any]) -> ToolCall | None:
    kind = payload.get("type")
    name = payload.get("name")
    if kind == "function_call" and isinstance(name, str):
        namespace = payload.get("namespace")
        full = f"{namespace}.{name}" if isinstance(namespace, str) and namespace else name
        return ToolCall(full, summarize_input(_arguments(payload.get("arguments"))))
    if kind == "custom_tool_call" and isinstance(name, str):
        return ToolCall(name, summarize_input(payload.get("input")))
    if kind == "local_shell_call":
        action = payload.get("action")
        command = action.get("command") if isinstance(action, dict) else None
        shown = " ".join(command) if isinstance(command, list) else command
        return ToolCall("local_shell", summarize_input(shown))
    return None


def parse(records: Iterable[dict[str, Any]]) -> Iterator[Turn]:
    """Turns of a Codex rollout, in file order."""
    # One model response is its assistant messages and tool calls up to the next user
    # message or tool output (rollouts carry no response id to tell them apart).
    response = ResponseBuffer()
    for record in records:
        payload = record.get("payload")
        if record.get("type") != "response_item" or not isinstance(payload, dict):
            continue
        timestamp = record.get("timestamp")
        stamp = timestamp if isinstance(timestamp, str) else None
        kind = payload.get("type")
        role = payload.get("role")
        if kind == "message" and role == "assistant":
            response.add(stamp, text=_message_text(payload.get("content")))
        elif (call := _call(payload)) is not None:
            response.add(stamp, call=call)
        elif kind == "message" and role == "user":
            text = _message_text(payload.get("content"), drop_context=True)
            if text.strip():
                yield from response.flush()
                yield Turn("user", text, [], stamp)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            yield from response.flush()
            yield Turn("tool", _output_text(payload.get("output")), [], stamp)
    yield from response.flush()
