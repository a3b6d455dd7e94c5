"""Project scope: which directory is "the project", and what lies inside it.

Every comparison is between realpaths, so a symlinked checkout or a `..` in a
pane's cwd cannot smuggle a session into (or out of) a project.
"""

from __future__ import annotations

import os
from pathlib import Path

from oxtail_py.errors import OxtailError


class OutOfScopeError(OxtailError):
    code = "cross-project"


def real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(path))


def infer_project_root(start: str | os.PathLike[str]) -> tuple[Path, bool]:
    """(root, inferred): the nearest ancestor of `start` holding `.git`, else `start`."""
    here = real(start)
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate, True
    return here, True


def resolve_project_root(explicit: str | None, server_cwd: str) -> tuple[Path, bool]:
    """The project for a tool call: the caller's explicit root, else the inferred one."""
    if explicit:
        root = real(Path(explicit).expanduser())
        if not root.is_dir():
            raise OxtailError(
                f"project_root {explicit!r} is not a directory", code="bad-project-root"
            )
        return root, False
    return infer_project_root(server_cwd)


def contains(root: Path, path: str | os.PathLike[str] | None) -> bool:
    if not path:
        return False
    candidate = real(path)
    return candidate == root or root in candidate.parents
