"""Codex's hooks against the real, pinned binary: the trust format our installer writes,
the payload facts the hook relies on, which event delivers mid-turn, and the output
shapes Codex accepts.

The hook here is a probe named `oxtail-hook` (so our installer recognises it as ours):
it logs each payload and prints what the test put in `out.<event>` (every time) or
`once.<event>` (once). Run: scripts/netns-run .venv/bin/pytest tests/e2e/test_codex_hooks_real.py
"""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from oxtail_py import codex_hooks
from oxtail_py.codex_hooks_check import CodexHooksProblem, check_codex_hooks
from oxtail_py.hook_output import CODEX_SPILL_BYTES, Client, HookEvent, hook_output, render

from .harness import (
    CodexAgent,
    ResponsesRequest,
    Scenario,
    Text,
    ToolCall,
    WaitTimeout,
    stub_server,
    wait_until,
)
from .harness.codex_app_server import list_hooks

pytestmark = pytest.mark.e2e

PROBE = r"""#!/bin/sh
# probe hook: $1 = client, $2 = event
dir=$(dirname "$0")
payload=$(cat)
printf '%s\n' "$payload" >> "$dir/log.$2.jsonl"
if [ -f "$dir/once.$2" ]; then cat "$dir/once.$2"; rm -f "$dir/once.$2"; exit 0; fi
case $2:$payload in
stop:*'"stop_hook_active":true'*) exit 0 ;;
esac
[ -f "$dir/out.$2" ] && cat "$dir/out.$2"
exit 0
"""


class Probe:
    def __init__(self, root: Path) -> None:
        self.dir = root / "probe"
        self.dir.mkdir(parents=True)
        self.script = self.dir / "oxtail-hook"
        self.script.write_text(PROBE)
        self.script.chmod(0o700)
        self.command = shlex.quote(str(self.script))

    def payloads(self, event: HookEvent) -> list[dict[str, Any]]:
        log = self.dir / f"log.{event.value}.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def always(self, event: HookEvent, text: str) -> None:
        (self.dir / f"out.{event.value}").write_text(text)

    def once(self, event: HookEvent, text: str) -> None:
        (self.dir / f"once.{event.value}").write_text(text)


def shell(cmd: str) -> ToolCall:
    return ToolCall("exec_command", {"cmd": cmd})


WHOAMI = ToolCall.mcp("oxtail", "whoami", {"note": "probe"})


def steps(*calls: ToolCall, final: str = "done"):  # type: ignore[no-untyped-def]
    """A script: the n-th call after n tool results, then `final`; after a Stop block
    (a <hook_prompt> user message), one more text."""

    def script(request: ResponsesRequest) -> ToolCall | Text:
        if any("<hook_prompt" in t for t in request._messages("user")):
            return Text("after stop")
        done = len(request.tool_results())
        return calls[done] if done < len(calls) else Text(final)

    return script


def codex(scenario: Scenario, script: Any, **kwargs: Any) -> CodexAgent:
    return scenario.codex(script=script, mcp=stub_server(scenario.agentmail_home), **kwargs)


def install(agent: CodexAgent, probe: Probe, *, trust: bool = True) -> None:
    codex_hooks.install(agent.codex_home, probe.command, trust=trust)


# -- trust ---------------------------------------------------------------------------------


