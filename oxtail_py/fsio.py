"""The file-system primitives every file of ours goes through (one module, one way).

Files are 0600, directories 0700. A symlink, FIFO, socket or device where one of
our files belongs is refused and never followed or opened for blocking I/O:
every open carries O_NOFOLLOW | O_NONBLOCK, and the opened descriptor must be a
regular file (a FIFO opened non-blocking returns at once and is then refused).
Every read has a size cap; every write is checked for short writes, so a full
disk is a clear `disk-full` error instead of a half-written file.
"""

from __future__ import annotations

import errno
import json
import os
import stat

from oxtail_py.errors import DiskFullError, FileTooLargeError, StateRootError, UnsafePathError

# Lean at import time (no pathlib, no typing): the hook's reservation check reads holder
# and registry files through this module in a fresh interpreter on every edit tool call.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Final

    # The readers take a str too (the lean check names paths with strings).
    AnyPath = str | os.PathLike[str]

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600

# Our JSON files (registry entries, drops, wake state) are a few KB; anything far
# larger is hostile or corrupt and is refused before it is parsed.
MAX_JSON_BYTES: Final = 1 << 20
# An inbox holds at most what peers can queue; 64 MiB is ~8,000 full-size bodies.
MAX_MAILBOX_FILE_BYTES: Final = 64 << 20
# A client's config file (settings.json, hooks.json, config.toml, ~/.claude.json, which
# holds per-project history and grows): far above any real one, still bounded.
MAX_CONFIG_BYTES: Final = 16 << 20

_DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (0700) and missing parents; refuse a symlink or non-directory there.

    Only `path` itself is tightened to 0700: a parent we did not create (the user's
    home) keeps its mode.
    """
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    except FileNotFoundError as exc:
        if path.parent == path or path.parent.exists():
            raise StateRootError(
                f"cannot create {path}: {exc.strerror}. Set AGENTMAIL_HOME to a writable directory."
            ) from exc
        ensure_private_dir(path.parent)
        return ensure_private_dir(path)
    except OSError as exc:
        if exc.errno in _DISK_FULL_ERRNOS:
            raise DiskFullError(f"cannot create {path}: the disk is full. Free space.") from exc
        raise StateRootError(
            f"cannot create {path}: {exc.strerror}. Set AGENTMAIL_HOME to a writable directory."
        ) from exc
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is a symlink or not a directory; refusing to use it")
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, DIR_MODE)
    return path


def ensure_tree(root: Path, path: Path) -> Path:
    """ensure_private_dir for `root` and every level from it down to `path`, so that a
    symlink planted at any level (say `mailboxes/`) is refused, not followed."""
    relative = path.relative_to(root)
    current = ensure_private_dir(root)
    for part in relative.parts:
        current = ensure_private_dir(current / part)
    return current


def is_private_dir(path: AnyPath) -> bool:
    """`path` is a real directory (not a symlink to one). No creation, no exceptions."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def refuse_symlink(path: Path) -> None:
    """Raise if anything but a regular file sits at `path` (nothing there is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(
            f"{path} is a symlink or not a regular file; refusing to follow it "
            "(remove it if you did not put it there)"
        )


def open_private(path: AnyPath, flags: int) -> int:
    """os.open for one of our files: never follows a symlink, never blocks on a FIFO,
    and returns only a descriptor of a regular file (created 0600)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"{path} is a symlink; refusing to follow it") from exc
        if exc.errno == errno.ENXIO:  # a FIFO with no reader, opened for writing
            raise UnsafePathError(f"{path} is not a regular file; refusing it") from exc
        if exc.errno in _DISK_FULL_ERRNOS:
            raise DiskFullError(f"cannot create {path}: the disk is full. Free space.") from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafePathError(
            f"{path} is not a regular file (a FIFO, socket or device?); refusing it "
            "(remove it if you did not put it there)"
        )
    return fd


