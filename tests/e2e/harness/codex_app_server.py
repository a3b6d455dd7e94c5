"""Ask the real Codex what it thinks of its hooks: `codex app-server` over stdio, `hooks/list`.

The same request the TUI's /hooks view makes. Each hook comes back with its trust key,
the hash Codex computes for it now (`currentHash`) and its `trustStatus` (trusted,
untrusted, modified, managed), which is the ground truth our trust entries must match.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .agents import CodexAgent


@dataclass(frozen=True)
class ListedHook:
    key: str
    event_name: str  # camelCase, as the protocol spells it (preToolUse)
    command: str
    matcher: str | None
    current_hash: str
    trust_status: str
    enabled: bool


def list_hooks(agent: CodexAgent, *, timeout: float = 30.0) -> tuple[list[ListedHook], list[str]]:
    """Codex's hooks/list for the agent's project: the hooks and the warnings."""
    requests = [
        {"id": 0, "method": "initialize",
         "params": {"clientInfo": {"name": "e2e", "version": "0"}}},
        {"method": "initialized"},
        {"id": 1, "method": "hooks/list", "params": {"cwds": [str(agent.project)]}},
    ]
    process = subprocess.Popen(
        [str(agent.clients.codex), "app-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=agent.project,
        env=agent.env,
        text=True,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        for request in requests:
            process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        answer = _read_answer(process, 1, timeout)
    finally:
        process.kill()
        process.communicate(timeout=10)
    if "result" not in answer:
        raise AssertionError(f"hooks/list failed: {answer}")
    hooks: list[ListedHook] = []
    warnings: list[str] = []
    for entry in answer["result"]["data"]:
        warnings += [str(w) for w in entry["warnings"]]
        warnings += [f"{e['path']}: {e['message']}" for e in entry["errors"]]
        hooks += [_listed(h) for h in entry["hooks"]]
    return hooks, warnings


def _listed(hook: Mapping[str, Any]) -> ListedHook:
    return ListedHook(
        key=hook["key"],
        event_name=hook["eventName"],
        command=hook.get("command") or "",
        matcher=hook.get("matcher"),
        current_hash=hook["currentHash"],
        trust_status=hook["trustStatus"],
        enabled=hook["enabled"],
    )


def _read_answer(process: subprocess.Popen[str], request_id: int, timeout: float) -> Any:
    # The answer is one JSON line; notifications may come first. A thread keeps the
    # timeout honest if Codex never answers.
    found: list[Any] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("id") == request_id:
                found.append(message)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        raise AssertionError(f"codex app-server gave no answer to request {request_id}")
    return found[0]


def hooks_file(agent: CodexAgent) -> Path:
    return agent.codex_home / "hooks.json"
