"""Editing a user's config files (Claude settings, ~/.claude.json, Codex config.toml).

Every edit: compute the new text, do nothing if it is unchanged, otherwise keep a
backup of the old file next to it and write atomically. `dry_run` only returns
the unified diff. A symlinked config (dotfile managers) is edited at its target.
"""

from __future__ import annotations

import difflib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_bytes, read_user_config


@dataclass(frozen=True, slots=True)
class FileChange:
    path: Path
    changed: bool
    diff: str
    backup: Path | None


class ConfigFileError(OxtailError):
    code = "bad-config-file"


def read_text(path: Path) -> str | None:
    """A user's config file as text (None: absent). A FIFO, a device, a file over
    fsio.MAX_CONFIG_BYTES or one that is not UTF-8 is refused (ConfigFileError), never
    read: we never rewrite a file we could not read whole."""
    try:
        data = read_user_config(path)
    except OxtailError as exc:
        raise ConfigFileError(f"{exc}; nothing was changed") from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path} ({exc.strerror}); nothing was changed"
                              ) from exc
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                              "nothing was changed") from exc


def apply(path: Path, old: str | None, new: str, *, dry_run: bool) -> FileChange:
    if old == new:
        return FileChange(path, False, "", None)
    diff = "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (now)" if old is not None else "/dev/null",
            tofile=f"{path} (after)",
        )
    )
    if dry_run:
        return FileChange(path, True, diff, None)
    target = Path(os.path.realpath(path))
    # A user's own config dirs (~, ~/.claude, ~/.codex): create if missing, but never
    # change their modes, unlike our state root.
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    backup = None
    if old is not None:
        backup = target.with_name(f"{target.name}.oxtail-backup-{time.strftime('%Y%m%d-%H%M%S')}")
        atomic_write_bytes(backup, old.encode("utf-8"))
    atomic_write_bytes(target, new.encode("utf-8"))
    return FileChange(path, True, diff, backup)
