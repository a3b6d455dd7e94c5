"""Project notes: a small shared knowledge store per project, durable, with author and time.

One file per project, `notes/<project key>.json`, changed under a DirLock
(read, change, atomic write) and read without one. Keys and categories are short
tokens; values are plain text, size-capped, shown to models as peer-written text
(neutralized, like message bodies): a note is context, never an instruction.
Any agent of the project may set, overwrite or delete any note; the author and
time of the last write are kept.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from oxtail_py.errors import OxtailError
from oxtail_py.framing import first_unsafe
from oxtail_py.fsio import atomic_write_json, ensure_tree, is_private_dir, load_json
from oxtail_py.layout import Layout
from oxtail_py.locks import DirLock
from oxtail_py.messages import now_iso

MAX_VALUE_CHARS: Final = 4000
MAX_NOTES: Final = 200
KEY_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
CATEGORY_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# 200 notes of 4,000 characters (up to 4 UTF-8 bytes each) plus their fields.
MAX_FILE_BYTES: Final = 4 << 20


class NoteError(OxtailError):
    code = "bad-note"


@dataclass(frozen=True, slots=True)
class Note:
    key: str
    value: str
    category: str | None
    author: str  # the writer's session id (or tmux session name)
    updated_at: str


def _check_key(key: str) -> str:
    if not KEY_RE.fullmatch(key):
        raise NoteError(f"note key {key!r}: use 1-64 letters, digits and . _ : / - "
                        "(starting with a letter or digit)", code="bad-note-key")
    return key


def _check_category(category: str | None) -> str | None:
    if category is None or category == "":
        return None
    if not CATEGORY_RE.fullmatch(category):
        raise NoteError(f"category {category!r}: use 1-32 letters, digits and . _ -",
                        code="bad-note-category")
    return category


def _check_value(value: str) -> str:
    if len(value) > MAX_VALUE_CHARS:
        raise NoteError(f"note value is {len(value)} characters; the limit is "
                        f"{MAX_VALUE_CHARS}. Shorten it or split it into several keys",
                        code="note-too-large")
    bad = first_unsafe(value.replace("\n", " ").replace("\t", " "))
    if bad is not None:
        raise NoteError(f"note value has a control character at index {bad}; write plain "
                        "text (line breaks and tabs are fine)", code="bad-note-value")
    return value


def _parse(data: Any) -> dict[str, Note]:
    """Every entry checked (any process of the user can write the file); bad ones are
    skipped, so one bad entry never hides the rest."""
    notes: dict[str, Note] = {}
    items = data.get("notes") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return notes
    for item in items[:MAX_NOTES]:
        try:
            note = Note(_check_key(item["key"]), _check_value(item["value"]),
                        _check_category(item.get("category")), str(item["author"])[:128],
                        str(item["updated_at"])[:64])
        except (KeyError, TypeError, OxtailError):
            continue
        notes[note.key] = note
    return notes


class NoteBook:
    def __init__(self, layout: Layout, project_root: Path) -> None:
        self.layout = layout
        self.path = layout.notes_file(project_root)
        self.lock_dir = layout.notes_lock(project_root)

    def _read(self) -> dict[str, Note]:
        if not is_private_dir(self.layout.notes_dir):
            return {}
        try:
            return _parse(load_json(self.path, max_bytes=MAX_FILE_BYTES))
        except FileNotFoundError:
            return {}
        except (OSError, OxtailError, ValueError) as exc:
            raise NoteError(f"the notes file {self.path} is unreadable ({exc}); move it "
                            "aside to start afresh", code="notes-unreadable") from exc

    def _write(self, notes: dict[str, Note]) -> None:
        ordered = sorted(notes.values(), key=lambda n: n.key)
        atomic_write_json(self.path, {"notes": [asdict(n) for n in ordered]})

    def _locked(self) -> DirLock:
        ensure_tree(self.layout.root, self.layout.notes_dir)
        return DirLock(self.lock_dir, timeout=5.0)

    def set(self, key: str, value: str, category: str | None, author: str) -> Note:
        note = Note(_check_key(key), _check_value(value), _check_category(category), author,
                    now_iso())
        with self._locked():
            notes = self._read()
            if key not in notes and len(notes) >= MAX_NOTES:
                raise NoteError(f"this project has {MAX_NOTES} notes, the limit; delete some "
                                "(delete_note) first", code="too-many-notes")
            notes[key] = note
            self._write(notes)
        return note

    def delete(self, key: str) -> Note:
        _check_key(key)
        with self._locked():
            notes = self._read()
            if key not in notes:
                raise NoteError(f"no note {key!r} in this project; get_notes lists them",
                                code="no-such-note")
            gone = notes.pop(key)
            self._write(notes)
        return gone


def list_notes(
    layout: Layout, project_root: Path, *, key: str | None = None, category: str | None = None
) -> list[Note]:
    """The project's notes, by key; only `key`, or only `category`, when given. For the
    get_notes tool and any other reader (the cockpit's status)."""
    if key is not None:
        _check_key(key)
    category = _check_category(category)
    notes = NoteBook(layout, project_root)._read()
    return [n for k, n in sorted(notes.items())
            if (key is None or k == key) and (category is None or n.category == category)]
