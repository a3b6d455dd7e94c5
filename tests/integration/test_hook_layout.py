"""One definition of the on-disk layout for the shell and Python: the hook template names
no path and no id shape by hand, and every path the rendered hook uses is the one
oxtail_py.layout computes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from oxtail_py import layout as on_disk
from oxtail_py.errors import InvalidSessionIdError
from oxtail_py.hooks_install import (
    hook_placeholders,
    hook_template,
    render,
    rendered_hook,
)
from oxtail_py.layout import Layout, ReservationPaths, validate_session_id
from oxtail_py.mailbox import Mailbox
from oxtail_py.names import ERRORS_LOG
from oxtail_py.procs import ProcessIdentity
from tests.integration.hookkit import SID, context, home, hook, payload, run_hook, send, spy_python

__all__ = ["home", "hook"]  # fixtures

PATHS_BLOCK = re.compile(r"# >>> paths.*?\n(.*?)# <<< paths", re.S)


def _code_lines(script: str) -> list[str]:
    """The script without its comments (ours never put a '#' inside a string)."""
    lines = []
    for line in script.splitlines()[1:]:
        code = line.split(" # ", 1)[0]
        if not code.lstrip().startswith("#"):
            lines.append(code)
    return lines


def test_the_template_spells_no_layout_name_by_hand() -> None:
    code = "\n".join(_code_lines(hook_template()))
    names = [on_disk.STATUS, on_disk.MAILBOXES, on_disk.INBOX, on_disk.CLAIM_PREFIX,
             on_disk.HOOKS, on_disk.PID_BOX_PREFIX, ERRORS_LOG, on_disk.OBLIGATIONS,
             on_disk.OWED]
    for name in names:
        # as a word of its own (shell variables like $status_dir are fine)
        found = re.findall(rf"(?<![A-Za-z_$]){re.escape(name)}(?![A-Za-z_=])", code)
        assert not found, f"{name!r} written by hand in the hook template"
    assert not re.search(rf"\b{on_disk.SESSION_ID_MAX}\b", code)
    assert "A-Z" not in code and "abcdefghij" not in code
    # every path the hook builds is a layout placeholder below a path variable
    [block] = PATHS_BLOCK.findall(hook_template())
    for line in block.strip().splitlines():
        assert re.fullmatch(r"[a-z_]+=\$[a-z_]+/(@[A-Z_]+@|\$sid)", line), line


def test_render_fills_every_placeholder_and_refuses_drift() -> None:
    rendered = rendered_hook(Layout(Path("/srv/agent mail")))
    assert not re.search(r"@[A-Z_]+@", rendered)
    assert "root=${AGENTMAIL_HOME:-'/srv/agent mail'}" in rendered
    values = hook_placeholders(Path("/r"))
    with pytest.raises(ValueError, match="unfilled"):
        render(hook_template() + "\n# @NEW_NAME@\n", values)
    with pytest.raises(ValueError, match="unused"):
        render(hook_template(), {**values, "EXTRA": "x"})


def test_every_rendered_path_is_the_layout_path(tmp_path: Path) -> None:
    root = tmp_path / "state root"
    layout = Layout(root)
    [block] = PATHS_BLOCK.findall(rendered_hook(layout))
    names = re.findall(r"^([a-z_]+)=", block, re.M)
    probe = block + "".join(f'printf "%s\\n" "${name}"\n' for name in names)
    out = subprocess.run(["sh", "-c", probe, "sh"], env={"root": str(root), "sid": SID},
                         capture_output=True, text=True, check=True).stdout
    shell = dict(zip(names, out.splitlines(), strict=True))
    box = layout.mailbox(SID)
    claim = box.claim(ProcessIdentity(4242, "1700000000.25"), "n0nce")
    assert shell == {
        "status_dir": str(layout.status_dir),
        "status_file": str(layout.status_file(SID)),
        "mailboxes_dir": str(layout.mailboxes_dir),
        "box": str(box.directory),
        "inbox": str(box.inbox),
        "claim_prefix": shell["claim_prefix"],
        "hooks_dir": str(layout.hooks_dir),
        "errors_log": str(layout.hooks_dir / ERRORS_LOG),
        "reservations_dir": str(layout.reservations_dir),
        "obligations_dir": str(layout.obligations_dir),
        "owed_root": str(layout.owed_dir(SID).parent),
        "owed_dir": str(layout.owed_dir(SID)),
    }
    assert str(claim).startswith(shell["claim_prefix"])
    assert Path(shell["claim_prefix"]).parent == box.directory
    assert box.is_claim_name(claim.name)


def test_a_dead_readers_claim_at_the_layout_path_starts_the_helper(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    script, record = spy_python(tmp_path, hook)
    send(layout, "stranded in a dead reader's claim")
    box = Mailbox.open(layout, SID)
    box.paths.inbox.rename(box.paths.claim(ProcessIdentity(2**22 + 7, "1.00"), "dead"))
    assert not box.paths.inbox.exists()
    text = context(run_hook(hook, "pretooluse", payload("PreToolUse"), script=script))
    assert "stranded in a dead reader's claim" in text and record.exists()


IDS = ["a", "Z9", "_a", "-a", "a-_", "a.b", "a b", "é", "pid-1", "pid-12-3.45", "x" * 128,
       "x" * 129, "0" * 5, "a\\u0000"]


def _python_accepts(sid: str) -> bool:
    try:
        validate_session_id(sid)
    except InvalidSessionIdError:
        return False
    return True


@pytest.mark.parametrize("compact", [True, False], ids=["client-json", "spaced-json"])
@pytest.mark.parametrize("sid", IDS)
def test_the_shell_accepts_exactly_the_session_ids_python_accepts(
    layout: Layout, hook: Path, sid: str, compact: bool
) -> None:
    body = json.dumps({"session_id": sid, "hook_event_name": "PreToolUse"}, ensure_ascii=False,
                      separators=(",", ":") if compact else None)
    proc = run_hook(hook, "pretooluse", body, env={"LC_ALL": "C.UTF-8"})
    assert (proc.returncode, proc.stdout) == (0, "")
    stamped = [p.name for p in layout.status_dir.iterdir()]
    assert stamped == ([sid] if _python_accepts(sid) else [])


def test_the_hooks_holder_glob_finds_the_layout_holder_file_and_nothing_else(
    layout: Layout, hook: Path, tmp_path: Path
) -> None:
    """The fast path starts the helper for an edit tool only while a holder file exists
    where layout.py puts it; a quarantined file, a lock or a temp file is not one."""
    script, record = spy_python(tmp_path, hook)
    edit = payload("PreToolUse", tool_name="Edit", tool_input={"file_path": "/tmp/x"})
    paths = layout.reservations(tmp_path / "project")
    paths.directory.mkdir(parents=True)
    holder = paths.holder(ProcessIdentity(4242, "1700000000.25"))
    for decoy in (paths.quarantine(holder.name, 1), paths.lock, paths.directory / (
            f".{holder.name}.1.tmp")):
        decoy.mkdir() if decoy == paths.lock else decoy.write_text("{}")
    assert (run_hook(hook, "pretooluse", edit, script=script).returncode, record.exists()) == (
        0, False)
    holder.write_text("{}")
    assert ReservationPaths.holder_of(holder.name) == ProcessIdentity(4242, "1700000000.25")
    assert run_hook(hook, "pretooluse", edit, script=script).returncode == 0
    assert record.exists()  # the helper looked (and found the file unusable: no output)


def test_site_is_skipped_only_where_liveness_needs_no_psutil(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """-S for the drain and the reservation check on Linux (/proc); elsewhere procs asks
    psutil, from site-packages, so the site module must run."""
    linux = rendered_hook(Layout(Path("/r")))
    assert "oxtail_py.hookdrain -S " in linux and "oxtail_py.reservation_check -S " in linux
    monkeypatch.setattr("sys.platform", "darwin")
    other = rendered_hook(Layout(Path("/r")))
    assert "oxtail_py.hookdrain '' " in other and "oxtail_py.reservation_check '' " in other
    assert not [line for line in other.splitlines()
                if " -S " in line and not line.lstrip().startswith("#")]
