"""The hook against hostile surroundings (issue 9, findings 1, 5 and 6): a repository
that shadows our modules, symlinks and FIFOs where our files belong, payloads built to
be slow, a state root that the shell and Python could disagree on. Every case: exit 0,
no hang, nothing written outside the root, and the mail still arrives (or waits)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.settings import Settings
from tests.integration.hookkit import SID, context, home, hook, payload, run_hook, send

__all__ = ["home", "hook"]  # fixtures

# Long enough for a Python start on a loaded machine; the old hook hung for ever (FIFO)
# or for 38 s (120 KiB before the key), so this only tells "returns" from "hangs".
HANG: float = 10.0


def _hostile_module(directory: Path, name: str, marker: Path) -> None:
    """`name` (a module, or a package if it ends in /) that leaves `marker` when imported."""
    code = f"open({str(marker)!r}, 'a').write({name!r} + ' imported\\n')\n"
    if name.endswith("/"):
        (directory / name).mkdir(parents=True)
        (directory / name / "__init__.py").write_text(code)
    else:
        (directory / name).write_text(code)


def test_the_helper_never_imports_from_the_cwd_or_pythonpath(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "hostile-code-ran"
    repo, elsewhere = tmp_path / "repo", tmp_path / "pythonpath"
    repo.mkdir()
    elsewhere.mkdir()
    for where in (repo, elsewhere):
        for name in ("oxtail_py/", "json.py", "sitecustomize.py", "psutil.py"):
            _hostile_module(where, name, marker)
    env = {"PYTHONPATH": str(elsewhere), "PYTHONSTARTUP": str(elsewhere / "json.py")}
    send(layout, "delivered despite the hostile repo")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), env=env, cwd=repo)
    assert "delivered despite the hostile repo" in context(proc)
    # SessionStart imports psutil (via identity) and runs in the same cwd
    proc = run_hook(hook, "sessionstart", payload("SessionStart", source="startup"), env=env,
                    cwd=repo)
    assert proc.returncode == 0
    assert not marker.exists(), marker.read_text()


def test_the_lean_reservation_check_never_imports_from_the_cwd_or_pythonpath(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    """The edit path starts its own entry (`python -I -S`, reservation_check.main): a repo
    that shadows it, or a module it imports, runs nothing, and the deny still comes."""
    from oxtail_py.procs import identity_of
    from oxtail_py.reservation_patterns import normalize
    from oxtail_py.reservations import Holder, ReservationBook

    marker = tmp_path / "hostile-code-ran"
    repo, elsewhere = tmp_path / "repo", tmp_path / "pythonpath"
    (repo / ".git").mkdir(parents=True)
    elsewhere.mkdir()
    for where in (repo, elsewhere):
        for name in ("oxtail_py/", "json.py", "re.py", "enum.py", "hashlib.py", "errno.py",
                     "_sha256.py", "_sha2.py",
                     "sitecustomize.py", "usercustomize.py"):
            _hostile_module(where, name, marker)
    env = {"PYTHONPATH": str(elsewhere), "PYTHONSTARTUP": str(elsewhere / "json.py"),
           "PYTHONHOME": str(elsewhere)}
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        server = identity_of(peer.pid)
        assert server is not None
        pattern = normalize("app.py", repo)
        ReservationBook(layout, repo).reserve(
            Holder(server, "peer-session-1"), [(pattern.given, pattern.pattern, pattern.regex,
                                                pattern.kind)],
            exclusive=True, ttl_s=600, reason="hostile repo")
        edit = payload("PreToolUse", cwd=str(repo), tool_name="Edit",
                       tool_input={"file_path": str(repo / "app.py")})
        proc = run_hook(hook, "pretooluse", edit, env=env, cwd=repo, client="claude")
    finally:
        peer.kill()
        peer.wait()
    assert proc.returncode == 0, proc.stderr
    assert '"permissionDecision":"deny"' in proc.stdout, proc.stdout
    assert not marker.exists(), marker.read_text()


def test_the_helper_loads_the_package_it_was_installed_from(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    # An install through PYTHONPATH only (no site-packages entry) must still work under
    # -I: the hook names the package directory, not a search path.
    import oxtail_py

    copy = tmp_path / "pkg" / "oxtail_py"
    shutil.copytree(Path(oxtail_py.__file__).parent, copy)
    marker = tmp_path / "copy-loaded"
    with (copy / "__init__.py").open("a") as init:
        init.write(f"\nopen({str(marker)!r}, 'w').write('yes')\n")
    script = tmp_path / "oxtail-hook"
    original = Path(oxtail_py.__file__).resolve().parent
    text = hook.read_text()
    assert f"package={original}\n" in text
    script.write_text(text.replace(f"package={original}\n", f"package={copy}\n"))
    script.chmod(0o755)
    send(layout, "through the copy")
    assert "through the copy" in context(run_hook(hook, "pretooluse", payload("PreToolUse"),
                                                  script=script))
    assert marker.read_text() == "yes"


def _move_hook_out(hook: Path, tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "oxtail-hook"
    script.parent.mkdir()
    shutil.copy2(hook, script)
    return script


def test_a_missing_hooks_dir_still_delivers(layout: Layout, hook: Path, tmp_path: Path) -> None:
    script = _move_hook_out(hook, tmp_path)
    shutil.rmtree(layout.hooks_dir)
    send(layout, "no hooks dir, still delivered")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), script=script)
    assert "no hooks dir, still delivered" in context(proc)
    assert not layout.hooks_dir.exists()


@pytest.mark.parametrize("linked", ["hooks", "status"])
def test_a_symlinked_dir_is_never_written_through(
    layout: Layout, hook: Path, tmp_path: Path, linked: str
) -> None:
    script = _move_hook_out(hook, tmp_path)
    target = tmp_path / "link-target"
    target.mkdir()
    shutil.rmtree(layout.root / linked)
    (layout.root / linked).symlink_to(target)
    send(layout, f"{linked}/ is a symlink")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), script=script)
    assert f"{linked}/ is a symlink" in context(proc)
    proc = run_hook(hook, "stop", payload("Stop", stop_hook_active=False), script=script)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert list(target.iterdir()) == []


def test_a_symlinked_status_file_is_not_followed(layout: Layout, hook: Path,
                                                 tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (layout.status_dir / SID).symlink_to(victim)
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert victim.read_text() == "precious"


def test_a_fifo_at_the_status_file_does_not_hang(layout: Layout, hook: Path) -> None:
    os.mkfifo(layout.status_dir / SID)
    send(layout, "behind a FIFO status")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), timeout=HANG)
    assert "behind a FIFO status" in context(proc)
    proc = run_hook(hook, "stop", payload("Stop"), timeout=HANG)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_a_fifo_at_the_inbox_does_not_hang(layout: Layout, hook: Path) -> None:
    box = Mailbox.open(layout, SID)
    os.mkfifo(box.paths.inbox)
    for event in ("pretooluse", "userpromptsubmit", "stop"):
        proc = run_hook(hook, event, payload("PreToolUse"), timeout=HANG)
        assert (proc.returncode, proc.stdout) == (0, ""), event
    assert (layout.status_dir / SID).read_text() == "idle"


def test_a_fifo_at_the_error_log_does_not_hang(layout: Layout, hook: Path) -> None:
    os.mkfifo(layout.hooks_dir / "errors.log")
    send(layout, "the log is a FIFO")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), timeout=HANG)
    assert "the log is a FIFO" in context(proc)


@pytest.mark.parametrize("shape", ["padding", "empty-strings"])
def test_120_kib_before_the_session_id_returns_and_still_finds_it(
    layout: Layout, hook: Path, shape: str
) -> None:
    if shape == "padding":
        body = json.dumps({"pad": "x" * 120 * 1024, "session_id": SID})
    else:  # a field for every two bytes: the most work for the split
        body = "{" + '"":0,' * (120 * 1024 // 5) + json.dumps({"session_id": SID})[1:]
    assert body.index('"session_id"') >= 120 * 1024
    proc = run_hook(hook, "pretooluse", body, timeout=HANG)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert (layout.status_dir / SID).read_text() == "busy"


def test_a_large_tool_input_after_the_id_does_not_hide_the_mail(
    layout: Layout, hook: Path
) -> None:
    send(layout, "after a big Write")
    content = 'line with "quotes" and "session_id": "not-me"\n' * 4000
    proc = run_hook(hook, "pretooluse",
                    payload("PreToolUse", tool_name="Write", tool_input={"content": content}),
                    timeout=HANG)
    assert "after a big Write" in context(proc)


def _without_root(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTMAIL_HOME"}
    return {**env, **(extra or {})}


@pytest.mark.parametrize(
    "body",
    [
        payload("PreToolUse", compact=False),
        json.dumps({"hook_event_name": "PreToolUse", "cwd": "/tmp", "session_id": SID}),
        json.dumps({"tool_input": {"text": '"session_id": "forged"'}, "session_id": SID}),
    ],
    ids=["spaced", "id-not-first", "forged-key-in-a-string-first"],
)
def test_a_payload_of_another_shape_still_finds_the_session(
    layout: Layout, hook: Path, body: str
) -> None:
    send(layout, "found by the split")
    assert "found by the split" in context(run_hook(hook, "pretooluse", body))


def test_the_installed_root_reaches_the_helper_without_agentmail_home(
    layout: Layout, hook: Path, home: Path
) -> None:
    # installed for a non-default root; the client runs the hook with no AGENTMAIL_HOME
    environ = _without_root()
    assert Settings.from_env(environ).root == home / ".agentmail" != layout.root
    send(layout, "found under the installed root")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), environ=environ)
    assert "found under the installed root" in context(proc)
    assert not (home / ".agentmail").exists()


@pytest.mark.parametrize("raw", ["~", "~/am", "~/am/../am2", "rel/am", "~user/am"])
def test_the_shell_and_python_agree_on_the_root(
    hook: Path, home: Path, tmp_path: Path, raw: str
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    environ = _without_root({"AGENTMAIL_HOME": raw, "HOME": str(home)})
    # the root the MCP server would use, run from the same cwd
    old = Path.cwd()
    os.chdir(cwd)
    try:
        root = Settings.from_env(environ).root
    finally:
        os.chdir(old)
    there = Layout(root)
    send(there, f"under {raw}")
    proc = run_hook(hook, "pretooluse", payload("PreToolUse"), environ=environ, cwd=cwd)
    assert f"under {raw}" in context(proc)
    assert (there.status_dir / SID).read_text() == "busy"
