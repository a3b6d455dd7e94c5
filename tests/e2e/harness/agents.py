"""Launchers for the real clients: Claude Code and Codex CLI, headless or as a TUI in tmux.

Each agent gets its own HOME (so its config, transcripts and daemons are its own), a
project dir with a `.git`, the scenario's shared AGENTMAIL_HOME and a scripted model server.
Every process an agent starts carries a marker variable, also put into the MCP server's
environment (Codex filters what a server inherits), so teardown can end exactly the
processes this agent started, including Codex's app-server daemons and MCP servers that
outlive their client.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Generic, TypeVar

import psutil

from .anthropic import AnthropicModel, AnthropicRequest
from .clients import REPO, Clients
from .model import DEFAULT_WAIT, ModelRequest, ModelServer
from .responses import ResponsesModel, ResponsesRequest
from .tmux import Pane, Tmux
from .wait import WaitTimeout, wait_until

MARKER: Final = "OXTAIL_E2E_AGENT"
CLAUDE_VERSION: Final = "2.1.330"
# Anthropic's client accepts any key shape; Claude Code remembers approval by its last 20
# characters in ~/.claude.json.
CLAUDE_API_KEY: Final = "sk-ant-e2e-scripted-model-key-0123456789"
CODEX_KEY_VAR: Final = "OXTAIL_E2E_MODEL_KEY"
CODEX_MODEL: Final = "gpt-scripted"
# The TUIs' prompt glyphs, escaped because they look like ">" in source.
CLAUDE_PROMPT: Final = "\u276f"  # Claude Code's input box
CODEX_PROMPT: Final = "\u203a"  # Codex's composer

# What Claude Code must be told so it never reaches for the network on its own.
CLAUDE_QUIET_ENV: Final = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
}


@dataclass(frozen=True)
class McpServer:
    """A stdio MCP server entry, written into the client's config under `name`."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = "oxtail"


def oxtail_server(agentmail_home: Path, *, python: str = sys.executable) -> McpServer:
    """Our server, `python -m oxtail_py serve`, run from this checkout.

    PYTHONPATH points at the repo because the server's cwd is the agent's project dir and
    the package need not be installed into the venv.
    """
    return McpServer(
        command=python,
        args=("-m", "oxtail_py", "serve"),
        env={"AGENTMAIL_HOME": str(agentmail_home), "PYTHONPATH": str(REPO)},
    )


def stub_server(agentmail_home: Path, *, python: str = sys.executable) -> McpServer:
    """tests/e2e/stub_mcp_server.py, configured like our server: a dependency-free
    stand-in with a `whoami` tool that reports what the server sees."""
    script = Path(__file__).parents[1] / "stub_mcp_server.py"
    return McpServer(
        command=python, args=(str(script),), env={"AGENTMAIL_HOME": str(agentmail_home)}
    )


@dataclass(frozen=True)
class Headless:
    """The outcome of one non-interactive run."""

    returncode: int
    stdout: str
    stderr: str


R = TypeVar("R", bound=ModelRequest)


