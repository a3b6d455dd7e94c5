"""The rendered hook enforcing reservations: exact deny keys for both clients, warnings for
shared and advisory, nothing (and no Python) off the edit path, fail-open on bad files,
/clear keeps the holder's own edits passing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, identity_of
from oxtail_py.registry import ClientInfo, Registry, SessionEntry
from oxtail_py.reservation_patterns import normalize
from oxtail_py.reservations import Holder, ReservationBook
from tests.integration.hookkit import home, hook, run_hook, spy_python

__all__ = ["home", "hook"]  # fixtures

ME = "11111111-1111-4111-8111-111111111111"
PEER = "22222222-2222-4222-8222-222222222222"
PEER_AFTER_CLEAR = "33333333-3333-4333-8333-333333333333"
DENY_KEYS = {"hookEventName", "permissionDecision", "permissionDecisionReason"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("x = 1\n")
    return root


@pytest.fixture
def peer() -> Iterator[ProcessIdentity]:
    """A live process standing in for the peer's server (pid + start time)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        ident = identity_of(proc.pid)
        assert ident is not None
        yield ident
    finally:
        proc.kill()
        proc.wait()


def reserve(layout: Layout, project: Path, server: ProcessIdentity, *paths: str,
            exclusive: bool = True, sid: str = PEER) -> None:
    holder = Holder(server, sid, "claude", "peer-pane")
    patterns = [normalize(p, project) for p in paths]
    got = ReservationBook(layout, project).reserve(
        holder, [(p.given, p.pattern, p.regex, p.kind) for p in patterns],
        exclusive=exclusive, ttl_s=600, reason="migrating the schema")
    assert not got.conflicts


def claude_edit(project: Path, target: str, *, sid: str = ME, tool: str = "Edit",
                **extra: Any) -> str:
    key = "notebook_path" if tool == "NotebookEdit" else "file_path"
    return json.dumps({"session_id": sid, "transcript_path": "/t.jsonl", "cwd": str(project),
                       "hook_event_name": "PreToolUse", "tool_name": tool,
                       "tool_input": {key: str(project / target), "content": "y"}, **extra},
                      separators=(",", ":"))


def codex_patch(project: Path, patch: str, *, sid: str = ME) -> str:
    return json.dumps({"session_id": sid, "turn_id": "t", "transcript_path": "/r.jsonl",
                       "cwd": str(project), "hook_event_name": "PreToolUse",
                       "model": "m", "permission_mode": "bypassPermissions",
                       "tool_name": "apply_patch", "tool_input": {"command": patch},
                       "tool_use_id": "call_1"}, separators=(",", ":"))


def decision(stdout: str) -> dict[str, Any]:
    out = json.loads(stdout)
    assert set(out) == {"hookSpecificOutput"}
    return dict(out["hookSpecificOutput"])


@pytest.mark.parametrize("tool", ["Edit", "Write", "MultiEdit", "NotebookEdit"])
def test_claude_edit_tools_on_a_peers_exclusive_file_are_denied(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity, tool: str
) -> None:
    reserve(layout, project, peer, "src/app.py")
    proc = run_hook(hook, "pretooluse", claude_edit(project, "src/app.py", tool=tool),
                    client="claude")
    assert proc.returncode == 0, proc.stderr
    out = decision(proc.stdout)
    assert set(out) == DENY_KEYS and out["permissionDecision"] == "deny"
    reason = out["permissionDecisionReason"]
    for part in ("peer-pane", PEER, "migrating the schema", "until ",
                 f'ask_peer(target="{PEER}"', f"this {tool} was NOT run"):
        assert part in reason
    # another file of the project is free
    assert run_hook(hook, "pretooluse", claude_edit(project, "src/other.py"),
                    client="claude").stdout == ""


def test_codex_apply_patch_touching_a_reserved_file_is_denied(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity
) -> None:
    reserve(layout, project, peer, "src/*.py")
    patch = ("*** Begin Patch\n*** Add File: notes.txt\n+hi\n*** Update File: src/app.py\n"
             "@@\n-x = 1\n+x = 2\n*** End Patch\n")
    proc = run_hook(hook, "pretooluse", codex_patch(project, patch), client="codex")
    out = decision(proc.stdout)
    assert set(out) == DENY_KEYS and out["permissionDecision"] == "deny"
    assert "src/app.py" in out["permissionDecisionReason"]
    free = "*** Begin Patch\n*** Add File: README.md\n+hi\n*** End Patch\n"
    assert run_hook(hook, "pretooluse", codex_patch(project, free), client="codex").stdout == ""
    moved = ("*** Begin Patch\n*** Update File: README.md\n*** Move to: src/new.py\n@@\n"
             "*** End Patch\n")
    assert "deny" in run_hook(hook, "pretooluse", codex_patch(project, moved),
                              client="codex").stdout


