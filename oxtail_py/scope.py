"""Project scope: which directory is "the project", and what lies inside it.

Every comparison is between realpaths, so a symlinked checkout or a `..` in a
pane's cwd cannot smuggle a session into (or out of) a project.
"""

from __future__ import annotations

import os
from pathlib import Path

from oxtail_py.errors import OxtailError
from oxtail_py.project_root import find_project_root


class OutOfScopeError(OxtailError):
    code = "cross-project"


def real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(path))


def infer_project_root(start: str | os.PathLike[str]) -> tuple[Path, bool]:
    """(root, inferred): the nearest ancestor of `start` holding `.git`, else `start`
    (project_root.find_project_root: the rule the hook's reservation check shares)."""
    return Path(find_project_root(start)), True


def resolve_project_root(
    explicit: str | None, server_cwd: str, *, home: Path | None = None
) -> tuple[Path, bool]:
    """The project for a tool call: the caller's own project, or a directory inside it.

    `project_root` is the caller's argument, so it may narrow the caller's view and never
    widen it: `/`, a parent or a sibling project is refused (cross-project). The caller's
    own project is the one its server runs in (`infer_project_root` of its cwd).
    """
    own, inferred = infer_project_root(server_cwd)
    if not explicit:
        return own, inferred
    # Here, not at the top: the hook's mail helper imports this module (via the asks
    # ledger's `contains`) and would pay ~1.5 ms for a Settings class it never builds.
    from oxtail_py.settings import expand_home

    given = Path(expand_home(explicit, str(home)) if home is not None else explicit)
    root = real(given if given.is_absolute() else Path(server_cwd) / given)
    if not contains(own, root):
        raise OutOfScopeError(
            f"project_root {explicit!r} is outside this agent's project ({own}); an agent "
            "sees only its own project: omit project_root, or name a directory inside it"
        )
    if not root.is_dir():
        raise OxtailError(
            f"project_root {explicit!r} is not a directory", code="bad-project-root"
        )
    return root, False


def contains(root: Path, path: str | os.PathLike[str] | None) -> bool:
    if not path:
        return False
    candidate = real(path)
    return candidate == root or root in candidate.parents
