"""What the mail helper loads: the drain runs `python -I -S` (nothing of site-packages,
no site module), SessionStart keeps site-packages (psutil), and the drain does not pay
for shutil. Measured through the real hook, its interpreter wrapped to log its argv and
`-X importtime` (which the hook sends to hooks/errors.log)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import oxtail_py
from oxtail_py.layout import Layout
from tests.integration.hookkit import SID, context, home, hook, payload, run_hook, send

__all__ = ["home", "hook"]  # fixtures


def _spied(hook: Path, tmp_path: Path) -> tuple[Path, Path]:
    argv_log = tmp_path / "argv"
    spy = tmp_path / "spy-python"
    # one record per start: its arguments, each ended by \x1f, the record by \x1e
    spy.write_text(f'#!/bin/sh\nprintf "%s\\037" "$@" >> {argv_log}\n'
                   f'printf "\\036" >> {argv_log}\n'
                   f'exec {sys.executable} -X importtime "$@"\n')
    spy.chmod(0o755)
    script = tmp_path / "oxtail-hook"
    script.write_text(hook.read_text().replace(f"py={sys.executable}", f"py={spy}"))
    script.chmod(0o755)
    return script, argv_log


def _starts(argv_log: Path) -> list[list[str]]:
    records = argv_log.read_text().split("\x1e")[:-1]
    return [r.split("\x1f")[:-1] for r in records]


def _imported(layout: Layout) -> set[str]:
    log = (layout.hooks_dir / "errors.log").read_text()
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", log, re.M))


def test_the_drain_runs_without_site_and_sessionstart_with_it(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    script, argv_log = _spied(hook, tmp_path)
    send(layout, "through a lean start")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), script=script, client="claude")
    assert "through a lean start" in context(proc)
    [drain] = _starts(argv_log)
    assert drain[:3] == ["-I", "-S", "-c"], drain
    package = str(Path(oxtail_py.__file__).resolve().parent)
    assert drain[4:] == [package, "oxtail_py.hookdrain", "--root", str(layout.root),
                         "--client", "claude", "pretooluse", SID]
    imported = _imported(layout)
    assert "oxtail_py.mailbox" in imported
    assert not imported & {"site", "shutil", "psutil"}, imported & {"site", "shutil", "psutil"}
    run_hook(hook, "sessionstart", payload("SessionStart", source="startup"), script=script,
             client="claude")
    start = _starts(argv_log)[-1]
    assert start[:2] == ["-I", "-c"] and start[-1] == "sessionstart", start
