"""Record real transcripts of the pinned clients into tests/fixtures/transcripts/.

    scripts/netns-run /work/venv/bin/python -m tests.e2e.record_transcripts

(from the repo root; the clients run only inside the loopback-only namespace.)

Each scenario drives a real client against a scripted model and copies the transcript it
wrote: Claude Code's `~/.claude/projects/<cwd>/<session>.jsonl` into claude/, Codex's
`~/.codex/sessions/Y/M/D/rollout-<ts>-<thread>.jsonl` into codex/. manifest.json says, per
file, the session id, the project dir, and what each turn holds (prompt, the tools the
model called, its final text), so parser tests can assert against it. Re-running replaces
the files (ids, timestamps and temp paths change; the shape does not).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from .harness import (
    Agent,
    ModelRequest,
    Reply,
    Scenario,
    Script,
    Text,
    ToolCall,
    call_then_text,
    claude_hooks,
    ensure_clients,
    isolation_problem,
    stub_server,
    wait_for_transcript,
)

FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
HOOK_CONTEXT: Final = "E2E-HOOK-CONTEXT: you have 1 unread message"


@dataclass(frozen=True)
class Turn:
    """One scripted turn, as the manifest records it."""

    prompt: str
    tools: tuple[str, ...]
    final: str
    preamble: str | None = None


def tui_turns(shell: str) -> tuple[Turn, Turn]:
    return (
        Turn("turn one: run echo hi", (shell,), "The command printed hi.", "Running echo."),
        Turn("turn two: who am I?", ("mcp__oxtail__whoami",), "The server told me who I am."),
    )


def tui_script(shell: ToolCall, turns: tuple[Turn, Turn]) -> Script[Any]:
    """Turn one: preamble text + the shell call; turn two: the stub's whoami. After a tool
    result, the final text of the turn whose tool ran last."""
    one, two = turns

    def script(request: ModelRequest) -> Reply:
        if request.ends_with_tool_result():
            return Text(two.final if request.tool_calls()[-1].name == "whoami" else one.final)
        if one.prompt in (request.last_user_text() or ""):
            return [Text(one.preamble or ""), shell]
        return ToolCall.mcp("oxtail", "whoami", {"note": "fixture"})

    return script


def save(agent: Agent[Any], name: str, turns: Sequence[Turn]) -> dict[str, Any]:
    """Copy the transcript of the agent's main session to <client>/<name>.jsonl (Codex
    also writes one per title thread) and return its manifest entry."""
    wait_for_transcript(agent)
    session = agent.model.turns[-1].session_id
    (source,) = [p for p in agent.transcripts() if session and session in p.name]
    target = FIXTURES / agent.kind / f"{name}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return {
        "client": agent.kind,
        "file": str(target.relative_to(FIXTURES)),
        "original_name": source.name,
        "session_id": session,
        "cwd": str(agent.project),
        "turns": [asdict(turn) for turn in turns],
    }


def record(scenario: Scenario) -> list[dict[str, Any]]:
    manifest = []
    stub = stub_server(scenario.agentmail_home)

    bash = ToolCall("Bash", {"command": "echo hi", "description": "print hi"})
    turns = tui_turns("Bash")
    claude = scenario.claude(script=tui_script(bash, turns), mcp=stub)
    claude.start_tui()
    for turn in turns:
        claude.prompt(turn.prompt)
    manifest.append(save(claude, "tui_two_turns", turns))

    hook_output = {
        "hookSpecificOutput": {"hookEventName": "PreToolUse", "additionalContext": HOOK_CONTEXT}
    }
    hooked_turn = Turn("run echo hi with a hook", ("Bash",), "Done, and I saw the hook's note.")
    hooked = scenario.claude(
        script=call_then_text(bash, hooked_turn.final),
        mcp=None,
        settings=claude_hooks(PreToolUse="echo " + shlex.quote(json.dumps(hook_output))),
    )
    result = hooked.run_headless(hooked_turn.prompt)
    assert result.returncode == 0, result.stderr
    assert hooked.model.turns[-1].context_contains(HOOK_CONTEXT), "hook context not injected"
    entry = save(hooked, "print_pretooluse_context", [hooked_turn])
    manifest.append({**entry, "hook_additional_context": HOOK_CONTEXT})

    shell = ToolCall("exec_command", {"cmd": "echo hi"})
    turns = tui_turns("exec_command")
    codex = scenario.codex(script=tui_script(shell, turns), mcp=stub)
    codex.start_tui()
    for turn in turns:
        codex.prompt(turn.prompt)
    manifest.append(save(codex, "tui_two_turns", turns))
    return manifest


def main() -> int:
    problem = isolation_problem()
    if problem is not None:
        print(f"refusing to run the clients: {problem}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="oxe2e-record-"))
    scenario = Scenario(clients=ensure_clients(), root=root)
    try:
        manifest = record(scenario)
    finally:
        scenario.close()
        shutil.rmtree(root, ignore_errors=True)
    (FIXTURES / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for entry in manifest:
        print(f"{entry['client']:6} {entry['file']}  session {entry['session_id']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
