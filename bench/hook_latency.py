"""Hook wall time per tool call, the way the clients pay it: spawn the installed hook,
JSON on stdin, wait for exit. p50/p99 for an empty inbox (100 registered sessions
around), one waiting message, and ten waiting messages: Claude Code's PreToolUse
(`oxtail-hook claude pretooluse`) and Codex's PostToolUse (`oxtail-hook codex
posttooluse`), against the floors of spawning /bin/true and a no-op `sh` hook.

    python bench/hook_latency.py [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from oxtail_py.hooks_install import install
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
from oxtail_py.registry import ClientInfo, Registry, SessionEntry
from oxtail_py.settings import Settings

SID = "5f0c1d2e-3a4b-4c5d-8e9f-001122334455"


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms   (n={len(ordered)})"


def _time_hook(argv: list[str], payload: bytes, env: dict[str, str], before: object) -> float:
    assert callable(before)
    before()
    start = time.perf_counter()
    done = subprocess.run(argv, input=payload, env=env, capture_output=True, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    assert done.returncode == 0, done.stderr
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp) / "am", Path(tmp) / "home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "AGENTMAIL_HOME": str(root)}
        os.environ.update(HOME=str(home), AGENTMAIL_HOME=str(root))
        layout = Layout(root)
        install(Settings.from_env())
        hook = root / "hooks" / "oxtail-hook"
        sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(100)]
        try:
            from oxtail_py.procs import identity_of

            registry = Registry(layout)
            for n, proc in enumerate(sleepers):
                ident = identity_of(proc.pid)
                assert ident is not None
                registry.write(
                    SessionEntry(
                        ident.pid, ident.start, client=ClientInfo("claude", f"peer-{n:03d}")
                    )
                )
            codex_payload = json.dumps(
                {  # the fields Codex 0.169.0 sends, session_id first
                    "session_id": SID,
                    "turn_id": "turn-1",
                    "transcript_path": "/x.jsonl",
                    "cwd": tmp,
                    "hook_event_name": "PostToolUse",
                    "model": "gpt-5",
                    "permission_mode": "default",
                    "tool_name": "Bash",
                    "tool_input": {"command": "ls -la " + "x" * 300},
                    "tool_use_id": "call_1",
                    "tool_response": "total 0\n" + "z" * 300,
                },
                separators=(",", ":"),
            ).encode()
            payload = json.dumps(
                {
                    "session_id": SID,
                    "transcript_path": "/x.jsonl",
                    "cwd": tmp,
                    "hook_event_name": "PreToolUse",
                    "tool_name": "Bash",
                    "tool_input": {"command": "ls -la " + "x" * 300},
                    "tool_use_id": "toolu_1",
                },
                separators=(",", ":"),  # as the clients send it
            ).encode()
            box = Mailbox.open(layout, SID)

            def fill(count: int) -> object:
                def go() -> None:
                    for i in range(count):
                        box.enqueue(
                            Message.create(f"note {i}: " + "y" * 300, from_session_id="peer-001")
                        )

                return go

            for name, argv, body in (
                ("Claude PreToolUse ", [str(hook), "claude", "pretooluse"], payload),
                ("Codex PostToolUse ", [str(hook), "codex", "posttooluse"], codex_payload),
            ):
                for label, count in (
                    ("empty inbox (100 sessions registered)", 0),
                    ("one message", 1),
                    ("ten messages", 10),
                ):
                    samples = [_time_hook(argv, body, env, fill(count)) for _ in range(runs)]
                    print(f"{name} {label:38} {_percentiles(samples)}")
            noop = Path(tmp) / "noop-hook"
            noop.write_text("#!/bin/sh\ncat >/dev/null\nexit 0\n")
            noop.chmod(0o700)
            for label, argv in (("/bin/true", ["/bin/true"]), ("a no-op sh hook", [str(noop)])):
                floor = [_time_hook(argv, codex_payload, env, fill(0)) for _ in range(runs)]
                print(f"floor: {label:50} {_percentiles(floor)}")
        finally:
            for proc in sleepers:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
