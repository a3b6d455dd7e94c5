"""Waking a peer, against real oxtail servers in a private tmux server.

The peers here are a small stand-in for a TUI client (FAKE_TUI below): a process named
like the client (`claude` / `codex`) that draws a prompt line, reads keys in raw mode,
"submits" a line on Enter into a transcript where the real client keeps one, and runs a
real `python -m oxtail_py serve` as its child, so the live process tree proves its pane
exactly as with the real clients (tests/e2e/test_wake_real.py drives those).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from oxtail_py import tmux, wake
from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.registry import Registry
from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    await_until,
    error_code,
    launch_in_pane,
    ok,
    wait_until,
)

pytestmark = pytest.mark.anyio

SID_ASKER = "aaaaaaaa-0000-4000-8000-00000000000a"
SID_PEER = "bbbbbbbb-0000-4000-8000-00000000000b"
SID_OTHER = "cccccccc-0000-4000-8000-00000000000c"

# A stand-in TUI. Modes: submit (Enter submits), stuck (Enter is ignored: the text stays),
# deaf (every key is ignored). Kind codex: typed text followed by Enter in the same burst
# is a newline, as in Codex's composer; only a bracketed paste + Enter submits.
FAKE_TUI = r"""
import json, os, re, subprocess, sys, threading, time, tty
from pathlib import Path

fifo = Path(sys.argv[1])
kind = os.environ.get("FAKE_TUI_KIND", "claude")
mode = os.environ.get("FAKE_TUI_MODE", "submit")
sid = os.environ["FAKE_SESSION_ID"]
home = Path(os.environ["HOME"])


def serve():
    with open(fifo / "in", "rb") as fin, open(fifo / "out", "wb") as fout:
        with open(fifo / "err", "wb") as err:
            subprocess.run([sys.executable, "-m", "oxtail_py", "serve"],
                           stdin=fin, stdout=fout, stderr=err)


threading.Thread(target=serve, daemon=True).start()
if kind == "codex":
    transcript = home / ".codex/sessions/2026/01/02" / f"rollout-2026-01-02T03-04-05-{sid}.jsonl"
    transcript.parent.mkdir(parents=True, exist_ok=True)
    transcript.touch()  # a Codex rollout exists from the thread's first prompt on
else:  # Claude Code writes its transcript at the first prompt
    project_dir = re.sub("[^a-zA-Z0-9]", "-", os.getcwd())
    transcript = home / ".claude/projects" / project_dir / f"{sid}.jsonl"
glyph = "\u203a" if kind == "codex" else "\u276f"
buf = ""


def draw():
    out = "\x1b[2J\x1b[H" + f"fake {kind}\r\n" + "\u2500" * 40 + "\r\n" + glyph + "\u00a0" + buf
    if not buf:
        out += "\x1b[2mAsk me anything\x1b[0m"  # a dim placeholder, as the clients draw
    sys.stdout.write(out + "\r\n" + "\u2500" * 40 + "\r\n")
    sys.stdout.flush()


def submit(line):
    with open(fifo / "submitted.txt", "a") as fh:
        fh.write(line + "\n")
    if kind == "codex":
        content = [{"type": "input_text", "text": line}]
        item = {"type": "message", "role": "user", "content": content}
        record = {"timestamp": "2026-01-02T03:04:05Z", "type": "response_item", "payload": item}
    else:
        record = {"type": "user", "message": {"role": "user", "content": line}}
    transcript.parent.mkdir(parents=True, exist_ok=True)
    with open(transcript, "a") as fh:
        fh.write(json.dumps(record) + "\n")


fd = sys.stdin.fileno()
if os.isatty(fd):
    tty.setraw(fd)
sys.stdout.write("\x1b[?2004h")  # bracketed paste on, as the clients do
draw()
while True:
    data = os.read(fd, 4096)
    if not data:
        time.sleep(3600)
    if mode == "deaf":
        continue
    text = data.decode(errors="replace")
    pasting = typed = False
    i = 0
    while i < len(text):
        if text.startswith("\x1b[200~", i):
            pasting, i = True, i + 6
            continue
        if text.startswith("\x1b[201~", i):
            pasting, i = False, i + 6
            continue
        ch = text[i]
        i += 1
        if ch == "\r" and not pasting:
            if kind == "codex" and typed:
                buf += " "  # a paste burst: the Enter is a newline
            elif buf and mode == "submit":
                submit(buf)
                buf = ""
        elif ch == "\x15":
            buf = ""
        elif ch == "\x7f":
            buf = buf[:-1]
        elif ch >= " ":
            buf += ch
            typed = typed or not pasting
    draw()
