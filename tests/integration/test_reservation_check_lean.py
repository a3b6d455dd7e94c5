"""The lean reservation check the rendered hook starts for an edit tool (`python -I -S`,
reservation_check.main): what it imports, and the cases it must decide exactly as every
other reader of reservations does (dead and expired holders, hostile holder files, a
forged registry entry, a hostile repository as the cwd)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, identity_of
from oxtail_py.registry import ClientInfo, Registry, SessionEntry, StateCard
from oxtail_py.reservation_patterns import normalize
from oxtail_py.reservations import Holder, ReservationBook
from tests.integration.hookkit import home, hook, run_hook

__all__ = ["home", "hook"]  # fixtures

ME = "11111111-1111-4111-8111-111111111111"
PEER = "22222222-2222-4222-8222-222222222222"
# Never on the lean path: each costs milliseconds on every edit tool call (or is not ours
# to load there: the MCP SDK, psutil, site-packages).
HEAVY = ("dataclasses", "pathlib", "typing", "inspect", "hashlib", "_hashlib", "datetime",
         "importlib.metadata", "contextvars", "psutil", "mcp", "pydantic", "oxtail_py.layout",
         "oxtail_py.registry", "oxtail_py.settings", "oxtail_py.framing", "oxtail_py.procs",
         "oxtail_py.reservations", "oxtail_py.hookdrain", "oxtail_py.hook_output",
         "oxtail_py.messages", "oxtail_py.scope", "site")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "src").mkdir()
    return root


def _sleeper() -> tuple[subprocess.Popen[bytes], ProcessIdentity]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    ident = identity_of(proc.pid)
    assert ident is not None
    return proc, ident


@pytest.fixture
def peer() -> Iterator[ProcessIdentity]:
    proc, ident = _sleeper()
    try:
        yield ident
    finally:
        proc.kill()
        proc.wait()


def reserve(layout: Layout, project: Path, server: ProcessIdentity, path: str, *,
            ttl_s: int = 600, now: float | None = None) -> None:
    pattern = normalize(path, project)
    got = ReservationBook(layout, project).reserve(
        Holder(server, PEER, "claude", "peer-pane"),
        [(pattern.given, pattern.pattern, pattern.regex, pattern.kind)],
        exclusive=True, ttl_s=ttl_s, reason="lean", now=now)
    assert got.granted


def edit(project: Path, target: str, *, sid: str = ME) -> str:
    return json.dumps({"session_id": sid, "transcript_path": "/t.jsonl", "cwd": str(project),
                       "hook_event_name": "PreToolUse", "tool_name": "Edit",
                       "tool_input": {"file_path": str(project / target)}},
                      separators=(",", ":"))


def denied(proc: subprocess.CompletedProcess[str]) -> bool:
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout:
        return False
    out: dict[str, Any] = json.loads(proc.stdout)["hookSpecificOutput"]
    return out.get("permissionDecision") == "deny"


def test_the_lean_check_imports_nothing_heavy_and_runs_without_site(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity, tmp_path: Path
) -> None:
    """The real hook's interpreter, wrapped to report its argv and every import
    (-X importtime writes to the helper's stderr: hooks/errors.log)."""
    reserve(layout, project, peer, "src/app.py")
    argv_log = tmp_path / "argv"
    spy = tmp_path / "spy-python"
    spy.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv_log}\n'
                   f'exec {sys.executable} -X importtime "$@"\n')
    spy.chmod(0o755)
    script = tmp_path / "oxtail-hook"
    text = hook.read_text()
    script.write_text(text.replace(f"py={sys.executable}", f"py={spy}"))
    script.chmod(0o755)
    assert denied(run_hook(hook, "pretooluse", edit(project, "src/app.py"), script=script,
                           client="claude"))
    argv = argv_log.read_text().splitlines()
    assert argv[:2] == ["-I", "-S"], argv
    assert "oxtail_py.reservation_check" in argv
    log = (layout.hooks_dir / "errors.log").read_text()
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", log, re.M))
    assert "oxtail_py.reservation_check" in imported and "json" in imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_a_dead_holders_file_is_deleted_and_an_expired_reservation_ignored(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity
) -> None:
    proc, dead = _sleeper()
    reserve(layout, project, dead, "src/dead.py")
    proc.kill()
    proc.wait()
    holder_file = layout.reservations(project).holder(dead)
    assert holder_file.exists()
    assert not denied(run_hook(hook, "pretooluse", edit(project, "src/dead.py"),
                               client="claude"))
    # deleted by the hook itself: the next edit tool call stays pure shell
    assert not holder_file.exists()
    reserve(layout, project, peer, "src/old.py", ttl_s=60, now=time.time() - 120)
    assert not denied(run_hook(hook, "pretooluse", edit(project, "src/old.py"),
                               client="claude"))
    assert layout.reservations(project).holder(peer).exists()  # its holder lives: kept


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_a_fifo_or_symlink_at_a_holder_file_never_hangs_or_blocks(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity, tmp_path: Path,
    kind: str
) -> None:
    reserve(layout, project, peer, "src/app.py")
    path = layout.reservations(project).holder(peer)
    real = tmp_path / "elsewhere.json"
    real.write_bytes(path.read_bytes())
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(real)
    proc = run_hook(hook, "pretooluse", edit(project, "src/app.py"), client="claude",
                    timeout=10)
    assert not denied(proc)
    assert not os.path.lexists(path)  # set aside (q.*), as every reader does
    assert real.read_bytes()  # a link is never followed, let alone written through


