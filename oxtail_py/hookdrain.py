"""What the shell hook runs when there is mail (or at SessionStart). Never imports mcp.

    HELPER --root ROOT [--client claude|codex] EVENT SESSION_ID
        EVENT: pretooluse | posttooluse | userpromptsubmit | stop
    HELPER --root ROOT [--client claude] sessionstart        (payload on stdin)
    HELPER --root ROOT [--client claude|codex] reservecheck SESSION_ID   (payload on stdin)
        the PreToolUse check of a file-edit tool against file reservations: what hooks
        installed before the lean entry run; today's hook starts reservation_check.py
        itself (`python -I -S`, without this module's imports)

HELPER is the rendered hook's `python -I [-S] -c ...` (isolated mode, the package loaded
from the directory it was installed from: see hooks/oxtail-hook). ROOT is the state root the
shell looked at; the helper drains exactly that root and never derives its own.
Prints the hook's JSON output on stdout. Fails open: any error is logged to
stderr, nothing is printed, the exit code is 0, and the mail stays in the inbox
for the next path (the next tool call, read_my_messages).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Final

from oxtail_py.fsio import atomic_write_json, ensure_tree
from oxtail_py.hook_args import RESERVE_CHECK, bound_errors_log, parse_args
from oxtail_py.hook_args import HookCall as HookCall  # re-exported: the parsed call
from oxtail_py.hook_args import UsageError as UsageError
from oxtail_py.hook_output import CONTEXT_LIMIT_BYTES, Client, HookEvent, hook_output
from oxtail_py.hook_output import render as render_output
from oxtail_py.layout import Layout
from oxtail_py.names import is_session_id

# The most one hook output may print, JSON line included (framing, bodies, previews):
# what does not fit stays in the inbox, in order, for the next tool call. The text
# itself is also held to what the client hands its model whole (CONTEXT_LIMIT_BYTES:
# Claude Code shows a longer one as a 2 KB preview, and the rest would be lost).
CONTEXT_BUDGET_BYTES: Final = 16_000
HOOK_LOCK_TIMEOUT_S: Final = 2.0


def deliver(
    layout: Layout, session_id: str, event: str, client: str = "claude"
) -> dict[str, Any] | None:
    """Drain the session's inbox into `client`'s hook output for `event`; None if no mail."""
    # Here, not at the top: the reservation check (an edit tool) starts this module too
    # and needs neither.
    from oxtail_py import asks_ledger, eventlog, handover, obligations
    from oxtail_py.framing import (
        OPEN_WORK_RESERVE_BYTES,
        encoded_size,
        render_delivery,
        with_open_work,
    )
    from oxtail_py.mailbox import Mailbox

    # A short lock wait: the hook's own timeout is a few seconds, and mail that
    # cannot be taken now simply waits for the next path.
    box = Mailbox.open(layout, session_id, lock_timeout=HOOK_LOCK_TIMEOUT_S)
    delivery = box.drain()
    hook_event, for_client = HookEvent(event), Client(client)
    if not delivery.messages:
        return _owed_notice(layout, session_id, hook_event, for_client)
    envelope = len(render_output(hook_output(for_client, hook_event, "")).encode()) + 1
    budget = CONTEXT_BUDGET_BYTES - (envelope - encoded_size(""))
    # encoded_size counts the JSON-escaped UTF-8 bytes, never fewer than the text's
    # UTF-16 units (Claude's measure) nor its UTF-8 bytes (Codex's).
    limit = CONTEXT_LIMIT_BYTES[for_client]  # Codex: CODEX_SPILL_BYTES
    if limit is not None:
        budget = min(budget, limit)
    late = asks_ledger.late_replies(layout, [session_id], delivery.messages)
    # Room for the open-work line, so that it never pushes the text past the limits.
    rendered = render_delivery(
        delivery.messages, budget - OPEN_WORK_RESERVE_BYTES, late.request_ids
    )
    shown = delivery.messages[: rendered.delivered_count]
    try:
        # Before the client sees them: reply_to_message and complete_work need the
        # received-ledger; a failure (full disk) leaves the mail waiting.
        handover.before(layout, session_id, shown)
        open_work = obligations.count_open_for(layout, session_id)
    except BaseException:
        delivery.abort()
        raise
    output = hook_output(for_client, hook_event, with_open_work(rendered.text, open_work))
    try:
        # Bytes, not text: the hook's locale must not decide whether non-ASCII prints.
        sys.stdout.buffer.write((render_output(output) + "\n").encode("utf-8"))
        sys.stdout.flush()
    except BaseException:
        delivery.abort()  # nobody got it: it waits for the next path
        raise
    if rendered.delivered_count:
        handover.after(layout, session_id, shown, "hook", event)
        delivery.commit_first(rendered.delivered_count)
        asks_ledger.record_handed_over(layout, late, shown)
        eventlog.delivered(layout, shown, session_id, f"hook {client} {event}")
    else:
        delivery.abort()  # only a notice was shown: read_my_messages returns it whole
    return dict(output)


def _owed_notice(
    layout: Layout, session_id: str, event: HookEvent, client: Client
) -> dict[str, Any] | None:
    """No mail, but work owed: at the start of a turn, say how much (our text only)."""
    if event != HookEvent.USER_PROMPT_SUBMIT:
        return None
    from oxtail_py import obligations
    from oxtail_py.framing import open_work_notice

    count = obligations.count_open_for(layout, session_id)
    if not count:
        return None
    output = hook_output(client, event, open_work_notice(count))
    sys.stdout.buffer.write((render_output(output) + "\n").encode("utf-8"))
    sys.stdout.flush()
    return dict(output)


def session_start(layout: Layout, payload: dict[str, Any]) -> None:
    """Drop this session's identity for the MCP server under the same client process."""
    sid = payload.get("session_id")
    if not isinstance(sid, str) or not is_session_id(sid):
        return
    from oxtail_py.identity import detect_client  # psutil: only SessionStart pays for it

    client = detect_client(os.getpid())
    if client is None or client.start is None:
        return
    ensure_tree(layout.root, layout.drops_dir)
    atomic_write_json(
        layout.drop_file(client.pid),
        {
            "session_id": sid,
            "cwd": payload.get("cwd"),
            "transcript_path": payload.get("transcript_path"),
            "client_pid": client.pid,
            "client_start": client.start,
            "source": payload.get("source"),
        },
    )


