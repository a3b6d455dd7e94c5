"""`oxtail-py doctor`: is the wiring right? Each check says what it saw and, when it
fails, the command or step that fixes it.

Checks: the MCP server registered for each client found (Claude Code, Codex) with a
command that exists; the hooks installed and current (Claude Code) and installed,
current and trusted (Codex: hooks_install.check_codex, the typed check a
Codex-hosted server runs at start); tmux; each running server's identity source and pane proof;
registry entries that are stale or corrupt; quarantined mailbox lines and claims
stranded by dead readers. Read only: doctor changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from oxtail_py import tmux
from oxtail_py.cockpit.boxes import inspect_box
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import is_private_dir, load_json, read_private
from oxtail_py.layout import Layout, validate_mailbox_key
from oxtail_py.procs import process_snapshot, proven_pane
from oxtail_py.registry import Registry, SessionEntry
from oxtail_py.settings import Settings

Status = Literal["ok", "warn", "fail"]
SERVER_NAME: Final = "oxtail"  # the name setup registers (client_setup.SERVER_NAME)
_CLIENT_CONFIG_CAP: Final = 64 << 20  # ~/.claude.json keeps project history: it grows
_SETUP: Final = "run `oxtail-py setup`"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def _registered_command(settings: Settings, client: str) -> list[str] | str | None:
    """The registered server's argv, None if not registered, or why it cannot be read."""
    try:
        if client == "claude":
            data: Any = load_json(settings.claude_json, max_bytes=_CLIENT_CONFIG_CAP)
            entry = (data.get("mcpServers") or {}).get(SERVER_NAME) if isinstance(
                data, dict) else None
        else:
            raw = read_private(settings.codex_home / "config.toml", max_bytes=_CLIENT_CONFIG_CAP)
            entry = (tomllib.loads(raw.decode()).get("mcp_servers") or {}).get(SERVER_NAME)
    except FileNotFoundError:
        return None
    except (OSError, OxtailError, ValueError, UnicodeDecodeError) as exc:
        return f"unreadable: {exc}"
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return None
    args = entry.get("args") or []
    return [entry["command"], *[str(a) for a in args]] if isinstance(args, list) else None


