"""Waking a peer, against real oxtail servers in a private tmux server.

The peers here are a small stand-in for a TUI client (tests/integration/fake_client.py):
the real `node` running a script installed at a client package's entry point, which the
wake's real-client rule accepts for what it is. It draws a prompt line, reads keys in raw
mode, "submits" a line on Enter into a transcript where the real client keeps one, and runs
a real `python -m oxtail_py serve` as its child, so the live process tree proves its pane
exactly as with the real clients (tests/e2e/test_wake_real.py drives those).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from oxtail_py import tmux, wake
from oxtail_py.discovery import list_project
from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.procs import identity_of, self_identity
from oxtail_py.registry import ClientInfo, Registry, SessionEntry
from tests.integration import fake_client
from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    await_until,
    launch_in_pane,
    ok,
    wait_until,
)

pytestmark = pytest.mark.anyio

SID_ASKER = "aaaaaaaa-0000-4000-8000-00000000000a"
SID_PEER = "bbbbbbbb-0000-4000-8000-00000000000b"
SID_OTHER = "cccccccc-0000-4000-8000-00000000000c"

_FIFO_DIRS: list[Path] = []


@pytest.fixture(autouse=True)
def _remove_fifo_dirs() -> Iterator[None]:
    yield
    while _FIFO_DIRS:
        shutil.rmtree(_FIFO_DIRS.pop(), ignore_errors=True)


def _fake(
    tmux_server: PrivateTmux,
    env: dict[str, str],
    name: str,
    cwd: Path,
    sid: str,
    *,
    kind: str = "claude",
    mode: str = "submit",
    shell_cwd: Path | None = None,
) -> tuple[ServerProc, Path]:
    """A fake `kind` client (tests/integration/fake_client.py) in its own tmux session;
    (its server, its submitted-lines file). With `shell_cwd`, the pane's own shell sits
    there while the client runs in `cwd` (the pane's current path is the shell's)."""
    fifo = fake_client.fifo_dir(_FIFO_DIRS)
    entry = fake_client.install(fifo, kind)
    full = {
        **env,
        "FAKE_TUI_KIND": kind,
        "FAKE_TUI_MODE": mode,
        "FAKE_SESSION_ID": sid,
        "FAKE_PYTHON": sys.executable,
        "CLAUDE_CODE_SESSION_ID": sid,  # the server's identity (env strategy)
    }
    command = fake_client.command(full, entry, fifo)
    if shell_cwd is not None:
        # A non-interactive shell keeps one process group: tmux reads the pane's path
        # from the shell, which waits in shell_cwd while the client runs in cwd.
        command = f"(cd {shlex.quote(str(cwd))} && exec {command}); sleep 600"
        pane = tmux_server.new_session(name, shell_cwd, f"sh -c {shlex.quote(command)}")
    else:
        pane = tmux_server.new_session(name, cwd, command)
    wait_until(lambda: "Ask me anything" in _screen(tmux_server, pane), what="the fake TUI")
    return ServerProc(name, pane, fifo, full), fifo / "submitted.txt"


def _screen(tmux_server: PrivateTmux, pane: str) -> str:
    return tmux_server.run("capture-pane", "-p", "-t", pane)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def asker_env(server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env, "CLAUDE_CODE_SESSION_ID": SID_ASKER}


@pytest.fixture
def asker(tmux_server: PrivateTmux, asker_env: dict[str, str], project: Path) -> ServerProc:
    return launch_in_pane(tmux_server, session="asker", cwd=project, env=asker_env)


async def test_ask_wakes_the_peer_in_the_pane_its_live_process_tree_proves(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, asker: ServerProc
) -> None:
    peer, submitted = _fake(tmux_server, server_env, "peer", project, SID_PEER)
    bystander, elsewhere = _fake(tmux_server, server_env, "bystander", project, SID_OTHER)
    async with asker.client() as a, peer.client() as p, bystander.client() as _b:
        result: dict[str, Any] = {}

        async def ask() -> None:
            args = {"target": "peer", "body": "which port?", "timeout_ms": 20000}
            result.update(ok(await a.call_tool("ask_peer", args)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            # Play the peer's model: the wake line arrives as a prompt, it reads and replies.
            await await_until(lambda: _lines(submitted), what="the wake line in the peer")
            inbox = ok(await p.call_tool("read_my_messages", {}))
            request = inbox["messages"][0]
            reply = {
                "target": SID_ASKER,
                "body": "8080",
                "reply_to": request["request_id"],
                "wake": "auto",
            }
            # The asker waits in ask_peer for exactly this reply: no wake is needed.
            assert ok(await p.call_tool("send_message", reply))["wake_status"] == "skipped_busy"
        assert result["status"] == "answered" and result["reply"]["body"] == "8080"
        assert result["wake_status"] == "confirmed"
        assert _lines(submitted) == [
            wake.wake_line(SID_ASKER, request["message_id"], request["request_id"])
        ]
        assert f"reply_to={request['request_id']}" in _lines(submitted)[0]
        assert _lines(elsewhere) == []


async def test_a_pane_named_in_the_registry_or_tmux_pane_is_never_typed_into(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    asker: ServerProc,
    tmp_path: Path,
) -> None:
    bystander, typed_into = _fake(tmux_server, server_env, "bystander", project, SID_OTHER)
    # A `claude` with its server OUTSIDE tmux, claiming the bystander's pane two ways: its
    # registry entry (peers write their own) and a TMUX_PANE in its environment.
    fifo_dir = fake_client.fifo_dir(_FIFO_DIRS)
    entry = fake_client.install(fifo_dir, "claude")
    env = {
        **server_env,
        "PATH": os.environ["PATH"],
        "FAKE_SESSION_ID": SID_PEER,
        "FAKE_PYTHON": sys.executable,
        "CLAUDE_CODE_SESSION_ID": SID_PEER,
        "TMUX_PANE": bystander.pane,
    }
    outside = subprocess.Popen(
        [fake_client.NODE, str(entry), str(fifo_dir)],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    spoofer = ServerProc("spoofer", "", fifo_dir, env)
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    try:
        async with asker.client() as a, spoofer.client() as s, bystander.client() as _b:
            assert ok(await s.call_tool("get_my_session", {}))["tmux_pane"] is None
            entry = next(e for e in Registry(layout).read_all() if e.client.session_id == SID_PEER)
            path = layout.session_file(entry.server_pid)
            data = json.loads(path.read_text())
            data["tmux"] = {"pane": bystander.pane, "session": "bystander"}
            path.write_text(json.dumps(data))
            sent = ok(
                await a.call_tool(
                    "send_message", {"target": SID_PEER, "body": "hi", "wake": "auto"}
                )
            )
            assert sent["wake_status"] == "skipped_no_target"
            assert sent["target_pane"] is None
            out = ok(
                await a.call_tool(
                    "ask_peer", {"target": SID_PEER, "body": "hello?", "timeout_ms": 500}
                )
            )
            assert out["status"] == "timeout" and out["wake_status"] == "skipped_no_target"
        assert _lines(typed_into) == []
        assert "oxtail" not in _screen(tmux_server, bystander.pane)
    finally:
        outside.kill()
        outside.wait()


async def test_text_someone_is_typing_is_never_typed_over(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, asker: ServerProc
) -> None:
    peer, submitted = _fake(tmux_server, server_env, "peer", project, SID_PEER)
    tmux_server.run("send-keys", "-t", peer.pane, "-l", "half a thought")
    wait_until(lambda: "half a thought" in _screen(tmux_server, peer.pane), what="typed text")
    async with asker.client() as a, peer.client() as _p:
        started = time.monotonic()
        sent = ok(
            await a.call_tool("send_message", {"target": "peer", "body": "hi", "wake": "auto"})
        )
        assert sent["wake_status"] == "skipped_composer_busy"
        assert time.monotonic() - started >= wake.COMPOSER_WAIT_S  # it waited, re-checked
        screen = _screen(tmux_server, peer.pane)
        assert "half a thought" in screen and "oxtail" not in screen
        assert _lines(submitted) == []

        # The human finishes (clears the line) within the wait: the wake goes through.
        async def clear_soon() -> None:
            await anyio.sleep(0.6)
            tmux_server.run("send-keys", "-t", peer.pane, "C-u")

        async with anyio.create_task_group() as tg:
            tg.start_soon(clear_soon)
            sent = ok(
                await a.call_tool(
                    "send_message", {"target": "peer", "body": "again", "wake": "auto"}
                )
            )
        assert sent["wake_status"] == "confirmed"
        assert len(_lines(submitted)) == 1


async def test_repeated_wakes_for_unread_mail_are_debounced(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, asker: ServerProc
) -> None:
    peer, submitted = _fake(tmux_server, server_env, "peer", project, SID_PEER)
    async with asker.client() as a, peer.client() as p:

        async def send(body: str) -> str:
            args = {"target": "peer", "body": body, "wake": "auto"}
            return str(ok(await a.call_tool("send_message", args))["wake_status"])

        assert await send("one") == "confirmed"
        assert await send("two") == "skipped_debounced"  # "one" is not read yet
        assert await send("three") == "skipped_debounced"
        assert ok(await p.call_tool("read_my_messages", {}))["count"] == 3
        assert await send("four") == "confirmed"  # read since: a new wake is due
        assert len(_lines(submitted)) == 2


async def test_a_peer_mid_turn_is_not_typed_into_and_a_stale_marker_is_ignored(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, asker: ServerProc
) -> None:
    peer, submitted = _fake(tmux_server, server_env, "peer", project, SID_PEER)
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    marker = layout.status_file(SID_PEER)
    ensure_tree(layout.root, layout.status_dir)
    async with asker.client() as a, peer.client() as _p:
        marker.write_text("busy")  # as the hooks write it: the time is the mtime
        sent = ok(
            await a.call_tool("send_message", {"target": "peer", "body": "hi", "wake": "auto"})
        )
        assert sent["wake_status"] == "skipped_busy"
        out = ok(await a.call_tool("ask_peer", {"target": "peer", "body": "q", "timeout_ms": 300}))
        assert out["wake_status"] == "skipped_busy"
        assert _lines(submitted) == []
        # A busy marker from an hour ago is a turn that never ended (Esc): idle.
        os.utime(marker, (time.time() - 3600, time.time() - 3600))
        sent = ok(
            await a.call_tool("send_message", {"target": "peer", "body": "hi", "wake": "auto"})
        )
        assert sent["wake_status"] == "confirmed"
        assert len(_lines(submitted)) == 1


async def test_wake_off_by_environment_or_call_and_bad_values(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    asker_env: dict[str, str],
    project: Path,
) -> None:
    peer, submitted = _fake(tmux_server, server_env, "peer", project, SID_PEER)
    quiet = launch_in_pane(
        tmux_server,
        session="quiet",
        cwd=project,
        env={**asker_env, "OXTAIL_WAKE_STRATEGY": "off"},
    )
    async with quiet.client() as q, peer.client() as _p:
        sent = ok(
            await q.call_tool("send_message", {"target": "peer", "body": "a", "wake": "auto"})
        )
        assert sent["wake_status"] == "disabled"
        out = ok(await q.call_tool("ask_peer", {"target": "peer", "body": "b", "timeout_ms": 200}))
        assert out["status"] == "timeout" and out["wake_status"] == "disabled"
        plain = ok(await q.call_tool("send_message", {"target": "peer", "body": "c"}))
        assert plain["wake_status"] == "disabled"  # send_message does not wake by default
        args = {"target": "peer", "body": "d", "wake": "loud"}
        # refused by the tool's input schema (wake is an enum), before any send
        assert (await q.call_tool("send_message", args)).is_error
        assert (await q.call_tool("ask_peer", args)).is_error
        out = ok(
            await q.call_tool(
                "ask_peer", {"target": "peer", "body": "e", "timeout_ms": 200, "wake": "off"}
            )
        )
        assert out["wake_status"] == "disabled"
    assert _lines(submitted) == []


async def test_an_unsubmitted_line_gets_enter_and_a_lost_one_the_alternate_path(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    asker_env: dict[str, str],
    project: Path,
) -> None:
    stuck, _ = _fake(tmux_server, server_env, "stuck", project, SID_PEER, mode="stuck")
    deaf, _ = _fake(tmux_server, server_env, "deaf", project, SID_OTHER, mode="deaf")
    env = {**asker_env, "OXTAIL_WAKE_CONFIRM_MS": "500"}
    a_proc = launch_in_pane(tmux_server, session="asker", cwd=project, env=env)
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    async with a_proc.client() as a, stuck.client() as _s, deaf.client() as _d:
        for name, sid in (("stuck", SID_PEER), ("deaf", SID_OTHER)):
            args = {"target": name, "body": "hi", "wake": "auto"}
            assert ok(await a.call_tool("send_message", args))["wake_status"] == (
                "fired_unconfirmed"
            )
            last = json.loads(layout.wake_state(sid).last.read_text())
            assert last["method"] == wake.PASTE
    # stuck: the line sat in its input line, so the retry was Enter, not a second copy
    screen = _screen(tmux_server, stuck.pane)
    assert screen.count("oxtail: you have a message") == 1


async def test_a_codex_peer_without_a_usable_codex_binary_gets_a_bracketed_paste(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, asker: ServerProc
) -> None:
    # The fake codex is a Python script: the binary above its server is `python`, so
    # `codex queue` is unusable and the tmux path is taken; typed text + Enter would
    # only add a newline in this composer (as in Codex's), the paste submits.
    codex, submitted = _fake(tmux_server, server_env, "cx", project, SID_PEER, kind="codex")
    async with asker.client() as a, codex.client() as _c:
        sent = ok(await a.call_tool("send_message", {"target": "cx", "body": "hi", "wake": "auto"}))
        assert sent["wake_status"] == "confirmed"
        assert len(_lines(submitted)) == 1


# -- units: shapes, escapes, parsing ----------------------------------------------------------


def test_a_malformed_pane_id_is_refused_before_tmux_runs() -> None:
    for bad in ("1", "%1;kill-server", "%", "%1 ", "session:0.1", "%12345678901"):
        for call in (
            lambda p: tmux.type_then_enter(p, "x"),
            lambda p: tmux.paste_and_enter(p, "x"),
            lambda p: tmux.capture_screen(p),
        ):
            with pytest.raises(tmux.TmuxError) as info:
                call(bad)
            assert info.value.code == "bad-pane-id"


def test_a_trailing_semicolon_reaches_the_pane_literally(
    tmux_server: PrivateTmux, monkeypatch: pytest.MonkeyPatch
) -> None:
    pane = tmux_server.new_session("cat", Path("/"), "cat")
    monkeypatch.setenv("OXTAIL_TMUX_SOCKET", str(tmux_server.socket))
    tmux.type_then_enter(pane, "ab;")
    tmux.type_then_enter(pane, "c\\;")
    tmux.paste_and_enter(pane, "d;")
    wait_until(lambda: "d;" in _screen(tmux_server, pane), what="the pasted line")
    lines = [ln for ln in _screen(tmux_server, pane).splitlines() if ln]
    assert lines[:3] == ["ab;", "ab;", "c\\;"]


# -- only a real client, in this project, in a pane of this project (issue 9, finding 8) ------

SID_FORGED = "dddddddd-0000-4000-8000-00000000000d"


def _other_project(tmp_path: Path) -> Path:
    other = tmp_path / "other"
    (other / ".git").mkdir(parents=True)
    return other


def _wake_in_process(
    server_env: dict[str, str], project: Path, sid: str, monkeypatch: pytest.MonkeyPatch
) -> wake.WakeReport:
    """The wake of the row `sid` as the asker's server would run it, here, for its detail."""
    monkeypatch.setenv("OXTAIL_TMUX_SOCKET", server_env["OXTAIL_TMUX_SOCKET"])
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    listing = list_project(layout, project, False, self_identity(), count_unread=False)
    row = next(r for r in listing.rows if r.client_session_id == sid)
    return wake.wake_peer(
        layout,
        row,
        sender="asker",
        message_id="0123456789abcdef",
        project_root=project,
        settings=wake.WakeSettings(confirm_ms=300),
    )


