"""What an agent may reserve: a file, a directory or a gitwildmatch glob in its project.

`normalize` turns one argument of reserve_files into a `Pattern`: an anchored
gitwildmatch pattern relative to the project root and the regex pathspec defines it
by (stored with the reservation, so the hook needs no pathspec; see globmatch.py).

Files and directories are resolved to realpaths: an absolute path outside the project,
a `..` that climbs out of it, or a symlink that points out of it is refused. A glob
cannot be resolved, so its literal leading directories are (a symlink there is
replaced by its target inside the project, or refused), and `.`/`..` components are
refused. Edits are checked on realpaths too, so both sides speak of the same files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from oxtail_py.errors import OxtailError
from oxtail_py.framing import first_unsafe
from oxtail_py.globmatch import Nfa, PatternError, from_regex

MAX_PATTERN_CHARS: Final = 1024
_GLOB_CHARS: Final = frozenset("*?[")
_ESCAPE: Final = frozenset("\\*?[]")
_ESCAPED: Final = re.compile(r"\\(.)")

Kind = Literal["file", "dir", "glob"]


class PathError(OxtailError):
    code = "bad-path"


@dataclass(frozen=True, slots=True)
class Pattern:
    given: str  # what the agent wrote
    pattern: str  # anchored gitwildmatch, relative to the project root
    regex: str  # pathspec's regex for `pattern` (what the hook runs, as an NFA)
    kind: Kind

    def nfa(self) -> Nfa:
        return from_regex(self.regex)


def is_glob(raw: str) -> bool:
    """Unescaped `*`, `?` or `[` make a glob; anything else names one path."""
    escaped = False
    for ch in raw:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in _GLOB_CHARS:
            return True
    return False


def escape(relative: str) -> str:
    """A relative path as a gitwildmatch pattern that matches exactly it (anchored)."""
    text = "".join("\\" + ch if ch in _ESCAPE else ch for ch in relative)
    if text.endswith(" "):
        text = text[:-1] + "\\ "  # git strips an unescaped trailing blank
    return "/" + text


def to_regex(pattern: str, given: str) -> str:
    regex, include = GitIgnoreSpecPattern.pattern_to_regex(pattern)
    if regex is None or include is not True:
        raise PathError(
            f"{given!r} is not a valid glob (gitwildmatch: check brackets, and no leading "
            "'!' or '#'); name a file, a directory, or a glob such as 'src/**/*.py'",
            code="invalid-glob",
        )
    try:
        from_regex(regex)
    except PatternError as exc:
        raise PathError(f"{given!r} is too complex a glob ({exc}); simplify it",
                        code="invalid-glob") from exc
    return str(regex)


def _check_text(raw: str) -> None:
    if not raw or not raw.strip():
        raise PathError("an empty path; name a file, a directory or a glob in the project",
                        code="empty-path")
    if len(raw) > MAX_PATTERN_CHARS:
        raise PathError(f"path of {len(raw)} characters; the limit is {MAX_PATTERN_CHARS}")
    bad = first_unsafe(raw.replace("\n", "\x00"))
    if bad is not None:
        raise PathError(f"path {raw!r} has a control character at index {bad}; write it plain")


def _outside(raw: str, root: Path, why: str, code: str = "outside-project") -> PathError:
    return PathError(
        f"{raw!r} {why} ({root}); an agent reserves only inside its own project: name a "
        "path relative to the project root", code=code,
    )


def _inside(root: Path, real: str) -> bool:
    return real == str(root) or real.startswith(str(root).rstrip("/") + "/")


def normalize(raw: str, root: Path) -> Pattern:
    """One reserve_files / release_files argument as a Pattern in project `root` (a
    realpath). Raises PathError with a stable code and the next step."""
    _check_text(raw)
    if is_glob(raw):
        return _glob(raw, root)
    plain = _ESCAPED.sub(r"\1", raw)  # `a\[1].py` names the file `a[1].py`
    lexical = os.path.normpath(plain if os.path.isabs(plain) else os.path.join(root, plain))
    if not _inside(root, lexical):
        why = "climbs out of the project with '..'" if ".." in raw.split("/") else (
            "is outside the project")
        raise _outside(raw, root, why)
    real = os.path.realpath(lexical)
    if not _inside(root, real):
        raise _outside(raw, root, f"is a symlink that points out of the project, to {real}",
                       code="symlink-outside-project")
    if real == str(root):
        raise PathError(f"{raw!r} is the whole project; reserve the files or directories "
                        "you will edit", code="whole-project")
    relative = os.path.relpath(real, root)
    if os.path.isdir(real):
        pattern = escape(relative) + "/"
        return Pattern(raw, pattern, to_regex(pattern, raw), "dir")
    pattern = escape(relative)
    return Pattern(raw, pattern, to_regex(pattern, raw), "file")


def _glob(raw: str, root: Path) -> Pattern:
    text = raw
    if os.path.isabs(text):
        prefix = str(root).rstrip("/") + "/"
        if not text.startswith(prefix):
            raise _outside(raw, root, "is outside the project")
        text = "/" + text[len(prefix):]
    if text.startswith(("!", "#")):
        to_regex(text, raw)  # raises invalid-glob
    parts = text.split("/")
    if any(p in (".", "..") for p in parts):
        raise _outside(raw, root, "has a '.' or '..' component; globs are written from the "
                       "project root without them")
    anchored = "/" in text.rstrip("/")  # gitignore: a middle or leading slash anchors
    if anchored:
        text = _resolve_prefix(raw, text.lstrip("/"), root)
    pattern = ("/" + text) if anchored else text
    return Pattern(raw, pattern, to_regex(pattern, raw), "glob")


def _resolve_prefix(raw: str, text: str, root: Path) -> str:
    """Replace the glob's literal leading directories by their realpath in the project."""
    parts = text.split("/")
    literal: list[str] = []
    for part in parts[:-1]:
        if is_glob(part) or "\\" in part:
            break
        literal.append(part)
    if not literal:
        return text
    real = os.path.realpath(os.path.join(root, *literal))
    if not _inside(root, real):
        raise _outside(raw, root, f"goes through a symlink that points out of the project, "
                       f"to {real}", code="symlink-outside-project")
    if real == str(root):
        return "/".join(parts[len(literal):])
    relative = escape(os.path.relpath(real, root))[1:]
    return "/".join([relative, *parts[len(literal):]])