class Agent(ABC, Generic[R]):
    """One client with its own HOME, talking to `model`.

    `setup_cmds` run once (shell, HOME = this agent's home, cwd = the project) after the
    client's config is written and before it starts: the place for installers such as
    `oxtail-py install-hook` that edit the client's config.
    """

    kind: ClassVar[str]

    def __init__(
        self,
        *,
        clients: Clients,
        root: Path,
        model: ModelServer[R],
        agentmail_home: Path,
        project: Path | None = None,
        mcp: McpServer | None = None,
        tmux: Tmux | None = None,
        env: Mapping[str, str] | None = None,
        setup_cmds: Sequence[str] = (),
    ) -> None:
        self.clients = clients
        self.root = root
        self.model = model
        self.agentmail_home = agentmail_home
        self.home = root / "home"
        self.project = project or root / "project"
        self.mcp = mcp
        self.tmux = tmux
        self.marker = uuid.uuid4().hex
        self.pane: Pane | None = None
        self.home.mkdir(parents=True, exist_ok=True)
        (self.project / ".git").mkdir(parents=True, exist_ok=True)
        agentmail_home.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {
            "HOME": str(self.home),
            "PATH": f"{clients.bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "SHELL": "/bin/bash",
            "USER": os.environ.get("USER", "root"),
            "AGENTMAIL_HOME": str(agentmail_home),
            MARKER: self.marker,
            **self.client_env(),
            **(env or {}),
        }
        self.write_config()
        for command in setup_cmds:
            subprocess.run(
                command, shell=True, check=True, cwd=self.project, env=self.env, timeout=60
            )

    # -- per client ------------------------------------------------------------------------

    @abstractmethod
    def client_env(self) -> dict[str, str]:
        """Variables this client needs (model endpoint, key, quiet switches)."""

    @abstractmethod
    def write_config(self) -> None:
        """Write the client's config files into HOME."""

    @abstractmethod
    def headless_argv(self, prompt: str, args: Sequence[str]) -> list[str]: ...

    @abstractmethod
    def tui_argv(self, args: Sequence[str]) -> list[str]: ...

    @abstractmethod
    def is_idle(self, screen: str) -> bool:
        """True when the TUI sits at an empty prompt with no turn running."""

    @abstractmethod
    def submit(self, pane: Pane, text: str) -> None:
        """Enter `text` into the TUI's composer and submit it."""

    @abstractmethod
    def transcripts(self) -> list[Path]:
        """The client's transcript files in this agent's HOME, oldest first."""

    def mcp_env(self) -> dict[str, str]:
        """The MCP server's environment entries: its own, plus the marker for cleanup."""
        assert self.mcp is not None
        return {**self.mcp.env, MARKER: self.marker}

    # -- running ---------------------------------------------------------------------------

    def run_headless(
        self, prompt: str, *, args: Sequence[str] = (), timeout: float = 90.0
    ) -> Headless:
        """One non-interactive turn; stdin is /dev/null (Codex would wait for more input)."""
        result = subprocess.run(
            self.headless_argv(prompt, args),
            cwd=self.project,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.model.check()
        return Headless(result.returncode, result.stdout, result.stderr)

    def start_tui(self, *, args: Sequence[str] = (), wait_idle: bool = True) -> Pane:
        """Start the TUI in a new session of the scenario's tmux server."""
        if self.tmux is None:
            raise RuntimeError(f"{self.kind} agent was made without a tmux server")
        self.pane = self.tmux.new_pane(
            self.tui_argv(args),
            cwd=self.project,
            env=self.env,
            name=f"{self.kind}-{self.marker[:6]}",
        )
        if wait_idle:
            self.wait_idle(timeout=45.0)
        return self.pane

    def screen(self) -> str:
        return self.pane.capture() if self.pane is not None else "(no TUI started)"

    def wait_idle(self, *, timeout: float = DEFAULT_WAIT, settle: float = 0.3) -> str:
        """Wait until the TUI is idle at its prompt and stays so for `settle` seconds (a
        turn that just started may not have drawn its busy line yet)."""
        pane = self._pane()
        idle_since: list[float] = []

        def idle() -> str | None:
            if pane.is_dead():
                raise AssertionError(f"{self.kind} TUI exited:\n{pane.capture(history=True)}")
            self.model.check()
            screen = pane.capture()
            if not self.is_idle(screen):
                idle_since.clear()
                return None
            if not idle_since:
                idle_since.append(time.monotonic())
            return screen if time.monotonic() - idle_since[0] >= settle else None

        return wait_until(idle, timeout=timeout, what=f"{self.kind} TUI idle", describe=self.screen)

    def send(self, text: str) -> None:
        """Submit `text` at the TUI prompt (without waiting for anything)."""
        self.submit(self._pane(), text)

    def prompt(self, text: str, *, timeout: float = DEFAULT_WAIT, wait_idle: bool = True) -> R:
        """Submit `text` and return the model request whose user turn carries it; with
        `wait_idle`, also wait for the turn to finish."""
        after = len(self.model.requests)
        self.send(text)
        request = self.model.wait_for_request(
            lambda r: r.is_turn and any(text in t for t in r.user_texts()),
            after=after,
            timeout=timeout,
            what=f"a turn carrying the prompt {text[:60]!r}",
        )
        if wait_idle:
            self.wait_idle(timeout=timeout)
        return request

    def _pane(self) -> Pane:
        if self.pane is None:
            raise RuntimeError(f"{self.kind} TUI not started")
        return self.pane

    # -- teardown --------------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """Every live process carrying this agent's marker (client, MCP servers, daemons,
        shell commands), found by environment so reparented leftovers are found too."""
        found: list[psutil.Process] = []
        needle = f"{MARKER}={self.marker}"
        for process in psutil.process_iter():
            try:
                if needle in _environ_entries(process.pid):
                    found.append(process)
            except (psutil.Error, OSError):
                continue
        return found

    def close(self) -> None:
        """End this agent's session in tmux and every process it started."""
        victims = self.processes()
        if self.pane is not None and self.tmux is not None:
            # tmux's SIGHUP ends a TUI and its MCP servers within ~0.1 s; a SIGTERM on top
            # of it makes Claude Code's shutdown take ~2 s. So let the hangup work first.
            self.tmux.run("kill-session", "-t", self.pane.session, check=False)
            victims = _wait_gone(victims, timeout=1)
        for process in victims:
            with contextlib.suppress(psutil.Error):  # already gone
                process.send_signal(signal.SIGTERM)
        for process in _wait_gone(victims, timeout=3):
            with contextlib.suppress(psutil.Error):
                process.kill()


