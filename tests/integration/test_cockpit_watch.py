"""`oxtail-py watch` in a real terminal: a tmux pane, read back with capture-pane.

Real servers start and stop beside it (agents appear and disappear, a kill -9
included: no file says so, a pidfd does), a message sent meanwhile shows in the
traffic pane, the operator sends from the view, resizes redraw (80x24 and wide), and
the quit key exits cleanly. Nothing here sleeps for a fixed time: every step waits
for the screen to show what it must.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    await_until,
    first_message,
    launch_in_pane,
    ok,
    wait_until,
)

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-00000000000a"
SID_B = "bbbbbbbb-0000-4000-8000-00000000000b"


class Screen:
    def __init__(self, tmux: PrivateTmux, target: str) -> None:
        self.tmux, self.target = tmux, target

    def text(self) -> str:
        return self.tmux.run("capture-pane", "-p", "-t", self.target)

    def head(self) -> str:
        return self.text().splitlines()[0]

    def agent_rows(self) -> list[str]:
        """The agent table's rows: between its header and the traffic pane's title."""
        lines = self.text().splitlines()
        start = next((i for i, ln in enumerate(lines) if ln.split()[:1] == ["NAME"]), None)
        if start is None:
            return []  # caught mid-redraw: the caller looks again
        rows = []
        for ln in lines[start + 1:]:
            if ln.startswith("recent traffic") or not ln.strip():
                break
            rows.append(ln)
        return rows

    def wait_for(self, what: str, predicate: Callable[[str], object], timeout: float = 20) -> str:
        def look() -> str | None:
            text = self.text()
            return text if predicate(text) else None

        return str(wait_until(look, timeout=timeout, what=what))

    def matching(self, pattern: str) -> str | None:
        text = self.text()
        return text if re.search(pattern, text, re.M) else None

    def keys(self, *keys: str) -> None:
        self.tmux.run("send-keys", "-t", self.target, *keys)

    def resize(self, width: int, height: int) -> None:
        self.tmux.run("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))


def start_watch(
    tmux: PrivateTmux, env: dict[str, str], project: Path, rc: Path, width: int = 80
) -> Screen:
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = (f"env {exports} {shlex.quote(sys.executable)} -m oxtail_py watch; "
               f"echo $? > {shlex.quote(str(rc))}; sleep 600")
    tmux.run("new-session", "-d", "-s", "cockpit", "-x", str(width), "-y", "24",
             "-c", str(project), command)
    screen = Screen(tmux, "cockpit")
    screen.rc = rc  # type: ignore[attr-defined]
    screen.wait_for("the first frame", lambda t: "0 agent(s)" in t)
    return screen


@pytest.fixture
def cockpit(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> Iterator[Screen]:
    yield start_watch(tmux_server, server_env, project, tmp_path / "watch-rc")


def _agent(tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str) -> ServerProc:
    return launch_in_pane(tmux, session=name, cwd=cwd,
                          env={**env, "CLAUDE_CODE_SESSION_ID": sid}, as_client="claude")


def _names(screen: Screen) -> set[str]:
    """The agents' names (plain panes, listed after them as `(pane)`, left out)."""
    return {r.split()[0] for r in screen.agent_rows() if len(r.split()) > 1
            and r.split()[1] != "(pane)"}


def _panes(screen: Screen) -> set[str]:
    return {r.split()[0] for r in screen.agent_rows() if r.split()[1:2] == ["(pane)"]}


