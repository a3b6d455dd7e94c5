"""The one lock primitive: a directory lock whose name carries its owner.

    <mailbox>/lock/owner.<pid>-<start>

Acquire: build a private temp dir holding the owner file, then rename(2) it to
`lock`. rename onto an existing non-empty directory fails, so exactly one
contender wins and the lock is never visible without its owner (a plain mkdir
followed by an owner write would leave an ownerless lock if killed between).

Dead owner (pid gone, zombie, or pid reused by a process with another start
time): a waiter takes the lock over in place by renaming the dead owner's file
to its own name. That rename names the dead owner exactly, so two waiters cannot
both win and a live owner can never be robbed.

Release: rename the lock dir back to a staging name. A process keeps that
staged dir for its next acquire, so a long-lived server pays two renames per
lock cycle instead of mkdir + create + unlink + rmdir (metadata writes cost
~0.1-0.3 ms each here). Staged dirs are removed at exit, or swept once their
owner is dead. A shell script can take the same lock:
`mkdir T && : > T/owner.$$-$start && mv -T T lock`, release with `mv -T lock T2`.
"""

from __future__ import annotations

import atexit
import errno
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from oxtail_py.errors import LockTimeoutError
from oxtail_py.fsio import DIR_MODE, FILE_MODE
from oxtail_py.procs import ProcessIdentity, self_identity

DEFAULT_TIMEOUT_S: Final = 10.0
_OWNER_PREFIX: Final = "owner."
_TMP_PREFIX: Final = ".lock.tmp."
# Backoff between attempts: short first (holds last well under a millisecond),
# capped so a waiter never spins and never sleeps long past a release.
_FIRST_DELAY_S: Final = 0.0002
_MAX_DELAY_S: Final = 0.01


# lock dir -> a staged dir of ours ready to publish, per process (see module doc).
_pool: dict[tuple[int, Path], Path] = {}
_pool_guard = threading.Lock()


def _discard(staged: Path) -> None:
    """Remove a staged lock dir (it holds one owner file), as shutil.rmtree(ignore_errors)
    would, by hand: shutil (with bz2, lzma, fnmatch) costs ~2 ms to import, and the hook
    helper, which takes a mailbox lock once, would pay it at exit for this alone. The dir is
    opened O_NOFOLLOW and emptied through its descriptor, so a symlink planted in its place
    is never followed; anything unexpected inside (a subdirectory): shutil after all."""
    try:
        fd = os.open(staged, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # gone, or not a real directory: rmtree would refuse it too
    try:
        for name in os.listdir(fd):
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:  # another sweeper took it first
                continue
        os.rmdir(staged)
    except FileNotFoundError:
        pass
    except OSError:
        import shutil

        shutil.rmtree(staged, ignore_errors=True)
    finally:
        os.close(fd)


def _take_staged(lock_dir: Path) -> Path | None:
    with _pool_guard:
        return _pool.pop((os.getpid(), lock_dir), None)


def _keep_staged(lock_dir: Path, staged: Path) -> None:
    with _pool_guard:
        key = (os.getpid(), lock_dir)
        if key not in _pool:
            _pool[key] = staged
            return
    _discard(staged)


@atexit.register
def _remove_staged() -> None:
    with _pool_guard:
        mine = [staged for (pid, _), staged in _pool.items() if pid == os.getpid()]
        _pool.clear()
    for staged in mine:
        _discard(staged)


def _owner_name(owner: ProcessIdentity) -> str:
    return f"{_OWNER_PREFIX}{owner.token()}"


def lock_owner(lock_dir: Path) -> tuple[str, ProcessIdentity | None] | None:
    """(owner file name, identity or None if unparseable), or None if unlocked."""
    try:
        names = os.listdir(lock_dir)
    except (FileNotFoundError, NotADirectoryError):
        return None
    for name in names:
        if name.startswith(_OWNER_PREFIX):
            return name, ProcessIdentity.parse_token(name[len(_OWNER_PREFIX) :])
    return None


class DirLock:
    """Context manager around one lock directory. Not reentrant."""

    def __init__(self, lock_dir: Path, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.lock_dir = lock_dir
        self.timeout = timeout
        self._held = False

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        me = self_identity()
        deadline = time.monotonic() + self.timeout
        delay = _FIRST_DELAY_S
        staged = _take_staged(self.lock_dir)
        try:
            while True:
                if not self.lock_dir.exists():
                    staged = staged or self._stage(me)
                    if self._publish(staged):
                        staged = None
                        self._held = True
                        return
                elif self._take_over_if_dead(me):
                    self._held = True
                    return
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(self._timeout_message())
                time.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY_S)
        finally:
            if staged is not None:
                _keep_staged(self.lock_dir, staged)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        staged = self.lock_dir.with_name(
            f"{_TMP_PREFIX}{self_identity().token()}.{os.urandom(4).hex()}"
        )
        os.rename(self.lock_dir, staged)
        _keep_staged(self.lock_dir, staged)

    def _stage(self, me: ProcessIdentity) -> Path:
        staged = self.lock_dir.with_name(f"{_TMP_PREFIX}{me.token()}.{os.urandom(4).hex()}")
        os.mkdir(staged, DIR_MODE)
        os.close(os.open(staged / _owner_name(me), os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
        return staged

    def _publish(self, staged: Path) -> bool:
        try:
            os.rename(staged, self.lock_dir)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            if exc.errno == errno.ENOENT and not staged.exists():
                # our staged dir was swept away (it never should be): stage anew
                os.mkdir(staged, DIR_MODE)
                os.close(
                    os.open(
                        staged / _owner_name(self_identity()), os.O_CREAT | os.O_WRONLY, FILE_MODE
                    )
                )
                return self._publish(staged)
            raise
        return True

    def _take_over_if_dead(self, me: ProcessIdentity) -> bool:
        found = lock_owner(self.lock_dir)
        if found is None:
            return False
        name, owner = found
        if owner is not None and owner.is_alive():
            return False
        try:
            os.rename(self.lock_dir / name, self.lock_dir / _owner_name(me))
        except FileNotFoundError:
            return False  # another waiter took it over, or it was released
        return True

    def _timeout_message(self) -> str:
        found = lock_owner(self.lock_dir)
        holder = f"live process {found[1].pid}" if found and found[1] else "another process"
        return (
            f"{self.lock_dir} is held by {holder} for more than {self.timeout:.1f}s; "
            "retry, or check that process"
        )


def sweep_stale_lock_debris(directory: Path) -> None:
    """Remove staged dirs whose process is gone (killed, or exited without atexit)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(_TMP_PREFIX):
            owner = ProcessIdentity.parse_token(name[len(_TMP_PREFIX) :].rsplit(".", 1)[0])
            if owner is None or not owner.is_alive():
                _discard(directory / name)