# A SessionStart payload is a few hundred bytes; more is not a client's.
MAX_PAYLOAD_BYTES: Final = 1 << 20


def main(argv: list[str]) -> int:
    layout: Layout | None = None
    try:
        call = parse_args(argv)
        if call.root is None:  # a hook installed before --root: the settings' root
            from oxtail_py.settings import Settings

            layout = Layout(Settings.from_env().root)
        else:
            layout = Layout(Path(call.root))
        if call.event == RESERVE_CHECK and call.session_id is not None:
            from oxtail_py.reservation_check import run  # only edit tools pay for it

            run(str(layout.root), call.client, call.session_id)
        elif call.session_id is None:
            raw = sys.stdin.buffer.read(MAX_PAYLOAD_BYTES + 1)
            if len(raw) > MAX_PAYLOAD_BYTES:
                raise UsageError(f"SessionStart payload over {MAX_PAYLOAD_BYTES} bytes; ignored")
            data = json.loads(raw or b"{}")
            # Codex: no drop (the server has `_meta.threadId`; one Codex process serves
            # many threads, so a drop keyed by its pid could name the wrong one).
            if isinstance(data, dict) and call.client == Client.CLAUDE:
                session_start(layout, data)
        else:
            deliver(layout, call.session_id, call.event, call.client)
    except Exception as exc:  # fail open: a hook must never break the agent's turn
        print(f"oxtail hook: {type(exc).__name__}: {exc}", file=sys.stderr)
    if layout is not None:
        bound_errors_log(str(layout.root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
