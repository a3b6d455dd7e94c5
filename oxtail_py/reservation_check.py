"""The hook's reservation check: may this edit tool call run? Never imports mcp or pathspec.

The shell hook starts this only for a file-edit tool (Claude Code: Edit, Write, MultiEdit,
NotebookEdit; Codex: apply_patch) and only when some holder file exists under the root.
For each file the call would change: resolve it (realpath), find the project(s) it is in,
and look for another live agent's reservation that matches it. Exclusive: a deny output
naming the holder, its reason, its expiry and the exact ask_peer call (advisory mode:
a warning instead). Shared: a warning. The caller's own reservations (any session id of
the same server, so /clear keeps them) never get in its way.

Fails open: the caller (hookdrain.main) prints nothing on any error, and the edit runs.
Shell commands that write files (sed -i, git checkout, a script) cannot be checked.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from oxtail_py.framing import neutralize, quoted
from oxtail_py.hook_output import Client, HookEvent, HookOutput, deny_output, hook_output
from oxtail_py.layout import Layout
from oxtail_py.reservations import Reservation, ReservationBook
from oxtail_py.scope import infer_project_root

CLAUDE_EDIT_TOOLS: Final = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path",
                            "NotebookEdit": "notebook_path"}
CODEX_EDIT_TOOLS: Final = frozenset({"apply_patch"})
# Lines of Codex's patch format that name a file the patch changes.
PATCH_HEADERS: Final = ("*** Add File: ", "*** Update File: ", "*** Delete File: ",
                        "*** Move to: ")
MAX_PATHS: Final = 256
MAX_SHOWN: Final = 5


@dataclass(frozen=True, slots=True)
class Hit:
    path: str  # relative to its project
    reservation: Reservation


def edited_paths(client: str, payload: dict[str, Any]) -> list[str]:
    """Absolute paths the tool call would write, [] for any other tool."""
    tool = payload.get("tool_name")
    tool_input = payload.get("tool_input")
    cwd = payload.get("cwd")
    if not isinstance(tool_input, dict) or not isinstance(cwd, str) or not os.path.isabs(cwd):
        return []
    found: list[str] = []
    if client == Client.CLAUDE and tool in CLAUDE_EDIT_TOOLS:
        value = tool_input.get(CLAUDE_EDIT_TOOLS[str(tool)])
        if isinstance(value, str) and value:
            found.append(value)
    elif client == Client.CODEX and tool in CODEX_EDIT_TOOLS:
        patch = tool_input.get("command", tool_input.get("input"))
        if isinstance(patch, str):
            for line in patch.splitlines():
                for header in PATCH_HEADERS:
                    if line.startswith(header) and line[len(header):].strip():
                        found.append(line[len(header):].strip())
    return [os.path.join(cwd, p) for p in found[:MAX_PATHS]]


def find_hits(layout: Layout, session_id: str, paths: list[str], cwd: str) -> list[Hit]:
    """Other agents' live reservations matching any of `paths`."""
    books: dict[Path, ReservationBook] = {}
    live: dict[Path, list[Reservation]] = {}
    hits: list[Hit] = []
    own_root = infer_project_root(cwd)[0]
    for raw in paths:
        real = os.path.realpath(raw)
        for root in {own_root, infer_project_root(os.path.dirname(real))[0]}:
            prefix = str(root).rstrip("/") + "/"
            if not real.startswith(prefix):
                continue
            if root not in books:
                books[root] = ReservationBook(layout, root)
                live[root] = [r for r in books[root].all()
                              if not r.holder.is_session(session_id)]
            relative = real[len(prefix):]
            hits += [Hit(relative, r) for r in live[root] if r.nfa().matches(relative)]
    return hits


def _clock(epoch: float, now: float) -> str:
    left = max(0, int(epoch - now))
    stamp = time.strftime("%H:%M:%SZ", time.gmtime(epoch))
    return f"until {stamp} ({left // 60} min {left % 60} s left)"


def describe(hit: Hit, now: float) -> str:
    r = hit.reservation
    kind = "exclusively" if r.exclusive else "shared"
    what = neutralize(hit.path)
    sid = r.holder.session_id
    who = f"session {sid}" if r.holder.label == sid else (
        f"{neutralize(r.holder.label)} (session {sid})")
    return (
        f"- {what} is reserved ({kind}) by agent {who} "
        f"as {quoted(r.given)}, {_clock(r.expires_at, now)}; its reason: "
        f"{quoted(r.reason or '(none given)')}. To ask for a release: "
        f'ask_peer(target="{sid}", body="May I edit {what}? Please release_files it when '
        'you can.")'
    )


def verdict(
    layout: Layout, client: str, session_id: str, payload: dict[str, Any], mode: str
) -> HookOutput | None:
    """The hook output for this tool call: a deny, a warning, or None (no reservation)."""
    if mode == "off":
        return None
    paths = edited_paths(client, payload)
    if not paths:
        return None
    hits = find_hits(layout, session_id, paths, str(payload["cwd"]))
    if not hits:
        return None
    now = time.time()
    tool = neutralize(str(payload.get("tool_name")))
    blocking = [h for h in hits if h.reservation.exclusive]
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
    return hook_output(Client(client), HookEvent.PRE_TOOL_USE, "\n".join([head, *lines]))


def check(layout: Layout, client: str, session_id: str, raw: bytes, mode: str) -> str | None:
    """The line the hook prints, or None. Raises on bad input (the caller fails open)."""
    payload = json.loads(raw)
    if not isinstance(payload, dict):
        return None
    output = verdict(layout, client, session_id, payload, mode)
    return None if output is None else json.dumps(output, ensure_ascii=False,
                                                  separators=(",", ":"))
