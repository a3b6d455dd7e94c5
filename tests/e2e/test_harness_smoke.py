"""The harness itself works: each real client reaches its scripted model, tool calls
round-trip, TUIs come up idle in tmux and take typed prompts. Independent of our server
(MCP plumbing is proven with tests/e2e/stub_mcp_server.py)."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from .harness import (
    Scenario,
    ToolCall,
    always,
    call_then_text,
    claude_hooks,
    stub_server,
    wait_for_transcript,
)

pytestmark = pytest.mark.e2e

BASH_ECHO = ToolCall("Bash", {"command": "echo hi", "description": "print hi"})
CODEX_ECHO = ToolCall("exec_command", {"cmd": "echo hi"})
WHOAMI = ToolCall.mcp("oxtail", "whoami", {"note": "smoke"})


def _stub_report(output: str) -> dict[str, object]:
    """The JSON the stub MCP server put after its `STUB-WHOAMI ` prefix."""
    report: dict[str, object] = json.loads(output.split("STUB-WHOAMI ", 1)[1])
    return report


def test_claude_print_mode_answers_with_the_scripted_text(scenario: Scenario) -> None:
    agent = scenario.claude(script=always("SCRIPTED-CLAUDE-TEXT"), mcp=None)

    result = agent.run_headless("hello from the smoke test")

    assert result.returncode == 0, result.stderr
    assert "SCRIPTED-CLAUDE-TEXT" in result.stdout
    (turn,) = agent.model.turns
    assert turn.last_user_text() == "hello from the smoke test"
    assert turn.path.startswith("/v1/messages")
    assert turn.session_id  # X-Claude-Code-Session-Id


def test_codex_exec_answers_with_the_scripted_text(scenario: Scenario) -> None:
    agent = scenario.codex(script=always("SCRIPTED-CODEX-TEXT"), mcp=None)

    result = agent.run_headless("hello from the smoke test")

    assert result.returncode == 0, result.stderr
    assert "SCRIPTED-CODEX-TEXT" in result.stdout
    (turn,) = agent.model.turns
    assert turn.last_user_text() == "hello from the smoke test"
    assert turn.session_id == agent.thread_ids()[-1]


def test_claude_mcp_tool_call_reaches_the_server_and_returns(scenario: Scenario) -> None:
    agent = scenario.claude(script=call_then_text(WHOAMI), mcp=stub_server(scenario.agentmail_home))

    result = agent.run_headless("who am I?")

    assert result.returncode == 0, result.stderr
    assert "mcp__oxtail__whoami" in agent.model.turns[0].tool_names()
    answered = agent.model.turns[-1]
    found = answered.result_of("mcp__oxtail__whoami")
    assert found is not None, answered.tool_results()
    report = _stub_report(found.output)
    assert report["arguments"] == {"note": "smoke"}
    env = report["env"]
    assert isinstance(env, dict)
    assert env["AGENTMAIL_HOME"] == str(scenario.agentmail_home)
    assert env["CLAUDE_CODE_SESSION_ID"] == answered.session_id


def test_codex_mcp_tool_call_reaches_the_server_and_returns(scenario: Scenario) -> None:
    agent = scenario.codex(script=call_then_text(WHOAMI), mcp=stub_server(scenario.agentmail_home))

    result = agent.run_headless("who am I?")

    assert result.returncode == 0, result.stderr
    assert "mcp__oxtail__whoami" in agent.model.turns[0].tool_names()
    answered = agent.model.turns[-1]
    found = answered.result_of("mcp__oxtail__whoami")
    assert found is not None, answered.tool_results()
    report = _stub_report(found.output)
    assert report["arguments"] == {"note": "smoke"}
    assert report["env"] == {
        "AGENTMAIL_HOME": str(scenario.agentmail_home),
        "HOME": str(agent.home),
    }
    meta = report["meta"]
    assert isinstance(meta, dict)
    assert meta["threadId"] == agent.thread_ids()[-1]


def test_claude_setup_cmd_installs_a_hook_whose_context_reaches_the_model(
    scenario: Scenario,
) -> None:
    # What `oxtail-py install-hook` will do: edit the settings.json of the agent's HOME.
    hook = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "additionalContext": "CTX-1"}}
    settings = claude_hooks(PreToolUse="echo " + shlex.quote(json.dumps(hook)))
    merge = (
        "import json, os, sys; p = os.path.expanduser('~/.claude/settings.json'); "
        "s = json.load(open(p)); s.update(json.loads(sys.argv[1])); json.dump(s, open(p, 'w'))"
    )
    install = " ".join(shlex.quote(a) for a in (sys.executable, "-c", merge, json.dumps(settings)))
    agent = scenario.claude(script=call_then_text(BASH_ECHO), mcp=None, setup_cmds=[install])

    result = agent.run_headless("run echo with a hook")

    assert result.returncode == 0, result.stderr
    after = agent.model.turns[-1]
    assert after.ends_with_tool_result()  # the hook's system message follows the result
    assert "PreToolUse:Bash hook additional context: CTX-1" in after.system_texts()


def test_claude_tui_takes_a_typed_prompt_and_round_trips_bash(scenario: Scenario) -> None:
    agent = scenario.claude(script=call_then_text(BASH_ECHO, "BASH SAID {output}"), mcp=None)
    agent.start_tui()

    first = agent.prompt("please run echo")

    assert first.tool_calls() == []  # a fresh user turn
    after = agent.model.turns[-1]
    assert after.ends_with_tool_result()
    assert after.tool_results()[-1].output == "hi"
    assert "BASH SAID hi" in agent.screen()
    assert wait_for_transcript(agent).stem == after.session_id


def test_codex_tui_takes_a_pasted_prompt_and_round_trips_the_shell(scenario: Scenario) -> None:
    agent = scenario.codex(script=call_then_text(CODEX_ECHO, "SHELL SAID {output}"), mcp=None)
    agent.start_tui()

    agent.prompt("please run echo")

    after = agent.model.turns[-1]
    assert after.ends_with_tool_result()
    assert after.tool_results()[-1].output.splitlines()[-1] == "hi"
    assert "SHELL SAID" in agent.screen()
    # The TUI's side request (thread title) never reached the script.
    assert [r.kind for r in agent.model.requests if not r.is_turn] in ([], ["title"])
