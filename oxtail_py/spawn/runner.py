"""The process tmux starts for a spawned client: it runs the client and reports its end.

    python -I -c <loader> <spawns/<id>.env.json>

The environment file (0600, written by the spawner) holds the client's argv and its whole
environment; it is read and deleted at once, so the user's keys do not stay on disk and
never appear on a command line (tmux `-e` would show them to `ps`). The runner keeps
running while the client runs, as the pane's process: the spawner records this runner
(pid + start time) as what it launched. When the client exits, the runner writes
`spawns/<id>.exit.json` with its status (the spawner waits on that file's event); a client
that failed at start leaves its own error text on the screen for a while, so the spawner
can capture it for the caller.

Imports: the standard library and oxtail_py.fsio only (it starts on every spawn).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from oxtail_py.fsio import atomic_write_json, load_json

# A client that fails within this long failed to start: keep its screen for the spawner.
_START_PHASE_S: Final = 30.0
_LINGER_S: Final = 20.0
_FROM_PANE: Final = ("TMUX", "TMUX_PANE", "TERM", "COLORTERM")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].endswith(".env.json"):
        print("oxtail spawn runner: expected one environment file", file=sys.stderr)
        return 2
    env_file = Path(argv[1])
    exit_file = env_file.with_name(env_file.name.replace(".env.json", ".exit.json"))
    started = time.monotonic()
    try:
        try:
            spec = load_json(env_file)
        finally:
            env_file.unlink(missing_ok=True)
        client_argv = [str(a) for a in spec["argv"]]
        # The pane's own terminal facts come from tmux (this process); the rest is the user's.
        env = {str(k): str(v) for k, v in spec["env"].items()}
        env.update({k: os.environ[k] for k in _FROM_PANE if k in os.environ})
        child = subprocess.Popen(client_argv, env=env)
    except Exception as exc:  # whatever it is, the spawner must hear of it, not time out
        print(f"oxtail spawn: cannot start the client: {exc}", file=sys.stderr)
        _report(exit_file, 127, str(exc))
        time.sleep(_LINGER_S)
        return 127
    # Ctrl-C and friends in the pane are the client's: they must not end its runner.
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    status = child.wait()
    _report(exit_file, status, "")
    if status != 0 and time.monotonic() - started < _START_PHASE_S:
        print(f"\n[oxtail spawn: {os.path.basename(client_argv[0])} exited with status "
              f"{status}]", file=sys.stderr, flush=True)
        time.sleep(_LINGER_S)
    return status if status >= 0 else 128 - status


def _report(path: Path, status: int, error: str) -> None:
    try:
        atomic_write_json(path, {"status": status, "error": error[:2000]})
    except OSError as exc:  # the spawner then learns of it by its timeout
        print(f"oxtail spawn: cannot record the exit: {exc}", file=sys.stderr)


def loader_argv(env_file: Path) -> list[str]:
    """The runner's command line: this interpreter, isolated (-I: neither the project's
    cwd nor PYTHONPATH is on its path), loading this package from where it was imported."""
    package_parent = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {json.dumps(package_parent)}); "
        "from oxtail_py.spawn.runner import main; raise SystemExit(main(sys.argv))"
    )
    return [sys.executable, "-I", "-c", code, str(env_file)]
