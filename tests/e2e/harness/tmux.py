"""A private tmux server for TUI agents: one per scenario, one session per agent.

Private (`tmux -S <socket in a temp dir of its own>`, no user config) so tests never touch
a developer's tmux and parallel tests never see each other's panes. The server is started
from the pytest process, so it lives in the same loopback-only network namespace and so do
the clients in its panes.
Several agents of one scenario share the server, as real users' agents share one tmux.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .wait import wait_until

# remain-on-exit keeps a crashed client's last screen for the failure message;
# focus-events on stops Claude Code from showing a hint about it above its prompt.
_CONFIG: Final = """\
set -g remain-on-exit on
set -g history-limit 5000
set -g status off
set -g default-terminal tmux-256color
set -g focus-events on
"""

# The server's own environment: nothing of pytest's leaks into panes; each pane gets its
# agent's environment explicitly with `-e`.
_SERVER_ENV_KEYS: Final = ("PATH", "LANG", "LC_ALL", "TZ")


class Tmux:
    """One private tmux server. `close()` kills it (and with it every pane's process group
    gets SIGHUP); agents kill their leftovers themselves."""

    def __init__(self, *, width: int = 160, height: int = 45) -> None:
        # A socket path of our own (not `-L name` under /tmp/tmux-UID): tmux leaves the
        # socket file behind after kill-server, and removing our own dir cleans it up.
        # Short, since a unix socket path must fit in 108 bytes.
        self._dir = Path(tempfile.mkdtemp(prefix="oxe2e-tmux-"))
        self.socket = self._dir / "s"
        self.width = width
        self.height = height
        self._config = self._dir / "tmux.conf"
        self._config.write_text(_CONFIG)
        self._env = {k: os.environ[k] for k in _SERVER_ENV_KEYS if k in os.environ}
        self._env["HOME"] = tempfile.gettempdir()

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", str(self._config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self._env,
            timeout=15,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def new_pane(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        name: str | None = None,
    ) -> Pane:
        """Start `command` in a new session (one per agent) and return its pane.

        The first call starts the server. `env` is the complete environment of the command
        (tmux adds TMUX and TMUX_PANE, as for a real user).
        """
        session = name or f"agent-{uuid.uuid4().hex[:6]}"
        flags: list[str] = []
        for key, value in env.items():
            flags += ["-e", f"{key}={value}"]
        # Variables the server has but the agent must not see are unset for the pane.
        unset = [k for k in self._env if k not in env]
        shell_command = " ".join(shlex.quote(part) for part in command)
        if unset:
            shell_command = f"unset {' '.join(unset)}; exec {shell_command}"
        else:
            shell_command = f"exec {shell_command}"
        out = self.run(
            "new-session", "-d", "-P", "-F", "#{pane_id} #{pane_pid}",
            "-s", session, "-x", str(self.width), "-y", str(self.height),
            "-c", str(cwd), *flags, shell_command,
        )  # fmt: skip
        pane_id, pid = out.split()
        return Pane(tmux=self, pane_id=pane_id, pid=int(pid), session=session)

    def server_pid(self) -> int | None:
        out = self.run("display-message", "-p", "#{pid}", check=False).strip()
        return int(out) if out.isdigit() else None

    def close(self) -> None:
        self.run("kill-server", check=False)
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass
class Pane:
    """One pane running a TUI client."""

    tmux: Tmux
    pane_id: str
    pid: int
    session: str

    def capture(self, *, history: bool = False) -> str:
        """The visible screen (with `history`, the scrollback too) as plain text."""
        args = ["capture-pane", "-p", "-t", self.pane_id]
        if history:
            args += ["-S", "-"]
        return self.tmux.run(*args, check=False)

    def is_dead(self) -> bool:
        out = self.tmux.run(
            "display-message", "-p", "-t", self.pane_id, "#{pane_dead}", check=False
        )
        return out.strip() != "0"

    def send_keys(self, *keys: str) -> None:
        """Named keys (`Enter`, `Escape`, `C-c`), as tmux understands them."""
        self.tmux.run("send-keys", "-t", self.pane_id, *keys)

    def type_line(self, text: str) -> None:
        """Type `text` literally, then Enter: how Claude Code's TUI is fed."""
        self.tmux.run("send-keys", "-t", self.pane_id, "-l", text)
        self.tmux.run("send-keys", "-t", self.pane_id, "Enter")

    def paste_line(self, text: str) -> None:
        """Bracketed-paste `text`, then Enter, in one tmux command: how Codex's TUI is fed
        (typed text followed at once by Enter is taken as a paste burst and the Enter
        becomes a newline)."""
        buffer = f"e2e-{uuid.uuid4().hex[:8]}"
        self.tmux.run("load-buffer", "-b", buffer, "-", stdin=text)
        self.tmux.run(
            "paste-buffer", "-p", "-d", "-b", buffer, "-t", self.pane_id, ";",
            "send-keys", "-t", self.pane_id, "Enter",
        )  # fmt: skip

    def wait_for_text(self, text: str, *, timeout: float = 30.0) -> str:
        """Wait until `text` is on the screen; returns the screen."""
        return wait_until(
            lambda: screen if text in (screen := self.capture()) else None,
            timeout=timeout,
            what=f"{text!r} on pane {self.pane_id}",
            describe=self.capture,
        )