def test_shared_reservations_and_advisory_mode_only_warn_and_off_does_nothing(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity, tmp_path: Path
) -> None:
    reserve(layout, project, peer, "docs/", exclusive=False)
    reserve(layout, project, peer, "src/app.py")
    shared = decision(run_hook(hook, "pretooluse", claude_edit(project, "docs/a.md"),
                               client="claude").stdout)
    assert set(shared) == {"hookEventName", "additionalContext"}
    assert "shared: not blocked" in shared["additionalContext"]
    advisory = run_hook(hook, "pretooluse", claude_edit(project, "src/app.py"), client="claude",
                        env={"OXTAIL_RESERVATIONS": "advisory"})
    assert "advisory mode: not blocked" in decision(advisory.stdout)["additionalContext"]
    script, record = spy_python(tmp_path, hook)
    off = run_hook(hook, "pretooluse", claude_edit(project, "src/app.py"), script=script,
                   client="claude", env={"OXTAIL_RESERVATIONS": "off"})
    assert (off.returncode, off.stdout, record.exists()) == (0, "", False)


def test_no_python_starts_without_holder_files_or_for_other_tools(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity, tmp_path: Path
) -> None:
    script, record = spy_python(tmp_path, hook)
    edit = claude_edit(project, "src/app.py")
    assert run_hook(hook, "pretooluse", edit, script=script, client="claude").stdout == ""
    assert not record.exists()
    reserve(layout, project, peer, "src/app.py")
    bash = json.dumps({"session_id": ME, "cwd": str(project), "hook_event_name": "PreToolUse",
                       "tool_name": "Bash", "tool_input": {"command": "sed -i s/1/2/ src/app.py"}},
                      separators=(",", ":"))
    assert run_hook(hook, "pretooluse", bash, script=script, client="claude").stdout == ""
    assert not record.exists()  # shell commands are not checked (documented)
    assert "deny" in run_hook(hook, "pretooluse", edit, script=script, client="claude").stdout
    assert record.exists()


def test_own_reservations_pass_even_after_clear_and_subagents_are_checked(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity
) -> None:
    reserve(layout, project, peer, "src/")
    # /clear: the holder's server now serves a new session id (its registry entry says so)
    Registry(layout).write(SessionEntry(peer.pid, peer.start, client=ClientInfo(
        type="claude", session_id=PEER_AFTER_CLEAR, previous_session_ids=[PEER])))
    for sid in (PEER_AFTER_CLEAR, PEER):
        assert run_hook(hook, "pretooluse", claude_edit(project, "src/app.py", sid=sid),
                        client="claude").stdout == ""
    denied = decision(run_hook(hook, "pretooluse", claude_edit(project, "src/app.py"),
                               client="claude").stdout)
    assert f'ask_peer(target="{PEER_AFTER_CLEAR}"' in denied["permissionDecisionReason"]
    # a subagent of another agent (agent_id set) is checked like its agent
    sub = claude_edit(project, "src/app.py", agent_id="agent-7")
    assert "deny" in run_hook(hook, "pretooluse", sub, client="claude").stdout


@pytest.mark.parametrize("garbage", [b"{not json", b'{"holder": 1}', b"\xff" * 10])
def test_a_corrupt_holder_file_is_quarantined_and_never_blocks(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity, garbage: bytes
) -> None:
    reserve(layout, project, peer, "src/app.py")
    paths = layout.reservations(project)
    paths.holder(peer).write_bytes(garbage)
    proc = run_hook(hook, "pretooluse", claude_edit(project, "src/app.py"), client="claude")
    assert (proc.returncode, proc.stdout) == (0, "")
    names = sorted(p.name for p in paths.directory.iterdir())
    assert not paths.holder(peer).exists()
    assert [n for n in names if n.startswith(f"q.{paths.holder(peer).name}.")]


def test_a_forged_regex_is_quarantined_not_run(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity
) -> None:
    reserve(layout, project, peer, "src/app.py")
    path = layout.reservations(project).holder(peer)
    data = json.loads(path.read_text())
    data["reservations"][0]["regex"] = r"(?=lookahead)\bno"
    path.write_text(json.dumps(data))
    proc = run_hook(hook, "pretooluse", claude_edit(project, "src/app.py"), client="claude")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert not path.exists()


def test_an_internal_error_fails_open(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity
) -> None:
    """A payload the helper cannot parse (here: cut short) lets the edit run, exit 0."""
    reserve(layout, project, peer, "src/app.py")
    broken = claude_edit(project, "src/app.py")[:-20]
    proc = run_hook(hook, "pretooluse", broken, client="claude")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert "oxtail hook" in (layout.hooks_dir / "errors.log").read_text()
