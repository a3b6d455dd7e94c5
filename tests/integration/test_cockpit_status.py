"""`oxtail-py status`, `--json` and `--check` over a world of real servers in real tmux
panes: several agents, a plain pane, an agent of another project, unread mail at an
idle agent, delegated work and an ask that wait on each other (a cycle)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from oxtail_py.hooks_install import install
from oxtail_py.settings import Settings
from tests.integration.harness import PrivateTmux, ServerProc, await_until, launch_in_pane, ok
from tests.integration.hookkit import payload, run_hook

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-000000000001"
SID_B = "bbbbbbbb-0000-4000-8000-000000000002"
SID_C = "cccccccc-0000-4000-8000-000000000003"


def cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxtail_py", *args], capture_output=True, text=True,
        env={**os.environ, **env}, cwd=cwd, timeout=60, check=False,
    )


def status_json(env: dict[str, str], project: Path, *extra: str) -> dict[str, Any]:
    done = cli(env, "status", "--json", "--project", str(project), *extra)
    assert done.returncode in (0, 1), done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def world(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> dict[str, ServerProc]:
    other = tmp_path / "other-proj"
    (other / ".git").mkdir(parents=True)

    def agent(name: str, cwd: Path, sid: str, **kw: str) -> ServerProc:
        env = {**server_env, "CLAUDE_CODE_SESSION_ID": sid}
        return launch_in_pane(tmux_server, session=name, cwd=cwd, env=env, **kw)

    agents = {
        "alpha": agent("alpha", project, SID_A, as_client="claude"),
        "beta": agent("beta", project / "src", SID_B),
        "gamma": agent("gamma", other, SID_C),
    }
    tmux_server.new_session("notes", project)
    return agents


async def test_status_shows_agents_unread_asks_in_flight_and_the_cycle(
    world: dict[str, ServerProc], server_env: dict[str, str], project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Real hooks in this HOME: beta's Stop hook stamps it idle, as Claude Code's would.
    monkeypatch.setenv("HOME", server_env["HOME"])
    monkeypatch.setenv("AGENTMAIL_HOME", server_env["AGENTMAIL_HOME"])
    install(Settings.from_env())
    hook = Path(server_env["AGENTMAIL_HOME"]) / "hooks" / "oxtail-hook"
    stopped = run_hook(hook, "stop", payload("Stop", session_id=SID_B), env=server_env)
    assert stopped.returncode == 0, stopped.stderr

    async with (
        world["alpha"].client() as a,
        world["beta"].client() as b,
        world["gamma"].client() as c,
    ):
        ok(await c.call_tool("get_my_session", {}))  # a client that never calls raced close
        ok(await b.call_tool("set_my_state", {"purpose": "fixing the parser"}))
        sent = ok(await a.call_tool("send_message", {"target": "beta", "body": "hello beta"}))
        # alpha hands beta work (beta owes it: alpha waits on beta), and beta asks alpha
        # and blocks: a wait-for cycle through open work that no ask check can refuse.
        work = ok(await a.call_tool("send_message", {
            "target": "beta", "body": "port the parser", "action_required": True}))
        answers: dict[str, Any] = {}

        async def ask() -> None:
            answers["b"] = ok(await b.call_tool(
                "ask_peer", {"target": "alpha", "body": "which branch?", "timeout_ms": 8000,
                             "wake": "off"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)

            def both_waiting() -> dict[str, Any] | None:
                data = status_json(server_env, project)
                return data if len(data["wait_for"]["edges"]) == 2 else None

            data = await await_until(lambda: both_waiting(), timeout=20, what="two edges")
            text = cli(server_env, "status", "--project", str(project))
            check = cli(server_env, "status", "--check", "--stale-minutes", "0",
                        "--project", str(project))
            tg.cancel_scope.cancel()

    assert data["schema"] == "oxtail-status/1" and data["project_root"] == str(project)
    agents = {x["name"]: x for x in data["agents"]}
    assert set(agents) == {"alpha", "beta"}  # gamma runs in another project
    assert [p["name"] for p in data["panes"]] == ["notes"]
    beta, alpha = agents["beta"], agents["alpha"]
    assert beta["session_id"] == SID_B and beta["short_id"] == SID_B[:8]
    assert beta["pane"] == world["beta"].pane and beta["pane_proven"] is True
    assert beta["identity_source"] == "env" and beta["identity_proven"] is True
    assert alpha["client"] == "claude" and beta["state"] == "idle"
    assert beta["state_since"] is not None
    # Unread: the note and the delegated work wait in beta's box (nobody read them).
    assert beta["unread"] == 2 and beta["oldest_unread_at"] is not None
    assert 0 <= beta["oldest_unread_age_s"] < 60
    assert beta["state_card"] == "fixing the parser"
    assert (beta["asks_out"], alpha["asks_in"], alpha["asks_out"]) == (1, 1, 0)
    assert (beta["open_work"], alpha["open_work"]) == (1, 0)
    edges = {(e["waiter_name"], e["target_name"], e["kind"], e["ref"])
             for e in data["wait_for"]["edges"]}
    request = next(e["ref"] for e in data["wait_for"]["edges"] if e["kind"] == "ask")
    assert edges == {("alpha", "beta", "work", work["message_id"]),
                     ("beta", "alpha", "ask", request)}
    assert not any(e["overdue"] for e in data["wait_for"]["edges"])
    assert [sorted(c["names"]) for c in data["wait_for"]["cycles"]] == [["alpha", "beta"]]
    assert any(p["code"] == "wait-cycle" for p in data["problems"])

    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[1].split()[:4] == ["NAME", "CLIENT", "SESSION", "PANE"]
    assert any(ln.startswith("alpha ") and "claude" in ln and SID_A[:8] in ln for ln in lines)
    assert re.search(r"^beta .* 2 \(oldest \d+s\) ", text.stdout, re.M)
    assert "CYCLE: alpha -> beta -> alpha" in text.stdout or (
        "CYCLE: beta -> alpha -> beta" in text.stdout)
    assert "\x1b" not in text.stdout
    assert any(ln.split()[1:2] == ["notes"] for ln in lines)  # the plain pane's table
    print(text.stdout)

    assert check.returncode == 1, check.stdout
    codes = {ln.split()[1].rstrip(":") for ln in check.stdout.splitlines() if ln.startswith("[")}
    assert {"wait-cycle", "stale-unread"} <= codes
    assert "claude-hooks" not in codes  # installed above: alpha's Claude hooks are fine
    assert sent["message_id"]


async def test_status_check_passes_on_a_quiet_project_and_flags_missing_hooks(
    world: dict[str, ServerProc], server_env: dict[str, str], project: Path
) -> None:
    async with world["beta"].client() as b:
        ok(await b.call_tool("get_my_session", {}))
        await await_until(lambda: status_json(server_env, project)["agents"], what="beta")
        quiet = cli(server_env, "status", "--check", "--project", str(project))
        assert quiet.returncode == 0, quiet.stdout
        assert quiet.stdout.strip().endswith("ok: nothing is wrong")
        async with world["alpha"].client() as a:  # a Claude agent, and no hooks in HOME
            ok(await a.call_tool("get_my_session", {}))
            await await_until(lambda: len(status_json(server_env, project)["agents"]) == 2,
                              what="alpha")
            check = cli(server_env, "status", "--check", "--project", str(project))
    assert check.returncode == 1
    assert "claude-hooks" in check.stdout and "oxtail-py install-hook" in check.stdout


def test_status_errors_name_the_problem(tmp_path: Path, project: Path) -> None:
    env = {"AGENTMAIL_HOME": str(tmp_path / "none"), "HOME": str(tmp_path)}
    empty = cli(env, "status", "--project", str(project))
    assert empty.returncode == 2 and "empty-state-root" in empty.stderr
    assert "AGENTMAIL_HOME" in empty.stderr
    (tmp_path / "none").mkdir(mode=0o700)
    unknown = cli(env, "status", "--project", str(tmp_path / "no-such-dir"))
    assert unknown.returncode == 2 and "unknown-project" in unknown.stderr


def test_a_registry_file_named_with_non_ascii_digits_is_a_problem_not_a_crash(
    tmp_path: Path, project: Path
) -> None:
    """str.isdigit() takes "²", int() does not: `sessions/².json` is a rejected entry."""
    root = tmp_path / "am"
    (root / "sessions").mkdir(parents=True, mode=0o700)
    (root / "sessions" / "\u00b2.json").write_text('{"server_pid": 1}')
    env = {"AGENTMAIL_HOME": str(root), "HOME": str(tmp_path), "OXTAIL_TMUX_SOCKET":
           str(tmp_path / "no-tmux")}
    done = cli(env, "status", "--json", "--project", str(project))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["agents"] == []


def test_corrupt_files_are_problems_not_crashes(tmp_path: Path, project: Path) -> None:
    root = tmp_path / "am"
    for sub in ("sessions", "mailboxes", "events"):
        (root / sub).mkdir(parents=True, mode=0o700)
    (root / "sessions" / "123.json").write_text('{"server_pid": 1e400}')
    os.mkfifo(root / "sessions" / "124.json")  # a FIFO must not hang the listing
    (root / "events" / "traffic.jsonl").write_text('not json\n{"event": 1}\n')
    env = {"AGENTMAIL_HOME": str(root), "HOME": str(tmp_path), "OXTAIL_TMUX_SOCKET":
           str(tmp_path / "no-tmux")}
    done = cli(env, "status", "--json", "--project", str(project))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["agents"] == []
    assert {p["code"] for p in data["problems"]} == {"corrupt-registry-entry"}
    assert len(data["problems"]) == 2
    log = cli(env, "log", "--project", str(project))
    assert log.returncode == 0 and log.stdout == ""


def test_a_fifo_as_the_notes_file_is_a_problem_not_a_hang(tmp_path: Path, project: Path) -> None:
    """The workspace part of the snapshot: a FIFO where the project's notes file belongs
    and a corrupt reservation holder file give a warning and an empty list, never a hang
    or a crash."""
    from oxtail_py.layout import Layout

    root = tmp_path / "am"
    layout = Layout(root)
    real = Path(os.path.realpath(project))
    for sub in ("sessions", "mailboxes"):
        (root / sub).mkdir(parents=True, mode=0o700)
    layout.notes_dir.mkdir(mode=0o700)
    os.mkfifo(layout.notes_file(real))
    holders = layout.reservations(real).directory
    holders.mkdir(parents=True, mode=0o700)
    (holders / f"h.{os.getpid()}-1.00.json").write_text("{not json")
    env = {"AGENTMAIL_HOME": str(root), "HOME": str(tmp_path), "OXTAIL_TMUX_SOCKET":
           str(tmp_path / "no-tmux")}
    done = cli(env, "status", "--json", "--project", str(project))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["notes"] == [] and data["reservations"] == []
    assert "workspace-unreadable" in {p["code"] for p in data["problems"]}

async def test_log_follows_new_traffic_and_all_spans_projects(
    world: dict[str, ServerProc], server_env: dict[str, str], project: Path
) -> None:
    follow = subprocess.Popen(
        [sys.executable, "-m", "oxtail_py", "log", "-f", "--project", str(project)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **server_env},
    )
    try:
        async with (
            world["alpha"].client() as a,
            world["beta"].client() as b,
            world["gamma"].client() as c,
        ):
            ok(await c.call_tool("get_my_session", {}))
            sent = ok(await a.call_tool("send_message", {"target": "beta", "body": "hi"}))
            assert follow.stdout is not None
            line = await anyio.to_thread.run_sync(follow.stdout.readline)
            assert sent["message_id"] in line and "sent" in line and f"-> {SID_B}" in line
            ok(await b.call_tool("read_my_messages", {}))
            line = await anyio.to_thread.run_sync(follow.stdout.readline)
            assert sent["message_id"] in line and "delivered" in line
            assert "via read_my_messages" in line
            every = json.loads(cli(server_env, "status", "--all", "--json").stdout)
            assert every["project_root"] is None
            assert {x["name"] for x in every["agents"]} == {"alpha", "beta", "gamma"}
            table = cli(server_env, "status", "--all").stdout.splitlines()
            assert table[1].split()[:2] == ["NAME", "CWD"]
            assert any(ln.startswith("gamma ") and "other-proj" in ln for ln in table)
    finally:
        follow.send_signal(signal.SIGINT)
        code = follow.wait(timeout=20)
        assert code == 0, follow.stderr.read() if follow.stderr else code


def test_hostile_text_in_a_registry_entry_is_shown_neutralised(
    tmp_path: Path, project: Path
) -> None:
    """A registry file is writable by anything of the user: a state card carrying escape
    sequences and bidi overrides must reach the terminal (and the JSON) as visible text."""
    from oxtail_py.layout import Layout
    from oxtail_py.procs import identity_of
    from oxtail_py.registry import ClientInfo, Registry, SessionEntry, StateCard, TmuxInfo

    root = tmp_path / "am"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        ident = identity_of(sleeper.pid)
        assert ident is not None
        hostile = "\x1b[2J\x1b]0;pwned\x07 ok \u202eevil"
        Registry(Layout(root)).write(SessionEntry(
            ident.pid, ident.start,
            client=ClientInfo(type="claude", session_id=SID_A, cwd=str(project)),
            tmux=TmuxInfo(session="x\x1b[31m"), state=StateCard(purpose=hostile),
        ))
        env = {"AGENTMAIL_HOME": str(root), "HOME": str(tmp_path),
               "OXTAIL_TMUX_SOCKET": str(tmp_path / "no-tmux")}
        text = cli(env, "status", "--project", str(project))
        data = cli(env, "status", "--json", "--project", str(project))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert text.returncode == 0 and data.returncode == 0, text.stderr
    for out in (text.stdout, data.stdout):
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "␛[2J␛]0;pwned␇ ok <U+202E>evil" in text.stdout
    (agent,) = json.loads(data.stdout)["agents"]
    assert agent["state_card"] == "␛[2J␛]0;pwned␇ ok <U+202E>evil"


async def test_status_shows_the_projects_live_reservations_and_notes(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    """Issue 13's shared workspace in the cockpit: what alpha reserved (with its reason and
    whether it is exclusive) and the notes, in text and in --json; once alpha's server is
    gone its reservation is gone too."""
    (project / "src").mkdir(exist_ok=True)
    (project / "src" / "app.py").write_text("x = 1\n")
    alpha = launch_in_pane(tmux_server, session="alpha", cwd=project,
                           env={**server_env, "CLAUDE_CODE_SESSION_ID": SID_A})
    async with alpha.client() as a:
        ok(await a.call_tool("reserve_files", {"paths": ["src/app.py"],
                                               "reason": "refactoring the parser"}))
        ok(await a.call_tool("reserve_files", {"paths": ["docs/*.md"], "exclusive": False}))
        ok(await a.call_tool("set_note", {"key": "build", "value": "make -j2",
                                          "category": "howto"}))

        text = cli(server_env, "status", "--project", str(project)).stdout
        data = status_json(server_env, project)

    assert "reservations:" in text and "notes:" in text
    line = next(ln for ln in text.splitlines() if "src/app.py" in ln)
    assert "alpha" in line and "exclusive" in line and "refactoring the parser" in line
    assert any("docs/*.md" in ln and "shared" in ln for ln in text.splitlines())
    assert "build [howto] = make -j2" in text
    held = {r["pattern"]: r for r in data["reservations"]}
    assert held["src/app.py"]["exclusive"] is True and held["docs/*.md"]["exclusive"] is False
    assert held["src/app.py"]["holder"] == "alpha" and held["src/app.py"]["expires_at"]
    (note,) = data["notes"]
    assert (note["key"], note["category"], note["value"]) == ("build", "howto", "make -j2")

    # Its client closed, so alpha's server exited: its reservations end with it.
    await await_until(lambda: not status_json(server_env, project)["reservations"],
                      what="the dead holder's reservations to end")
