"""The hook's reservation check: may this edit tool call run? The lean entry of the hook.

    HELPER-LEAN --root ROOT --client claude|codex reservecheck SESSION_ID   (payload on stdin)

The shell hook starts this only for a file-edit tool (Claude Code: Edit, Write, MultiEdit,
NotebookEdit; Codex: apply_patch) and only when some holder file exists under the root.
For each file the call would change: resolve it (realpath), find the project(s) it is in,
and look for another live agent's reservation that matches it. Exclusive: a deny output
naming the holder, its reason, its expiry and the exact ask_peer call (advisory mode:
a warning instead). Shared: a warning. The caller's own reservations (any session id of
the same server, so /clear keeps them) never get in its way.

It runs in a fresh `python -I -S` on every such call, so it imports only the standard
library's os, time and json (json brings re) and lean modules of ours that share their
definitions with the rest of oxtail: names.py (layout), proc_start.py (liveness),
holder_files.py (the one holder-file reader), registry_entry.py, globmatch.py,
project_root.py, neutral.py, hook_shapes.py, hook_args.py. No dataclasses, pathlib,
typing, enum, hashlib or datetime (tests/integration/test_reservation_hook.py holds it).

Fails open: `main` prints nothing on any error (stderr gets a line), exits 0, and the edit
runs. Shell commands that write files (sed -i, git checkout, a script) cannot be checked.
"""

from __future__ import annotations

import json
import os
import sys
import time

from oxtail_py.globmatch import from_regex  # cached per regex: scan built them already
from oxtail_py.holder_files import EntryRecord, HolderRecord, scan
from oxtail_py.hook_args import (
    RESERVE_CHECK,
    UsageError,
    bound_errors_log,
    parse_args,
    reservations_mode,
)
from oxtail_py.hook_shapes import context_output, deny_output, render
from oxtail_py.project_root import find_project_root

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, Final

CLAUDE_EDIT_TOOLS: Final = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path",
                            "NotebookEdit": "notebook_path"}
CODEX_EDIT_TOOLS: Final = frozenset({"apply_patch"})
# Lines of Codex's patch format that name a file the patch changes.
PATCH_HEADERS: Final = ("*** Add File: ", "*** Update File: ", "*** Delete File: ",
                        "*** Move to: ")
MAX_PATHS: Final = 256
MAX_SHOWN: Final = 5
# An edit tool's payload carries the new content (a Write of a large file): past this
# the check fails open and the edit runs.
MAX_EDIT_PAYLOAD_BYTES: Final = 64 << 20


class Hit:
    """A file of the call (relative to its project) under another agent's reservation."""

    __slots__ = ("entry", "holder", "path")

    def __init__(self, path: str, holder: HolderRecord, entry: EntryRecord) -> None:
        self.path = path
        self.holder = holder
        self.entry = entry


def edited_paths(client: str, payload: dict[str, Any]) -> list[str]:
    """Absolute paths the tool call would write, [] for any other tool."""
    tool = payload.get("tool_name")
    tool_input = payload.get("tool_input")
    cwd = payload.get("cwd")
    if not isinstance(tool_input, dict) or not isinstance(cwd, str) or not os.path.isabs(cwd):
        return []
    found: list[str] = []
    if client == "claude" and tool in CLAUDE_EDIT_TOOLS:
        value = tool_input.get(CLAUDE_EDIT_TOOLS[str(tool)])
        if isinstance(value, str) and value:
            found.append(value)
    elif client == "codex" and tool in CODEX_EDIT_TOOLS:
        patch = tool_input.get("command", tool_input.get("input"))
        if isinstance(patch, str):
            for line in patch.splitlines():
                for header in PATCH_HEADERS:
                    if line.startswith(header) and line[len(header):].strip():
                        found.append(line[len(header):].strip())
    return [os.path.join(cwd, p) for p in found[:MAX_PATHS]]


def find_hits(root: str, session_id: str, paths: list[str], cwd: str) -> list[Hit]:
    """Other agents' live reservations under state root `root` matching any of `paths`."""
    live: dict[str, list[tuple[HolderRecord, EntryRecord]]] = {}
    hits: list[Hit] = []
    own_root = find_project_root(cwd)
    for raw in paths:
        real = os.path.realpath(raw)
        # the caller's project first, then the file's own (a nested repository), once each
        for project in dict.fromkeys((own_root, find_project_root(os.path.dirname(real)))):
            prefix = project.rstrip("/") + "/"
            if not real.startswith(prefix):
                continue
            if project not in live:
                live[project] = [(h, e) for h, entries in scan(root, project)
                                 if not h.is_session(session_id) for e in entries]
            relative = real[len(prefix):]
            hits += [Hit(relative, h, e) for h, e in live[project]
                     if from_regex(e.regex).matches(relative)]
    return hits


