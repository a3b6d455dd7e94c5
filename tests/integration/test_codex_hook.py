"""The real rendered hook run as Codex runs it (`oxtail-hook codex EVENT`, JSON on stdin).

Codex's output schemas are strict (one unknown key drops the whole output), it cuts a
text over CODEX_SPILL_BYTES, and it sets no limit on Stop blocks of its own: these tests
pin what the hook does about each, and that every bad input exits 0 with no output.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from oxtail_py.hook_output import CODEX_SPILL_BYTES
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from tests.integration.hookkit import SID, home, hook, run_hook, send, spy_python
from tests.integration.hookkit import context as _context
from tests.integration.hookkit import payload as _payload

__all__ = ["home", "hook"]  # fixtures

EVENTS = {
    "sessionstart": "SessionStart",
    "userpromptsubmit": "UserPromptSubmit",
    "pretooluse": "PreToolUse",
    "posttooluse": "PostToolUse",
    "stop": "Stop",
}


def codex(hook: Path, event: str, stdin: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return run_hook(hook, event, stdin, client="codex", **kw)  # type: ignore[arg-type]


def _tool_payload(event: str, **extra: object) -> str:
    """A Codex PostToolUse/PreToolUse payload (fields as the 0.169.0 probe saw them)."""
    return _payload(
        EVENTS[event], turn_id="turn-1", model="gpt-test", tool_name="Bash",
        tool_input={"command": "ls"}, tool_use_id="call_1",
        **({"tool_response": "ok"} if event == "posttooluse" else {}), **extra,
    )


def test_post_tool_use_delivers_context_with_exactly_the_keys_codex_accepts(
    layout: Layout, hook: Path
) -> None:
    msg = send(layout, "the migration is done", expects_reply=True)
    proc = codex(hook, "posttooluse", _tool_payload("posttooluse"))
    text = _context(proc, "PostToolUse")  # asserts the exact key set
    assert "the migration is done" in text and f"request_id={msg.id}" in text
    assert proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1
    assert Mailbox.open(layout, SID).pending_count() == 0
    assert (layout.root / "status" / SID).read_text() == "busy"
    assert codex(hook, "posttooluse", _tool_payload("posttooluse")).stdout == ""


def test_a_burst_reaches_codex_in_outputs_it_never_cuts(layout: Layout, hook: Path) -> None:
    # Three near-maximal bodies: Claude's budget would put two in one output, which
    # Codex would spill (cut) at CODEX_SPILL_BYTES. Each output must carry whole bodies.
    bodies = [f"{n}:" + "x" * 8000 for n in range(3)]
    for body in bodies:
        send(layout, body)
    seen: list[str] = []
    for _ in range(3):
        text = _context(codex(hook, "posttooluse", _tool_payload("posttooluse")), "PostToolUse")
        assert len(text.encode()) <= CODEX_SPILL_BYTES
        seen += [b for b in bodies if b in text]
    assert seen == bodies  # each once, in order
    assert Mailbox.open(layout, SID).pending_count() == 0


def test_stop_blocks_once_and_honours_stop_hook_active(layout: Layout, hook: Path) -> None:
    status = layout.root / "status" / SID
    send(layout, "one more thing")
    out = json.loads(codex(hook, "stop", _payload("Stop", stop_hook_active=False)).stdout)
    assert set(out) == {"decision", "reason"} and out["decision"] == "block"
    assert "one more thing" in out["reason"] and status.read_text() == "idle"
    # Codex sets no limit of its own: after a block, the next Stop never blocks again.
    send(layout, "arrived during the extra step")
    for compact in (True, False):
        proc = codex(hook, "stop", _payload("Stop", stop_hook_active=True, compact=compact))
        assert (proc.returncode, proc.stdout) == (0, "") and status.read_text() == "idle"
    assert Mailbox.open(layout, SID).pending_count() == 1  # waits for the next turn


def test_session_start_marks_busy_starts_no_python_and_drops_nothing(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    script, record = spy_python(tmp_path, hook)
    send(layout, "waiting before the first prompt")
    proc = codex(hook, "sessionstart", _payload("SessionStart", source="startup"), script=script)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert not record.exists()
    assert (layout.root / "status" / SID).read_text() == "busy"
    assert not (layout.root / "drops").exists()
    # the prompt's own UserPromptSubmit, right after, delivers it
    out = codex(hook, "userpromptsubmit", _payload("UserPromptSubmit", prompt="hi"))
    assert "waiting before the first prompt" in _context(out, "UserPromptSubmit")


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_a_subagent_thread_is_left_alone(layout: Layout, hook: Path, event: str) -> None:
    send(layout, "for the main agent")
    extra = {"agent_id": "agent-7", "agent_type": "worker"}
    proc = codex(hook, event, _payload(EVENTS[event], stop_hook_active=False, **extra))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert not (layout.root / "status" / SID).exists()
    assert Mailbox.open(layout, SID).pending_count() == 1


BAD_PAYLOADS = [
    "",
    "not json",
    "{",
    '{"session_id":""}',
    '{"session_id":"../../etc"}',
    '{"session_id":"a b"}',
    '{"session_id":"' + "a" * 500 + '"}',
    '{"session_id":"pid-123"}',
    '{"session_id":12}',
    "[1,2,3]",
    '{"session_id":"$(touch /tmp/oxtail-pwned)"}',
    "\x00\xff",
]


@pytest.mark.parametrize("event", [*sorted(EVENTS), "bogus", ""])
@pytest.mark.parametrize("stdin", BAD_PAYLOADS)
def test_a_bad_payload_exits_0_with_no_output(
    layout: Layout, hook: Path, event: str, stdin: str
) -> None:
    send(layout, "must stay")
    proc = codex(hook, event, stdin)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert Mailbox.open(layout, SID).pending_count() == 1
    assert not Path("/tmp/oxtail-pwned").exists()


@pytest.mark.parametrize("event", ["pretooluse", "posttooluse", "userpromptsubmit", "stop"])
def test_a_broken_mailbox_line_exits_0_with_no_output(
    layout: Layout, hook: Path, event: str
) -> None:
    Mailbox.open(layout, SID).append_lines([b"garbage, not a message\n"])
    proc = codex(hook, event, _payload(EVENTS[event], stop_hook_active=False))
    assert (proc.returncode, proc.stdout) == (0, "")
