"""Which client (Claude Code or Codex) runs above a process, from the live process tree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import psutil

from oxtail_py.procs import ProcessIdentity, ancestors

CLAUDE: Final = "claude"
CODEX: Final = "codex"


def _client_of(proc: psutil.Process) -> str | None:
    try:
        names = [proc.name(), *proc.cmdline()[:2]]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for raw in names:
        base = os.path.basename(raw).lower()
        if base in ("claude", "claude.exe") or "claude-code" in raw:
            return CLAUDE
        if base == "codex" or base.startswith("codex-") or "@openai/codex" in raw:
            return CODEX
    return None


@dataclass(frozen=True, slots=True)
class ClientProcess:
    type: str
    pid: int
    start: str | None

    @property
    def identity(self) -> ProcessIdentity | None:
        return ProcessIdentity(self.pid, self.start) if self.start else None


def detect_client(pid: int) -> ClientProcess | None:
    """The nearest claude/codex process above `pid` in the live process tree."""
    for parent in ancestors(pid):
        kind = _client_of(parent)
        if kind is not None:
            try:
                start = f"{parent.create_time():.2f}"
            except psutil.Error:
                start = None
            return ClientProcess(kind, parent.pid, start)
    return None