async def test_watch_follows_agents_traffic_resize_send_and_quit(
    cockpit: Screen, tmux_server: PrivateTmux, server_env: dict[str, str], project: Path,
    tmp_path: Path,
) -> None:
    alpha = _agent(tmux_server, server_env, "alpha", project, SID_A)
    beta = _agent(tmux_server, server_env, "beta", project, SID_B)
    async with alpha.client() as a:
        await await_until(lambda: _names(cockpit) == {"alpha"}, what="alpha appears")
        # A corrupt registry entry is a problem on the screen, not a crash.
        bad = Path(server_env["AGENTMAIL_HOME"]) / "sessions" / "4000000.json"
        bad.write_text('{"server_pid": 1e400}')
        await await_until(lambda: "1 problem(s)" in cockpit.head(), what="the problem")
        assert "corrupt-registry-entry" in cockpit.text()
        bad.unlink()
        await await_until(lambda: "0 problem(s)" in cockpit.head(), what="the problem gone")
        async with beta.client() as b:
            await await_until(lambda: _names(cockpit) == {"alpha", "beta"}, what="beta appears")
            assert "2 agent(s)" in cockpit.head()

            # A message sent meanwhile shows in the traffic pane: who, to whom, how.
            ok(await a.call_tool("send_message", {"target": "beta", "body": "hi from alpha"}))
            screen = await await_until(
                lambda: cockpit.matching(r"alpha -> beta\s+sent message\s+inbox"),
                what="the send in the traffic pane")
            assert re.search(r"^ ?beta\s+\?\s+unknown\s+-\s+1 since", screen, re.M) or (
                "1 since" in screen)
            got = ok(await b.call_tool("read_my_messages", {}))
            assert got["count"] == 1
            await await_until(
                lambda: cockpit.matching(r"alpha -> beta\s+delivered mes\w*\s+read_my_mess"),
                what="the hand-over in the traffic pane")

            # Wide: every column; back to 80x24: the narrow set, still whole.
            cockpit.resize(200, 40)
            await await_until(lambda: cockpit.matching(r"^ NAME\s+CLIENT\s+SESSION\s+PANE\s+"
                                                       r"STATE.*IDENTITY\s+ROLE\s+PARENT\s+CARD"),
                              what="the wide columns")
            cockpit.resize(80, 24)
            narrow = r"^ NAME\s+CLIENT\s+STATE\s+SINCE\s+UNREAD\s+WORK\s+ASKS\s+SESSION\s*$"
            await await_until(lambda: cockpit.matching(narrow), what="the narrow columns")
            await await_until(lambda: _names(cockpit) == {"alpha", "beta"}, what="both, narrow")
            assert len(cockpit.text().splitlines()) == 24

            # Selecting beta shows it in full under the table (what narrow columns omit).
            cockpit.keys("Down")
            await await_until(lambda: cockpit.matching(
                rf"^beta · claude · {SID_B} · pane %\d+ \(proven\) · id\s+from env \(proven\)"),
                what="beta's detail line")
            # Its last turns: beta has no transcript, so the view shows its pane's screen.
            cockpit.keys("t")
            await await_until(lambda: "beta: pane " in cockpit.text(), what="beta's turns")
            # q closes the dialog (the dialog's binding wins over the app's quit). Not
            # Escape: a key typed right after a bare ESC reads as Alt+key.
            cockpit.keys("q")
            await await_until(lambda: "beta: pane " not in cockpit.text(), what="closed")

            # The operator sends the selected agent (beta) a message from the view.
            cockpit.keys("s")
            await await_until(lambda: "from you (the operator)" in cockpit.text(),
                              what="the send dialog")
            cockpit.keys("-l", "stop and rebase please")
            cockpit.keys("Enter")
            msg = await first_message(b)
            assert msg["body"] == "stop and rebase please" and msg["from_operator"] is True
            assert msg["from_session_id"] is None
            await await_until(lambda: "operator -> beta" in cockpit.text(),
                              what="the operator's send in the traffic pane")
        # beta's client closed: its server exits and removes its entry; its pane stays,
        # a plain pane now (its shell sleeps on), listed as such, like the watch's own.
        await await_until(lambda: _names(cockpit) == {"alpha"}, what="beta disappears")
        await await_until(lambda: {"beta", "cockpit"} <= _panes(cockpit), what="beta's pane")

        # kill -9 writes no file: the view learns of the exit from a pidfd.
        pid = int(wait_until(lambda: _server_pid(tmux_server, alpha.pane), what="alpha's pid"))
        os.kill(pid, signal.SIGKILL)
        await await_until(lambda: "0 agent(s)" in cockpit.head(), what="alpha disappears")

    cockpit.keys("q")
    rc = cockpit.rc  # type: ignore[attr-defined]
    await await_until(lambda: rc.exists() and rc.read_text().strip(), what="watch exits")
    assert rc.read_text().strip() == "0"
    await anyio.sleep(0)


def _server_pid(tmux: PrivateTmux, pane: str) -> int | None:
    """The oxtail server under `pane` (its shell's descendants)."""
    shell = int(tmux.run("display", "-p", "-t", pane, "#{pane_pid}").strip())
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for line in out.splitlines()[1:]:
        pid, ppid, args = line.split(None, 2)
        children.setdefault(int(ppid), []).append((int(pid), args))
    stack = [shell]
    while stack:
        for pid, args in children.get(stack.pop(), []):
            if "oxtail_py serve" in args and not args.startswith(("sh ", "/bin/sh")):
                return pid
            stack.append(pid)
    return None


def test_watch_refuses_a_non_terminal(server_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "oxtail_py", "watch"], capture_output=True,
                          text=True, env={**os.environ, **server_env}, stdin=subprocess.DEVNULL,
                          timeout=60, check=False)
    assert done.returncode == 2 and "needs a terminal" in done.stderr
    assert "oxtail-py status" in done.stderr


def test_an_ask_turning_overdue_is_shown_with_no_file_event(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    """A stuck asker (its record `waiting`, its process alive) passes the longest timeout
    an ask may have: nothing is written then, and the view's one deadline timer redraws."""
    from oxtail_py import asks_ledger
    from oxtail_py.layout import Layout
    from oxtail_py.procs import self_identity

    env = {**server_env, "OXTAIL_ASK_PEER_MAX_TIMEOUT_MS": "3000"}
    screen = start_watch(tmux_server, env, project, tmp_path / "rc", width=140)
    now = time.time()
    asks_ledger.open_ask(Layout(Path(server_env["AGENTMAIL_HOME"])), asks_ledger.AskRecord(
        request_id="0123456789abcdef", asker=SID_A, asker_session_id=SID_A,
        asker_server=self_identity().token(), target_session_id=SID_B, target_name="beta",
        project_root=str(project), state=asks_ledger.AskState.WAITING,
        created_at="2026-01-01T00:00:00+00:00", updated_at="2026-01-01T00:00:00+00:00",
        created_ts=now - 1.5,  # due 1.5 s from now
    ))
    shown = screen.wait_for("the ask", lambda t: "ask 0123456789abcdef" in t)
    assert "OVERDUE" not in shown
    overdue = screen.wait_for("overdue", lambda t: "0123456789abcdef" in t and "OVERDUE" in t)
    assert time.time() - now >= 1.5 and "1 waiting" in overdue
