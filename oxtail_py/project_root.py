"""Which directory is "the project" of a path: one rule, lean (imports only `os`, `errno`).

The nearest ancestor of the path's realpath holding `.git` (followed if a link), else the
realpath itself. scope.infer_project_root is this rule; the hook's reservation check calls
it directly, so both find the same project for the same path (a reservation and an edit
must speak of the same files).
"""

from __future__ import annotations

import errno
import os


def _exists(path: str) -> bool:
    # pathlib's Path.exists: only "no such entry" answers False; EACCES and the like
    # propagate (a check that cannot see fails open rather than guessing a project).
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False
        raise
    return True


def find_project_root(start: str | os.PathLike[str]) -> str:
    """The realpath of the nearest ancestor of `start` (itself included) holding `.git`,
    else the realpath of `start`."""
    here = os.path.realpath(start)
    candidate = here
    while True:
        if _exists(os.path.join(candidate, ".git")):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return here
        candidate = parent
