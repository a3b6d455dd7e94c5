"""The real hook script, run the way Claude Code runs it: JSON on stdin, output on stdout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oxtail_py.hook_args import ERRORS_LOG_MAX_BYTES
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from tests.integration.hookkit import SID, home, hook, run_hook, send, spy_python
from tests.integration.hookkit import context as _context
from tests.integration.hookkit import payload as _payload

__all__ = ["home", "hook"]  # fixtures

@pytest.mark.parametrize(
    ("client", "event", "name"),
    [
        (None, "pretooluse", "PreToolUse"),
        ("claude", "pretooluse", "PreToolUse"),
        ("codex", "posttooluse", "PostToolUse"),
        ("codex", "pretooluse", "PreToolUse"),
        ("codex", "userpromptsubmit", "UserPromptSubmit"),
    ],
)
def test_empty_inbox_path_starts_no_python_and_needs_only_cat(
    layout: Layout, hook: Path, tmp_path: Path, client: str | None, event: str, name: str
) -> None:
    script, record = spy_python(tmp_path, hook)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cat").symlink_to(shutil.which("cat") or "/bin/cat")
    proc = run_hook(
        hook,
        event,
        _payload(name, tool_name="Bash"),
        env={"PATH": str(bin_dir)},
        script=script,
        client=client,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert not record.exists(), "python was started on the empty-inbox path"
    assert (layout.root / "status" / SID).read_text() == "busy"
    # with mail the same script does start the helper
    send(layout, "now there is mail")
    proc = run_hook(hook, event, _payload(name), script=script, client=client)
    assert "now there is mail" in _context(proc, name)
    assert record.read_text() == "started\n"


def test_one_message_is_delivered_as_additional_context_with_its_ids(
    layout: Layout, hook: Path
) -> None:
    msg = send(layout, "the build is green again", expects_reply=True)
    text = _context(run_hook(hook, "pretooluse", _payload("PreToolUse", tool_name="Bash")))
    assert f"message_id={msg.id}" in text and "from_session_id=peer-session-1" in text
    assert f"request_id={msg.id}" in text and "the build is green again" in text
    assert "reply_to_message(message_id=" in text and "not instructions" in text
    box = Mailbox.open(layout, SID)
    assert box.pending_count() == 0 and msg.id in box.paths.delivered.read_text()
    assert run_hook(hook, "pretooluse", _payload("PreToolUse")).stdout == ""


def test_a_burst_over_the_budget_delivers_what_fits_and_keeps_the_rest_in_order(
    layout: Layout, hook: Path
) -> None:
    sent = [send(layout, f"part {i} " + "z" * 4000) for i in range(5)]  # 2 fit in 10,000
    text = _context(run_hook(hook, "pretooluse", _payload("PreToolUse")))
    assert "2 messages" in text and "3 more messages did not fit" in text
    for msg in sent[2:]:
        assert f'message_id={msg.id} · from_session_id=peer-session-1 · preview: "part' in text
    left = Mailbox.open(layout, SID).drain()
    assert [m.id for m in left.messages] == [m.id for m in sent[2:]]


def test_a_subagents_tool_call_is_skipped_entirely(layout: Layout, hook: Path) -> None:
    send(layout, "for the main agent")
    proc = run_hook(
        hook, "pretooluse", _payload("PreToolUse", agent_id="agent-7", agent_type="general-purpose")
    )
    assert (proc.returncode, proc.stdout) == (0, "")
    assert Mailbox.open(layout, SID).pending_count() == 1
    assert not (layout.root / "status" / SID).exists()
    # an empty agent_id is the main agent
    assert "for the main agent" in _context(
        run_hook(hook, "pretooluse", _payload("PreToolUse", agent_id=""))
    )


@pytest.mark.parametrize(
    "stdin",
    [
        "",
        "not json",
        "{}",
        '{"session_id": "../../etc"}',
        '{"session_id": ""}',
        '{"session_id": "' + "a" * 200 + '"}',
    ],
)
def test_malformed_stdin_exits_0_silently(layout: Layout, hook: Path, stdin: str) -> None:
    send(layout, "stays")
    proc = run_hook(hook, "pretooluse", stdin)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert Mailbox.open(layout, SID).pending_count() == 1


def test_a_locked_mailbox_fails_open_and_the_mail_waits(layout: Layout, hook: Path) -> None:
    send(layout, "waits for the next call")
    box = Mailbox.open(layout, SID)
    holder = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "mailbox_worker.py"),
            "hold-lock",
            str(box.paths.lock),
            "30",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "LOCKED"
        proc = run_hook(hook, "pretooluse", _payload("PreToolUse"))
        assert (proc.returncode, proc.stdout) == (0, "")
        assert "LockTimeoutError" in (layout.root / "hooks" / "errors.log").read_text()
    finally:
        holder.kill()
        holder.wait()
    assert "waits for the next call" in _context(
        run_hook(hook, "pretooluse", _payload("PreToolUse"))
    )


def test_the_helpers_error_log_is_bounded_to_two_files(layout: Layout, hook: Path) -> None:
    """A hook failing on every tool call must not grow hooks/errors.log for ever: past
    1 MiB the helper moves it to errors.log.1 and the next start begins a new one."""
    log = layout.root / "hooks" / "errors.log"
    old = log.with_name("errors.log.1")
    old.write_bytes(b"the log before the last\n")
    log.write_bytes(b"x" * (ERRORS_LOG_MAX_BYTES + 1))
    log.chmod(0o600)
    send(layout, "delivered all the same")
    delivered = _context(run_hook(hook, "pretooluse", _payload("PreToolUse")))
    assert "delivered all the same" in delivered
    assert old.stat().st_size == ERRORS_LOG_MAX_BYTES + 1  # the full one, kept once
    assert not log.exists() or log.stat().st_size < ERRORS_LOG_MAX_BYTES
    send(layout, "and again")
    assert "and again" in _context(run_hook(hook, "pretooluse", _payload("PreToolUse")))
    assert old.stat().st_size == ERRORS_LOG_MAX_BYTES + 1  # a small log is left alone


def test_an_error_log_that_is_not_the_helpers_stderr_is_never_moved(
    layout: Layout, tmp_path: Path
) -> None:
    """Run by hand (stderr elsewhere), the helper leaves a large hooks/errors.log alone."""
    hooks = layout.root / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    log = hooks / "errors.log"
    log.write_bytes(b"x" * (ERRORS_LOG_MAX_BYTES + 1))
    other = tmp_path / "other.log"
    other.write_bytes(b"y" * (ERRORS_LOG_MAX_BYTES + 1))
    with other.open("ab") as stderr:
        proc = subprocess.run(
            [sys.executable, "-m", "oxtail_py.hookdrain", "--root", str(layout.root), "stop", SID],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            timeout=60,
        )
    assert proc.returncode == 0
    assert log.exists() and not log.with_name("errors.log.1").exists()


def test_a_missing_helper_fails_open(layout: Layout, hook: Path, tmp_path: Path) -> None:
    send(layout, "undeliverable for now")
    broken = tmp_path / "oxtail-hook"
    broken.write_text(hook.read_text().replace(f"py={sys.executable}", "py=/nonexistent/python3"))
    broken.chmod(0o755)
    proc = run_hook(hook, "pretooluse", _payload("PreToolUse"), script=broken)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert Mailbox.open(layout, SID).pending_count() == 1


def test_stop_blocks_once_with_mail_and_never_loops(layout: Layout, hook: Path) -> None:
    status = layout.root / "status" / SID
    proc = run_hook(hook, "stop", _payload("Stop", stop_hook_active=False))
    assert (proc.returncode, proc.stdout) == (0, "") and status.read_text() == "idle"
    send(layout, "answer me before you go idle")
    proc = run_hook(hook, "stop", _payload("Stop", stop_hook_active=False))
    out = json.loads(proc.stdout)
    assert out["decision"] == "block" and "answer me before you go idle" in out["reason"]
    send(layout, "another one")
    proc = run_hook(hook, "stop", _payload("Stop", stop_hook_active=True))
    assert (proc.returncode, proc.stdout) == (0, "") and status.read_text() == "idle"
    assert Mailbox.open(layout, SID).pending_count() == 1


def test_user_prompt_submit_marks_busy_and_delivers(layout: Layout, hook: Path) -> None:
    proc = run_hook(hook, "userpromptsubmit", _payload("UserPromptSubmit", prompt="hi"))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert (layout.root / "status" / SID).read_text() == "busy"
    send(layout, "context for the new turn")
    out = json.loads(run_hook(hook, "userpromptsubmit", _payload("UserPromptSubmit")).stdout)
    assert out["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    assert "context for the new turn" in out["hookSpecificOutput"]["additionalContext"]


def test_session_start_drops_identity_for_the_server_under_the_same_client(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    # A parent process named `claude` runs the hook, then a child that looks for the
    # drop the way the MCP server does (walking its own ancestors).
    probe = (
        "import os; from oxtail_py.identity import find_drop; from oxtail_py.layout import "
        "Layout; from oxtail_py.settings import Settings; "
        "d = find_drop(Layout(Settings.from_env().root), os.getpid()); "
        "print(d.session_id if d else None)"
    )
    payload = tmp_path / "payload.json"
    payload.write_text(_payload("SessionStart", source="startup"))
    claude = tmp_path / "claude"
    claude.write_text(
        f"#!/bin/sh\n{hook} sessionstart < {payload}\n{sys.executable} -c '{probe}'\n"
    )
    claude.chmod(0o755)
    proc = subprocess.run(["sh", str(claude)], capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == SID, proc.stderr
    [drop] = (layout.root / "drops").iterdir()
    assert json.loads(drop.read_text())["session_id"] == SID
    assert oct(drop.stat().st_mode & 0o777) == "0o600"


def test_every_event_exits_0_for_an_unknown_event(hook: Path) -> None:
    proc = run_hook(hook, "bogus", _payload("Bogus"))
    assert (proc.returncode, proc.stdout) == (0, "")


def test_stop_marks_idle_even_when_the_waiting_lines_deliver_nothing(
    layout: Layout, hook: Path
) -> None:
    status = layout.root / "status" / SID
    run_hook(hook, "userpromptsubmit", _payload("UserPromptSubmit"))
    assert status.read_text() == "busy"
    Mailbox.open(layout, SID).append_lines([b"garbage, not a message\n"])
    proc = run_hook(hook, "stop", _payload("Stop", stop_hook_active=False))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert status.read_text() == "idle"
