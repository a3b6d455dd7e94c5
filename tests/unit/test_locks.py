"""The directory lock across real processes: exclusion, dead-owner recovery, pid reuse."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oxtail_py.errors import LockTimeoutError
from oxtail_py.locks import DirLock, lock_owner, sweep_stale_lock_debris
from oxtail_py.procs import ProcessIdentity, self_identity

WORKER = str(Path(__file__).parents[1] / "mailbox_worker.py")


def _hold_lock(lock_dir: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, WORKER, "hold-lock", str(lock_dir), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "LOCKED"
    return proc


def test_lock_names_its_owner_and_is_gone_after_release(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    with DirLock(lock_dir):
        found = lock_owner(lock_dir)
        assert found is not None and found[1] == self_identity()
    assert not lock_dir.exists()
    # One staged dir is kept for the next acquire (two renames per cycle).
    [staged] = os.listdir(tmp_path)
    assert staged.startswith(f".lock.tmp.{self_identity().token()}.")
    with DirLock(lock_dir):
        assert os.listdir(tmp_path) == ["lock"]


def test_a_process_leaves_no_lock_debris_when_it_exits(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from oxtail_py.locks import DirLock\n"
        "for _ in range(3):\n"
        "    with DirLock(Path(sys.argv[1])): pass\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "lock")], check=True)
    assert os.listdir(tmp_path) == []


def test_owner_killed_with_sigkill_is_replaced_at_once(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    holder = _hold_lock(lock_dir, 60)
    holder.kill()
    holder.wait()
    # A dead owner must not cost a waiter its timeout: 0.5 s is plenty for "at once".
    with DirLock(lock_dir, timeout=0.5):
        found = lock_owner(lock_dir)
        assert found is not None and found[1] == self_identity()


def test_zombie_owner_counts_as_dead(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    holder = _hold_lock(lock_dir, 60)
    holder.kill()
    time.sleep(0.05)  # not reaped yet: the pid exists as a zombie
    try:
        with DirLock(lock_dir, timeout=0.5):
            pass
    finally:
        holder.wait()


def test_live_slow_owner_is_waited_for_never_robbed(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    holder = _hold_lock(lock_dir, 0.6)
    with pytest.raises(LockTimeoutError) as info:
        DirLock(lock_dir, timeout=0.2).acquire()
    assert f"live process {holder.pid}" in str(info.value)
    assert info.value.code == "mailbox-locked"
    with DirLock(lock_dir, timeout=10):
        assert holder.poll() is not None or holder.wait() == 0
    assert holder.stdout is not None and holder.stdout.read().strip() == "RELEASED"


def test_reused_pid_with_another_start_time_is_a_dead_owner(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    # Our own live pid, but a start time that is not ours: a previous process
    # that had this pid before it was recycled.
    me = self_identity()
    stale = ProcessIdentity(me.pid, f"{float(me.start) - 1000:.2f}")
    (lock_dir / f"owner.{stale.token()}").touch()
    with DirLock(lock_dir, timeout=0.5):
        assert lock_owner(lock_dir) == (f"owner.{me.token()}", me)


def test_unparseable_owner_is_treated_as_dead(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    (lock_dir / "owner.garbage").touch()
    with DirLock(lock_dir, timeout=0.5):
        pass


def test_many_processes_increment_a_counter_without_losing_updates(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    script = (
        "import sys; from pathlib import Path; from oxtail_py.locks import DirLock\n"
        "p = Path(sys.argv[1])\n"
        "for _ in range(200):\n"
        "    with DirLock(p.parent / 'lock'):\n"
        "        p.write_text(str(int(p.read_text()) + 1))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(counter)]) for _ in range(6)]
    assert [p.wait() for p in procs] == [0] * 6
    assert counter.read_text() == "1200"


def test_debris_of_killed_acquirers_is_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    debris = tmp_path / f".lock.tmp.{dead.pid}-1.00.abcd1234"
    debris.mkdir()
    (debris / f"owner.{dead.pid}-1.00").touch()
    mine = tmp_path / f".lock.tmp.{self_identity().token()}.abcd1234"
    mine.mkdir()
    sweep_stale_lock_debris(tmp_path)
    assert not debris.exists() and mine.exists()


def test_sweeping_debris_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """Debris is removed without shutil (an import the hook would pay for), through an
    O_NOFOLLOW descriptor: a link in its place is left alone, and so is what it points at;
    a subdirectory inside (not ours) still goes, as shutil.rmtree would take it."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep")
    link = tmp_path / f".lock.tmp.{dead.pid}-1.00.link0000"
    link.symlink_to(victim)
    nested = tmp_path / f".lock.tmp.{dead.pid}-1.00.nest0000"
    (nested / "sub").mkdir(parents=True)
    (nested / "sub" / "x").touch()
    (nested / f"owner.{dead.pid}-1.00").touch()
    sweep_stale_lock_debris(tmp_path)
    assert (victim / "precious").read_text() == "keep"
    assert link.is_symlink()
    assert not nested.exists()


def test_an_owner_named_with_non_ascii_digits_is_treated_as_dead(tmp_path: Path) -> None:
    """str.isdigit() takes "²", int() does not: such a name is unparseable, not a crash."""
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    (lock_dir / "owner.\u00b2-1.00").touch()
    with DirLock(lock_dir, timeout=0.5):
        pass