def _clock(epoch: float, now: float) -> str:
    left = max(0, int(epoch - now))
    stamp = time.strftime("%H:%M:%SZ", time.gmtime(epoch))
    return f"until {stamp} ({left // 60} min {left % 60} s left)"


def describe(hit: Hit, now: float) -> str:
    from oxtail_py.neutral import neutralize, quoted  # only a call that hit pays for it

    r, holder = hit.entry, hit.holder
    kind = "exclusively" if r.exclusive else "shared"
    what = neutralize(hit.path)
    sid = holder.session_id
    label = holder.name or sid
    who = f"session {sid}" if label == sid else f"{neutralize(label)} (session {sid})"
    return (
        f"- {what} is reserved ({kind}) by agent {who} "
        f"as {quoted(r.given)}, {_clock(r.expires_at, now)}; its reason: "
        f"{quoted(r.reason or '(none given)')}. To ask for a release: "
        f'ask_peer(target="{sid}", body="May I edit {what}? Please release_files it when '
        'you can.")'
    )


def verdict(
    root: str, client: str, session_id: str, payload: dict[str, Any], mode: str
) -> dict[str, Any] | None:
    """The hook output for this tool call: a deny, a warning, or None (no reservation)."""
    if mode == "off":
        return None
    paths = edited_paths(client, payload)
    if not paths:
        return None
    hits = find_hits(root, session_id, paths, str(payload["cwd"]))
    if not hits:
        return None
    from oxtail_py.neutral import neutralize

    now = time.time()
    tool = neutralize(str(payload.get("tool_name")))
    blocking = [h for h in hits if h.entry.exclusive]
    lines = [describe(h, now) for h in (blocking or hits)[:MAX_SHOWN]]
    if len(blocking or hits) > MAX_SHOWN:
        lines.append(f"- and {len(blocking or hits) - MAX_SHOWN} more (list_reservations)")
    if blocking and mode == "enforce":
        head = (f"oxtail: this {tool} was NOT run: it would change a file another live agent "
                "reserved exclusively in this project.")
        tail = ("Ask the holder (above), wait for the reservation to end (at its expiry or "
                "when its holder exits), or work on other files. list_reservations shows all.")
        return deny_output("\n".join([head, *lines, tail]))
    head = ("oxtail: note: this edit touches files another agent reserved"
            + (" (advisory mode: not blocked)" if blocking else " (shared: not blocked)")
            + "; coordinate with it before changing them.")
    return context_output("PreToolUse", "\n".join([head, *lines]))


def check(root: str, client: str, session_id: str, raw: bytes, mode: str) -> str | None:
    """The line the hook prints, or None. Raises on bad input (the caller fails open)."""
    payload = json.loads(raw)
    if not isinstance(payload, dict):
        return None
    output = verdict(root, client, session_id, payload, mode)
    return None if output is None else render(output)


def run(root: str, client: str, session_id: str) -> None:
    """Read the payload (capped), check it, print the verdict line (if any)."""
    raw = sys.stdin.buffer.read(MAX_EDIT_PAYLOAD_BYTES + 1)
    if len(raw) > MAX_EDIT_PAYLOAD_BYTES:
        raise UsageError(f"edit payload over {MAX_EDIT_PAYLOAD_BYTES} bytes; not checked")
    mode, _ = reservations_mode(os.environ.get("OXTAIL_RESERVATIONS"))
    line = check(root, client, session_id, raw, mode)
    if line is not None:
        # Bytes, not text: the hook's locale must not decide whether non-ASCII prints.
        sys.stdout.buffer.write((line + "\n").encode("utf-8"))
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    """The rendered hook's lean entry for `reservecheck` (it always passes --root)."""
    root: str | None = None
    try:
        call = parse_args(argv)
        root = call.root
        if call.event != RESERVE_CHECK or call.session_id is None or call.root is None:
            raise UsageError(f"expected --root ROOT [--client NAME] {RESERVE_CHECK} SESSION_ID")
        run(call.root, call.client, call.session_id)
    except Exception as exc:  # fail open: a broken check must never stop an agent's edit
        print(f"oxtail hook: {type(exc).__name__}: {exc}", file=sys.stderr)
    if root is not None:
        bound_errors_log(root)
    return 0
