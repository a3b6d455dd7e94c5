"""The one atomic-write helper: temp file in the same directory, fsync, rename.

Readers see the old content or the new, never a torn file; a crash leaves at
worst a stray `.tmp` file that is never read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from oxtail_py.layout import open_private, refuse_symlink


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` atomically.

    durable=False skips the fsync: the rename is still atomic against a killed
    process, only a power cut could lose it. The mailbox rewrites use it because
    their appends are not fsynced either (mailbox.py), so a sync there would buy
    nothing but ~2 ms on the ask_peer reply path.
    """
    refuse_symlink(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, (json.dumps(value, ensure_ascii=False, indent=1) + "\n").encode())


def read_private(path: Path) -> bytes:
    """Read a file of ours, refusing to follow a symlink planted in its place."""
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()