async def test_a_forged_entry_naming_a_sleep_in_another_projects_pane_is_refused(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    asker: ServerProc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = _other_project(tmp_path)
    # Another project's pane: a shell started through a symlink named `claude` (so its
    # process name says claude; the kernel runs /bin/sh), drawing an empty prompt line
    # and running a `sleep`. Whatever is typed there is echoed on its screen.
    fake_bin = fake_client.fifo_dir(_FIFO_DIRS)
    (fake_bin / "claude").symlink_to("/bin/sh")
    script = "printf '\\342\\235\\257 \\n'; sleep 600; :"
    pane = tmux_server.new_session(
        "elsewhere", other, f"{shlex.quote(str(fake_bin / 'claude'))} -c {shlex.quote(script)}"
    )
    pane_pid = int(tmux_server.run("display", "-p", "-t", pane, "#{pane_pid}").strip())
    sleeper = wait_until(
        lambda: next((c for c in psutil.Process(pane_pid).children() if c.name() == "sleep"), 0),
        what="the sleep in the other project's pane",
    )
    start = identity_of(sleeper.pid)
    assert start is not None
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    async with asker.client() as a:
        forged = SessionEntry(
            sleeper.pid,
            start.start,
            client=ClientInfo(type="claude", session_id=SID_FORGED, cwd=str(project)),
        )
        Registry(layout).write(forged)  # peers write their own entries: anyone may
        sent = ok(
            await a.call_tool("send_message", {"target": SID_FORGED, "body": "hi", "wake": "auto"})
        )
        assert sent["wake_status"] == "skipped_no_target"
    report = _wake_in_process(server_env, project, SID_FORGED, monkeypatch)
    assert report.status == wake.WakeStatus.SKIPPED_NO_TARGET and report.attempts == []
    assert "not a real client" in report.detail
    assert os.path.realpath("/bin/sh") in report.detail  # what the kernel says it runs
    assert "oxtail" not in _screen(tmux_server, pane)


async def test_a_real_client_of_another_project_is_not_woken_for_an_entry_claiming_this_one(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    asker: ServerProc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = _other_project(tmp_path)
    peer, submitted = _fake(tmux_server, server_env, "peer", other, SID_PEER)
    layout = Layout(Path(server_env["AGENTMAIL_HOME"]))
    async with asker.client() as a, peer.client() as p:
        ok(await p.call_tool("get_my_session", {}))
        entry = next(e for e in Registry(layout).read_all() if e.client.session_id == SID_PEER)
        path = layout.session_file(entry.server_pid)
        data = json.loads(path.read_text())
        data["client"]["cwd"] = str(project)  # the entry claims this project; its client is not
        path.write_text(json.dumps(data))
        sent = ok(
            await a.call_tool("send_message", {"target": SID_PEER, "body": "hi", "wake": "auto"})
        )
        assert sent["wake_status"] == "skipped_no_target"
        report = _wake_in_process(server_env, project, SID_PEER, monkeypatch)
    assert report.status == wake.WakeStatus.SKIPPED_NO_TARGET
    assert f"runs in {other}, outside this project {project}" in report.detail
    assert _lines(submitted) == []
    assert "oxtail" not in _screen(tmux_server, peer.pane)


async def test_a_client_of_this_project_in_a_pane_of_another_is_not_typed_into(
    tmux_server: PrivateTmux,
    server_env: dict[str, str],
    project: Path,
    asker: ServerProc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = _other_project(tmp_path)
    peer, submitted = _fake(tmux_server, server_env, "peer", project, SID_PEER, shell_cwd=other)
    shown = tmux_server.run("display", "-p", "-t", peer.pane, "#{pane_current_path}").strip()
    assert os.path.realpath(shown) == os.path.realpath(other)  # the setup holds
    async with asker.client() as a, peer.client() as _p:
        sent = ok(
            await a.call_tool("send_message", {"target": SID_PEER, "body": "hi", "wake": "auto"})
        )
        assert sent["wake_status"] == "skipped_no_target"
        report = _wake_in_process(server_env, project, SID_PEER, monkeypatch)
    assert report.status == wake.WakeStatus.SKIPPED_NO_TARGET
    assert f"its pane {peer.pane} is in {other}, outside this project" in report.detail
    assert _lines(submitted) == []
    assert "oxtail" not in _screen(tmux_server, peer.pane)