def test_codex_computes_the_trust_hashes_and_keys_our_installer_records(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Drift guard, part 1: Codex's own hooks/list says every hook we installed is
    trusted, and its key and current hash are the ones we computed; a user's hook
    installed before ours (other shapes: matcher, statusMessage, async, timeout 0)
    hashes the same on both sides and stays untrusted."""
    agent = codex(scenario, steps())
    user_hooks = {
        "hooks": {
            "PostToolUse": [
                {"matcher": "Bash", "hooks": [
                    {"type": "command", "command": "true é", "timeout": 0, "async": True},
                    {"type": "command", "command": "true 2", "statusMessage": "checking"},
                ]}
            ],
            "Stop": [{"matcher": "*", "hooks": [{"type": "command", "command": "true 3"}]}],
        }
    }
    (agent.codex_home / "hooks.json").write_text(json.dumps(user_hooks))
    probe = Probe(tmp_path)
    _, trusted = codex_hooks.install(agent.codex_home, probe.command)

    listed, warnings = list_hooks(agent)
    assert warnings == []
    source = agent.codex_home / "hooks.json"
    ours = {e.key: e for e in codex_hooks.command_entries(
        source, json.loads(source.read_text())["hooks"])}
    assert {h.key for h in listed} == set(ours)
    for hook in listed:
        assert hook.current_hash == ours[hook.key].current_hash, hook
        expected = "trusted" if ours[hook.key].ours else "untrusted"
        assert hook.trust_status == expected, hook
    assert {e.key for e in trusted} == {k for k, e in ours.items() if e.ours}
    assert len(trusted) == len(codex_hooks.OUR_HOOKS)
    assert check_codex_hooks(agent.codex_home, probe.command).ok


@pytest.mark.parametrize("from_env", [True, False], ids=["CODEX_HOME", "default"])
def test_trust_keys_name_codex_home_as_codex_does(
    scenario: Scenario, tmp_path: Path, from_env: bool
) -> None:
    """A symlinked $CODEX_HOME is resolved in Codex's keys; a symlinked default ~/.codex
    is not. codex_home_as_named gives the spelling that makes our trust count."""
    real = tmp_path / "real-codex-home"
    link = tmp_path / "linked-codex-home"
    link.symlink_to(real)
    agent = codex(scenario, steps(), env={"CODEX_HOME": str(link)} if from_env else None)
    agent.codex_home.rename(real)  # the harness wrote its config under HOME/.codex
    if not from_env:
        agent.codex_home.symlink_to(real)
    named = codex_hooks.codex_home_as_named(link if from_env else agent.codex_home,
                                            from_env=from_env)
    probe = Probe(tmp_path)
    codex_hooks.install(named, probe.command)

    listed, warnings = list_hooks(agent)

    assert warnings == []
    assert len(listed) == len(codex_hooks.OUR_HOOKS)
    assert {h.trust_status for h in listed} == {"trusted"}
    assert all(h.key.startswith(f"{named}/hooks.json:") for h in listed)


def test_trusted_hooks_run_in_exec_and_untrusted_ones_do_not(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Drift guard, part 2: with the trust entries we write, `codex exec` runs every one
    of our hooks; installed with trust=False, none runs and the product says so."""
    untrusted = codex(scenario, steps(shell("echo one")))
    probe_u = Probe(tmp_path / "u")
    install(untrusted, probe_u, trust=False)
    result = untrusted.run_headless("probe untrusted")
    assert result.returncode == 0, result.stderr
    assert all(probe_u.payloads(h.event) == [] for h in codex_hooks.OUR_HOOKS)
    found = check_codex_hooks(untrusted.codex_home, probe_u.command)
    assert found.problem == CodexHooksProblem.UNTRUSTED
    assert "/hooks" in found.fix and "oxtail-py setup" in found.fix

    trusted = codex(scenario, steps(shell("echo one")))
    probe_t = Probe(tmp_path / "t")
    install(trusted, probe_t)
    result = trusted.run_headless("probe trusted")
    assert result.returncode == 0, result.stderr
    for hook in codex_hooks.OUR_HOOKS:
        assert probe_t.payloads(hook.event), f"{hook.event_name} did not run"


# -- payload facts ---------------------------------------------------------------------------


def test_payloads_carry_the_thread_id_event_names_and_the_stop_guard(
    scenario: Scenario, tmp_path: Path
) -> None:
    """What the hook script relies on: session_id = the thread id in every event;
    hook_event_name; tool_name `Bash` / `mcp__<server>__<tool>`; a blocked Stop is
    followed by a Stop with stop_hook_active true (and no third)."""
    agent = codex(scenario, steps(shell("echo one"), WHOAMI))
    probe = Probe(tmp_path)
    install(agent, probe)
    probe.always(HookEvent.STOP, render(hook_output(Client.CODEX, HookEvent.STOP, "STOP-CTX")))

    result = agent.run_headless("probe payloads")

    assert result.returncode == 0, result.stderr
    (thread,) = agent.thread_ids()
    for hook in codex_hooks.OUR_HOOKS:
        for payload in probe.payloads(hook.event):
            assert payload["session_id"] == thread
            assert payload["hook_event_name"] == hook.event_name
    tools = [p["tool_name"] for p in probe.payloads(HookEvent.POST_TOOL_USE)]
    assert tools == ["Bash", "mcp__oxtail__whoami"]
    stops = [p["stop_hook_active"] for p in probe.payloads(HookEvent.STOP)]
    assert stops == [False, True]
    assert len(probe.payloads(HookEvent.SESSION_START)) == 1
    assert agent.model.turns[-1].context_contains("STOP-CTX")


# -- which event delivers mid-turn -----------------------------------------------------------


def _add_pre_tool_use(agent: CodexAgent, probe: Probe) -> None:
    """Beside our PostToolUse, the probe as a PreToolUse handler under another name (so
    it is not ours), trusted by hand the way Codex would."""
    other = probe.dir / "pre-probe"
    other.symlink_to(probe.script)
    path = agent.codex_home / "hooks.json"
    data = json.loads(path.read_text())
    command = f"{shlex.quote(str(other))} codex pretooluse"
    data["hooks"]["PreToolUse"] = [{"hooks": [{"type": "command", "command": command}]}]
    path.write_text(json.dumps(data))
    (entry,) = [e for e in codex_hooks.command_entries(path, data["hooks"])
                if e.command == command]
    with (agent.codex_home / "config.toml").open("a") as config:
        config.write(f'\n[hooks.state.{json.dumps(entry.key)}]\n'
                     f'trusted_hash = "{entry.current_hash}"\n')


def _mail(event: HookEvent) -> str:
    return render(hook_output(Client.CODEX, event, f"MAIL-{event.value}"))


def _position(request: ResponsesRequest, needle: str) -> int:
    (at,) = [i for i, item in enumerate(request.items)
             if item.get("role") == "developer" and needle in json.dumps(item)]
    return at


def _output_position(request: ResponsesRequest) -> int:
    return max(i for i, item in enumerate(request.items)
               if item.get("type") == "function_call_output")


def test_post_tool_use_delivers_mail_that_arrived_during_the_call(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Mail that arrives while a shell command runs reaches the model in the very next
    request by PostToolUse; PreToolUse had run before it arrived and delivers it only
    one tool call later."""
    probe = Probe(tmp_path)
    for event in (HookEvent.PRE_TOOL_USE, HookEvent.POST_TOOL_USE):
        (probe.dir / f"pending.{event.value}").write_text(_mail(event))
    arrive = (f"cd {shlex.quote(str(probe.dir))} && "
              "for f in pending.*; do mv $f once.${f#*.}; done")
    agent = codex(scenario, steps(shell(arrive), shell("echo two")))
    install(agent, probe)
    _add_pre_tool_use(agent, probe)

    result = agent.run_headless("probe mail during a call")

    assert result.returncode == 0, result.stderr
    after_first, after_second = agent.model.turns[1], agent.model.turns[2]
    assert after_first.context_contains("MAIL-posttooluse")
    assert not after_first.context_contains("MAIL-pretooluse")
    assert after_second.context_contains("MAIL-pretooluse")
    assert _position(after_first, "MAIL-posttooluse") < _output_position(after_first)


@pytest.mark.parametrize("call", [shell("echo one"), shell("echo oops >&2; exit 3"), WHOAMI],
                         ids=["shell", "failing-shell", "mcp"])
def test_pre_and_post_tool_use_context_reach_the_next_request(
    scenario: Scenario, tmp_path: Path, call: ToolCall
) -> None:
    """For shell (also a failing one) and MCP calls alike, context from both events is in
    the request right after the call, as developer messages between the call and its
    output (PreToolUse's first): the model sees no difference in where the text lands."""
    probe = Probe(tmp_path)
    agent = codex(scenario, steps(call))
    install(agent, probe)
    _add_pre_tool_use(agent, probe)
    for event in (HookEvent.PRE_TOOL_USE, HookEvent.POST_TOOL_USE):
        probe.once(event, _mail(event))

    result = agent.run_headless("probe placement")

    assert result.returncode == 0, result.stderr
    after = agent.model.turns[1]
    pre, post = _position(after, "MAIL-pretooluse"), _position(after, "MAIL-posttooluse")
    assert after.items[pre - 1].get("type") == "function_call"
    assert pre < post < _output_position(after)


# -- output shapes ---------------------------------------------------------------------------


def test_each_output_shape_reaches_the_model(scenario: Scenario, tmp_path: Path) -> None:
    """hook_output's shape for every event we use is accepted: the text reaches the model."""
    agent = codex(scenario, steps(shell("echo one")))
    probe = Probe(tmp_path)
    install(agent, probe)
    for hook in codex_hooks.OUR_HOOKS:
        probe.once(hook.event, render(hook_output(Client.CODEX, hook.event, f"SHAPE-{hook.event}")))

    result = agent.run_headless("probe shapes")

    assert result.returncode == 0, result.stderr
    first, after_tool, after_stop = agent.model.turns
    assert first.context_contains("SHAPE-sessionstart")
    assert first.context_contains("SHAPE-userpromptsubmit")
    assert after_tool.context_contains("SHAPE-posttooluse")
    assert any("SHAPE-stop" in t for t in after_stop._messages("user"))


@pytest.mark.parametrize("where", ["top", "nested"])
def test_an_unknown_key_makes_codex_drop_the_whole_output(
    scenario: Scenario, tmp_path: Path, where: str
) -> None:
    """Drift guard for the strict schemas: one unknown key, top-level or inside
    hookSpecificOutput, and the context never reaches the model."""
    agent = codex(scenario, steps(shell("echo one")))
    probe = Probe(tmp_path)
    install(agent, probe)
    output: dict[str, Any] = dict(hook_output(Client.CODEX, HookEvent.POST_TOOL_USE, "UNKNOWN-KEY"))
    if where == "top":
        output["oxtail"] = 1
    else:
        output["hookSpecificOutput"] = {**output["hookSpecificOutput"], "oxtail": 1}
    probe.once(HookEvent.POST_TOOL_USE, json.dumps(output))

    result = agent.run_headless("probe unknown key")

    assert result.returncode == 0, result.stderr
    assert probe.payloads(HookEvent.POST_TOOL_USE)  # it ran; its output was refused
    assert not any(t.context_contains("UNKNOWN-KEY") for t in agent.model.turns)


def test_context_over_the_spill_limit_is_cut(scenario: Scenario, tmp_path: Path) -> None:
    """CODEX_SPILL_BYTES of context reach the model whole; one byte more and Codex cuts
    it to a preview with a file path (so the drain must stay under the limit)."""
    agent = codex(scenario, steps(shell("echo one"), shell("echo two")))
    probe = Probe(tmp_path)
    install(agent, probe)
    whole = "W" * (CODEX_SPILL_BYTES - 9) + "END-WHOLE"
    cut = "C" * (CODEX_SPILL_BYTES - 7) + "END-CUT!"
    assert len(whole.encode()) == CODEX_SPILL_BYTES and len(cut.encode()) == CODEX_SPILL_BYTES + 1

    def script(request: ResponsesRequest) -> ToolCall | Text:
        done = len(request.tool_results())
        text = whole if done == 0 else cut
        if done < 2:
            probe.once(HookEvent.POST_TOOL_USE,
                       render(hook_output(Client.CODEX, HookEvent.POST_TOOL_USE, text)))
            return shell(f"echo {done}")
        return Text("done")

    agent.model.script = script
    result = agent.run_headless("probe spill")

    assert result.returncode == 0, result.stderr
    assert agent.model.turns[1].context_contains(whole)
    assert not agent.model.turns[2].context_contains(cut)
    assert agent.model.turns[2].context_contains("Full hook output saved to")


# -- TUI -------------------------------------------------------------------------------------


def test_tui_runs_trusted_hooks_without_a_review_dialog(
    scenario: Scenario, tmp_path: Path
) -> None:
    """The trust entries our installer writes spare the TUI its "Hooks need review"
    dialog, and every one of our hooks runs in a TUI turn with its thread id."""
    agent = codex(scenario, steps(shell("echo one")))
    probe = Probe(tmp_path)
    install(agent, probe)
    probe.once(HookEvent.POST_TOOL_USE,
               render(hook_output(Client.CODEX, HookEvent.POST_TOOL_USE, "TUI-POST")))

    agent.start_tui()
    assert "review" not in agent.screen().lower()
    agent.prompt("probe tui")

    thread = agent.model.turns[-1].session_id
    for hook in codex_hooks.OUR_HOOKS:
        payloads = probe.payloads(hook.event)
        assert payloads, f"{hook.event_name} did not run in the TUI"
        assert {p["session_id"] for p in payloads} == {thread}
    assert any(t.context_contains("TUI-POST") for t in agent.model.turns)


def test_tui_review_records_exactly_the_trust_our_installer_records(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Installed with trust=False, the TUI stops at its review dialog before any hook
    runs; "Trust all" then writes into config.toml the very entries our installer would
    have written, so installing with trust afterwards changes nothing."""
    agent = codex(scenario, steps())
    probe = Probe(tmp_path)
    install(agent, probe, trust=False)
    config = agent.codex_home / "config.toml"
    before = config.read_text()

    pane = agent.start_tui(wait_idle=False)

    def review_dialog() -> str | None:
        screen = agent.screen()
        return screen if "hooks need review" in screen.lower() else None

    screen = wait_until(review_dialog, timeout=30, what="the hooks review dialog",
                        describe=agent.screen)
    assert "Trust all and continue" in screen
    assert all(probe.payloads(h.event) == [] for h in codex_hooks.OUR_HOOKS)
    assert not check_codex_hooks(agent.codex_home, probe.command).ok

    # From "Review hooks" to "Trust all and continue". The dialog can be drawn before it
    # takes keys (a Down sent at once was lost in ~1 of 3 loaded runs), so each Down is
    # confirmed on screen before Enter.
    def trust_all_selected() -> bool:
        return any(line.strip().startswith("\u203a 2. Trust all")
                   for line in agent.screen().splitlines())

    for _ in range(5):
        pane.send_keys("Down")
        with contextlib.suppress(WaitTimeout):
            wait_until(trust_all_selected, timeout=2, what="Trust all selected")
            break
    assert trust_all_selected(), agent.screen()
    pane.send_keys("Enter")
    agent.wait_idle(timeout=30)

    written = codex_hooks.trusted_hashes(tomlkit.parse(config.read_text()))
    hooks = json.loads((agent.codex_home / "hooks.json").read_text())["hooks"]
    ours = codex_hooks.command_entries(agent.codex_home / "hooks.json", hooks)
    assert written == {e.key: e.current_hash for e in ours}
    assert config.read_text() != before
    changes, trusted = codex_hooks.install(agent.codex_home, probe.command)
    assert [c.changed for c in changes] == [False, False]
    assert len(trusted) == len(codex_hooks.OUR_HOOKS)
    assert check_codex_hooks(agent.codex_home, probe.command).ok