def read_fd(fd: int, path: AnyPath, max_bytes: int) -> bytes:
    """All of an open regular file, refusing one larger than `max_bytes`."""
    size = os.fstat(fd).st_size
    if size > max_bytes:
        raise FileTooLargeError(
            f"{path} is {size} bytes, over the {max_bytes}-byte limit for this file; "
            "it is corrupt or hostile: move it aside"
        )
    chunks: list[bytes] = []
    got = 0
    while True:
        chunk = os.read(fd, max(65536, size - got + 1))
        if not chunk:
            return b"".join(chunks)
        got += len(chunk)
        if got > max_bytes:  # it grew while we read
            raise FileTooLargeError(f"{path} grew past the {max_bytes}-byte limit while read")
        chunks.append(chunk)


def read_private(path: AnyPath, *, max_bytes: int = MAX_JSON_BYTES) -> bytes:
    """Read one of our files: regular files only, at most `max_bytes`."""
    fd = open_private(path, os.O_RDONLY)
    try:
        return read_fd(fd, path, max_bytes)
    finally:
        os.close(fd)


def read_user_config(path: Path, *, max_bytes: int = MAX_CONFIG_BYTES) -> bytes | None:
    """A client's config file of the user's (None: absent). Unlike our own files it may
    be a symlink (dotfile managers link them), so it is followed; but it must be a regular
    file (a FIFO would block the reader for ever) and at most `max_bytes`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(
                f"{path} is not a regular file (a FIFO, socket or device?); refusing it")
        return read_fd(fd, path, max_bytes)
    finally:
        os.close(fd)


def load_json(path: AnyPath, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse one of our JSON files. Any parse failure (bad UTF-8, bad JSON, nesting too
    deep for the parser, a number too large) is a ValueError with the reason."""
    data = read_private(path, max_bytes=max_bytes)
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc


def write_all(fd: int, data: bytes, path: Path) -> None:
    """Write every byte of `data` or raise: a short write is retried, and one that
    makes no progress (a full disk) is a DiskFullError, never silent truncation."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as exc:
            if exc.errno in _DISK_FULL_ERRNOS:
                raise DiskFullError(
                    f"cannot write {path}: the disk is full. Free space, then retry."
                ) from exc
            raise
        if written <= 0:
            raise DiskFullError(f"cannot write {path}: no progress (disk full?). Free space.")
        view = view[written:]


def create_marker(path: Path) -> None:
    """An empty file of ours (its name is the information)."""
    os.close(open_private(path, os.O_CREAT | os.O_WRONLY))


def _staged(path: Path, data: bytes, *, durable: bool) -> Path:
    """`data` in a new temp file beside `path` (0600, checked full write, fsync when
    `durable`), for the caller to publish by rename or link; nothing is left on failure."""
    refuse_symlink(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        write_all(fd, data, path)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` atomically (temp in the same dir, fsync, rename).

    Readers see the old content or the new, never a torn file; a crash leaves at
    worst a stray `.tmp` file that is never read. durable=False skips the fsync:
    the rename is still atomic against a killed process, only a power cut could
    lose it. The mailbox rewrites use it because their appends are not fsynced
    either (mailbox.py), so a sync there would buy nothing but ~2 ms per reply.
    """
    tmp = _staged(path, data, durable=durable)
    try:
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, (json.dumps(value, ensure_ascii=False, indent=1) + "\n").encode())


def write_once_bytes(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` unless it exists: True if we wrote it, False if a
    file was already there (the first writer wins; a second loses quietly).

    The bytes go to a temp file first and are published by link(2), which fails if the
    name exists: a reader never sees a torn file, and a writer killed half-way leaves
    only a stray temp file. Not fsynced (the mailbox is not either: see mailbox.py).
    """
    tmp = _staged(path, data, durable=False)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in _DISK_FULL_ERRNOS:
            raise DiskFullError(f"cannot create {path}: the disk is full. Free space.") from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return True


def write_once_json(path: Path, value: Any) -> bool:
    return write_once_bytes(path, (json.dumps(value, ensure_ascii=False) + "\n").encode())
