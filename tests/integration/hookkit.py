"""Running the real rendered hook the way Claude Code runs it: JSON on stdin, output on
stdout. Shared by the hook test files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxtail_py.hooks_install import install
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
from oxtail_py.settings import Settings

SID = "5f0c1d2e-3a4b-4c5d-8e9f-001122334455"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    return home


@pytest.fixture
def hook(layout: Layout, home: Path) -> Path:
    install(Settings.from_env())
    return layout.root / "hooks" / "oxtail-hook"


def payload(event: str, *, session_id: str = SID, compact: bool = True, **extra: Any) -> str:
    """A hook payload as the clients write it: compact JSON, session_id first."""
    return json.dumps(
        {
            "session_id": session_id,
            "transcript_path": "/tmp/t.jsonl",
            "cwd": "/tmp",
            "hook_event_name": event,
            "permission_mode": "default",
            **extra,
        },
        separators=(",", ":") if compact else None,
    )


def run_hook(
    hook: Path,
    event: str,
    stdin: str,
    *,
    env: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
    script: Path | None = None,
    cwd: Path | None = None,
    timeout: float = 30,
    client: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`env` entries are added to this process's environment; `environ` replaces it.
    `client` is the hook's first argument as installed (`codex`); None: bare EVENT."""
    return subprocess.run(
        [str(script or hook), *([client] if client else []), event],
        input=stdin,
        capture_output=True,
        text=True,
        env={**(os.environ if environ is None else environ), **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def send(layout: Layout, body: str, *, to: str = SID, **kw: Any) -> Message:
    msg = Message.create(body, from_session_id="peer-session-1", **kw)
    Mailbox.open(layout, to).enqueue(msg)
    return msg


def context(proc: subprocess.CompletedProcess[str], event: str = "PreToolUse") -> str:
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # exactly these keys: Codex rejects a whole output for one key it does not know
    assert set(out) == {"hookSpecificOutput"}
    assert set(out["hookSpecificOutput"]) == {"hookEventName", "additionalContext"}
    assert out["hookSpecificOutput"]["hookEventName"] == event
    return str(out["hookSpecificOutput"]["additionalContext"])


def spy_python(tmp_path: Path, hook: Path) -> tuple[Path, Path]:
    """A copy of the hook whose interpreter is a spy recording each start."""
    record = tmp_path / "python-started"
    spy = tmp_path / "spy-python"
    spy.write_text(f'#!/bin/sh\necho started >> {record}\nexec {sys.executable} "$@"\n')
    spy.chmod(0o755)
    text = hook.read_text().replace(f"py={sys.executable}", f"py={spy}")
    assert text != hook.read_text()
    copy = tmp_path / "oxtail-hook"
    copy.write_text(text)
    copy.chmod(0o755)
    return copy, record
