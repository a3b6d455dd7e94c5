"""What an agent may reserve, resolved the way edits are checked: on realpaths inside its
project, with specific errors for everything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oxtail_py.reservation_patterns import PathError, is_glob, normalize


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    (project / "src" / "lib").mkdir(parents=True)
    (project / "src" / "app.py").write_text("")
    (project / "src" / "a[1].py").write_text("")
    (project / "linked").symlink_to(project / "src")
    (tmp_path / "outside").mkdir()
    (project / "escape").symlink_to(tmp_path / "outside")
    return Path(os.path.realpath(project))


@pytest.mark.parametrize(("raw", "pattern", "kind", "example"), [
    ("src/app.py", "/src/app.py", "file", "src/app.py"),
    ("./src/app.py", "/src/app.py", "file", "src/app.py"),
    ("src/lib", "/src/lib/", "dir", "src/lib/deep/x.py"),
    ("src/new_file.py", "/src/new_file.py", "file", "src/new_file.py"),  # to be created
    ("linked/app.py", "/src/app.py", "file", "src/app.py"),  # a symlink inside: its target
    ("src/a\\[1].py", "/src/a\\[1\\].py", "file", "src/a[1].py"),  # escaped: literal
    ("src/*.py", "/src/*.py", "glob", "src/other.py"),
    ("*.py", "*.py", "glob", "deep/er/x.py"),  # no slash: any depth, as in .gitignore
    ("linked/**/*.py", "/src/**/*.py", "glob", "src/lib/x.py"),  # literal head resolved
])
def test_paths_become_anchored_patterns_on_realpaths(
    root: Path, raw: str, pattern: str, kind: str, example: str
) -> None:
    got = normalize(raw, root)
    assert (got.pattern, got.kind) == (pattern, kind)
    assert got.nfa().matches(example)
    assert not got.nfa().matches("elsewhere/y.txt")


def test_an_absolute_path_inside_the_project_is_relative_to_it(root: Path) -> None:
    assert normalize(str(root / "src" / "app.py"), root).pattern == "/src/app.py"
    assert normalize(str(root / "src") + "/*.py", root).pattern == "/src/*.py"


@pytest.mark.parametrize(("raw", "code"), [
    ("", "empty-path"),
    ("   ", "empty-path"),
    ("/etc/passwd", "outside-project"),
    ("../x", "outside-project"),
    ("src/../../x", "outside-project"),
    ("/etc/*.conf", "outside-project"),
    ("src/../*.py", "outside-project"),
    ("escape/x.py", "symlink-outside-project"),
    ("escape/*.py", "symlink-outside-project"),
    (".", "whole-project"),
    ("src/[oops", "invalid-glob"),
    ("!src/*.py", "invalid-glob"),
    ("src/\x1b[31m.py", "bad-path"),
])
def test_bad_paths_are_refused_with_specific_codes(root: Path, raw: str, code: str) -> None:
    with pytest.raises(PathError) as caught:
        normalize(raw, root)
    assert caught.value.code == code


def test_only_unescaped_metacharacters_make_a_glob() -> None:
    assert is_glob("src/*.py") and is_glob("a?") and is_glob("[ab]")
    assert not is_glob("src/app.py") and not is_glob("a\\*b")
