"""Real-client scenarios of oxtail-py: Claude Code and Codex agents messaging each other.

Every agent runs our stdio MCP server (`python -m oxtail_py serve`). Claude agents that
need mid-turn or end-of-turn delivery also get our hooks, installed the way a user installs
them (`python -m oxtail_py install-hook`, run with the agent's HOME). "Mid-turn" is made
deterministic with a Gate: the agent's tool is a shell command that blocks until the test
opens it, so a message sent while the gate is closed arrives while the agent is busy.

Agents run headless (`claude -p`) unless a scenario needs a live peer between turns or a
tmux pane; TUIs run in the scenario's private tmux server. Every agent's MCP server is
pointed at that tmux server (OXTAIL_TMUX_SOCKET), so no scenario ever looks at a tmux
server of the machine's user.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from oxtail_py.agent import Agent as OxtailAgent
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.registry import Registry, SessionEntry

from .harness import (
    Agent,
    AnthropicRequest,
    Headless,
    McpServer,
    ModelRequest,
    Reply,
    ResponsesRequest,
    Scenario,
    Text,
    ToolCall,
    oxtail_server,
    wait_until,
)
from .record_transcripts import FIXTURES, Turn, save

pytestmark = pytest.mark.e2e

INSTALL_HOOK = shlex.join([sys.executable, "-m", "oxtail_py", "install-hook"])
LIST = "mcp__oxtail__list_project_sessions"
SEND = "mcp__oxtail__send_message"
READ = "mcp__oxtail__read_my_messages"
WHOAMI = "mcp__oxtail__get_my_session"
SET_STATE = "mcp__oxtail__set_my_state"
HOOK_CONTEXT_PREFIX = "PreToolUse:Bash hook additional context: "
STOP_FEEDBACK_PREFIX = "Stop hook feedback:\n"


# -- helpers ------------------------------------------------------------------------------


def mcp(tool: str, arguments: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall.mcp("oxtail", tool, arguments)


def tool_json(request: ModelRequest, tool: str) -> dict[str, Any]:
    """The structured result of our `tool` as the client handed it to the model: the JSON
    text of structuredContent (Codex 0.169 puts "Wall time: <s> seconds\nOutput:\n"
    before it)."""
    found = request.result_of(tool)
    assert found is not None, f"no result of {tool} in request #{request.index}"
    assert not found.is_error, found.output
    text = found.output
    if text.startswith("Wall time: "):
        text = text.split("Output:\n", 1)[1]
    try:
        data: dict[str, Any] = json.loads(text)
    except ValueError as error:
        raise AssertionError(f"{tool} result is not JSON: {text!r}") from error
    return data


def header_fields(text: str) -> dict[str, str]:
    """`key=value` fields of the hook's `--- message N of M · ...` header lines."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("--- message "):
            fields.update(re.findall(r"\b([a-z_]+)=(\S+)", line))
    return fields


def session_of(request: ModelRequest) -> str:
    session = request.session_id
    assert session, f"request #{request.index} carries no session id header"
    return session


def mcp_for(scenario: Scenario) -> McpServer:
    """Our server, looking at the scenario's private tmux server (Codex filters the
    server's environment, so this must be in the server entry, not the client's env)."""
    base = oxtail_server(scenario.agentmail_home)
    return McpServer(
        command=base.command,
        args=base.args,
        env={**base.env, "OXTAIL_TMUX_SOCKET": str(scenario.tmux.socket)},
    )


class Gate:
    """A shell command a scripted model runs as a tool: it marks that it started, then
    blocks until the test opens the gate (bounded at ~60 s, under Claude's 2-minute Bash
    timeout, so a failing test never leaves an agent hanging)."""

    def __init__(self, root: Path, name: str) -> None:
        self.started = root / f"{name}.started"
        self.opened = root / f"{name}.open"
        self.command = (
            f"touch {shlex.quote(str(self.started))}; "
            f"for i in $(seq 1200); do [ -e {shlex.quote(str(self.opened))} ] && break; "
            f"sleep 0.05; done; echo {name}-passed"
        )
        self.passed = f"{name}-passed"

    def bash(self) -> ToolCall:
        return ToolCall("Bash", {"command": self.command, "description": "wait for the gate"})

    def wait_started(self, *, timeout: float = 30.0) -> None:
        wait_until(self.started.exists, timeout=timeout, what=f"gate {self.started.name}")

    def open(self) -> None:
        self.opened.touch()

    def passed_in(self, request: ModelRequest) -> bool:
        """True when the latest tool result is this gate's."""
        results = request.tool_results()
        return bool(results) and results[-1].output.strip().endswith(self.passed)