def _interpreter_ok(argv: list[str]) -> str | None:
    """Why the registered command would not start our server, or None."""
    command = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0])
    if not command or not os.access(command, os.X_OK):
        return f"{argv[0]} does not exist or is not executable"
    if argv[1:3] == ["-m", "oxtail_py"]:
        try:
            done = subprocess.run([command, "-c", "import oxtail_py"], capture_output=True,
                                  timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{command} failed to start: {exc}"
        if done.returncode != 0:
            return f"{command} cannot import oxtail_py (reinstalled elsewhere?)"
    return None


def clients_found(settings: Settings) -> dict[str, bool]:
    """Which clients this machine has: on PATH, or their config in this HOME."""
    return {
        "claude": bool(shutil.which("claude")) or settings.claude_json.exists()
        or settings.claude_config_dir.exists(),
        "codex": bool(shutil.which("codex")) or settings.codex_home.exists(),
    }


def mcp_checks(settings: Settings) -> list[Check]:
    found = clients_found(settings)
    checks = []
    for client, label in (("claude", "Claude Code"), ("codex", "Codex")):
        name = f"MCP server registered for {label}"
        if not found[client]:
            checks.append(Check(name, "ok", f"{label} not found on this machine; skipped"))
            continue
        argv = _registered_command(settings, client)
        if argv is None or isinstance(argv, str):
            checks.append(Check(name, "fail", argv or "oxtail is not registered", _SETUP))
            continue
        why = _interpreter_ok(argv)
        checks.append(Check(name, "fail", f"{' '.join(argv)}: {why}", _SETUP) if why else
                      Check(name, "ok", " ".join(argv)))
    return checks


def hook_checks(settings: Settings) -> list[Check]:
    # tomlkit and the Codex config readers: only doctor and `status --check` pay for them.
    from oxtail_py.hooks_install import check_codex, hooks_problem

    found = clients_found(settings)
    claude = "Claude Code hooks installed and current"
    problem = hooks_problem(settings) if found["claude"] else None
    checks = [Check(claude, "fail", problem, _claude_fix(problem)) if problem else
              Check(claude, "ok", "installed" if found["claude"] else "no Claude Code; skipped")]
    name = "Codex hooks installed, current and trusted"
    if not found["codex"]:
        return [*checks, Check(name, "ok", "no Codex; skipped")]
    # The typed check a Codex-hosted server runs at start (codex_hooks_check).
    codex = check_codex(settings)
    checks.append(
        Check(name, "ok", f"installed in {codex.source}, trusted") if codex.ok else
        Check(name, "fail", f"{codex.problem}: {codex.detail}", codex.fix)
    )
    return checks


def _claude_fix(problem: str) -> str:
    """The command the problem sentence names (install-hook, or setup)."""
    return "run `oxtail-py install-hook`" if "install-hook" in problem else _SETUP


def tmux_check() -> Check:
    path = shutil.which("tmux")
    if path is None:
        return Check("tmux present", "fail", "tmux is not on PATH: agents cannot be woken "
                     "and panes are not shown", "install tmux and run your agents in it")
    return Check("tmux present", "ok", path)


def server_checks(layout: Layout) -> list[Check]:
    checks: list[Check] = []
    directory = layout.sessions_dir
    if not is_private_dir(directory):
        return [Check("running servers", "ok", "none (no agent has started)")]
    try:
        panes = tmux.list_panes()
    except tmux.TmuxError:
        panes = []
    by_pid = {p.pane_pid: p.pane_id for p in panes}
    with process_snapshot():
        for name in sorted(os.listdir(directory)):
            if name.endswith(".json") and not name.startswith("."):
                checks.append(_server_check(directory / name, by_pid))
    return checks or [Check("running servers", "ok", "none")]


def _server_check(path: Path, pane_pids: dict[int, str]) -> Check:
    loaded = Registry._load(path)
    if not isinstance(loaded, SessionEntry):
        return Check(f"registry {path.name}", "warn", f"corrupt entry ignored: {loaded}",
                     f"remove {path} if no server of yours wrote it")
    label = f"server pid {loaded.server_pid} ({loaded.client.type or 'unknown client'})"
    if not loaded.identity.is_alive():
        return Check(label, "warn", "stale entry: its server is gone (readers prune it)",
                     f"nothing to do, or remove {path}")
    client = loaded.client
    pane = proven_pane(loaded.server_pid, pane_pids)
    where = f"pane {pane} (proven)" if pane else "no pane proven (not in tmux, or a shared daemon)"
    if client.session_id is None:
        return Check(label, "warn", f"no session id yet; {where}",
                     "call get_my_session in that agent: it prints the claim command")
    return Check(label, "ok", f"session {client.session_id[:8]} from "
                 f"{client.identity_source or '?'}; {where}")


def mailbox_checks(layout: Layout) -> list[Check]:
    directory = layout.mailboxes_dir
    if not is_private_dir(directory):
        return [Check("mailboxes", "ok", "none yet")]
    quarantined, stranded, broken = 0, 0, []
    for name in sorted(os.listdir(directory)):
        try:
            view = inspect_box(layout.mailbox(validate_mailbox_key(name)))
        except OxtailError:
            broken.append(name)
            continue
        quarantined += view.quarantined
        stranded += view.stranded_claims
        broken += [f"{name}: {p}" for p in view.problems]
    return [
        Check("quarantined lines", "warn" if quarantined else "ok",
              f"{quarantined} corrupt line(s) kept in quarantine.jsonl files",
              "read mailboxes/*/quarantine.jsonl, then delete them" if quarantined else None),
        Check("stranded claims", "warn" if stranded else "ok",
              f"{stranded} claim(s) of readers that are gone",
              "nothing to do: the owner's next read takes them first" if stranded else None),
        *[Check("mailbox", "warn", b, "remove what is not a mailbox of ours") for b in broken],
    ]


def run_doctor(settings: Settings) -> list[Check]:
    layout = Layout(settings.root)
    steps: list[Callable[[], list[Check]]] = [
        lambda: mcp_checks(settings),
        lambda: hook_checks(settings),
        lambda: [tmux_check()],
        lambda: server_checks(layout),
        lambda: mailbox_checks(layout),
    ]
    checks: list[Check] = []
    for step in steps:
        try:
            checks += step()
        except (OSError, OxtailError) as exc:  # one broken check must not hide the others
            checks.append(Check("doctor", "fail", f"a check failed: {exc}"))
    return checks
