"""procs: liveness by pid + start time, the parent chain, pane proof on real processes,
and the per-listing snapshot (each /proc entry read once, answers unchanged)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_py import procs
from oxtail_py.procs import (
    ProcessIdentity,
    identity_of,
    parent_pid,
    process_snapshot,
    proven_pane,
    self_identity,
    start_time,
)

# A parent that starts `sleep 60` and waits for it: the sleep's chain runs through it.
_PARENT_CODE = "import subprocess; subprocess.run(['sleep', '60'])"


def _child_of(proc: subprocess.Popen[bytes]) -> int:
    """The pid of `proc`'s one child, once it has started."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except FileNotFoundError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.02)
    raise AssertionError(f"{proc.pid} started no child")


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(parent pid, grandchild sleep pid): this test process -> python -> sleep."""
    proc = subprocess.Popen([sys.executable, "-c", _PARENT_CODE])
    yield from _run_chain(proc)


@pytest.fixture
def daemon_chain(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """Like `chain`, but the middle process is `codex app-server` by its argv (a symlink
    named codex to the Python binary): Codex's shared daemon."""
    codex = tmp_path / "codex"
    codex.symlink_to(os.path.realpath(sys.executable))
    proc = subprocess.Popen([str(codex), "-c", _PARENT_CODE, "app-server"])
    yield from _run_chain(proc)


def _run_chain(proc: subprocess.Popen[bytes]) -> Iterator[tuple[int, int]]:
    grandchild = None
    try:
        grandchild = _child_of(proc)
        yield proc.pid, grandchild
    finally:
        if grandchild is not None:
            os.kill(grandchild, signal.SIGKILL)  # the sleep we started, by its pid
        proc.kill()
        proc.wait()


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def test_parent_chain_and_start_time_of_real_processes(chain: tuple[int, int]) -> None:
    parent, sleep = chain
    assert parent_pid(sleep) == parent
    assert parent_pid(parent) == os.getpid()
    ident = identity_of(sleep)
    assert ident is not None and ident.is_alive()
    assert ProcessIdentity(sleep, "1.00").is_alive() is False  # same pid, other start


def test_zombie_is_not_alive_but_keeps_its_parent() -> None:
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/stat").read_bytes().split(b") ")[1][:1] != b"Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)
    try:
        assert start_time(proc.pid) is None
        assert parent_pid(proc.pid) == os.getpid()
        with process_snapshot():
            assert start_time(proc.pid) is None
            assert parent_pid(proc.pid) == os.getpid()
    finally:
        proc.wait()


def test_no_process_has_no_start_or_parent() -> None:
    for pid in (0, -1, 2**22 + 1):
        assert start_time(pid) is None and parent_pid(pid) is None


def test_proven_pane_walks_the_live_tree(chain: tuple[int, int]) -> None:
    parent, sleep = chain
    assert proven_pane(sleep, {parent: "%7"}) == "%7"
    assert proven_pane(sleep, {os.getpid(): "%8"}) == "%8"
    assert proven_pane(sleep, {12345678: "%9"}) is None


def test_a_codex_app_server_never_proves_a_pane(daemon_chain: tuple[int, int]) -> None:
    _daemon, sleep = daemon_chain
    # The pane's shell is above the daemon: the daemon serves every TUI, so not proof.
    assert proven_pane(sleep, {os.getpid(): "%3"}) is None
    with process_snapshot():
        assert proven_pane(sleep, {os.getpid(): "%3"}) is None


def test_snapshot_reads_each_proc_entry_once_and_answers_the_same(
    chain: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, sleep = chain
    outside = [proven_pane(sleep, {os.getpid(): "%1"}), start_time(sleep), parent_pid(sleep)]
    stat_reads: list[int] = []
    cmdline_reads: list[int] = []
    read_stat, read_cmdline = procs._read_stat, procs._read_is_shared_daemon

    def counting_stat(pid: int) -> procs.ProcStat | None:
        stat_reads.append(pid)
        return read_stat(pid)

    def counting_cmdline(pid: int) -> bool:
        cmdline_reads.append(pid)
        return read_cmdline(pid)

    monkeypatch.setattr(procs, "_read_stat", counting_stat)
    monkeypatch.setattr(procs, "_read_is_shared_daemon", counting_cmdline)
    with process_snapshot():
        inside = [proven_pane(sleep, {os.getpid(): "%1"}), start_time(sleep), parent_pid(sleep)]
        for _ in range(50):  # a hundred rows share one chain: no further reads
            assert proven_pane(sleep, {os.getpid(): "%1"}) == "%1"
            assert ProcessIdentity(sleep, outside[1] or "").is_alive()
        with process_snapshot():  # nested: the same memo
            start_time(parent)
    assert inside == outside == ["%1", outside[1], parent]
    assert sorted(stat_reads) == sorted(set(stat_reads)), "a stat was read twice"
    assert sorted(cmdline_reads) == sorted(set(cmdline_reads)), "a cmdline was read twice"
    # Outside a snapshot nothing is memoised: liveness is read fresh every time.
    stat_reads.clear()
    start_time(sleep)
    start_time(sleep)
    assert stat_reads == [sleep, sleep]


def test_snapshot_is_per_thread() -> None:
    import threading

    seen: list[object] = []
    with process_snapshot() as mine:
        worker = threading.Thread(target=lambda: seen.append(procs._SNAPSHOT.get()))
        worker.start()
        worker.join()
        assert procs._SNAPSHOT.get() is mine
    assert seen == [None]
    assert procs._SNAPSHOT.get() is None


def test_self_identity_is_alive() -> None:
    me = self_identity()
    assert me.pid == os.getpid() and me.is_alive()
