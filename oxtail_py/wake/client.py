"""Which process is a real Claude Code or Codex client: judged by what the kernel runs.

A process's name and argv[0] are its own to choose (`exec -a claude`, a symlink named
claude, prctl), and a registry entry says whatever its writer put there. The executable
the kernel runs (/proc/<pid>/exe, set at exec, symlinks resolved) is not chosen after the
fact. The rule, for the executable file (regular, executable, not deleted):

  native  named like a shipped client binary: `claude`, `claude.exe` (npm's
          @anthropic-ai/claude-code and its per-platform package, Homebrew),
          `.../claude/versions/<version>` (the native installer), `codex` or
          `codex-<target triple>` (@openai/codex's vendor binary);
  script  a JavaScript runtime (node, nodejs, bun) whose script argument is a regular
          file at a client package's entry point: `@anthropic-ai/claude-code/cli.js`
          (the npm releases before the native binary), `@openai/codex/bin/codex.js`.

A runtime that rewrote its own argv (node's `process.title = ...`) no longer shows its
script and is refused: nothing the kernel keeps names the script then. The pinned clients
run natively (Claude Code's npm package ships bin/claude.exe; its cli-wrapper.cjs and
@openai/codex's codex.js spawn the native binary, which is the process above the server).

What this does not prove is who built the file: code running as the same user can install
a fake client under those names. The rule stops a claim (an entry, a process name, an
argv[0]) from steering a wake; the wake's other checks (the client's live cwd and its
pane's path inside the project) keep a real client of another project out.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass
from typing import Final

import psutil

from oxtail_py.identity import CLAUDE, CODEX

_CLAUDE_NATIVE: Final = frozenset({"claude", "claude.exe"})
_CODEX_NATIVE: Final = re.compile(r"codex(?:-(?:x86_64|aarch64|arm64)-[a-z0-9_-]+)?")
_VERSION: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*")
_RUNTIMES: Final = re.compile(r"(?:node|nodejs|node[0-9]+|bun)")
_ENTRIES: Final = (
    ("/@anthropic-ai/claude-code/cli.js", CLAUDE),
    ("/@anthropic-ai/claude-code/cli.mjs", CLAUDE),
    ("/@openai/codex/bin/codex.js", CODEX),
)


@dataclass(frozen=True, slots=True)
class ClientCheck:
    """The verdict on one process: `kind` (claude / codex) when it is a real client,
    else None and `reason` saying why not."""

    pid: int
    exe: str | None  # the executable the kernel runs
    kind: str | None
    reason: str = ""


def check_client(pid: int) -> ClientCheck:
    """Is the live process `pid` a Claude Code or Codex client (see the module doc)?"""
    try:
        proc = psutil.Process(pid)
        exe = _exe_of(proc)
        argv = proc.cmdline()
        cwd = proc.cwd()
    except (psutil.Error, OSError) as exc:
        return ClientCheck(pid, None, None, f"pid {pid} cannot be inspected ({exc})")
    return judge_executable(pid, exe, argv, cwd)


def judge_executable(pid: int, exe: str, argv: list[str], cwd: str) -> ClientCheck:
    """The rule itself, on what the kernel reported for `pid`."""
    if not exe or exe.endswith(" (deleted)") or not os.path.isabs(exe):
        return ClientCheck(pid, exe or None, None, f"pid {pid} runs a deleted or unknown file")
    if not _is_executable_file(exe):
        return ClientCheck(pid, exe, None, f"{exe} is not a regular executable file")
    base = os.path.basename(exe)
    parent = os.path.dirname(exe)
    if base in _CLAUDE_NATIVE or (
        _VERSION.fullmatch(base)
        and os.path.basename(parent) == "versions"
        and os.path.basename(os.path.dirname(parent)) == "claude"
    ):
        return ClientCheck(pid, exe, CLAUDE)
    if _CODEX_NATIVE.fullmatch(base):
        return ClientCheck(pid, exe, CODEX)
    if _RUNTIMES.fullmatch(base):
        script = _script_argument(argv)
        if script is None:
            # Also when a script rewrote its process title (argv): then nothing the kernel
            # keeps says which script it is, and an unproven client is not woken.
            return ClientCheck(
                pid, exe, None, f"{base} (pid {pid}) shows no script in its argv (title set?)"
            )
        path = os.path.realpath(os.path.join(cwd, script))
        for entry, kind in _ENTRIES:
            if path.endswith(entry) and _is_regular(path):
                return ClientCheck(pid, exe, kind)
        return ClientCheck(
            pid, exe, None, f"{base} (pid {pid}) runs {path}, not a Claude Code or Codex entry"
        )
    return ClientCheck(
        pid, exe, None, f"pid {pid} runs {exe}, not a Claude Code or Codex executable"
    )


def _exe_of(proc: psutil.Process) -> str:
    if sys.platform == "linux":
        # Straight from the kernel: psutil may fall back to argv[0] when the link is
        # unreadable, and argv[0] is exactly what a process may lie about.
        return os.readlink(f"/proc/{proc.pid}/exe")
    return proc.exe()


def _script_argument(argv: list[str]) -> str | None:
    """The runtime's script: its first argument that is not an option."""
    for arg in argv[1:]:
        if arg == "--":
            continue
        if not arg.startswith("-"):
            return arg
    return None


def _is_executable_file(path: str) -> bool:
    return _is_regular(path) and os.access(path, os.X_OK)


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
