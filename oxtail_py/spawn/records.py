"""The spawn record: written by the spawner before it launches anything.

`spawns/<spawn id>.json` says who spawned which client, under which name, in which
project, at which depth, and (once tmux answered) which pane and runner process it got.
The spawned client is started with OXTAIL_SPAWN_ID=<spawn id> in its environment; its
server finds the record by that id (lineage.py). A record is a file of the user's, so it
is description, never authority: stop_peer checks the live process tree and the
spawner's own memory (spawner.py).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_json, ensure_tree, is_private_dir, load_json
from oxtail_py.layout import SESSION_ID_RE, SPAWN_ID_RE, Layout
from oxtail_py.messages import now_iso
from oxtail_py.procs import ProcessIdentity
from oxtail_py.scope import contains

CLIENTS: Final = ("claude", "codex")
NAME_MAX: Final = 32
ROLE_MAX: Final = 200
# A record whose runner is not yet known counts as live this long (a launch in progress).
_LAUNCH_GRACE_S: Final = 300.0
_MAX_RECORDS_SCANNED: Final = 4096


def new_spawn_id() -> str:
    return secrets.token_hex(16)


@dataclass
class ParentRef:
    by: str  # "agent" | "person"
    session_id: str | None = None
    name: str = ""
    server_pid: int | None = None
    server_start: str | None = None


@dataclass
class SpawnRecord:
    spawn_id: str
    client: str
    name: str
    role: str
    project_root: str
    cwd: str
    depth: int
    parent: ParentRef
    created_at: str = field(default_factory=now_iso)
    created_unix: float = field(default_factory=time.time)
    tmux_session: str | None = None
    pane_id: str | None = None
    runner_pid: int | None = None
    runner_start: str | None = None

    @property
    def runner(self) -> ProcessIdentity | None:
        if self.runner_pid is None or self.runner_start is None:
            return None
        return ProcessIdentity(self.runner_pid, self.runner_start)

    def is_live(self) -> bool:
        runner = self.runner
        if runner is None:
            return time.time() - self.created_unix < _LAUNCH_GRACE_S
        return runner.is_alive()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SpawnRecord:
        """Parse a record file (anything of the user's can write one): every field checked."""
        try:
            if not isinstance(data, dict) or not isinstance(data.get("parent"), dict):
                raise ValueError("not a spawn record")
            record = cls(**{**data, "parent": ParentRef(**data["parent"])})
        except (TypeError, ValueError) as exc:
            raise OxtailError(f"malformed spawn record: {exc}", code="bad-spawn-record") from exc
        record._check()
        return record

    def _check(self) -> None:
        ok = (
            isinstance(self.spawn_id, str)
            and bool(SPAWN_ID_RE.fullmatch(self.spawn_id))
            and self.client in CLIENTS
            and isinstance(self.name, str)
            and len(self.name) <= NAME_MAX
            and isinstance(self.role, str)
            and len(self.role) <= ROLE_MAX
            and all(isinstance(v, str) and len(v) < 4096 for v in (self.project_root, self.cwd))
            and isinstance(self.depth, int)
            and not isinstance(self.depth, bool)
            and 0 < self.depth <= 64
            and self.parent.by in ("agent", "person")
            and (self.parent.session_id is None or (
                isinstance(self.parent.session_id, str)
                and bool(SESSION_ID_RE.fullmatch(self.parent.session_id))
            ))
            and isinstance(self.parent.name, str)
            and len(self.parent.name) <= 256
            and isinstance(self.created_unix, int | float)
            and (self.runner_pid is None or (
                isinstance(self.runner_pid, int) and isinstance(self.runner_start, str)
                and ProcessIdentity.parse_token(f"{self.runner_pid}-{self.runner_start}")
                is not None
            ))
        )
        if not ok:
            raise OxtailError("malformed spawn record: a field has the wrong shape",
                              code="bad-spawn-record")


def write_record(layout: Layout, record: SpawnRecord) -> None:
    ensure_tree(layout.root, layout.spawns_dir)
    atomic_write_json(layout.spawn_record(record.spawn_id), record.to_dict())


def read_record(layout: Layout, spawn_id: str) -> SpawnRecord | None:
    """The record of `spawn_id`, or None when there is none or it is not usable."""
    if not SPAWN_ID_RE.fullmatch(spawn_id):
        return None
    try:
        return SpawnRecord.from_dict(load_json(layout.spawn_record(spawn_id)))
    except (OSError, OxtailError, ValueError):
        return None


def remove_record(layout: Layout, spawn_id: str) -> None:
    for path in (layout.spawn_record(spawn_id), layout.spawn_env(spawn_id),
                 layout.spawn_exit(spawn_id)):
        path.unlink(missing_ok=True)


def live_records(layout: Layout, project_root: Path) -> list[SpawnRecord]:
    """Spawns in `project_root` whose runner still runs (or is being launched). Records
    of ended spawns are deleted on the way: the directory stays as small as what runs."""
    directory = layout.spawns_dir
    if not is_private_dir(directory):
        return []
    live = []
    for name in sorted(os.listdir(directory))[:_MAX_RECORDS_SCANNED]:
        spawn_id, _, ext = name.partition(".")
        if ext != "json" or not SPAWN_ID_RE.fullmatch(spawn_id):
            continue
        record = read_record(layout, spawn_id)
        if record is None:
            continue
        if not record.is_live():
            remove_record(layout, spawn_id)
        elif contains(project_root, record.project_root):
            live.append(record)
    return live
