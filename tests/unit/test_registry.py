"""Registry: pruning by pid + start time, rejects, collapse per session, clean exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, identity_of, self_identity
from oxtail_py.registry import ClientInfo, Registry, SessionEntry


def _entry(ident: ProcessIdentity, session_id: str | None = None) -> SessionEntry:
    return SessionEntry(
        ident.pid, ident.start, client=ClientInfo(type="claude", session_id=session_id)
    )


def _live_child() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_write_then_read_round_trips_with_0600(layout: Layout) -> None:
    reg = Registry(layout)
    entry = _entry(self_identity(), "sess-1")
    entry.state.purpose = "refactoring the parser"
    reg.write(entry)
    assert reg.read_all() == [entry]
    assert oct(os.stat(layout.session_file(entry.server_pid)).st_mode & 0o777) == "0o600"


def test_dead_and_pid_reused_entries_are_pruned(layout: Layout) -> None:
    reg = Registry(layout)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone_ident = identity_of(gone.pid) or ProcessIdentity(gone.pid, "1.00")
    gone.wait()
    reg.write(_entry(ProcessIdentity(gone.pid, gone_ident.start), "dead-sess"))
    me = self_identity()
    reused = ProcessIdentity(me.pid, f"{float(me.start) - 50:.2f}")  # our pid, older process
    reg.write(_entry(reused, "reused-sess"))
    assert reg.read_all() == []
    assert not layout.session_file(gone.pid).exists()
    assert not layout.session_file(me.pid).exists()


def test_bad_files_are_skipped_and_reported_not_fatal(layout: Layout) -> None:
    reg = Registry(layout)
    child = _live_child()
    try:
        ident = identity_of(child.pid)
        assert ident is not None
        ensure_tree(layout.root, layout.sessions_dir)
        (layout.sessions_dir / "123.json").write_text("{not json")
        (layout.sessions_dir / "124.json").write_text("[1, 2]")
        (layout.sessions_dir / "125.json").write_text(json.dumps({"no": "pid"}))
        # a live server's entry copied under another name: the name must match
        (layout.sessions_dir / "999999.json").write_text(json.dumps(_entry(ident).to_dict()))
        (layout.sessions_dir / "126.json").symlink_to(layout.sessions_dir / "999999.json")
        reg.write(_entry(ident, "good"))
        scan = reg.scan()
        assert [e.client.session_id for e in scan.entries] == ["good"]
        rejected = {r.path.name: r.reason for r in scan.rejected}
        assert set(rejected) == {"123.json", "124.json", "125.json", "126.json", "999999.json"}
        assert "file name" in rejected["999999.json"]
        assert "symlink" in rejected["126.json"]
    finally:
        child.kill()
        child.wait()


def test_two_live_servers_of_one_session_collapse_to_the_freshest(layout: Layout) -> None:
    reg = Registry(layout)
    older = _live_child()
    newer = _live_child()
    try:
        old_ident, new_ident = identity_of(older.pid), identity_of(newer.pid)
        assert old_ident and new_ident
        reg.write(_entry(old_ident, "same"))
        reg.write(_entry(new_ident, "same"))
        reg.write(_entry(self_identity(), None))
        live = reg.read_all()
        assert {e.server_pid for e in live} == {newer.pid, os.getpid()}
    finally:
        for p in (older, newer):
            p.kill()
            p.wait()


def test_server_unregisters_on_sigterm_and_on_normal_exit(state_root: Path) -> None:
    script = (
        "import sys, time\n"
        "from oxtail_py.layout import Layout\n"
        "from oxtail_py.settings import Settings\n"
        "from oxtail_py.procs import self_identity\n"
        "from oxtail_py.registry import Registry, SessionEntry, unregister_on_exit\n"
        "reg = Registry(Layout(Settings.from_env().root)); me = self_identity()\n"
        "reg.write(SessionEntry(me.pid, me.start)); unregister_on_exit(reg, me)\n"
        "print('UP', flush=True)\n"
        "if sys.argv[1] == 'wait': time.sleep(60)\n"
    )
    layout = Layout(state_root)
    for how in ("wait", "exit"):
        proc = subprocess.Popen([sys.executable, "-c", script, how], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"UP\n"
        if how == "wait":
            assert layout.session_file(proc.pid).exists()
            proc.send_signal(signal.SIGTERM)
        proc.wait()
        assert not layout.session_file(proc.pid).exists()


def test_entries_with_malformed_fields_are_rejected_not_fatal(layout: Layout) -> None:
    reg = Registry(layout)
    me = self_identity()
    ensure_tree(layout.root, layout.sessions_dir)
    for bad in ({"session_id": "../../x"}, {"session_id": 42}, {"cwd": ["not", "a", "str"]}):
        entry = _entry(me, "ok-session").to_dict()
        entry["client"].update(bad)
        layout.session_file(me.pid).write_text(json.dumps(entry))
        scan = reg.scan()
        assert scan.entries == [] and "malformed registry entry" in scan.rejected[0].reason


def test_entries_with_out_of_range_numbers_or_bad_start_times_are_rejected(
    layout: Layout,
) -> None:
    reg = Registry(layout)
    me = self_identity()
    ensure_tree(layout.root, layout.sessions_dir)
    cases = {
        "server_pid": [1e400, -1, 1 << 40, True, "12"],
        "server_start": ["abc", 12.5, None, "1e400"],
    }
    for key, values in cases.items():
        for value in values:
            entry = _entry(me, "ok-session").to_dict()
            entry[key] = value
            layout.session_file(me.pid).write_text(json.dumps(entry))
            scan = reg.scan()  # must not raise (float("abc") used to, in the dedup)
            assert scan.entries == [], (key, value)
            assert "malformed registry entry" in scan.rejected[0].reason, (key, value)
