"""Claude Code transcripts: ~/.claude/projects/<encoded cwd>/<session id>.jsonl → turns.

Conversation lines are `type: "user"` / `type: "assistant"` with a `.message` in the
Messages API shape. Claude Code writes one line per content block of a model response, all
with the same `message.id`, so consecutive assistant lines sharing an id make one turn.
Tool results come back as user lines holding `tool_result` blocks. Hook output is written as
`attachment` lines; `hook_additional_context` is text the model saw, so it becomes a
"system" turn. Every other line type (api-request copies, queue-operation, tools-used,
last-prompt, cost-state, summary, system, ...) is bookkeeping and ignored.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from oxtail_py.client_paths import claude_config_dir
from oxtail_py.layout import SESSION_ID_RE
from oxtail_py.transcripts import (
    TOOL_OUTPUT_MAX_CHARS,
    ResponseBuffer,
    ToolCall,
    Turn,
    clip_block,
    summarize_input,
)

# Claude Code names a project's directory after its cwd with every character outside
# [a-zA-Z0-9] replaced by '-'; a name longer than 200 characters is cut to 200 and given a
# '-<hash>' suffix (seen in the 2.1.330 bundle: `replace(/[^a-zA-Z0-9]/g,"-")`, `_oe=200`).
_UNSAFE: Final = re.compile(r"[^a-zA-Z0-9]")
_MAX_DIR_NAME: Final = 200


def projects_dir(*, home: Path | None = None) -> Path:
    return claude_config_dir(home=home) / "projects"


def encode_cwd(cwd: str) -> str:
    """The directory name Claude Code uses for a project at `cwd` (untruncated)."""
    return _UNSAFE.sub("-", cwd)


def project_dirs(project_cwd: Path, *, home: Path | None = None) -> list[Path]:
    """Existing project directories Claude Code may use for `project_cwd`.

    Claude Code runs in its process cwd, which the kernel reports resolved, so the realpath
    is tried as well as the path as given. A long name ends in a hash we do not recompute;
    like Claude Code itself when it resumes, we match the 200-character prefix instead.
    """
    base = projects_dir(home=home)
    names: list[str] = []
    for cwd in (str(project_cwd), os.path.realpath(project_cwd)):
        name = encode_cwd(cwd)
        if name not in names:
            names.append(name)
    found: list[Path] = []
    for name in names:
        if len(name) <= _MAX_DIR_NAME:
            if (base / name).is_dir():
                found.append(base / name)
            continue
        prefix = name[:_MAX_DIR_NAME] + "-"
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        found.extend(Path(e.path) for e in entries if e.name.startswith(prefix) and e.is_dir())
    return found


def locate(session_id: str, *, home: Path | None = None) -> Path | None:
    """projects/*/<session id>.jsonl — one directory level, never a recursive walk."""
    if not SESSION_ID_RE.fullmatch(session_id):
        return None
    try:
        entries = list(os.scandir(projects_dir(home=home)))
    except OSError:
        return None
    hits: list[tuple[float, Path]] = []
    for entry in entries:
        candidate = Path(entry.path) / f"{session_id}.jsonl"
        try:
            hits.append((candidate.stat().st_mtime, candidate))
        except OSError:
            continue
    # The same session id in two project dirs happens when a session is resumed from
    # another cwd; the one written last is the live one.
    return max(hits)[1] if hits else None


def transcripts_born_after(
    project_cwd: Path, after: float, *, home: Path | None = None
) -> list[Path]:
    """Transcripts in the project's directory created after `after`, oldest first."""
    born: list[tuple[float, Path]] = []
    for directory in project_dirs(project_cwd, home=home):
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(".jsonl") or not entry.is_file(follow_symlinks=False):
                continue
            birth = birth_time(entry.path)
            if birth is not None and birth > after:
                born.append((birth, Path(entry.path)))
    return [path for _, path in sorted(born)]


def birth_time(path: str) -> float | None:
    """When the file was created: st_birthtime, Linux statx btime, else st_ctime.

    st_ctime changes on every append, so on its own it would make every transcript still
    being written look newly born; statx gives the real birth on Linux filesystems that
    record it (ext4, xfs, btrfs, tmpfs).
    """
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    birth = getattr(st, "st_birthtime", None)
    if isinstance(birth, float):
        return birth
    if sys.platform == "linux":
        btime = _statx_btime(path)
        if btime is not None:
            return btime
    return st.st_ctime


@functools.cache
def _libc_statx() -> Any:
    """statx(2) from the C library, or None. Python 3.11 has no os.statx; glibc (2.28+) and
    musl export it. Imported lazily: ctypes is not worth loading for callers that never ask."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).statx
    except (OSError, AttributeError):
        return None


def _statx_btime(path: str) -> float | None:
    statx = _libc_statx()
    if statx is None:
        return None
    import ctypes

    # struct statx is a fixed kernel ABI: 256 bytes, stx_mask (u32) at offset 0,
    # stx_btime {s64 tv_sec; u32 tv_nsec} at offset 80.
    at_fdcwd, at_symlink_nofollow, statx_btime = -100, 0x100, 0x800
    buf = ctypes.create_string_buffer(256)
    if statx(at_fdcwd, os.fsencode(path), at_symlink_nofollow, statx_btime, buf) != 0:
        return None
    raw = buf.raw
    if not int.from_bytes(raw[0:4], sys.byteorder) & statx_btime:
        return None  # this filesystem does not record a birth time
    sec = int.from_bytes(raw[80:88], sys.byteorder, signed=True)
    nsec = int.from_bytes(raw[88:92], sys.byteorder)
    # Some filesystems set the mask bit yet report 0 (seen here on files older than the fs).
    return sec + nsec / 1e9 if sec or nsec else None


def _text_of(content: Any) -> str:
    """Text of a `content`: a string, or a list of text blocks (or plain strings, as in a
    hook_additional_context attachment)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif not isinstance(block, dict):
            continue
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block.get("type") == "image":
            parts.append("[image]")
    return "\n".join(parts)


def _tool_result_text(block: dict[str, Any]) -> str:
    text = clip_block(_text_of(block.get("content")), TOOL_OUTPUT_MAX_CHARS)
    return f"[error] {text}" if block.get("is_error") else text


def parse(records: Iterable[dict[str, Any]]) -> Iterator[Turn]:
    """Turns of a Claude Code transcript, in file order."""
    response = ResponseBuffer()
    for record in records:
        kind = record.get("type")
        # Sidechains are a subagent's own conversation, not this session's.
        if record.get("isSidechain") is True:
            continue
        timestamp = record.get("timestamp")
        stamp = timestamp if isinstance(timestamp, str) else None
        if kind == "assistant":
            message = record.get("message")
            if not isinstance(message, dict):
                continue
            yield from response.begin(message.get("id"))
            content = message.get("content")
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text" and isinstance(block.get("text"), str):
                    response.add(stamp, text=block["text"])
                elif block.get("type") == "tool_use":
                    name = block.get("name")
                    call = ToolCall(
                        name if isinstance(name, str) else "?", summarize_input(block.get("input"))
                    )
                    response.add(stamp, call=call)
        elif kind == "user":
            message = record.get("message")
            if not isinstance(message, dict) or record.get("isMeta") is True:
                continue
            yield from response.flush()
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    yield Turn("tool", _tool_result_text(block), [], stamp)
            text = _text_of(content)
            if text.strip():
                yield Turn("user", text, [], stamp)
        elif kind == "attachment":
            attachment = record.get("attachment")
            if not isinstance(attachment, dict):
                continue
            if attachment.get("type") != "hook_additional_context":
                continue
            text = _text_of(attachment.get("content"))
            hook = attachment.get("hookName")
            if text.strip():
                yield from response.flush()
                # Worded as the model saw it: "PreToolUse:Bash hook additional context: ..."
                if isinstance(hook, str):
                    text = f"{hook} hook additional context: {text}"
                yield Turn("system", text, [], stamp)
    yield from response.flush()