def _wait_gone(processes: list[psutil.Process], *, timeout: float) -> list[psutil.Process]:
    """Wait until `processes` have exited; return those still running at the deadline.

    A zombie counts as gone: it has exited, and only its parent (tmux, or init for a
    reparented daemon) can reap it, which psutil.wait_procs would wait for."""

    def running() -> list[psutil.Process]:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.Error):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        return alive

    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not running(), timeout=timeout, what="processes to exit")
    return running()


def _environ_entries(pid: int) -> list[str]:
    # psutil.Process.environ() parses everything into a dict; a raw read is cheaper when
    # scanning every process at teardown.
    with open(f"/proc/{pid}/environ", "rb") as file:
        return file.read().decode("utf-8", "replace").split("\0")


def claude_hooks(**commands: str) -> dict[str, Any]:
    """settings.json `hooks` running one shell command per event for every tool, e.g.
    `claude_hooks(PreToolUse="...", Stop="...")`, for ClaudeAgent(settings=...)."""
    return {
        "hooks": {
            event: [{"matcher": "*", "hooks": [{"type": "command", "command": command}]}]
            for event, command in commands.items()
        }
    }


class ClaudeAgent(Agent[AnthropicRequest]):
    """Claude Code with onboarding and trust pre-answered, quiet, talking to the model.

    `allow` is the settings.json permission allow-list (so neither mode stops at a
    permission prompt); `settings` is merged into settings.json (e.g. `{"hooks": ...}`).
    `tool_search=False` sets ENABLE_TOOL_SEARCH=false, so MCP tools are offered in the
    first request and the model can call them directly instead of via ToolSearch.
    """

    kind = "claude"

    def __init__(
        self,
        *,
        model: AnthropicModel,
        allow: Sequence[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        tool_search: bool = False,
        **kwargs: Any,
    ) -> None:
        self.allow = allow
        self.settings = dict(settings or {})
        self.tool_search = tool_search
        super().__init__(model=model, **kwargs)

    @property
    def mcp_config(self) -> Path:
        """The file passed with --mcp-config, in both modes."""
        return self.home / "mcp.json"

    def client_env(self) -> dict[str, str]:
        env = {
            "ANTHROPIC_BASE_URL": self.model.base_url,
            "ANTHROPIC_API_KEY": CLAUDE_API_KEY,
            **CLAUDE_QUIET_ENV,
        }
        if not self.tool_search:
            env["ENABLE_TOOL_SEARCH"] = "false"
        return env

    def write_config(self) -> None:
        state = {
            "hasCompletedOnboarding": True,
            "lastOnboardingVersion": CLAUDE_VERSION,
            "customApiKeyResponses": {"approved": [CLAUDE_API_KEY[-20:]], "rejected": []},
            "projects": {str(self.project): {"hasTrustDialogAccepted": True}},
        }
        (self.home / ".claude.json").write_text(json.dumps(state, indent=2))
        allow = list(self.allow) if self.allow is not None else ["Bash"]
        if self.allow is None and self.mcp is not None:
            allow.append(f"mcp__{self.mcp.name}")
        settings = {"permissions": {"allow": allow}, **self.settings}
        (self.home / ".claude").mkdir(exist_ok=True)
        (self.home / ".claude" / "settings.json").write_text(json.dumps(settings, indent=2))
        servers: dict[str, Any] = {}
        if self.mcp is not None:
            servers[self.mcp.name] = {
                "type": "stdio",
                "command": self.mcp.command,
                "args": list(self.mcp.args),
                "env": self.mcp_env(),
            }
        self.mcp_config.write_text(json.dumps({"mcpServers": servers}, indent=2))

    def headless_argv(self, prompt: str, args: Sequence[str]) -> list[str]:
        return [str(self.clients.claude), "-p", prompt, "--mcp-config", str(self.mcp_config), *args]

    def tui_argv(self, args: Sequence[str]) -> list[str]:
        return [str(self.clients.claude), "--mcp-config", str(self.mcp_config), *args]

    def is_idle(self, screen: str) -> bool:
        # Busy: the footer says "esc to interrupt". Idle: the input box, a prompt-glyph
        # line right under a horizontal rule, is drawn and empty.
        if "esc to interrupt" in screen:
            return False
        lines = screen.splitlines()
        return any(
            line.strip() == CLAUDE_PROMPT and above.startswith("\u2500")
            for above, line in itertools.pairwise(lines)
        )

    def submit(self, pane: Pane, text: str) -> None:
        pane.type_line(text)

    def transcripts(self) -> list[Path]:
        found = (self.home / ".claude" / "projects").glob("*/*.jsonl")
        return sorted(found, key=lambda p: p.stat().st_mtime)


class CodexAgent(Agent[ResponsesRequest]):
    """Codex CLI with the scripted provider, no approvals, full access, a trusted project.

    `daemon_auto_start` writes `[features] daemon_auto_start`. Default False: with the
    daemon, each HOME gets a ~400 MB copy of the app-server and the TUI needs ~4 s more to
    start, and the MCP servers hang off the daemon instead of the TUI; None leaves the
    client's default (on). `config` is extra TOML appended to config.toml.
    """

    kind = "codex"

    def __init__(
        self,
        *,
        model: ResponsesModel,
        daemon_auto_start: bool | None = False,
        config: str = "",
        **kwargs: Any,
    ) -> None:
        self.daemon_auto_start = daemon_auto_start
        self.extra_config = config
        super().__init__(model=model, **kwargs)

    @property
    def codex_home(self) -> Path:
        return self.home / ".codex"

    def client_env(self) -> dict[str, str]:
        return {CODEX_KEY_VAR: "scripted-model-key"}

    def write_config(self) -> None:
        lines = [
            'model_provider = "scripted"',
            f"model = {_toml(CODEX_MODEL)}",
            'approval_policy = "never"',
            'sandbox_mode = "danger-full-access"',
            "check_for_update_on_startup = false",
            "",
            "[model_providers.scripted]",
            'name = "scripted"',
            f"base_url = {_toml(self.model.base_url + '/v1')}",
            'wire_api = "responses"',
            f"env_key = {_toml(CODEX_KEY_VAR)}",
            "",
            f"[projects.{_toml(str(self.project))}]",
            'trust_level = "trusted"',
            "",
            "[analytics]",
            "enabled = false",
            "",
            "[feedback]",
            "enabled = false",
            "",
            # In config rather than `--disable` flags: with the daemon on, flags that differ
            # from the daemon's settings open a blocking "incompatible feature settings"
            # dialog; config is read by both.
            "[features]",
            "plugins = false",
            "remote_plugin = false",
            "apps = false",
        ]
        if self.daemon_auto_start is not None:
            lines.append(f"daemon_auto_start = {str(self.daemon_auto_start).lower()}")
        if self.mcp is not None:
            env = ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in self.mcp_env().items())
            lines += [
                "",
                f"[mcp_servers.{self.mcp.name}]",
                f"command = {_toml(self.mcp.command)}",
                f"args = [{', '.join(_toml(a) for a in self.mcp.args)}]",
                f"env = {{ {env} }}",
                # Codex waits for a required server before the first request, so a slow
                # start cannot miss turn one.
                "required = true",
            ]
        self.codex_home.mkdir(exist_ok=True)
        config = "\n".join(lines) + "\n"
        if self.extra_config:
            config += "\n" + self.extra_config.strip() + "\n"
        (self.codex_home / "config.toml").write_text(config)

    def headless_argv(self, prompt: str, args: Sequence[str]) -> list[str]:
        return [str(self.clients.codex), "exec", "--skip-git-repo-check", *args, prompt]

    def tui_argv(self, args: Sequence[str]) -> list[str]:
        return [str(self.clients.codex), *args]

    def is_idle(self, screen: str) -> bool:
        # Busy: "esc to interrupt" (a turn) or "Waiting for startup". Started: the status
        # line under the composer names the model; before that a welcome screen shows.
        if "esc to interrupt" in screen or "Waiting for startup" in screen:
            return False
        lines = [line.strip() for line in screen.splitlines()]
        return any(line.startswith(f"{CODEX_MODEL} ") for line in lines) and any(
            line.startswith(CODEX_PROMPT) for line in lines
        )

    def submit(self, pane: Pane, text: str) -> None:
        pane.paste_line(text)

    def transcripts(self) -> list[Path]:
        found = (self.codex_home / "sessions").glob("*/*/*/rollout-*.jsonl")
        return sorted(found, key=lambda p: p.stat().st_mtime)

    def thread_ids(self) -> list[str]:
        """Thread ids of this agent's rollouts (the file name ends with the id)."""
        return [p.stem[-36:] for p in self.transcripts()]


def _toml(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML for these values)."""
    return json.dumps(value)


def wait_for_transcript(agent: Agent[Any], *, timeout: float = 10.0) -> Path:
    """The agent's newest transcript, once one exists."""

    def newest() -> Path | None:
        found = agent.transcripts()
        return found[-1] if found else None

    return wait_until(
        newest,
        timeout=timeout,
        what=f"a {agent.kind} transcript in {agent.home}",
    )