def in_background(run: Callable[[], Headless]) -> Future[Headless]:
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(run)
    finally:
        pool.shutdown(wait=False)


@pytest.fixture
def peer(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> Iterator[OxtailAgent]:
    """An oxtail agent driven from the test process (the same core our MCP server runs),
    registered in the scenario's project with a claimed session id: a live sender that
    can also receive the reply."""
    monkeypatch.setenv("OXTAIL_TMUX_SOCKET", str(scenario.tmux.socket))
    agent = OxtailAgent(Layout(scenario.agentmail_home), cwd=str(scenario.project()))
    agent.start()
    agent.claim(str(uuid.uuid4()))
    try:
        yield agent
    finally:
        agent.stop()


def registry_entries(scenario: Scenario) -> list[SessionEntry]:
    return Registry(Layout(scenario.agentmail_home)).read_all()


def maybe_record(agent: Agent[Any], name: str, turns: list[Turn], **extra: Any) -> None:
    """With OXTAIL_E2E_RECORD_FIXTURES=1, keep this agent's transcript as a parser fixture
    (tests/fixtures/transcripts/<client>/<name>.jsonl + its manifest entry), as
    tests/e2e/record_transcripts.py does; the other fixtures are left as they are."""
    if os.environ.get("OXTAIL_E2E_RECORD_FIXTURES") != "1":
        return
    entry = {**save(agent, name, turns), **extra}
    manifest_path = FIXTURES / "manifest.json"
    manifest: list[dict[str, Any]] = json.loads(manifest_path.read_text())
    manifest = [e for e in manifest if e["file"] != entry["file"]] + [entry]
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


# -- a: a message reaches a busy Claude agent through its PreToolUse hook -------------------


def test_a_message_to_a_busy_claude_arrives_as_pretooluse_context(scenario: Scenario) -> None:
    """Claude A (a real agent) finds Claude B with list_project_sessions and sends to it by
    session id while B is inside a tool call. B's PreToolUse hook on its next tool call
    hands the message over, and B's model sees it as that hook's context, with the ids."""
    note = "PEER-NOTE-7f3a: the parser refactor is on branch wip/parser, please rebase"
    gate = Gate(scenario.root, "b-busy")
    next_step = ToolCall("Bash", {"command": "echo next-step", "description": "next step"})

    def b_script(request: AnthropicRequest) -> Reply:
        if not request.ends_with_tool_result():
            return gate.bash()
        if gate.passed_in(request):
            return next_step
        return Text("B done")

    def a_script(request: AnthropicRequest) -> Reply:
        if not request.ends_with_tool_result():
            return mcp("list_project_sessions")
        if request.result_of(SEND) is not None:
            return Text("A sent it")
        rows = tool_json(request, LIST)["sessions"]
        (other,) = [r for r in rows if r["kind"] == "agent" and not r["is_me"]]
        return mcp("send_message", {"target": other["client_session_id"], "body": note})

    b = scenario.claude(script=b_script, mcp=mcp_for(scenario), setup_cmds=[INSTALL_HOOK])
    a = scenario.claude(script=a_script, mcp=mcp_for(scenario))

    b_run = in_background(lambda: b.run_headless("work on the parser"))
    gate.wait_started()  # B is mid-turn, inside its first tool call
    b_session = session_of(b.model.turns[0])

    a_result = a.run_headless("tell the other agent about the branch")
    assert a_result.returncode == 0, a_result.stderr
    a_session = session_of(a.model.turns[0])
    receipt = tool_json(a.model.turns[-1], SEND)
    assert receipt["target_session_id"] == b_session
    message_id = receipt["message_id"]
    box = Mailbox.open(Layout(scenario.agentmail_home), b_session)
    assert box.pending_count() == 1  # keyed by B's session id, waiting

    gate.open()
    b_result = b_run.result(timeout=60)
    assert b_result.returncode == 0, b_result.stderr

    # B's requests: the prompt, after the gate, after the next step (with the hook's note).
    _, after_gate, after_next = b.model.turns
    assert not any(note in t for t in after_gate.context_texts())
    assert after_next.ends_with_tool_result()
    (context,) = [t for t in after_next.system_texts() if t.startswith(HOOK_CONTEXT_PREFIX)]
    assert note in context
    assert header_fields(context) == {"message_id": message_id, "from_session_id": a_session}
    # The hook context sits right after the tool result of the call it ran before.
    last_two = after_next.messages[-2:]
    assert [m["role"] for m in last_two] == ["user", "system"]
    assert last_two[0]["content"][0]["type"] == "tool_result"
    assert box.pending_count() == 0  # taken and committed, not left for another path
    maybe_record(
        b,
        "scenario_oxtail_pretooluse_mail",
        [Turn("work on the parser", ("Bash", "Bash"), "B done")],
        oxtail_message={"message_id": message_id, "from_session_id": a_session, "body": note},
    )


# -- d: a Codex agent's identity comes from _meta.threadId; its inbox via read_my_messages ---


def test_d_codex_identity_from_thread_id_and_mail_via_read_my_messages(
    scenario: Scenario,
) -> None:
    """A Codex TUI has no session id until its first tool call carries _meta.threadId.
    Then a Claude agent sees it in list_project_sessions as client_type codex with that
    thread id and sends to it; Codex's read_my_messages returns the message to the model
    as the call's function_call_output."""
    note = "CODEX-NOTE-91c2: tests in tests/unit pass again, go ahead"

    def codex_script(request: ResponsesRequest) -> Reply:
        prompt = request.last_user_text() or ""
        if request.ends_with_tool_result():
            return Text("noted")
        if "who am I" in prompt:
            return mcp("get_my_session")
        return mcp("read_my_messages")

    def claude_script(request: AnthropicRequest) -> Reply:
        if not request.ends_with_tool_result():
            return mcp("list_project_sessions")
        if request.result_of(SEND) is not None:
            return Text("sent")
        rows = tool_json(request, LIST)["sessions"]
        (codex_row,) = [r for r in rows if r["client_type"] == "codex"]
        return mcp("send_message", {"target": codex_row["client_session_id"], "body": note})

    codex = scenario.codex(script=codex_script, mcp=mcp_for(scenario))
    claude = scenario.claude(script=claude_script, mcp=mcp_for(scenario))
    codex.start_tui()

    # Registered (~1 s after the TUI looks idle: the server is still importing), but with
    # nothing to tell who it is yet: Codex filters the server's env, no threadId seen yet.
    (before,) = wait_until(
        lambda: registry_entries(scenario), timeout=20, what="the Codex server's registry entry"
    )
    assert before.client.type == "codex"
    assert before.client.session_id is None

    codex.prompt("who am I?")
    thread_id = session_of(codex.model.turns[0])
    assert thread_id in codex.thread_ids()  # the rollout file's name
    me = tool_json(codex.model.turns[-1], WHOAMI)
    assert (me["session_id"], me["source"], me["client_type"]) == (thread_id, "meta", "codex")
    assert codex.pane is not None and me["tmux_session"] == codex.pane.session

    result = claude.run_headless("tell codex that the tests pass")
    assert result.returncode == 0, result.stderr
    claude_session = session_of(claude.model.turns[0])
    listed = tool_json(claude.model.turns[-1], LIST)["sessions"]
    (codex_row,) = [r for r in listed if r["client_type"] == "codex"]
    assert codex_row["client_session_id"] == thread_id
    assert codex_row["kind"] == "agent"
    assert codex_row["tmux_pane"] == codex.pane.pane_id
    receipt = tool_json(claude.model.turns[-1], SEND)
    assert receipt["target_session_id"] == thread_id

    codex.prompt("check your messages")
    after = codex.model.turns[-1]
    assert after.ends_with_tool_result()
    assert after.session_id == thread_id
    last_item = after.items[-1]
    assert last_item["type"] == "function_call_output"
    assert note in str(last_item["output"])
    inbox = tool_json(after, READ)
    assert inbox["count"] == 1
    (message,) = inbox["messages"]
    assert message["body"] == note
    assert message["message_id"] == receipt["message_id"]
    assert message["from_session_id"] == claude_session
    assert message["origin"]["client_type"] == "claude"
    maybe_record(
        codex,
        "scenario_oxtail_read_my_messages",
        [
            Turn("who am I?", ("mcp__oxtail__get_my_session",), "noted"),
            Turn("check your messages", ("mcp__oxtail__read_my_messages",), "noted"),
        ],
        oxtail_message={
            "message_id": message["message_id"],
            "from_session_id": claude_session,
            "body": note,
        },
    )


# -- e: mail waiting at the end of a Claude turn: the Stop hook makes it answer ------------


def test_e_stop_hook_makes_claude_answer_waiting_mail_once(
    scenario: Scenario, peer: OxtailAgent
) -> None:
    """A peer asks Claude B something while B is busy; B ends its turn without another
    tool call. The Stop hook blocks once with the mail as the reason, B answers with
    send_message(reply_to=<request_id>), and the peer gets the correlated reply. Mail
    that arrives during that continuation does not block the next Stop
    (stop_hook_active): it waits in the inbox, and the turn ends."""
    question = "PEER-ASK-5d0e: which port does the dev server use?"
    answer = "B-ANSWER-5d0e: 8123"
    later = "PEER-LATER-5d0e: never mind, found it"
    first_gate = Gate(scenario.root, "b-first")
    second_gate = Gate(scenario.root, "b-second")
    stop_log = scenario.root / "stop-payloads.jsonl"

    def feedback(request: AnthropicRequest) -> str | None:
        found = [t for t in request.user_texts() if t.startswith(STOP_FEEDBACK_PREFIX)]
        return found[-1] if found else None

    def b_script(request: AnthropicRequest) -> Reply:
        fed = feedback(request)
        if fed is None:
            return first_gate.bash() if not request.ends_with_tool_result() else Text("B idle")
        if request.result_of(SEND) is None:
            fields = header_fields(fed)
            return mcp(
                "send_message",
                {
                    "target": fields["from_session_id"],
                    "body": answer,
                    "reply_to": fields["request_id"],
                },
            )
        if not second_gate.passed_in(request):
            return second_gate.bash()
        return Text("B answered and is done")

    # A second Stop hook next to ours that only records what Claude Code passes to Stop.
    record_stop = {
        "hooks": [{"type": "command", "command": f"cat >> {shlex.quote(str(stop_log))}; echo"}]
    }
    add_hook = (
        "import json, os, sys; p = os.path.expanduser('~/.claude/settings.json'); "
        "s = json.load(open(p)); s['hooks']['Stop'].append(json.loads(sys.argv[1])); "
        "json.dump(s, open(p, 'w'))"
    )
    log_stop = shlex.join([sys.executable, "-c", add_hook, json.dumps(record_stop)])
    b = scenario.claude(script=b_script, mcp=mcp_for(scenario), setup_cmds=[INSTALL_HOOK, log_stop])
    b_run = in_background(lambda: b.run_headless("start the dev server"))
    first_gate.wait_started()
    b_session = session_of(b.model.turns[0])

    with peer.ask(b_session, question) as pending:
        first_gate.open()
        reply = wait_until(
            lambda: peer.take_reply(pending),
            timeout=30,
            what="B's reply to the peer",
            describe=b.model.describe,
        )
        reply.commit()
    (answered,) = reply.messages
    assert (answered.body, answered.reply_to) == (answer, pending.request_id)
    assert answered.from_session_id == b_session

    second_gate.wait_started()
    peer.send(b_session, later)
    second_gate.open()
    b_result = b_run.result(timeout=60)
    assert b_result.returncode == 0, b_result.stderr

    fed_requests = [r for r in b.model.turns if feedback(r) is not None]
    first_fed = fed_requests[0]
    text = feedback(first_fed)
    assert text is not None and question in text
    fields = header_fields(text)
    assert fields["message_id"] == fields["request_id"] == pending.request_id
    assert fields["from_session_id"] == peer.identity.session_id
    # Exactly one block: every request after it is the same continuation.
    assert all(feedback(r) == text for r in fed_requests)
    assert not any(later in t for r in b.model.turns for t in r.context_texts())
    assert b.model.turns[-1].reply == [Text("B answered and is done")]

    stops = [json.loads(line) for line in stop_log.read_text().splitlines() if line.strip()]
    assert [s["stop_hook_active"] for s in stops] == [False, True]
    box = Mailbox.open(Layout(scenario.agentmail_home), b_session)
    assert box.pending_count() == 1  # the later note waits for B's next turn
    status = scenario.agentmail_home / "status" / b_session
    assert status.read_text() == "idle"


# -- f: list_project_sessions from inside an agent -----------------------------------------


def test_f_listing_shows_both_peers_with_state_cards_and_not_outside_panes(
    scenario: Scenario,
) -> None:
    """A Claude TUI and a Codex TUI each set a state card; a third agent (Claude,
    headless) lists the project: both peers with client type, session id, card and tmux
    pane; a plain shell pane inside the project as a pane row; a shell pane in another
    dir of the same tmux server not at all."""
    claude_card = "claude: migrating the config loader to tomlkit"
    codex_card = "codex: fixing flaky mailbox stress test"

    def peer_script(card: str) -> Callable[[ModelRequest], Reply]:
        def script(request: ModelRequest) -> Reply:
            if request.ends_with_tool_result():
                return Text("card set")
            return mcp("set_my_state", {"purpose": card})

        return script

    def observer_script(request: AnthropicRequest) -> Reply:
        if request.ends_with_tool_result():
            return Text("listed")
        return mcp("list_project_sessions")

    project = scenario.project()
    outside = scenario.root / "elsewhere"
    outside.mkdir()
    (project / "src").mkdir()
    claude = scenario.claude(script=peer_script(claude_card), mcp=mcp_for(scenario))
    codex = scenario.codex(script=peer_script(codex_card), mcp=mcp_for(scenario))
    observer = scenario.claude(script=observer_script, mcp=mcp_for(scenario))
    shell_env = {"HOME": str(scenario.root), "PATH": "/usr/bin:/bin", "PS1": "$ "}
    inside_shell = scenario.tmux.new_pane(
        ["/bin/sh"], cwd=project / "src", env=shell_env, name="plain-inside"
    )
    outside_shell = scenario.tmux.new_pane(
        ["/bin/sh"], cwd=outside, env=shell_env, name="plain-outside"
    )
    claude.start_tui(wait_idle=False)
    codex.start_tui(wait_idle=False)
    claude.wait_idle(timeout=45)
    codex.wait_idle(timeout=45)
    claude.prompt("set your state card")
    codex.prompt("set your state card")
    claude_session = session_of(claude.model.turns[0])
    codex_thread = session_of(codex.model.turns[0])
    assert tool_json(claude.model.turns[-1], SET_STATE)["purpose"] == claude_card
    assert tool_json(codex.model.turns[-1], SET_STATE)["purpose"] == codex_card

    result = observer.run_headless("who is working here?")
    assert result.returncode == 0, result.stderr
    listing = tool_json(observer.model.turns[-1], LIST)
    assert listing["project_root"] == str(project.resolve())
    rows = {r["name"]: r for r in listing["sessions"]}
    assert claude.pane is not None and codex.pane is not None
    assert set(rows) == {
        claude.pane.session,
        codex.pane.session,
        session_of(observer.model.turns[0]),
        inside_shell.session,
    }, rows
    assert outside_shell.session not in rows

    claude_row, codex_row = rows[claude.pane.session], rows[codex.pane.session]
    assert (claude_row["kind"], claude_row["client_type"]) == ("agent", "claude")
    assert claude_row["client_session_id"] == claude_session
    assert claude_row["purpose"] == claude_card
    assert claude_row["tmux_pane"] == claude.pane.pane_id
    assert (codex_row["kind"], codex_row["client_type"]) == ("agent", "codex")
    assert codex_row["client_session_id"] == codex_thread
    assert codex_row["purpose"] == codex_card
    assert codex_row["tmux_pane"] == codex.pane.pane_id
    assert not claude_row["is_me"] and not codex_row["is_me"]
    me = rows[session_of(observer.model.turns[0])]
    assert me["is_me"] and me["tmux_pane"] is None and me["client_type"] == "claude"
    shell_row = rows[inside_shell.session]
    assert (shell_row["kind"], shell_row["tmux_pane"]) == ("pane", inside_shell.pane_id)
    assert shell_row["client_type"] is None