"""


_FIFO_DIRS: list[Path] = []


@pytest.fixture(autouse=True)
def _remove_fifo_dirs() -> Iterator[None]:
    yield
    while _FIFO_DIRS:
        shutil.rmtree(_FIFO_DIRS.pop(), ignore_errors=True)


def _fifo_dir() -> Path:
    # Short and under /tmp, as the harness's: the fake's server is reached through it.
    path = Path(tempfile.mkdtemp(prefix="oxw-", dir="/tmp"))
    _FIFO_DIRS.append(path)
    os.mkfifo(path / "in")
    os.mkfifo(path / "out")
    return path


def _fake(
    tmux_server: PrivateTmux,
    env: dict[str, str],
    name: str,
    cwd: Path,
    sid: str,
    *,
    kind: str = "claude",
    mode: str = "submit",
) -> tuple[ServerProc, Path]:
    """A fake `kind` client in its own tmux session; (its server, its submitted-lines file)."""
    fifo_dir = _fifo_dir()
    script = fifo_dir / kind  # named like the client: detection by process ancestry sees it
    script.write_text(FAKE_TUI)
    full = {
        **env,
        "FAKE_TUI_KIND": kind,
        "FAKE_TUI_MODE": mode,
        "FAKE_SESSION_ID": sid,
        "CLAUDE_CODE_SESSION_ID": sid,  # the server's identity (env strategy)
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in full.items())
    command = f"env {exports} {shlex.quote(sys.executable)} {script} {fifo_dir}"
    pane = tmux_server.new_session(name, cwd, command)
    wait_until(lambda: "Ask me anything" in _screen(tmux_server, pane), what="the fake TUI")
    return ServerProc(name, pane, fifo_dir, full), fifo_dir / "submitted.txt"


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
    fifo_dir = _fifo_dir()
    (fifo_dir / "claude").write_text(FAKE_TUI)
    env = {
        **server_env,
        "PATH": os.environ["PATH"],
        "FAKE_SESSION_ID": SID_PEER,
        "CLAUDE_CODE_SESSION_ID": SID_PEER,
        "TMUX_PANE": bystander.pane,
    }
    outside = subprocess.Popen(
        [sys.executable, str(fifo_dir / "claude"), str(fifo_dir)],
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
        assert error_code(await q.call_tool("send_message", args)) == "bad-wake"
        assert error_code(await q.call_tool("ask_peer", args)) == "bad-wake"
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


# Screens captured with `capture-pane -e` from Claude Code 2.1.330 and Codex 0.169.0.
RULE = "\x1b[38;5;244m" + "\u2500" * 20 + "\n"
CLAUDE_EMPTY = RULE + "\x1b[39m\u276f\xa0\x1b[7m \x1b[0m\n" + RULE
CLAUDE_TYPED = RULE + "\x1b[39m\u276f\xa0half typed\x1b[7m \x1b[0m\n" + RULE
CLAUDE_HISTORY = "\x1b[48;5;237m\u276f \x1b[38;5;231mhello there\x1b[39m\n" + CLAUDE_EMPTY
CODEX_EMPTY = (
    "\x1b[1m\u203a\x1b[0m\x1b[39m\x1b[49m \x1b[2mAsk Codex to do anything\n"
    "\x1b[0m\x1b[39m\x1b[49m\n  \x1b[38;5;223mgpt-scripted default\x1b[39m \xb7 /tmp/x\n"
)
CODEX_TYPED = "\x1b[1m\u203a\x1b[0m\x1b[39m\x1b[49m half typed\n\n  gpt default\n"
CODEX_COLOR_2 = "\x1b[1m\u203a\x1b[0m \x1b[38;5;2mgreen, not dim\n"
DIALOG = "Allow?\n\u276f 1. Yes\n  2. No\n"
# tmux -e writes only style changes, so a style runs on from the line above.
DIM_RUNS_ON = "\x1b[2mdim hint\n\u276f \x1b[22mtyped after a reset\n"
DIM_FROM_ABOVE = "\x1b[2mdim hint\n\u276f placeholder, still dim\n"


@pytest.mark.parametrize(
    ("screen", "expected"),
    [
        (CLAUDE_EMPTY, ""),
        (CLAUDE_TYPED, "half typed"),
        (CLAUDE_HISTORY, ""),
        (CODEX_EMPTY, ""),
        (CODEX_TYPED, "half typed"),
        (CODEX_COLOR_2, "green, not dim"),
        (DIALOG, "1. Yes"),
        (DIM_RUNS_ON, "typed after a reset"),
        (DIM_FROM_ABOVE, ""),
        ("$ ls\nfile\n$ \n", None),
    ],
)
def test_composer_text_ignores_placeholders_and_history(screen: str, expected: str | None) -> None:
    assert wake.composer_text(screen) == expected


def test_wake_line_is_one_short_ascii_line_naming_the_message() -> None:
    ask = wake.wake_line(SID_ASKER, "0123456789abcdef", "0123456789abcdef")
    note = wake.wake_line("alpha\n; rm -rf /", "fedcba9876543210")
    assert "reply_to=0123456789abcdef" in ask and ask.isascii() and "\n" not in ask
    assert "fedcba9876543210" in note and "alpha" in note
    assert "\n" not in note and ";" not in note and " rm" not in note
    assert len(ask) < 200


def test_strategy_from_env() -> None:
    assert wake.strategy_from_env({}) == "auto"
    assert wake.strategy_from_env({"OXTAIL_WAKE_STRATEGY": " TMUX "}) == "tmux"
    assert wake.strategy_from_env({"OXTAIL_WAKE_STRATEGY": "off"}) == "off"
    assert wake.strategy_from_env({"OXTAIL_WAKE_STRATEGY": "bogus"}) == "auto"