def test_a_registry_entry_the_registry_rejects_is_ignored_by_the_hook_too(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity
) -> None:
    """A forged entry for the holder's server naming the caller's session: Registry.get
    rejects it (bad role), so the holder stays PEER and the caller is denied."""
    reserve(layout, project, peer, "src/app.py")
    forged = SessionEntry(peer.pid, peer.start, client=ClientInfo(session_id=ME),
                          state=StateCard(role="NOT A ROLE"))
    layout.sessions_dir.mkdir(mode=0o700, exist_ok=True)
    layout.session_file(peer.pid).write_text(json.dumps(forged.to_dict()))
    assert Registry(layout).get(peer) is None
    assert denied(run_hook(hook, "pretooluse", edit(project, "src/app.py"), client="claude"))
    # the same entry, well-formed: the registry accepts it, and so does the hook
    forged.state.role = "reviewer"
    layout.session_file(peer.pid).write_text(json.dumps(forged.to_dict()))
    assert Registry(layout).get(peer) is not None
    assert not denied(run_hook(hook, "pretooluse", edit(project, "src/app.py"),
                               client="claude"))


def test_a_hook_installed_before_the_lean_entry_still_gets_the_same_deny(
    layout: Layout, project: Path, peer: ProcessIdentity
) -> None:
    """Older hooks start `oxtail_py.hookdrain ... reservecheck`: it runs the same check."""
    reserve(layout, project, peer, "src/app.py")
    code = ("import sys; from oxtail_py.hookdrain import main; "
            "raise SystemExit(main(sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "--root", str(layout.root), "--client", "claude",
            "reservecheck", ME]
    old = subprocess.run(argv, input=edit(project, "src/app.py"), capture_output=True,
                         text=True, timeout=30)
    assert denied(old)
    lean = subprocess.run([*argv[:2], code.replace("hookdrain", "reservation_check"),
                           *argv[3:]], input=edit(project, "src/app.py"),
                          capture_output=True, text=True, timeout=30)
    def same(out: str) -> str:  # the time left may tick between the two runs
        return re.sub(r"\d+ min \d+ s left", "", out)

    assert same(lean.stdout) == same(old.stdout)


@pytest.mark.parametrize("planted", ["non-ascii-digits", "directory-of-a-dead-holder"])
def test_a_strange_name_or_a_directory_among_holder_files_never_breaks_a_reader(
    layout: Layout, hook: Path, project: Path, peer: ProcessIdentity, planted: str
) -> None:
    """`h.²-1.00.json` (str.isdigit() takes "²", int() does not) and a directory where a
    dead holder's file would be: the check still denies the live holder's file, and the
    tools' reader (ReservationBook) still lists it."""
    reserve(layout, project, peer, "src/app.py")
    directory = layout.reservations(project).holder(peer).parent
    if planted == "non-ascii-digits":
        (directory / "h.\u00b2-1.00.json").write_text("{}")
    else:
        dead, ident = _sleeper()
        dead.kill()
        dead.wait()
        (directory / f"h.{ident.token()}.json").mkdir()
    assert denied(run_hook(hook, "pretooluse", edit(project, "src/app.py"), client="claude"))
    holders = ReservationBook(layout, project).all()
    assert [h.holder.server for h in holders] == [peer]
