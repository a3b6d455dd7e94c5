"""A scenario: the agents of one test, their shared AGENTMAIL_HOME and tmux server.

Tests ask the scenario for agents; it owns everything it made and tears it all down, in
the order that leaves nothing behind: agents (their processes), then tmux, then the model
servers, whose script errors are raised last so a scenario bug fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .agents import Agent, ClaudeAgent, CodexAgent, McpServer, oxtail_server
from .anthropic import AnthropicModel, AnthropicRequest
from .clients import Clients
from .model import ModelServer, Script
from .responses import ResponsesModel, ResponsesRequest
from .tmux import Tmux

# Sentinel: "the default MCP server", distinct from None ("no MCP server").
OXTAIL: Any = object()


class Scenario:
    def __init__(self, *, clients: Clients, root: Path) -> None:
        self.clients = clients
        self.root = root
        self.agentmail_home = root / "agentmail"
        self.agentmail_home.mkdir(parents=True, exist_ok=True)
        self.agents: list[Agent[Any]] = []
        self.models: list[ModelServer[Any]] = []
        self._tmux: Tmux | None = None

    @property
    def tmux(self) -> Tmux:
        """The scenario's private tmux server, started on first use."""
        if self._tmux is None:
            self._tmux = Tmux()
        return self._tmux

    def project(self, name: str = "project") -> Path:
        """A project dir (with `.git`) that several agents may share."""
        path = self.root / name
        (path / ".git").mkdir(parents=True, exist_ok=True)
        return path

    def _agent_root(self, kind: str) -> Path:
        count = sum(1 for a in self.agents if a.kind == kind)
        return self.root / f"{kind}-{count + 1}"

    def _mcp(self, mcp: McpServer | None) -> McpServer | None:
        return oxtail_server(self.agentmail_home) if mcp is OXTAIL else mcp

    def claude(
        self,
        *,
        script: Script[AnthropicRequest] | None = None,
        model: AnthropicModel | None = None,
        mcp: McpServer | None = OXTAIL,
        project: Path | None = None,
        **kwargs: Any,
    ) -> ClaudeAgent:
        """A Claude Code agent with its own scripted model unless `model` is given.
        `mcp` defaults to our server (`python -m oxtail_py serve`); None for none."""
        if model is None:
            model = AnthropicModel(script)
            self.models.append(model)
        agent = ClaudeAgent(
            clients=self.clients,
            root=self._agent_root("claude"),
            model=model,
            agentmail_home=self.agentmail_home,
            project=project or self.project(),
            mcp=self._mcp(mcp),
            tmux=self.tmux,
            **kwargs,
        )
        self.agents.append(agent)
        return agent

    def codex(
        self,
        *,
        script: Script[ResponsesRequest] | None = None,
        model: ResponsesModel | None = None,
        mcp: McpServer | None = OXTAIL,
        project: Path | None = None,
        **kwargs: Any,
    ) -> CodexAgent:
        """A Codex agent, as `claude()`."""
        if model is None:
            model = ResponsesModel(script)
            self.models.append(model)
        agent = CodexAgent(
            clients=self.clients,
            root=self._agent_root("codex"),
            model=model,
            agentmail_home=self.agentmail_home,
            project=project or self.project(),
            mcp=self._mcp(mcp),
            tmux=self.tmux,
            **kwargs,
        )
        self.agents.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.agents:
            agent.close()
        if self._tmux is not None:
            self._tmux.close()
        for model in self.models:
            model.close()
        for model in self.models:
            model.check()
